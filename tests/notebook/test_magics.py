"""``%allsource`` through a real IPython shell: every subcommand and every error path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import allsource_lab as asl
from allsource_lab import display
from allsource_lab.display import MIMETYPE, bundle
from allsource_lab.display.views import (
    EventsView,
    IngestView,
    ReplayView,
    StateView,
    StoreView,
    TableView,
    WindowView,
)
from allsource_lab.notebook import AllSourceMagics, load_ipython_extension, unload_ipython_extension


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    """The IPython shell with the extension loaded; unloaded (store closed) afterwards."""
    ip = InteractiveShell.instance()
    load_ipython_extension(ip)
    yield ip
    unload_ipython_extension(ip)
    ip.run_line_magic("reset", "-f")
    display.set_default_limit(display.DEFAULT_LIMIT)


def magic(ip: InteractiveShell, line: str, cell: str | None = None) -> Any:
    """The magic's return value (a UsageError propagates)."""
    if cell is None:
        return ip.run_line_magic("allsource", line)
    return ip.run_cell_magic("allsource", line, cell)


def doc(view: Any) -> dict[str, Any]:
    """The AllSource JSON document of a returned view."""
    return bundle(view)[MIMETYPE]


def text(view: Any) -> str:
    return str(bundle(view)["text/plain"])


def replace_handler(monkeypatch: pytest.MonkeyPatch, name: str, handler: Any) -> None:
    """Run ``handler`` for subcommand ``name`` until the test ends."""
    import dataclasses

    from allsource_lab.notebook.registry import SUBCOMMANDS

    entry = dataclasses.replace(SUBCOMMANDS[name], handler=handler)
    monkeypatch.setitem(SUBCOMMANDS, name, entry)


def magics_of(ip: InteractiveShell) -> AllSourceMagics:
    found = ip.magics_manager.registry["AllSourceMagics"]
    assert isinstance(found, AllSourceMagics)
    return found


@pytest.fixture
def opened(shell: InteractiveShell) -> InteractiveShell:
    """A shell with a memory store holding a small order history."""
    magic(shell, "open --memory")
    for n, (kind, entity, payload, at) in enumerate(
        [
            ("order.placed", "order-1", '{"amount": 10, "sku": "tea"}', "2026-01-01T12:00:00Z"),
            ("order.placed", "order-2", '{"amount": 20, "sku": "jam"}', "2026-01-01T12:01:00Z"),
            ("order.paid", "order-1", '{"paid": true}', "2026-01-01T12:05:00Z"),
        ]
    ):
        magic(shell, f"append {kind} {entity} '{payload}' --time {at}")
        assert n + 1 == magics_of(shell).session.current().stats()["events"]
    return shell


# -- loading --------------------------------------------------------------------------------


def test_load_ext_registers_one_line_and_cell_magic(shell):
    assert "allsource" in shell.magics_manager.magics["line"]
    assert "allsource" in shell.magics_manager.magics["cell"]
    assert magics_of(shell) in shell.configurables
    load_ipython_extension(shell)  # loading again keeps the same magics
    assert sum(isinstance(c, AllSourceMagics) for c in shell.configurables) == 1


def test_unload_closes_the_store_and_removes_the_magic(shell, tmp_path):
    store = magic(shell, f"open {tmp_path / 's.events'} -o store") and shell.user_ns["store"]
    unload_ipython_extension(shell)
    assert store.closed is True
    assert "allsource" not in shell.magics_manager.magics["line"]
    assert "AllSourceMagics" not in shell.magics_manager.registry
    assert not any(isinstance(c, AllSourceMagics) for c in shell.configurables)
    with asl.open(tmp_path / "s.events") as again:  # the lock was released
        assert again.stats()["events"] == 0
    load_ipython_extension(shell)  # for the fixture's teardown


def test_reload_ext_starts_afresh_with_the_store_closed(shell, capsys):
    unload_ipython_extension(shell)
    shell.run_line_magic("load_ext", "allsource_lab.notebook")
    magic(shell, "open --memory -o first")
    shell.run_line_magic("reload_ext", "allsource_lab.notebook")
    assert shell.user_ns["first"].closed is True
    assert magics_of(shell).session.store is None
    assert doc(magic(shell, "open --memory"))["status"] == "open"
    shell.run_line_magic("unload_ext", "allsource_lab.notebook")
    assert "allsource" not in shell.magics_manager.magics["line"]
    load_ipython_extension(shell)


def test_load_ext_allsource_lab_works_once_the_package_has_the_hook(shell):
    if not hasattr(asl, "load_ipython_extension"):
        pytest.skip("allsource_lab/__init__.py has no load_ipython_extension yet")
    unload_ipython_extension(shell)
    shell.run_line_magic("load_ext", "allsource_lab")
    try:
        assert doc(magic(shell, "open --memory"))["events"] == 0
        shell.run_line_magic("reload_ext", "allsource_lab")
        assert magics_of(shell).session.store is None
    finally:
        shell.run_line_magic("unload_ext", "allsource_lab")
    assert "allsource" not in shell.magics_manager.magics["line"]
    load_ipython_extension(shell)


