"""Generated ``%allsource`` lines: a result or a one-line ``UsageError``, never a traceback
of another kind, and a refused line leaves the store as it was; SQL from the magics binds
values as parameters."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from allsource_lab import display
from allsource_lab.notebook import AllSourceMagics, load_ipython_extension, unload_ipython_extension
from tests.fuzzing.test_fuzz_inputs import FUZZ, SLOW_FUZZ, fingerprint, nasty_text, same
from tests.fuzzing.test_fuzz_queries import HOSTILE

# Subcommands that neither open nor close the store nor start a widget.
SUBCOMMANDS = [
    "append", "ingest", "events", "state", "sql", "schema", "replay", "window",
    "projections", "pipelines", "stats", "verify", "checkpoint", "compact",
]  # fmt: skip
OPTIONS = [
    "--entity", "--type", "--since", "--until", "--as-of", "--known-at", "--after", "--limit",
    "--reverse", "--metadata", "--time", "--event-id", "--expected-version", "--every",
    "--kind", "--hop", "--gap", "--by", "--agg", "--fill", "--chart", "--format",
    "--payload-cols", "--timezone", "--batch-size", "--event-type", "--wait", "--version",
    "--compat", "--default", "--flush", "-o", "--output", "-h", "--bogus", "--",
]  # fmt: skip
VALUES = [
    "order.placed", "order-1", "nobody", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00",
    "yesterday", "0", "-1", "3", "99999999999999999999999", "1m", "0s", "9" * 400 + "s",
    "tumbling", "hopping", "session", "payload.amount", "payload.amount:sum,p95",
    '{"amount": 1}', '{"amount": NaN}', "[1, 2]", "{", "}", "[", "'", '"', "'a b'",
    '"q\\"d"', "$frame", "$who", "$missing", "{who}", "{nope}", "$when", "x", "register",
    "show", "list", "compat", "check", "EventCounter", "frame", "FULL", "nope.csv",
    "'; DROP TABLE events; --", "select count(*) from events", "ok",
]  # fmt: skip


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    load_ipython_extension(ip)
    ip.run_line_magic("allsource", "open --memory")
    ip.user_ns.update(
        frame=pd.DataFrame(
            {"event_type": ["order.placed"], "entity_id": ["order-9"], "payload": ['{"n": 1}']}
        ),
        who="'; DROP TABLE events; --",
        when=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    for i in range(6):
        ip.run_line_magic(
            "allsource",
            f"append order.placed order-{i % 3} '{{\"amount\": {i}}}' "
            f"--time 2026-01-01T00:0{i}:00Z",
        )
    yield ip
    unload_ipython_extension(ip)
    ip.run_line_magic("reset", "-f")
    display.set_default_limit(display.DEFAULT_LIMIT)


def current_store(ip: InteractiveShell) -> Any:
    magics = ip.magics_manager.registry["AllSourceMagics"]
    assert isinstance(magics, AllSourceMagics)
    return magics.session.current()


tokens = st.one_of(st.sampled_from(OPTIONS), st.sampled_from(VALUES), nasty_text)
values = st.one_of(st.sampled_from(VALUES), st.sampled_from(VALUES), nasty_text)
# What each subcommand takes: positionals first (V: a value), then options.
GRAMMAR: dict[str, tuple[list[str], list[str]]] = {
    "append": (
        ["order.placed", "V", "V"],
        ["--metadata", "--time", "--event-id", "--expected-version"],
    ),
    "ingest": (
        ["V"],
        [
            "--format",
            "--type",
            "--event-type",
            "--entity",
            "--time",
            "--payload-cols",
            "--timezone",
            "--batch-size",
        ],
    ),
    "events": (
        [],
        ["--entity", "--type", "--since", "--until", "--as-of", "--known-at", "--after", "--limit"],
    ),
    "state": (["V"], ["--as-of", "--known-at"]),
    "sql": (["V"], ["-o"]),
    "schema": (["V", "order.placed", "V"], ["--compat", "--version", "--default"]),
    "replay": (["V"], ["--since", "--until", "--type", "--batch-size"]),
    "window": (
        ["V"],
        [
            "--every",
            "--kind",
            "--hop",
            "--gap",
            "--by",
            "--agg",
            "--since",
            "--until",
            "--as-of",
            "--known-at",
        ],
    ),
    "projections": ([], []),
    "pipelines": (["V"], []),
    "stats": ([], []),
    "verify": ([], []),
    "checkpoint": ([], []),
    "compact": ([], []),
}
FLAGS = ["--reverse", "--fill", "--wait", "--flush", "--quiet", "--chart"]


@st.composite
def lines(draw: st.DrawFn) -> str:
    """Mostly lines of the subcommand's own shape with odd values; sometimes anything.
    Never a line break: a magic's line cannot hold one (error messages quote the line)."""
    return draw(_lines()).replace("\n", " ").replace("\r", " ")


