"""numba kernels: bulk work over plain arrays (Arrow buffers viewed as numpy).

Kernels take and return arrays and know nothing about the store (STYLE.md rule 2).
Every kernel is compiled with ``cache=True`` through :func:`jit`, so a warm start
does not recompile.
"""
