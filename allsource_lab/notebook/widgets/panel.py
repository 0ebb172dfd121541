"""What every AllSource widget shares: a box with a title, an error line, and HTML parts.

A callback of an ipywidgets control that raises is only written to the kernel's log,
where a notebook user never looks; every handler here is wrapped by :func:`reported`,
which shows the error in the widget itself (``panel.error`` and a red line with the
traceback folded under it) and clears it at the next action that succeeds.
"""

from __future__ import annotations

import contextvars
import functools
import html
import threading
import traceback
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import ipywidgets
import orjson
import traitlets

from allsource_lab.events import Event

__all__ = [
    "PRE_STYLE",
    "TABLE_STYLE",
    "Panel",
    "event_table",
    "iso",
    "json_block",
    "reported",
    "short_json",
    "start_thread",
]


def start_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """Start a daemon thread running ``target`` in a copy of the caller's context.

    ipykernel (7) keeps the request that a message answers (its "parent header") in a
    ContextVar: a plain thread would see the kernel's latest request instead, and the
    widget's updates could be attributed to another cell. Copying the context of the
    cell that made the widget keeps them with that cell.
    """
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(target,), name=name, daemon=True)
    thread.start()
    return thread


_P = ParamSpec("_P")
_PanelT = TypeVar("_PanelT", bound="Panel")

# A cell of payload text in a table: enough to recognise an event, short enough to keep a
# row on one line.
PAYLOAD_CHARS = 120
PANEL_CLASS = "allsource-panel"
# Inline on each block, not only in the panel's style sheet: an HTML widget's own rules
# (a 28 px line height for one-line labels) would otherwise win in some front ends.
PRE_STYLE = (
    "font-family:var(--jp-code-font-family,monospace);font-size:12px;line-height:1.35;"
    "margin:2px 0;white-space:pre"
)
TABLE_STYLE = "font-size:12px;line-height:1.35;border-collapse:collapse"
_PANEL_CSS = (
    f"<style>.{PANEL_CLASS} .widget-html-content {{line-height:1.45}}"
    f".{PANEL_CLASS} th, .{PANEL_CLASS} td "
    "{padding:1px 10px 1px 0;text-align:left;vertical-align:top}</style>"
)


class Panel(ipywidgets.VBox):  # type: ignore[misc]  # ipywidgets ships no type information
    """A vertical box with a title line and an error line above its ``body`` widgets.

    ``error`` is the last handler error as ``"Type: message"`` (``""`` when the last
    action succeeded).
    """

    error = traitlets.Unicode("", help="the last handler error ('' when none)")

    def __init__(self, title: str, body: Sequence[ipywidgets.Widget]) -> None:
        self._title = ipywidgets.HTML(f"{_PANEL_CSS}<b>{html.escape(title)}</b>")
        self._error_box = ipywidgets.HTML("")
        self._error_box.layout.display = "none"
        # Handlers run on the kernel's thread and, for the live widgets, on a watcher
        # thread: each keeps its own nesting depth so that an action clears only the
        # errors of an earlier action, never one raised by a handler it set off.
        self._depth = threading.local()
        super().__init__([self._title, self._error_box, *body])
        self.add_class(PANEL_CLASS)

    def _show_error(self, exc: BaseException) -> None:
        summary = f"{type(exc).__name__}: {exc}"
        trace = "".join(traceback.format_exception(exc))
        self.error = summary
        self._error_box.value = (
            '<div style="color:#b00020;border-left:3px solid #b00020;padding-left:6px">'
            f"<details><summary>{html.escape(summary)}</summary>"
            f'<pre style="{PRE_STYLE}">{html.escape(trace)}</pre></details></div>'
        )
        self._error_box.layout.display = None

    def _clear_error(self) -> None:
        if self.error:
            self.error = ""
            self._error_box.value = ""
            self._error_box.layout.display = "none"


def reported(
    method: Callable[Concatenate[_PanelT, _P], None],
) -> Callable[Concatenate[_PanelT, _P], None]:
    """Wrap a panel's handler so that an exception shows in the panel instead of the log.

    The outermost handler of an action clears the previous error first; the first error
    raised during the action stays shown.
    """

    def run(self: _PanelT, /, *args: _P.args, **kwargs: _P.kwargs) -> None:
        depth: int = getattr(self._depth, "value", 0)
        if depth == 0:
            self._clear_error()
        self._depth.value = depth + 1
        try:
            method(self, *args, **kwargs)
        except Exception as exc:
            if not self.error:
                self._show_error(exc)
        finally:
            self._depth.value = depth

    functools.update_wrapper(run, method)
    return run


def iso(moment: datetime) -> str:
    """An aware datetime as ISO-8601 UTC text ending in ``Z``.

    >>> from datetime import datetime, timezone
    >>> iso(datetime(2026, 1, 1, 12, 30, tzinfo=timezone.utc))
    '2026-01-01T12:30:00Z'
    """
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def short_json(value: Any, limit: int = PAYLOAD_CHARS) -> str:
    """Compact JSON text, cut to ``limit`` characters with an ellipsis.

    >>> short_json({"a": 1, "b": "x" * 10}, limit=12)
    '{"a":1,"b":…'
    """
    text = orjson.dumps(value, default=str).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_block(value: Any) -> str:
    """Indented JSON in an HTML ``<pre>`` block (keys sorted, so it reads the same each time)."""
    text = orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    return (
        f'<pre style="{PRE_STYLE};max-height:24em;overflow:auto">{html.escape(text.decode())}</pre>'
    )


def event_table(events: Iterable[Event]) -> str:
    """An HTML table of events: sequence, event time, type, entity, version, payload."""
    rows = [
        f"<tr><td>{e.sequence}</td><td>{iso(e.timestamp)}</td>"
        f"<td>{html.escape(e.event_type)}</td><td>{html.escape(e.entity_id)}</td>"
        f"<td>{e.version}</td><td><code>{html.escape(short_json(e.payload))}</code></td></tr>"
        for e in events
    ]
    return (
        f'<table style="{TABLE_STYLE}"><thead><tr><th>sequence</th><th>timestamp</th>'
        "<th>event_type</th><th>entity_id</th><th>version</th><th>payload</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
