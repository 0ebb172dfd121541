"""The notebook face of AllSource Lab: the ``%allsource`` magic (and, beside it, widgets).

This package is the only part of ``allsource_lab`` that imports IPython or ipywidgets.
``%load_ext allsource_lab`` (or ``%load_ext allsource_lab.notebook``) registers the
magic; ``%unload_ext`` closes the store it opened and removes the magic, so
``%reload_ext`` starts afresh.

>>> from IPython.core.interactiveshell import InteractiveShell
>>> shell = InteractiveShell.instance()
>>> load_ipython_extension(shell)
>>> shell.run_line_magic("allsource", "open --memory").events
0
>>> unload_ipython_extension(shell)
>>> "allsource" in shell.magics_manager.magics["line"]
False
"""

from __future__ import annotations

from typing import Any

from allsource_lab.notebook.magics import AllSourceMagics

__all__ = ["AllSourceMagics", "load_ipython_extension", "unload_ipython_extension"]

_NAME = AllSourceMagics.__name__


def load_ipython_extension(shell: Any) -> None:
    """Register ``%allsource``/``%%allsource`` and its settings with ``shell``.

    Loading again while loaded keeps the existing magics (and their current store).
    """
    if isinstance(shell.magics_manager.registry.get(_NAME), AllSourceMagics):
        return
    # Constructing the magics also lists them in shell.configurables, for %config.
    shell.register_magics(AllSourceMagics(shell))


def unload_ipython_extension(shell: Any) -> None:
    """Close the store the magics opened and remove ``%allsource`` and its settings."""
    magics = shell.magics_manager.registry.pop(_NAME, None)
    if magics is not None:
        magics.session.close_all()
        shell.configurables[:] = [c for c in shell.configurables if c is not magics]
    for kind in ("line", "cell"):
        table = shell.magics_manager.magics[kind]
        if getattr(table.get("allsource"), "__self__", None) is magics or magics is None:
            table.pop("allsource", None)
