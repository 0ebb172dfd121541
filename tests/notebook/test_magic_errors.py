"""Which errors ``%allsource`` shows as one line: the store's own and DuckDB's, never a bug's.

A user's mistake reaches the magic as a typed store error (``InvalidArgument``,
``NotFound``, ``StorageError``, ...) and is shown as one ``UsageError`` line; any other
exception, a plain ``ValueError``, ``KeyError`` or ``OSError`` included, is a bug and
keeps its traceback.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import duckdb
import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from allsource_lab import display
from allsource_lab.errors import (
    CorruptionError,
    InvalidArgument,
    InvalidEvent,
    NotFound,
    SchemaViolation,
    StorageError,
)
from allsource_lab.notebook import AllSourceMagics, load_ipython_extension, unload_ipython_extension
from allsource_lab.notebook.errors import expected
from allsource_lab.notebook.registry import SUBCOMMANDS


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    """A shell with the extension loaded and a memory store holding one event."""
    ip = InteractiveShell.instance()
    load_ipython_extension(ip)
    ip.run_line_magic("allsource", "open --memory")
    ip.run_line_magic("allsource", "append order.placed order-1 {}")
    yield ip
    unload_ipython_extension(ip)
    ip.run_line_magic("reset", "-f")
    display.set_default_limit(display.DEFAULT_LIMIT)


def one_line_refusal(ip: InteractiveShell, line: str) -> str:
    """The ``UsageError`` message ``line`` gets, checked to be one line."""
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("allsource", line)
    message = str(info.value)
    assert message and "\n" not in message, message
    return message


def events_in(ip: InteractiveShell) -> int:
    magics = ip.magics_manager.registry["AllSourceMagics"]
    assert isinstance(magics, AllSourceMagics)
    events: int = magics.session.current().stats()["events"]
    return events


def stats_raises(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    """``%allsource stats`` raises ``error`` until the test ends."""

    def handler(ctx: Any, args: Any) -> Any:
        raise error

    entry = dataclasses.replace(SUBCOMMANDS["stats"], handler=handler)
    monkeypatch.setitem(SUBCOMMANDS, "stats", entry)


def duckdb_error() -> duckdb.Error:
    try:
        duckdb.sql("select * form nowhere")
    except duckdb.Error as exc:
        return exc
    raise AssertionError("DuckDB accepted a syntax error")


# -- what counts as a user's mistake ------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        InvalidArgument("bad"),
        InvalidEvent("bad"),
        SchemaViolation("bad"),
        NotFound("gone"),
        StorageError("disk"),
        CorruptionError("damaged"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_the_stores_own_errors_are_expected(error):
    assert expected(error)


def test_duckdb_errors_are_expected():
    assert expected(duckdb_error())


@pytest.mark.parametrize(
    "error",
    [ValueError("bad"), KeyError("k"), OSError(5, "I/O error"), TypeError("t"), RuntimeError()],
    ids=lambda e: type(e).__name__,
)
def test_plain_python_errors_are_not_expected(error):
    assert not expected(error)


# -- a bug keeps its traceback --------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [ValueError("a bug's value"), KeyError("a bug's key"), OSError(5, "a bug's I/O error")],
    ids=lambda e: type(e).__name__,
)
def test_a_plain_error_from_a_subcommand_keeps_its_traceback(shell, monkeypatch, capsys, error):
    stats_raises(monkeypatch, error)
    with pytest.raises(type(error)) as info:
        shell.run_line_magic("allsource", "stats")
    assert info.value is error and not isinstance(info.value, UsageError)
    result = shell.run_cell("%allsource stats")
    assert result.error_in_exec is error
    shown = capsys.readouterr()
    assert "Traceback" in shown.out + shown.err and "a bug's" in shown.out + shown.err


def test_an_invalid_argument_from_a_subcommand_is_one_line(shell, monkeypatch, capsys):
    stats_raises(monkeypatch, InvalidArgument("--every must be a duration like '5m', not 'x'"))
    message = one_line_refusal(shell, "stats")
    assert message == "InvalidArgument: --every must be a duration like '5m', not 'x'"
    result = shell.run_cell("%allsource stats")
    assert isinstance(result.error_in_exec, UsageError)
    assert "Traceback" not in "".join(capsys.readouterr())


# -- user mistakes reach the magic as typed errors ------------------------------------------------


def test_an_unknown_entity_is_a_one_line_not_found(shell):
    message = one_line_refusal(shell, "state order-9")
    assert message.startswith("NotFound: no entity 'order-9'")


def test_a_missing_ingest_file_is_one_line(shell, tmp_path):
    message = one_line_refusal(shell, f"ingest {tmp_path / 'missing.csv'}")
    assert message.startswith(f"no file named '{tmp_path / 'missing.csv'}'")


def test_an_ingest_file_that_cannot_be_read_is_a_one_line_storage_error(
    shell, tmp_path, monkeypatch
):
    import allsource_lab.datasets

    path = tmp_path / "orders.csv"
    path.write_text("entity_id,event_type\na,t\n")

    def unreadable(source: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", str(source))

    # A real unreadable file is not one when the tests run as root.
    monkeypatch.setattr(allsource_lab.datasets, "file_events", unreadable)
    message = one_line_refusal(shell, f"ingest {path}")
    assert message == (
        f"StorageError: cannot read {path}: Permission denied; check that the file is there "
        "and may be read"
    )
    assert events_in(shell) == 1


def test_an_ingest_file_that_is_not_utf8_is_one_line(shell, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"entity_id,event_type,caf\xe9\na,t,1\n")
    message = one_line_refusal(shell, f"ingest {path}")
    assert message.startswith("InvalidEvent: cannot read latin1.csv as text: ")
    assert "save it as UTF-8" in message and events_in(shell) == 1


def test_an_unknown_ingest_timezone_is_one_line(shell, tmp_path):
    shell.user_ns["df"] = pd.DataFrame({"entity_id": ["a"], "at": ["2026-01-01 00:00:00"]})
    path = tmp_path / "orders.csv"
    path.write_text("entity_id,event_type,at\na,t,2026-01-01 00:00:00\n")
    for source in ("df --event-type t", str(path)):
        message = one_line_refusal(shell, f"ingest {source} --time at --timezone Nowhere/Bogus")
        assert message.startswith("InvalidArgument: --timezone: ")
        assert "'Nowhere/Bogus'" in message and "e.g. --timezone UTC" in message
    assert events_in(shell) == 1


def test_a_duckdb_syntax_error_is_one_line(shell):
    message = one_line_refusal(shell, "sql select * form events")
    assert message.startswith("ParserException: Parser Error: syntax error")
    assert message.endswith("— SQL runs in DuckDB over the view events (one row per event)")


def test_a_chart_of_nothing_to_draw_is_one_line(shell, monkeypatch):
    from allsource_lab.notebook import charts

    def undrawable(frame: Any) -> Any:
        raise InvalidArgument("window_chart: no numeric aggregate column to chart in []")

    monkeypatch.setattr(charts, "window_chart", undrawable)
    message = one_line_refusal(shell, "window --chart")
    assert message.startswith("cannot chart this result (window_chart: no numeric")


def test_a_bug_while_charting_keeps_its_traceback(shell, monkeypatch):
    from allsource_lab.notebook import charts

    def broken(frame: Any) -> Any:
        raise ValueError("a bug in the chart")

    monkeypatch.setattr(charts, "window_chart", broken)
    with pytest.raises(ValueError, match="a bug in the chart"):
        shell.run_line_magic("allsource", "window --chart")
