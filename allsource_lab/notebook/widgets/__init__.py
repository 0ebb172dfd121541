"""Widgets for a store in a notebook (ipywidgets 8): explore, time travel, watch, inspect.

Each function returns a widget to display (the last expression of a cell, or
``IPython.display.display(w)``); the magics ``%allsource explore`` and ``%allsource
timetravel`` call them. Each widget keeps what it shows in traits (``explorer.page``,
``timetravel.version``, ``tail.rows``, ...): set one from code and the widget follows, as
it does when a control is used. A handler that fails shows its error in the widget
(``widget.error`` and a red line with the traceback), not only in the kernel's log.

>>> import allsource_lab as asl
>>> from allsource_lab.notebook import widgets
>>> store = asl.open()
>>> _ = store.append("cart.opened", "cart-1", {"items": {"tea": 1}})
>>> _ = store.append("cart.changed", "cart-1", {"items": {"jam": 2}})
>>> travel = widgets.timetravel(store, "cart-1")
>>> travel.version, travel.state
(2, {'items': {'tea': 1, 'jam': 2}})
>>> travel.version = 1
>>> travel.state
{'items': {'tea': 1}}
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from allsource_lab.notebook.widgets.explore import Explorer
from allsource_lab.notebook.widgets.panel import Panel
from allsource_lab.notebook.widgets.replay import ReplayProgressBar
from allsource_lab.notebook.widgets.schema import SchemaPanel
from allsource_lab.notebook.widgets.tail import LiveTail
from allsource_lab.notebook.widgets.timetravel import TimeTravel

if TYPE_CHECKING:
    from allsource_lab.replay import ReplayJob
    from allsource_lab.store import EventStore

__all__ = [
    "Explorer",
    "LiveTail",
    "Panel",
    "ReplayProgressBar",
    "SchemaPanel",
    "TimeTravel",
    "explorer",
    "live_tail",
    "replay_progress",
    "schema_panel",
    "timetravel",
]


def explorer(store: EventStore, page_size: int = 20) -> Explorer:
    """Filter the store's events by type, entity and event time, page through them, and
    select one to see its payload and the entity's state right after it.

    Raises:
        traitlets.TraitError: ``page_size`` is below 1.
    """
    return Explorer(store, page_size=page_size)


def timetravel(store: EventStore, entity_id: str) -> TimeTravel:
    """A slider over ``entity_id``'s history: its state at each moment and the diff from
    the moment before, on event time or (toggled) recorded time.

    An entity with no events shows that as the widget's error.
    """
    return TimeTravel(store, entity_id)


def live_tail(store: EventStore, rows: int = 50) -> LiveTail:
    """The newest ``rows`` events, with events appended from now on shown as they come.

    It stops when closed (``tail.close()``, or ``tail.stop()`` to keep it on screen) or
    when the store closes.

    Raises:
        StorageError: the store is closed.
        traitlets.TraitError: ``rows`` is below 1.
    """
    return LiveTail(store, rows=rows)


def replay_progress(job: ReplayJob, interval_s: float = 0.2) -> ReplayProgressBar:
    """A progress bar for a ``store.replay(...)`` job, read every ``interval_s``: events
    done of the total, events/s, time left, and a button that cancels the replay."""
    return ReplayProgressBar(job, interval_s=interval_s)


def schema_panel(store: EventStore) -> SchemaPanel:
    """The schema registry: subjects, their versions and compatibility mode, the diff
    between two versions (JSON and compatibility), and a check of a candidate schema."""
    return SchemaPanel(store)