def test_importing_the_package_imports_no_notebook_machinery():
    import subprocess
    import sys

    script = (
        "import sys, allsource_lab\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('IPython', 'ipywidgets', 'jupyterlab')) or 'ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stdout + done.stderr


# -- the line, help, and user mistakes ------------------------------------------------------


def test_no_subcommand_prints_the_overview_and_the_current_store(shell, capsys):
    assert magic(shell, "") is None
    out = capsys.readouterr().out
    assert "no store is open" in out and "timetravel" in out and "  sql " in out
    view = magic(shell, "--help")
    assert view is None
    magic(shell, "open --memory")
    assert isinstance(magic(shell, ""), StoreView)
    assert "current store: memory (0 events)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "line",
    [
        "open --help",
        "close --help",
        "append --help",
        "ingest --help",
        "events --help",
        "state -h",
        "sql --help",
        "schema --help",
        "schema register --help",
        "schema compat --help",
        "replay --help",
        "window --help",
        "projections --help",
        "pipelines --help",
        "stats --help",
        "verify --help",
        "checkpoint --help",
        "compact --help",
        "explore --help",
        "timetravel --help",
        "tail --help",
    ],
)
def test_every_subcommand_has_help(shell, capsys, line):
    assert magic(shell, line) is None
    out = capsys.readouterr().out
    name = " ".join(w for w in line.split() if not w.startswith("-"))
    assert out.startswith(f"usage: %allsource {name}")
    assert "-o NAME" in out or "ACTION" in out


def test_every_subcommand_has_a_summary_and_a_parser():
    from allsource_lab.notebook.registry import SUBCOMMANDS, build_parsers

    handlers = {name: entry.handler for name, entry in SUBCOMMANDS.items()}
    summaries = {name: entry.summary for name, entry in SUBCOMMANDS.items() if entry.summary}
    assert list(handlers) == list(summaries) == list(build_parsers())
    assert all(callable(handler) for handler in handlers.values())


def test_a_bug_keeps_its_traceback(opened, monkeypatch):
    def broken(ctx: Any, args: Any) -> Any:
        return 1 / 0

    replace_handler(monkeypatch, "stats", broken)
    with pytest.raises(ZeroDivisionError):
        magic(opened, "stats")


def test_an_unknown_subcommand_suggests_the_nearest(shell):
    with pytest.raises(UsageError, match=r"unknown subcommand 'evnts'; did you mean 'events'\?"):
        magic(shell, "evnts")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("events --limit x", r"argument --limit: 'x' is not a whole number"),
        ("events --bogus", r"unrecognized arguments: --bogus"),
        ("state", r"the following arguments are required: ENTITY"),
        ("open --fsync sometimes", r"invalid choice: 'sometimes'"),
        ('append t e {"a": 1', r"unbalanced \{"),
        ("state 'order-1", r"unterminated ' quote"),
        ("stats -o 1x", r"'1x' is not a Python variable name"),
        ("stats -o class", r"'class' is not a Python variable name"),
        ("schema frobnicate", r"invalid choice: 'frobnicate'"),
    ],
)
def test_argument_errors_are_one_line_usage_errors(shell, line, message):
    magic(shell, "open --memory")
    with pytest.raises(UsageError, match=message) as info:
        magic(shell, line)
    assert "\n" not in str(info.value)


def test_usage_errors_print_one_line_without_a_traceback(opened, capsys):
    result = opened.run_cell("%allsource append order.placed order-1 {} --expected-version 0")
    assert isinstance(result.error_in_exec, UsageError)
    captured = capsys.readouterr()
    assert captured.err == (
        "UsageError: ConcurrencyError: entity 'order-1' is at version 2, expected 0; re-read "
        "the entity and retry with expected_version=2\n"
    )
    assert "Traceback" not in captured.out + captured.err


@pytest.mark.parametrize(
    "line",
    ["events", "state x", "stats", "close", "append a b", "verify", "explore", "schema list"],
)
def test_without_an_open_store_subcommands_say_how_to_open_one(shell, line):
    with pytest.raises(UsageError, match=r"^no store is open: run %allsource open PATH"):
        magic(shell, line)


def test_a_store_closed_from_python_is_no_longer_current(shell):
    magic(shell, "open --memory -o store")
    shell.user_ns["store"].close()
    with pytest.raises(UsageError, match="was closed; open it again with %allsource open"):
        magic(shell, "stats")
    with pytest.raises(UsageError, match="no store is open"):
        magic(shell, "stats")


