"""Plain text and HTML rendered from an ``application/vnd.allsource.v1+json`` document.

Both forms are drawn from the document alone (see ``docs/mimetype.md``), never from the
objects behind it, so what a notebook shows without the JupyterLab extension says the
same as what the extension shows. Each kind reads as a :class:`Layout`: a title line,
labelled facts, a bulleted list (problems), a JSON block (a state, a schema) and a table
cut at the document's row limit with a "showing N of M" footer.

>>> doc = {"version": 1, "kind": "integrity", "ok": False, "files_checked": 3,
...        "problems": ["wal/1.wal at byte 8: bad checksum"]}
>>> print(render_text(doc))
integrity NOT OK: 1 problem in 3 files
  - wal/1.wal at byte 8: bad checksum
"""

from __future__ import annotations

import html
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from allsource_lab.errors import InvalidArgument

__all__ = ["SEE_ALL", "Layout", "render_html", "render_text"]

_TEXT_CELL_CHARS = 60  # widest a plain-text cell is printed before it is cut with "…"
_HTML_SUMMARY_CHARS = 80  # longest JSON an HTML cell shows before collapsing it
_LEFT = ' style="text-align:left"'
_RIGHT = ' style="text-align:right"'


@dataclass
class Layout:
    """How a document reads: a title, labelled facts, a bulleted list, a JSON block and a
    table (``show`` picks its columns, ``noun`` names its rows, ``types`` shows column
    types in the HTML header)."""

    title: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    block: Any = None
    table: dict[str, Any] | None = None
    show: Sequence[str] | None = None
    noun: str = "rows"
    types: bool = False


# -- words ----------------------------------------------------------------------------------


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun if n == 1 else noun + 's'}"


def _compact(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2).decode()