@st.composite
def _lines(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 4)) == 0:
        head = draw(st.one_of(st.sampled_from(SUBCOMMANDS), nasty_text))
        return " ".join([head, *draw(st.lists(tokens, max_size=6))])
    name = draw(st.sampled_from(SUBCOMMANDS))
    positionals, options = GRAMMAR[name]
    parts = [name]
    for slot in positionals[: draw(st.integers(0, len(positionals)))]:
        parts.append(draw(values) if slot == "V" else slot)
    for option in draw(st.lists(st.sampled_from(options), max_size=3)) if options else []:
        parts += [option, draw(values)]
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from(FLAGS)))
    return " ".join(parts)


def check_line(ip: InteractiveShell, line: str, cell: str | None) -> None:
    store = current_store(ip)
    before = fingerprint(store)
    try:
        # --help prints; keep it out of the test's output.
        with contextlib.redirect_stdout(io.StringIO()):
            if cell is None:
                ip.run_line_magic("allsource", line)
            else:
                ip.run_cell_magic("allsource", line, cell)
    except UsageError as exc:
        assert str(exc) and "\n" not in str(exc).strip(), str(exc)
        assert same(before, fingerprint(store)), f"a refused line changed the store: {exc}"
    finally:
        for job in list(store.replays()):
            job.wait(10)
    assert current_store(ip) is store
    ip.user_ns.pop("output", None)


def test_fuzzed_magic_lines_raise_only_usage_errors(shell):
    @FUZZ
    @given(
        lines(),
        st.one_of(
            st.none(), st.none(), st.sampled_from(["", '{"n": 1}', "select 1", "{"]), nasty_text
        ),
    )
    def run(line: str, cell: str | None) -> None:
        check_line(shell, line, cell)

    run()


@pytest.mark.slow
def test_fuzzed_magic_lines_raise_only_usage_errors_long(shell):
    @SLOW_FUZZ
    @given(lines(), st.one_of(st.none(), nasty_text))
    def run(line: str, cell: str | None) -> None:
        check_line(shell, line, cell)

    run()


def test_sql_placeholders_bind_hostile_values_as_data(shell):
    store = current_store(shell)
    for i, text in enumerate(HOSTILE):
        shell.user_ns["who"] = text
        shell.run_line_magic("allsource", f"append order.placed $who '{{\"i\": {i}}}'")
        frame = shell.run_cell_magic(
            "allsource", "sql -o found", "select count(*) n from events where entity_id = {who}"
        )
        assert frame is not None
        assert shell.user_ns["found"]["n"].tolist() == [1]
        # The value is never formatted into the text: '{who}' in quotes stays that text.
        shell.run_line_magic(
            "allsource", "sql -o quoted select count(*) n from events where entity_id = '{who}'"
        )
        assert shell.user_ns["quoted"]["n"].tolist() == [0]
    names = store.sql("select table_name from information_schema.tables order by 1").fetchall()
    assert names == [("events",), ("log",)]  # the two views the store registers, no more
    assert store.stats()["events"] == 6 + len(HOSTILE)


def test_hostile_window_keys_are_usage_errors_not_sql(shell):
    store = current_store(shell)
    before = fingerprint(store)
    for text in HOSTILE:
        for line in (
            f'window --by "payload.{text}"',
            f'window --agg "payload.{text}:sum"',
            f'window --every "{text}"',
        ):
            with pytest.raises(UsageError) as info:
                shell.run_line_magic("allsource", line)
            assert "DuckDB" not in str(info.value)
    assert same(before, fingerprint(store))