def test_a_cell_body_is_refused_where_it_would_be_ignored(opened):
    with pytest.raises(UsageError, match="%%allsource stats takes no cell body"):
        magic(opened, "stats", "select 1")
    with pytest.raises(UsageError, match="schema list takes no cell body"):
        magic(opened, "schema list", "{}")
    assert doc(magic(opened, "stats", "  \n"))["kind"] == "stats"  # a blank body is none


# -- variables in arguments ---------------------------------------------------------------


def test_dollar_and_brace_references_are_variables_and_quotes_keep_text(opened):
    opened.user_ns.update(who="order-1", later="2026-01-01T12:03:00Z")
    assert doc(magic(opened, "state $who"))["entity_id"] == "order-1"
    assert doc(magic(opened, "events --entity {who} --as-of $later"))["table"]["total"] == 1
    with pytest.raises(UsageError, match=r"no entity '\$who'"):
        magic(opened, "state '$who'")
    with pytest.raises(UsageError, match=r"no Python variable named 'nobody' \(for \$nobody\)"):
        magic(opened, "state $nobody")
    opened.user_ns["frame"] = pd.DataFrame({"a": [1]})
    with pytest.raises(UsageError, match=r"to ingest it, name it without \$"):
        magic(opened, "state $frame")


def test_dicts_and_times_in_variables_become_json_and_iso(opened):
    import datetime as dt

    opened.user_ns["payload"] = {"amount": 5, "when": dt.date(2026, 1, 2)}
    plus_one = dt.timezone(dt.timedelta(hours=1))
    opened.user_ns["at"] = dt.datetime(2026, 1, 1, 13, 30, tzinfo=plus_one)
    magic(opened, "append order.placed order-3 $payload --time $at -o ev")
    event = opened.user_ns["ev"]
    assert event.payload == {"amount": 5, "when": "2026-01-02"}
    assert event.timestamp == dt.datetime(2026, 1, 1, 12, 30, tzinfo=dt.UTC)


# -- open and close -------------------------------------------------------------------------


def test_open_shows_which_store_is_current_and_binds_it(shell, tmp_path):
    path = tmp_path / "shop.events"
    view = magic(shell, f"open {path} --fsync always -o store")
    assert isinstance(view, StoreView)
    d = doc(view)
    assert (d["path"], d["events"], d["fsync"], d["status"]) == (str(path), 0, "always", "open")
    assert isinstance(shell.user_ns["store"], asl.EventStore)
    magic(shell, "append a x {}")
    again = doc(magic(shell, f"open {path}"))  # the same folder: closed, then reopened
    assert again["events"] == 1 and again["note"] == f"reopened {path}"
    other = doc(magic(shell, "open --memory"))
    assert other["path"] is None and other["note"] == f"closed the previous store ({path})"
    assert shell.user_ns["store"].closed is True
    closed = magic(shell, "close -o gone")
    assert doc(closed)["status"] == "closed" and "(closed)" in text(closed)
    assert shell.user_ns["gone"].closed is True


def test_open_read_only_and_its_refusals(shell, tmp_path):
    path = tmp_path / "s.events"
    with asl.open(path) as store:
        store.append("a", "x", {})
    assert doc(magic(shell, f"open {path} --read-only"))["read_only"] is True
    with pytest.raises(UsageError) as info:
        magic(shell, "append a x {}")
    assert str(info.value) == (
        "StorageError: the store was opened with --read-only; open it again without --read-only"
    )
    with pytest.raises(UsageError, match="give a PATH or --memory, not both"):
        magic(shell, f"open {path} --memory")
    with pytest.raises(UsageError, match="--read-only needs a PATH"):
        magic(shell, "open --read-only")


def test_a_locked_store_is_one_line_saying_what_to_do(shell, tmp_path):
    path = tmp_path / "s.events"
    holder = asl.open(path)
    try:
        with pytest.raises(UsageError) as info:
            magic(shell, f"open {path}")
    finally:
        holder.close()
    message = str(info.value)
    assert message.startswith("StoreLocked: ") and "or open this one with --read-only" in message
    assert "\n" not in message


def test_a_corrupt_store_is_one_line_pointing_at_verify_and_salvage(shell, tmp_path):
    path = tmp_path / "s.events"
    with asl.open(path) as store:
        store.append("a", "x", {"n": 1})
    (segment,) = (path / "segments").glob("*.parquet")
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0x10
    segment.write_bytes(bytes(data))
    segment.with_suffix(".arrow").unlink()  # so that the open must read the damaged segment
    with pytest.raises(UsageError) as info:
        magic(shell, f"open {path}")
    message = str(info.value)
    assert message.startswith("CorruptionError: ") and segment.name in message
    assert "run %allsource verify for a full report" in message and "\n" not in message


# -- append, events, state ------------------------------------------------------------------


