"""numba kernels: bulk work over plain arrays (Arrow buffers viewed as numpy).

Kernels take and return arrays and know nothing about the store (docs/architecture.md,
"Where numba is used, and why"). Every kernel is compiled with ``cache=True`` through
:func:`jit`, so a warm start does not recompile.
"""
