"""What the ``allsource`` commands print: a progress bar, tables, CSV and JSON.

Output is plain ASCII apart from the data itself: a terminal in the C locale may not
encode anything else.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["FORMATS", "ProgressBar", "json_text", "print_json", "text", "write_rows"]

FORMATS = ("table", "csv", "json", "jsonl")
_CELL_CHARS = 60  # widest a table cell is printed before it is cut with "..."


class ProgressBar:
    """A text progress bar on a stream, for ``load_table(progress=...)``.

    On a terminal it redraws one line; elsewhere (a log, a pipe) each update is a line.

    >>> import io
    >>> out = io.StringIO()
    >>> bar = ProgressBar(out, width=10)
    >>> bar(5, 10); bar(10, 10)
    >>> print(out.getvalue(), end="")
    [#####.....]  50%  5/10 events
    [##########] 100%  10/10 events
    """

    def __init__(self, stream: IO[str], width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.redraw = stream.isatty()

    def note(self, text: str) -> None:
        """A line of text where the bar will be drawn."""
        self.stream.write(f"\r{text}" if self.redraw else f"{text}\n")
        self.stream.flush()

    def __call__(self, done: int, total: int) -> None:
        share = done / total if total else 1.0
        filled = int(self.width * share)
        line = (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {share:4.0%}  {done:,}/{total:,} events"
        )
        if self.redraw:
            self.stream.write("\r" + line + ("\n" if done >= total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def json_text(raw: bytes | str) -> str:
    """Stored JSON (bytes or text) as text."""
    return raw.decode() if isinstance(raw, bytes) else raw


def text(value: Any) -> str:
    """A value as table or CSV text."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict | list):
        import orjson

        return orjson.dumps(value, default=str).decode()
    return str(value)


def _iso(value: dt.datetime) -> str:
    if value.utcoffset() == dt.timedelta(0):
        return value.replace(tzinfo=None).isoformat() + "Z"
    return value.isoformat()


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, decimal.Decimal) and value.is_finite():
        return float(value)  # SQL decimals (sums, casts) as JSON numbers
    return str(value)


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout."""
    import orjson

    print(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=_json_default).decode())


def write_rows(
    out: IO[str], fmt: str, columns: list[str], rows: list[list[Any]], *, limit: int, noun: str
) -> None:
    """Rows as an aligned table, CSV, a JSON array or JSON lines."""
    if fmt in ("json", "jsonl"):
        import orjson

        # Datetimes go through _json_default too, for the same text as the table's.
        option = orjson.OPT_PASSTHROUGH_DATETIME
        lines = (
            orjson.dumps(
                dict(zip(columns, row, strict=True)), default=_json_default, option=option
            ).decode()
            for row in rows
        )
        if fmt == "jsonl":
            for line in lines:
                out.write(line + "\n")
        else:
            out.write("[\n" + ",\n".join(lines) + ("\n]\n" if rows else "]\n"))
        return
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([text(v) for v in row] for row in rows)
        return
    shown = rows if not limit else rows[:limit]
    for line in _table_lines(columns, [[_cut(text(v)) for v in row] for row in shown]):
        out.write(line + "\n")
    if len(shown) < len(rows):
        out.write(f"({len(shown):,} of {len(rows):,} {noun}; --max-rows 0 shows all)\n")
    elif not rows:
        out.write(f"(no {noun})\n")


def _cut(cell: str) -> str:
    cell = cell.replace("\n", " ")
    return cell if len(cell) <= _CELL_CHARS else cell[: _CELL_CHARS - 3] + "..."


def _table_lines(columns: list[str], cells: list[list[str]]) -> Iterator[str]:
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    yield "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()
    yield "  ".join("-" * w for w in widths)
    for row in cells:
        yield "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