def test_append_takes_json_on_the_line_or_in_the_cell(opened):
    view = magic(opened, 'append order.placed order-9 {"amount": 42.5} -o ev')
    assert isinstance(view, EventsView) and opened.user_ns["ev"].payload == {"amount": 42.5}
    assert doc(view)["store"] == {"path": None, "events": 4}
    magic(opened, 'append order.note order-9 --metadata {"by": "ada"} -o ev', '{"text": "hi"}')
    event = opened.user_ns["ev"]
    assert (event.payload, event.metadata, event.version) == ({"text": "hi"}, {"by": "ada"}, 2)
    assert magic(opened, "append ping order-9 -o ev") and opened.user_ns["ev"].payload == {}
    with pytest.raises(UsageError, match="on the line or in the cell body, not both"):
        magic(opened, "append a b {}", "{}")
    with pytest.raises(UsageError, match="the payload is not JSON"):
        magic(opened, "append a b", "{'single': 'quotes'}")
    with pytest.raises(UsageError, match="the payload must be a JSON object"):
        magic(opened, "append a b [1, 2]")


def test_append_errors_say_nothing_was_written(opened):
    with pytest.raises(UsageError) as info:
        magic(opened, "append order.placed order-1 {} --time 2026-01-01T12:00:00")
    assert str(info.value).startswith("InvalidEvent: field 'timestamp': ")
    assert str(info.value).endswith("— nothing was written; fix the input and run again")
    assert doc(magic(opened, "stats"))["stats"]["events"] == 3


def test_events_filter_page_and_bind_the_frame(opened):
    view = magic(opened, "events --entity order-1 -o frame")
    d = doc(view)
    assert d["table"]["total"] == 2 and d["query"] == {"entity_id": "order-1"}
    assert isinstance(opened.user_ns["frame"], asl.EventFrame)
    assert len(opened.user_ns["frame"]) == 2
    before = doc(magic(opened, "events --as-of 2026-01-01T12:02:00Z"))
    assert [r[0] for r in before["table"]["rows"]] == [1, 2]
    page = doc(magic(opened, "events --limit 2"))
    assert page["next_cursor"] == 2
    rest = doc(magic(opened, "events --after 2"))
    assert [r[0] for r in rest["table"]["rows"]] == [3]
    newest = doc(magic(opened, "events --reverse --limit 1 --type order.placed"))
    assert [r[0] for r in newest["table"]["rows"]] == [2]
    nothing = doc(magic(opened, "events --known-at 2000-01-01T00:00:00Z"))
    assert nothing["table"]["total"] == 0
    with pytest.raises(UsageError, match=r"InvalidEvent: .*is not an ISO-8601 time"):
        magic(opened, "events --since yesterday")


def test_the_display_limit_is_a_traitlet(opened):
    opened.run_line_magic("config", "AllSourceMagics.displaylimit = 2")
    assert display.default_limit() == 2
    assert "showing 2 of 3 events" in text(magic(opened, "events"))
    assert "showing 2 of 3 events" in bundle(magic(opened, "events").events)["text/plain"]
    opened.run_line_magic("config", "AllSourceMagics.displaylimit = 0")
    assert "showing 3 of 3 events" in text(magic(opened, "events"))
    magics_of(opened).displaylimit = 50
    from traitlets import TraitError

    with pytest.raises(TraitError, match="displaylimit must be >= 0"):
        magics_of(opened).displaylimit = -1
    with pytest.raises(TraitError, match="tail_rows must be >= 1"):
        magics_of(opened).tail_rows = 0


def test_state_now_and_at_a_moment_with_its_version(opened):
    view = magic(opened, "state order-1 -o st")
    assert isinstance(view, StateView)
    d = doc(view)
    assert d["state"] == {"amount": 10, "paid": True, "sku": "tea"}
    assert d["entity_version"] == 2 and opened.user_ns["st"] == d["state"]
    earlier = doc(magic(opened, "state order-1 --as-of 2026-01-01T12:04:00Z"))
    assert earlier["state"] == {"amount": 10, "sku": "tea"} and earlier["entity_version"] == 1
    assert earlier["as_of"] == "2026-01-01T12:04:00Z"
    assert text(magic(opened, "state order-1")).startswith("state of order-1 at version 2")
    with pytest.raises(UsageError, match=r"^NotFound: no entity 'nope' in the store; list "):
        magic(opened, "state nope")


# -- sql ------------------------------------------------------------------------------------


def test_sql_cell_binds_placeholders_as_parameters(opened):
    opened.user_ns["sku"] = "tea"
    view = magic(
        opened,
        "sql -o df",
        "select entity_id, (payload->>'amount')::int amount from events\n"
        "where payload->>'sku' = {sku} order by 1",
    )
    assert isinstance(view, TableView)
    frame = opened.user_ns["df"]
    assert frame.to_dict("records") == [{"entity_id": "order-1", "amount": 10}]
    assert doc(view)["query"].endswith("where payload->>'sku' = {sku} order by 1")