def _plain(value: Any) -> str:
    """A fact's value as words: ``-`` for none, ``yes``/``no``, ints with separators."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return "; ".join(_plain(v) for v in value) or "none"
    if isinstance(value, dict):
        return _compact(value)
    return str(value)


def _filters(query: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_plain(v)}" for k, v in query.items())


# -- one layout per kind --------------------------------------------------------------------


def _events(doc: dict[str, Any]) -> Layout:
    where = _filters(doc["query"])
    title = _count(doc["table"]["total"], "event") + (f" ({where})" if where else "")
    cursor = doc["next_cursor"]
    fields = [] if cursor is None else [("next page", _next_page(doc["query"], cursor))]
    show = ("sequence", "timestamp", "event_type", "entity_id", "version", "payload")
    return Layout(title, fields, table=doc["table"], show=show, noun="events")


# The events subcommand's option for each member of an events document's query.
_EVENTS_OPTIONS = {
    "entity_id": "--entity",
    "event_type": "--type",
    "since": "--since",
    "until": "--until",
    "as_of": "--as-of",
    "known_at": "--known-at",
    "limit": "--limit",
}


def _next_page(query: Mapping[str, Any], cursor: int) -> str:
    """The cursor, and the magic line that reads the page after it (the same filters).

    >>> _next_page({"event_type": "order.placed", "after": 7, "limit": 200}, 57)
    'after=57: %allsource events --type order.placed --limit 200 --after 57'
    """
    options = [
        f"{_EVENTS_OPTIONS[k]} {shlex.quote(str(v))}"
        for k, v in query.items()
        if k in _EVENTS_OPTIONS
    ]
    return f"after={cursor}: " + " ".join(["%allsource events", *options, f"--after {cursor}"])


def _state(doc: dict[str, Any]) -> Layout:
    title = f"state of {doc['entity_id']}"
    if doc["entity_version"] is not None:
        title += f" at version {doc['entity_version']}"
    moments = [f"{k.replace('_', ' ')} {doc[k]}" for k in ("as_of", "known_at") if doc[k]]
    if moments:
        title += f" ({', '.join(moments)})"
    return Layout(title, block=doc["state"])


def _table(doc: dict[str, Any]) -> Layout:
    title = doc["title"] or _count(doc["table"]["total"], "row")
    fields = [("query", doc["query"])] if doc["query"] else []
    return Layout(title, fields, table=doc["table"], types=True)


def _window(doc: dict[str, Any]) -> Layout:
    spec = _filters(doc["spec"])
    title = _count(doc["table"]["total"], "window") + (f" ({spec})" if spec else "")
    return Layout(title, table=doc["table"], noun="windows", types=True)


def _stats(doc: dict[str, Any]) -> Layout:
    return Layout("store stats", [(k, _plain(v)) for k, v in doc["stats"].items()])


def _integrity(doc: dict[str, Any]) -> Layout:
    files = doc["files_checked"]
    if doc["ok"]:
        return Layout(f"integrity ok: {_count(files, 'file')} checked, no problems")
    title = f"integrity NOT OK: {_count(len(doc['problems']), 'problem')} in {files:,} files"
    return Layout(title, items=doc["problems"])


def _schema_report(doc: dict[str, Any]) -> Layout:
    subject = f"{doc['subject']}: " if doc["subject"] else ""
    verdict = "compatible" if doc["compatible"] else "incompatible"
    return Layout(f"{subject}{verdict} ({doc['mode']})", items=doc["problems"])


def _schema(doc: dict[str, Any]) -> Layout:
    title = f"schema {doc['subject']} v{doc['schema_version']} (id {doc['id']})"
    title += " (deleted)" if doc["deleted"] else ""
    fields = [
        ("versions", _plain(doc["versions"])),
        ("compatibility", _plain(doc["compatibility"])),
    ]
    return Layout(title, fields, block=doc["schema"])


def _schema_list(doc: dict[str, Any]) -> Layout:
    title = _count(doc["table"]["total"], "schema subject")
    fields = [("default compatibility", doc["default_compatibility"])]
    return Layout(title, fields, table=doc["table"], noun="subjects")


def _compatibility(doc: dict[str, Any]) -> Layout:
    subject = doc["subject"] or "the store (default)"
    return Layout(f"compatibility of {subject}: {doc['mode']}")


def _listing(noun: str) -> Callable[[dict[str, Any]], Layout]:
    def layout(doc: dict[str, Any]) -> Layout:
        return Layout(_count(doc["table"]["total"], noun), table=doc["table"], noun=noun + "s")

    return layout


def _replay(doc: dict[str, Any]) -> Layout:
    p = doc["progress"]
    fields = [("progress", f"{p['processed']:,}/{p['total']:,} events ({p['percent']}%)")]
    if doc["error"]:
        fields.append(("error", doc["error"]))
    return Layout(f"replay {doc['id']} of {doc['projection']}: {doc['status']}", fields)


def _store(doc: dict[str, Any]) -> Layout:
    where = doc["path"] or "memory (scratch: nothing is saved)"
    title = f"store {where}: {_count(doc['events'], 'event')} ({doc['status']})"
    facts = ("entities", "event_types", "fsync", "read_only")
    fields = [
        (k.replace("_", " "), _plain(doc[k]))
        for k in facts
        if doc[k] is not None and doc["status"] == "open"
    ]
    if doc["note"]:
        fields.append(("note", doc["note"]))
    return Layout(title, fields)


def _ingest(doc: dict[str, Any]) -> Layout:
    title = f"ingested {_count(doc['rows'], 'row')} from {doc['source']}: "
    title += f"appended {_count(doc['appended'], 'event')}"
    if doc["appended"]:
        title += f" (sequences {doc['first_sequence']:,}-{doc['last_sequence']:,})"
    dupes = doc["duplicates"]
    # A re-run of the same cell is the common case: say it in the words a person uses.
    fields = [("re-run", f"{dupes:,} already present, {doc['appended']:,} new")] if dupes else []
    return Layout(title, fields)


def _checkpoint(doc: dict[str, Any]) -> Layout:
    if not doc["events"]:
        return Layout("nothing to checkpoint: every event is already in a segment")
    return Layout(
        f"sealed {_count(doc['events'], 'event')} through sequence {doc['through_sequence']:,}"
    )


def _compaction(doc: dict[str, Any]) -> Layout:
    result = doc["result"]
    if result is None:
        return Layout("nothing to compact: fewer than two segments")
    if isinstance(result.get("segments"), int) and isinstance(result.get("events"), int):
        facts = [(k, _plain(v)) for k, v in result.items() if k not in ("segments", "events")]
        merged = f"{_count(result['segments'], 'segment')} ({_count(result['events'], 'event')})"
        return Layout(f"compacted {merged} into one", facts)
    return Layout("compacted", [(k, _plain(v)) for k, v in result.items()])


def _progress(doc: dict[str, Any]) -> Layout:
    done, total = doc["done"], doc["total"]
    share = done / total if total else 1.0
    return Layout(f"{doc['label']}: {share:.0%} ({done:,} of {total:,} {doc['unit']})")


_LAYOUTS: dict[str, Callable[[dict[str, Any]], Layout]] = {
    "events": _events,
    "state": _state,
    "table": _table,
    "window": _window,
    "stats": _stats,
    "integrity": _integrity,
    "schema_report": _schema_report,
    "schema": _schema,
    "schema_list": _schema_list,
    "compatibility": _compatibility,
    "projections": _listing("projection"),
    "pipelines": _listing("pipeline"),
    "replay": _replay,
    "store": _store,
    "ingest": _ingest,
    "checkpoint": _checkpoint,
    "compaction": _compaction,
    "progress": _progress,
}


def layout_of(doc: dict[str, Any]) -> Layout:
    """The layout of a document, with its ``store`` (if any) as the first fact.

    Raises:
        InvalidArgument: the document's kind is unknown.
    """
    try:
        layout = _LAYOUTS[doc["kind"]](doc)
    except KeyError:
        raise InvalidArgument(
            f"unknown display kind {doc.get('kind')!r}; kinds are {', '.join(sorted(_LAYOUTS))}"
        ) from None
    store = doc.get("store")
    if store is not None:
        where = store["path"] or "memory"
        layout.fields.insert(0, ("store", f"{where} ({_count(store['events'], 'event')})"))
    return layout


def _picked(layout: Layout) -> list[int]:
    assert layout.table is not None
    names = [c["name"] for c in layout.table["columns"]]
    if layout.show is None:
        return list(range(len(names)))
    return [names.index(n) for n in layout.show if n in names]


# What a cut table adds to its footer: the rows left out are in the result, and these
# show them (as JupySQL's displaylimit message does). Every table a document holds is cut
# only by the display limit; a query's own limit is the events' "next page".
SEE_ALL = (
    "the result holds every row: -o NAME binds it, "
    "%config AllSourceMagics.displaylimit = 0 shows all (N: the first N)"
)


def _footer(table: dict[str, Any], noun: str) -> str:
    shown, total = len(table["rows"]), table["total"]
    footer = f"showing {shown:,} of {total:,} {noun}"
    return footer if shown >= total else f"{footer}; {SEE_ALL}"


def _numeric(column: Mapping[str, Any]) -> bool:
    return column["type"] in ("integer", "number")


# -- plain text -----------------------------------------------------------------------------


def render_text(doc: dict[str, Any]) -> str:
    """The plain-text form: title, facts, list, JSON block, aligned table and footer."""
    layout = layout_of(doc)
    lines = [layout.title]
    if layout.fields:
        width = max(len(k) for k, _ in layout.fields)
        lines += [f"  {k:<{width}}  {v}" for k, v in layout.fields]
    lines += [f"  - {item}" for item in layout.items]
    if layout.block is not None:
        lines += _pretty(layout.block).splitlines()
    if layout.table is not None:
        lines += _text_table(layout, layout.table)
    return "\n".join(lines)


def _text_cell(value: Any) -> str:
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict | list):
        text = _compact(value)
    else:
        text = str(value).replace("\n", " ")
    return text if len(text) <= _TEXT_CELL_CHARS else text[: _TEXT_CELL_CHARS - 1] + "…"


def _text_table(layout: Layout, table: dict[str, Any]) -> list[str]:
    picked = _picked(layout)
    if not picked:  # e.g. no pipelines: nothing to head a table with
        return [_footer(table, layout.noun)]
    columns = [table["columns"][i] for i in picked]
    cells = [[_text_cell(row[i]) for i in picked] for row in table["rows"]]
    widths = [max([len(c["name"]), *(len(r[j]) for r in cells)]) for j, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if _numeric(c) else v.ljust(w)
            for v, w, c in zip(values, widths, columns, strict=True)
        ).rstrip()

    out = [line([c["name"] for c in columns]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    out.append(_footer(table, layout.noun))
    return out


# -- HTML -----------------------------------------------------------------------------------


def render_html(doc: dict[str, Any]) -> str:
    """The HTML form: a compact table, long JSON collapsed, every text escaped."""
    layout = layout_of(doc)
    esc = html.escape
    parts = [
        f'<div class="allsource allsource-{esc(doc["kind"])}">',
        f'<div class="allsource-title"><strong>{esc(layout.title)}</strong></div>',
    ]
    if layout.fields:
        parts.append(_html_pairs("allsource-fields", [(k, esc(v)) for k, v in layout.fields]))
    if layout.items:
        parts.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in layout.items) + "</ul>")
    if isinstance(layout.block, dict) and layout.block:
        pairs = [(k, _html_cell(v, "json")) for k, v in layout.block.items()]
        parts.append(_html_pairs("allsource-block", pairs))
    elif layout.block is not None:
        parts.append(f"<pre>{esc(_pretty(layout.block))}</pre>")
    if layout.table is not None:
        parts.append(_html_table(layout, layout.table))
    parts.append("</div>")
    return "".join(parts)


def _html_pairs(css: str, pairs: list[tuple[str, str]]) -> str:
    """A two-column table of names and (already escaped) values."""
    rows = "".join(
        f"<tr><th{_LEFT}>{html.escape(k)}</th><td{_LEFT}>{v}</td></tr>" for k, v in pairs
    )
    return f'<table class="{css}">{rows}</table>'


def _html_cell(value: Any, kind: str) -> str:
    esc = html.escape
    if value is None:
        return ""
    if kind == "json" or isinstance(value, dict | list):
        compact = _compact(value)
        if len(compact) <= _HTML_SUMMARY_CHARS:
            return f"<code>{esc(compact)}</code>"
        summary = compact[: _HTML_SUMMARY_CHARS - 1] + "…"
        return (
            f"<details><summary><code>{esc(summary)}</code></summary>"
            f"<pre>{esc(_pretty(value))}</pre></details>"
        )
    if isinstance(value, bool):
        return "true" if value else "false"
    return esc(str(value))


def _html_table(layout: Layout, table: dict[str, Any]) -> str:
    esc = html.escape
    picked = _picked(layout)
    footer = f'<div class="allsource-footer">{esc(_footer(table, layout.noun))}</div>'
    if not picked:
        return footer
    columns = [table["columns"][i] for i in picked]
    head = "".join(
        f"<th{_LEFT}>{esc(c['name'])}"
        + (f"<br><small>{esc(c['type'])}</small>" if layout.types else "")
        + "</th>"
        for c in columns
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{_RIGHT if _numeric(c) else _LEFT}>{_html_cell(row[i], c['type'])}</td>"
            for i, c in zip(picked, columns, strict=True)
        )
        + "</tr>"
        for row in table["rows"]
    )
    return (
        f'<table class="allsource-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>{footer}"
    )
