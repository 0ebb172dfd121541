"""``%allsource export-delta URI``: append the current store's sealed history to a Delta
Lake table (``store.export_delta``), with a progress bar on large exports.

The result shows as a one-row table: the table's location, the events this run appended,
the last sequence the table holds, its commits and version. ``-o NAME`` binds the dict
``store.export_delta`` returned.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from allsource_lab.display.views import ProgressView, TableView
from allsource_lab.notebook.arguments import MagicArgumentParser
from allsource_lab.notebook.session import Context, Outcome

__all__ = ["export_delta", "export_delta_arguments"]


def export_delta_arguments(p: MagicArgumentParser) -> None:
    """``export-delta URI [--checkpoint] [--storage-option KEY=VALUE ...] [--quiet]``."""
    p.add_argument("uri", metavar="URI", help="the Delta table: a folder, or s3://, gs://, az://")
    p.add_argument(
        "--checkpoint",
        action="store_true",
        help="seal the unsealed tail first (else only sealed events are exported)",
    )
    p.add_argument(
        "--storage-option",
        dest="storage_options",
        action="append",
        metavar="KEY=VALUE",
        help="a delta-rs storage option, e.g. AWS_REGION=eu-west-1 (repeat for more)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _storage_options(pairs: list[str] | None) -> dict[str, str] | None:
    """``KEY=VALUE`` texts as a dict.

    Raises:
        InvalidArgument: one is not ``KEY=VALUE``.
    """
    from allsource_lab.errors import InvalidArgument

    if not pairs:
        return None
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidArgument(
                f"--storage-option {pair!r} is not KEY=VALUE (e.g. AWS_REGION=eu-west-1)"
            )
        options[key] = value
    return options


def export_delta(ctx: Context, args: argparse.Namespace) -> Outcome:
    """``export-delta URI``: ``store.export_delta(URI, ...)``."""
    import pandas as pd

    store = ctx.store()
    options = _storage_options(args.storage_options)
    progress = None if args.quiet else _progress_bar(ctx.options.progress_rows)
    done = store.export_delta(args.uri, options, checkpoint=args.checkpoint, progress=progress)
    # Seconds are left out of what is shown, as checkpoints leave them out: a rerun of the
    # notebook shows the same table.
    shown = pd.DataFrame([{k: v for k, v in done.items() if k != "seconds"}])
    return Outcome(TableView(shown, title="exported to Delta Lake", store=ctx.info()), done)


def _progress_bar(threshold: int) -> Callable[[int, int], None]:
    """A progress callback that draws one display in the cell once an export has at least
    ``threshold`` events to write, and redraws it after each commit."""
    from IPython import display as ipython_display

    show: Any = ipython_display.display  # untyped in IPython
    handle: Any = None

    def update(done: int, total: int) -> None:
        nonlocal handle
        if total < threshold:
            return
        view = ProgressView(done, total, label="exporting to Delta Lake")
        if handle is None:
            handle = show(view, display_id=True)
        else:
            handle.update(view)

    return update