def test_an_injection_attempt_stays_a_bound_value(opened):
    opened.user_ns["evil"] = "x' or '1'='1'; drop table events; --"
    view = magic(opened, "sql -o df", "select count(*) n from events where entity_id = {evil}")
    assert opened.user_ns["df"]["n"].tolist() == [0]
    assert doc(view)["table"]["rows"] == [[0]]
    assert doc(magic(opened, "sql", "select count(*) n from events"))["table"]["rows"] == [[3]]


def test_placeholders_in_strings_and_comments_are_left_alone(opened):
    opened.user_ns["n"] = 2
    magic(
        opened,
        "sql -o df",
        "select '{n}' as text, {n} as value, $${n}$$ as dollars -- {undefined}\n"
        "/* {also_undefined} */",
    )
    row = {"text": "{n}", "value": 2, "dollars": "{n}"}
    assert opened.user_ns["df"].to_dict("records") == [row]


def test_sql_on_the_line_and_its_mistakes(opened):
    view = magic(opened, "sql -o df select count(*) as n from events where version = 1")
    assert opened.user_ns["df"]["n"].tolist() == [2] and isinstance(view, TableView)
    with pytest.raises(UsageError, match="no Python variable named 'missing'"):
        magic(opened, "sql", "select {missing}")
    with pytest.raises(UsageError, match="not both"):
        magic(opened, "sql select 1", "select 2")
    with pytest.raises(UsageError, match="no SQL given"):
        magic(opened, "sql", "   ")
    with pytest.raises(UsageError) as info:
        magic(opened, "sql", "select * from nope")
    assert str(info.value).startswith("CatalogException: Catalog Error: Table with name nope")
    assert "view events" in str(info.value) and "\n" not in str(info.value)


def test_sql_statements_run_once_and_show_their_status(opened, monkeypatch):
    made = magic(opened, "sql", "create table t as select 42 as x")
    assert doc(made)["table"]["columns"][0]["name"] == "Count"
    assert doc(magic(opened, "sql", "select x from t"))["table"]["rows"] == [[42]]
    # DuckDB 1.x answers statements without a result with None: nothing to show or bind.
    monkeypatch.setattr(asl.EventStore, "sql", lambda self, query, params=None: None)
    assert magic(opened, "sql -o nothing", "set threads = 2") is None
    assert opened.user_ns["nothing"] is None


# -- window, schema -------------------------------------------------------------------------


def test_window_with_aggregates_keys_and_spec(opened):
    view = magic(
        opened,
        "window order.placed --every 1m --by payload.sku --agg payload.amount:sum,avg -o w",
    )
    assert isinstance(view, WindowView)
    frame = opened.user_ns["w"]
    assert isinstance(frame, pd.DataFrame) and len(frame) == 2
    d = doc(view)
    assert d["spec"]["agg"] == {"payload.amount": ["sum", "avg"]}
    assert d["spec"]["by"] == "payload.sku" and d["spec"]["kind"] == "tumbling"
    json_agg = magic(opened, 'window --every 1h --agg {"entity_id": "count_distinct"} -o w')
    assert doc(json_agg)["table"]["rows"][0][2:] == [2]
    with pytest.raises(UsageError, match="every must be a duration"):
        magic(opened, "window --every soon")
    with pytest.raises(UsageError, match="must be FIELD:AGG"):
        magic(opened, "window --agg payload.amount")


def test_window_chart_shows_an_altair_chart_above_the_window(opened):
    charts = pytest.importorskip("allsource_lab.notebook.charts")
    shown = magic(opened, "window order.placed --every 1m --chart")
    assert isinstance(shown, charts.ChartAbove)
    assert "application/vnd.vegalite.v5+json" in shown.chart._repr_mimebundle_()
    assert doc(shown.result)["kind"] == "window"


def test_schema_register_check_show_list_and_compat(opened):
    schema = '{"type": "object", "required": ["amount"]}'
    view = magic(opened, "schema register order.placed -o v1", schema)
    d = doc(view)
    assert (d["subject"], d["schema_version"], d["versions"]) == ("order.placed", 1, [1])
    assert opened.user_ns["v1"].version == 1
    checked = magic(opened, 'schema check order.placed {"required": ["amount", "sku"]} -o rep')
    assert doc(checked)["problems"] == ["required property added: #/required/sku"]
    assert opened.user_ns["rep"].compatible is False
    assert doc(magic(opened, "schema show order.placed --version 1"))["schema"]["required"] == [
        "amount"
    ]
    listed = magic(opened, "schema list -o subjects")
    assert opened.user_ns["subjects"] == {"order.placed": [1]}
    assert doc(listed)["table"]["rows"] == [["order.placed", [1], 1, "BACKWARD"]]
    assert doc(magic(opened, "schema compat order.placed FULL -o mode"))["mode"] == "FULL"
    assert opened.user_ns["mode"] == "FULL"
    assert doc(magic(opened, "schema compat order.placed"))["mode"] == "FULL"
    default = doc(magic(opened, "schema compat --default NONE"))
    assert (default["subject"], default["mode"]) == (None, "NONE")
    opened.user_ns["wider"] = {"type": "object", "required": ["amount", "sku"]}
    with pytest.raises(UsageError) as info:
        magic(opened, "schema register order.placed $wider")
    assert str(info.value).startswith("IncompatibleSchema: ")
    assert "%allsource schema check SUBJECT" in str(info.value)
    with pytest.raises(UsageError, match=r"SchemaViolation: .*'amount' is a required property"):
        magic(opened, "append order.placed order-5 {}")
    with pytest.raises(UsageError, match="no schema given"):
        magic(opened, "schema check order.placed")
    with pytest.raises(UsageError, match=r"^SchemaError: "):
        magic(opened, 'schema register x {"type": "nonsense"}')
    with pytest.raises(UsageError, match=r"^NotFound: "):
        magic(opened, "schema show nothing")
    with pytest.raises(UsageError, match="give a SUBJECT, or --default"):
        magic(opened, "schema compat")
    with pytest.raises(UsageError, match=r"^SchemaError: unknown compatibility mode"):
        magic(opened, "schema compat order.placed SOMETIMES")


