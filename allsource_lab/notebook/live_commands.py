"""Subcommands over what follows the store: projections, replays, pipelines, and the
widgets (explore, timetravel, tail).

Widgets come from :mod:`allsource_lab.notebook.widgets`, imported only when asked for:
without ipywidgets the subcommand says how to install it. ``-o`` binds the widget, the
``ReplayJob``, the list of ``ProjectionInfo`` or of pipeline stats, or a pipeline's
results DataFrame.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from IPython.core.error import UsageError

from allsource_lab.display.views import PipelinesView, ProjectionsView, ReplayView, TableView
from allsource_lab.notebook.session import Context, Outcome
from allsource_lab.projections import EntitySnapshots, EventCounter, Projection

__all__ = ["explore", "pipelines", "projections", "replay", "tail", "timetravel", "widgets"]

_INSTALL = "pip install 'allsource-lab[notebook]'"


def widgets(feature: str) -> ModuleType:
    """:mod:`allsource_lab.notebook.widgets`, or a ``UsageError`` saying what is missing."""
    try:  # through sys.modules, so a module known to be missing (None) is refused there
        module = importlib.import_module("allsource_lab.notebook.widgets")
    except ImportError as exc:
        raise UsageError(f"{feature} needs ipywidgets ({exc}); install it: {_INSTALL}") from None
    return module


def _projection(ctx: Context, name: str) -> Any:
    """The projection PROJECTION names: one added to the store, a built-in (a new one),
    or a variable holding a Projection."""
    store = ctx.store()
    if name in store.projections:
        return store.projections[name]
    builtins: dict[str, Callable[[], Projection]] = {
        "EventCounter": EventCounter,
        "EntitySnapshots": EntitySnapshots,
    }
    if name in builtins:
        return builtins[name]()
    value = ctx.namespace.get(name) if name.isidentifier() else None
    if isinstance(value, Projection):
        return value
    added = ", ".join(sorted(p.name for p in store.projections)) or "none"
    raise UsageError(
        f"no projection {name!r}: give one added to the store ({added}), EventCounter, "
        "EntitySnapshots, or the name of a variable holding an asl.Projection"
    )


def replay(ctx: Context, args: argparse.Namespace) -> Outcome:
    """``replay PROJECTION [--since] [--until] [--type] [--wait]``."""
    projection = _projection(ctx, args.projection)
    job = ctx.store().replay(
        projection,
        since=args.since,
        until=args.until,
        event_types=args.event_types,
        batch_size=args.batch_size,
    )
    if args.wait:
        try:
            job.wait()
        except KeyboardInterrupt:  # the user stopped the cell: stop the replay too
            job.cancel()
            job.wait()
    elif ctx.options.widgets:
        try:
            from allsource_lab.notebook.widgets import replay_progress
        except ImportError:
            pass  # no widgets: the status as it is now, below
        else:
            return Outcome(replay_progress(job), job)
    return Outcome(ReplayView(job, store=ctx.info()), job)


def projections(ctx: Context, args: argparse.Namespace) -> Outcome:
    """``projections``: ``store.projections.info()``."""
    infos = ctx.store().projections.info()
    return Outcome(ProjectionsView(infos, store=ctx.info()), infos)


def pipelines(ctx: Context, args: argparse.Namespace) -> Outcome:
    """``pipelines``: every pipeline's stats; ``pipelines NAME``: its results."""
    store = ctx.store()
    if args.name is None:
        if args.flush:
            raise UsageError("--flush needs a pipeline NAME")
        stats = [store.pipelines.stats(name) for name in store.pipelines.list()]
        return Outcome(PipelinesView(stats, store=ctx.info()), stats)
    if args.flush:
        store.pipelines.flush(args.name)
    results = store.pipelines.results(args.name)
    title = f"results of pipeline {args.name} ({len(results):,} rows)"
    return Outcome(TableView(results, title=title, store=ctx.info()), results)


def explore(ctx: Context, args: argparse.Namespace) -> Outcome:
    """``explore``: the explorer widget over the current store."""
    widget = widgets("explore").explorer(ctx.store())
    return Outcome(widget, widget)


def timetravel(ctx: Context, args: argparse.Namespace) -> Outcome:
    """``timetravel ENTITY``: a slider through the entity's history."""
    store = ctx.store()
    store.state(args.entity_id)  # an unknown entity is a one-line NotFound, not a widget
    widget = widgets("timetravel").timetravel(store, args.entity_id)
    return Outcome(widget, widget)


def tail(ctx: Context, args: argparse.Namespace) -> Outcome:
    """``tail [--rows N]``: a live tail of new events."""
    rows = args.rows or ctx.options.tail_rows
    widget = widgets("tail").live_tail(ctx.store(), rows=rows)
    return Outcome(widget, widget)