# -- replay, projections, pipelines ---------------------------------------------------------


def test_replay_a_builtin_and_wait(opened):
    magics_of(opened).widgets = False
    view = magic(opened, "replay EventCounter --wait -o job")
    assert isinstance(view, ReplayView)
    job = opened.user_ns["job"]
    assert job.status == "done" and job.result.state("total") == 3
    assert doc(view)["progress"]["processed"] == 3
    since = magic(opened, "replay EntitySnapshots --since 2 --wait -o job2")
    assert doc(since)["progress"]["total"] == 2
    line = "replay EventCounter --since 2026-01-01T12:01:00Z --type order.paid --wait"
    timed = magic(opened, line)
    assert doc(timed)["progress"]["total"] == 1


def test_replay_an_added_projection_or_a_variable(opened):
    magics_of(opened).widgets = False
    store = magics_of(opened).session.current()
    store.projections.add(asl.EventCounter("counts"))
    assert doc(magic(opened, "replay counts --wait"))["projection"] == "counts"
    opened.user_ns["mine"] = asl.EntitySnapshots("mine")
    assert doc(magic(opened, "replay mine --wait"))["status"] == "done"
    job = magic(opened, "replay EventCounter -o running") and opened.user_ns["running"]
    job.wait()
    with pytest.raises(UsageError, match=r"no projection 'nope': give one added .*\(counts\)"):
        magic(opened, "replay nope")
    with pytest.raises(UsageError, match="as a sequence must be >= 1"):
        magic(opened, "replay EventCounter --since 0")


def test_replay_shows_the_progress_widget_when_widgets_are_on(opened):
    widgets = pytest.importorskip("allsource_lab.notebook.widgets")
    magics_of(opened).widgets = True
    shown = magic(opened, "replay EventCounter -o job")
    assert isinstance(shown, widgets.ReplayProgressBar)
    opened.user_ns["job"].wait()
    shown.close()


def test_projections_and_pipelines_are_listed(opened):
    store = magics_of(opened).session.current()
    store.projections.add(asl.EventCounter())
    pipeline = asl.Pipeline("per_minute", ["order.placed"]).window("tumbling", "1m")
    store.pipelines.add(pipeline.reduce({"*": "count"}), start="beginning")
    infos = magic(opened, "projections -o infos")
    names = [row[0] for row in doc(infos)["table"]["rows"]]
    assert names == ["event_counter", "per_minute"] and len(opened.user_ns["infos"]) == 2
    listed = magic(opened, "pipelines -o stats")
    assert [row[0] for row in doc(listed)["table"]["rows"]] == ["per_minute"]
    assert opened.user_ns["stats"][0]["events_in"] == 2
    results = magic(opened, "pipelines per_minute --flush -o res")
    assert doc(results)["title"].startswith("results of pipeline per_minute")
    assert len(opened.user_ns["res"]) == 2
    with pytest.raises(UsageError, match=r"^NotFound: no pipeline named 'nope'"):
        magic(opened, "pipelines nope")
    with pytest.raises(UsageError, match="--flush needs a pipeline NAME"):
        magic(opened, "pipelines --flush")


# -- stats, verify, checkpoint, compact -----------------------------------------------------


def test_stats_verify_checkpoint_and_compact(shell, tmp_path, monkeypatch):
    path = tmp_path / "s.events"
    magic(shell, f"open {path}")
    stats = magic(shell, "stats -o facts")
    assert doc(stats)["stats"]["events"] == 0 and shell.user_ns["facts"]["path"] == str(path)
    assert "nothing to checkpoint" in text(magic(shell, "checkpoint -o sealed"))
    assert shell.user_ns["sealed"] is None
    for n in range(3):
        magic(shell, f'append a x {{"n": {n}}}')
        sealed = doc(magic(shell, "checkpoint -o sealed"))
        assert sealed == {**sealed, "events": 1, "through_sequence": n + 1}
    assert shell.user_ns["sealed"]["events"] == 1
    report = magic(shell, "verify -o report")
    assert doc(report)["ok"] and shell.user_ns["report"].ok
    assert doc(report)["files_checked"] >= 3
    if callable(getattr(asl.EventStore, "compact", None)):
        merged = magic(shell, "compact -o merged")
        assert doc(merged)["result"] == {"events": 3, "segments": 3}
        assert shell.user_ns["merged"]["segments"] == 3
        assert "nothing to compact" in text(magic(shell, "compact"))
    monkeypatch.setattr(asl.EventStore, "compact", None, raising=False)
    with pytest.raises(UsageError, match="compaction is not available yet"):
        magic(shell, "compact")


def test_verify_reports_damage_found_while_open(shell, tmp_path):
    path = tmp_path / "s.events"
    magic(shell, f"open {path}")
    magic(shell, "append a x {}")
    magic(shell, "checkpoint")
    (segment,) = (path / "segments").glob("*.parquet")
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 1
    segment.write_bytes(bytes(data))
    report = magic(shell, "verify")
    assert not doc(report)["ok"] and "integrity NOT OK" in text(report)


# -- ingest ---------------------------------------------------------------------------------


def test_ingest_a_dataframe_with_a_column_mapping(opened):
    opened.user_ns["orders"] = pd.DataFrame(
        {
            "order": [10, 11, 10],
            "kind": ["order.placed", "order.placed", "order.paid"],
            "at": pd.to_datetime(
                ["2026-01-02T00:00:00Z", "2026-01-02T00:01:00Z", "2026-01-02T00:02:00Z"]
            ),
            "amount": [1.5, float("nan"), 2.0],
            "note": ["a", "b", None],
        }
    )
    view = magic(opened, "ingest orders --type kind --entity order --time at -o facts")
    assert isinstance(view, IngestView)
    facts = opened.user_ns["facts"]
    assert facts == {
        "source": "orders",
        "rows": 3,
        "appended": 3,
        "first_sequence": 4,
        "last_sequence": 6,
    }
    store = magics_of(opened).session.current()
    assert store.state("10") == {"amount": 2.0}  # the paid row's note was null: a delete
    events = list(store.events(entity_id="11"))
    assert events[0].payload == {"amount": None, "note": "b"}
    assert events[0].timestamp.isoformat() == "2026-01-02T00:01:00+00:00"
    subset = magic(opened, "ingest orders --event-type x --entity order --payload-cols amount")
    assert doc(subset)["appended"] == 3
    assert store.state("11") == {"note": "b"}  # a null amount deletes it


def test_ingest_is_idempotent_with_event_ids(opened):
    import uuid

    ids = [str(uuid.uuid4()) for _ in range(2)]
    opened.user_ns["rows"] = pa.table(
        {
            "event_type": ["a", "a"],
            "entity_id": ["e", "f"],
            "payload": ['{"n":1}', '{"n":2}'],
            "event_id": ids,
        }
    )
    assert doc(magic(opened, "ingest rows"))["appended"] == 2
    again = doc(magic(opened, "ingest rows"))
    assert (again["appended"], again["duplicates"]) == (0, 2)
    assert "2 already present, 0 new" in text(magic(opened, "ingest rows"))


def test_ingest_files_of_each_format(opened, tmp_path):
    csv = tmp_path / "orders.csv"
    csv.write_text("id,kind,amount,at\n7,order.placed,9.5,2026-01-03T00:00:00Z\n")
    jsonl = tmp_path / "orders.jsonl"
    jsonl.write_text('{"entity_id": "8", "event_type": "t", "payload": {"deep": {"x": 1}}}\n')
    parquet = tmp_path / "orders.parquet"
    pq.write_table(pa.table({"entity_id": ["9"], "event_type": ["t"], "v": [3]}), parquet)
    view = magic(opened, f"ingest {csv} --type kind --entity id --time at")
    assert doc(view)["source"] == str(csv) and doc(view)["appended"] == 1
    magic(opened, f"ingest {jsonl}")
    magic(opened, f"ingest {parquet}")
    store = magics_of(opened).session.current()
    assert store.state("7") == {"amount": 9.5}
    assert store.state("8") == {"deep": {"x": 1}} and store.state("9") == {"v": 3}


def test_ingest_mistakes_are_one_line(opened, tmp_path):
    opened.user_ns["df"] = pd.DataFrame({"entity_id": ["a"], "at": ["2026-01-01 00:00:00"]})
    with pytest.raises(UsageError, match="the data has no column 'event_type'"):
        magic(opened, "ingest df")
    with pytest.raises(UsageError, match="times in column 'at' have no zone"):
        magic(opened, "ingest df --event-type t --time at")
    assert doc(magic(opened, "ingest df --event-type t --time at --timezone UTC"))["appended"] == 1
    with pytest.raises(UsageError, match="no variable or file named 'nothing'"):
        magic(opened, "ingest nothing")
    with pytest.raises(UsageError, match="no file named"):
        magic(opened, f"ingest {tmp_path / 'missing.csv'}")
    with pytest.raises(UsageError, match="--format is for files"):
        magic(opened, "ingest df --format csv")
    opened.user_ns["empty"] = pd.DataFrame({"event_type": [], "entity_id": []})
    with pytest.raises(UsageError, match="empty has no rows"):
        magic(opened, "ingest empty")
    odd = tmp_path / "rows.txt"
    odd.write_text("x")
    with pytest.raises(UsageError, match="cannot tell the format"):
        magic(opened, f"ingest {odd}")


def test_large_ingests_show_a_progress_bar(opened, capsys):
    magics_of(opened).progress_rows = 5
    magics_of(opened).ingest_batch_rows = 4
    opened.user_ns["many"] = pd.DataFrame(
        {"event_type": ["a"] * 10, "entity_id": [f"e{i}" for i in range(10)], "n": range(10)}
    )
    assert doc(magic(opened, "ingest many"))["appended"] == 10
    shown = capsys.readouterr().out
    assert "ingesting: 0% (0 of 10 events)" in shown
    assert "ingesting: 100% (10 of 10 events)" in shown
    magic(opened, "ingest many --quiet --batch-size 100")
    assert "ingesting" not in capsys.readouterr().out


# -- widgets --------------------------------------------------------------------------------


def test_explore_timetravel_and_tail_return_widgets(opened):
    widgets = pytest.importorskip("allsource_lab.notebook.widgets")
    explorer = magic(opened, "explore -o ex")
    assert isinstance(explorer, widgets.Explorer) and opened.user_ns["ex"] is explorer
    travel = magic(opened, "timetravel order-1")
    assert isinstance(travel, widgets.TimeTravel) and travel.state == {
        "amount": 10,
        "paid": True,
        "sku": "tea",
    }
    tail = magic(opened, "tail --rows 5")
    assert isinstance(tail, widgets.LiveTail)
    panel = magic(opened, "schema panel")
    assert isinstance(panel, widgets.SchemaPanel)
    for widget in (explorer, travel, tail, panel):
        widget.close()
    with pytest.raises(UsageError, match=r"^NotFound: no entity 'nope'"):
        magic(opened, "timetravel nope")


def test_widget_subcommands_say_how_to_install_ipywidgets(opened, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "allsource_lab.notebook.widgets", None)
    with pytest.raises(UsageError, match=r"explore needs ipywidgets .*pip install"):
        magic(opened, "explore")
    magics_of(opened).widgets = True
    assert isinstance(magic(opened, "replay EventCounter --wait"), ReplayView)
    assert isinstance(magic(opened, "replay EventCounter"), ReplayView)


def test_the_cell_output_is_the_rich_display(opened):
    """What a notebook shows: the display formatter's bundle of the returned view."""
    result = opened.run_cell("%allsource events --limit 1")
    data, _ = opened.display_formatter.format(result.result)
    assert data[MIMETYPE]["kind"] == "events"
    assert "showing 1 of 1 events" in data["text/html"]
    assert data["text/plain"].startswith("1 event (limit=1)")


def test_open_without_a_path_opens_the_default_store_when_one_is_named(tmp_path, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    import allsource_lab.notebook as nb

    demo = tmp_path / "demo.events"
    with asl.open(demo) as store:
        store.append("a", "x", {})
    monkeypatch.setenv("ALLSOURCE_DEFAULT_STORE", str(demo))
    shell = InteractiveShell.instance()
    nb.load_ipython_extension(shell)
    try:
        view = shell.run_line_magic("allsource", "open")
        assert view.path == str(demo) and view.events == 1
        assert shell.run_line_magic("allsource", "open --memory").path is None
    finally:
        nb.unload_ipython_extension(shell)


def test_a_window_too_big_to_chart_is_drawn_in_buckets():
    from IPython.core.interactiveshell import InteractiveShell

    import allsource_lab.notebook as nb

    shell = InteractiveShell.instance()
    nb.load_ipython_extension(shell)
    try:
        shell.run_line_magic("allsource", "open --memory")
        shell.run_line_magic("allsource", "append a x {} --time 2026-01-01T00:00:00Z")
        shell.run_line_magic("allsource", "append a x {} --time 2026-01-02T00:00:00Z")
        bucketed = shell.run_line_magic("allsource", "window a --every 1s --fill --chart")
        assert "to draw them all" in bucketed.chart.title
        drawn = shell.run_line_magic("allsource", "window a --every 1h --chart")
        assert "application/vnd.vegalite.v5+json" in str(drawn.chart._repr_mimebundle_())
    finally:
        nb.unload_ipython_extension(shell)
