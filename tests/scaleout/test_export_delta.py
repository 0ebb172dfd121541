"""``store.export_delta``: the sealed history as a Delta table, incremental and exactly-once,
from Python, the command line and the magic; refused targets change nothing."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

import allsource_lab as asl
from allsource_lab.cli import main

deltalake = pytest.importorskip("deltalake")
DeltaTable = deltalake.DeltaTable


def table_rows(uri: Path | str) -> list[dict[str, Any]]:
    """Every row of the Delta table, in sequence order."""
    table = DeltaTable(str(uri)).to_pyarrow_table()
    return sorted(table.to_pylist(), key=lambda row: row["sequence"])


def expected_rows(store: asl.EventStore, through: int) -> list[dict[str, Any]]:
    """The store's events through ``through`` as the table must hold them, built from
    the ``Event`` objects (not from the export's own conversion)."""
    out = []
    for e in store.events():
        if e.sequence > through:
            break
        payload, metadata = e.payload_json, e.metadata_json
        out.append(
            {
                "sequence": e.sequence,
                "event_id": str(e.event_id),
                "event_type": e.event_type,
                "entity_id": e.entity_id,
                "version": e.version,
                "timestamp": e.timestamp,
                "recorded_at": e.recorded_at,
                "payload": payload.decode() if isinstance(payload, bytes) else payload,
                "metadata": metadata.decode() if isinstance(metadata, bytes) else metadata,
                "partition": e.partition,
                "schema_version": e.schema_version,
            }
        )
    return out


def append_some(store: asl.EventStore, n: int, first: int = 0) -> None:
    rows = [
        {
            "event_type": ("order.placed", "order.paid")[i % 2],
            "entity_id": f"order-{(i * 7) % 13}",
            "payload": {"amount": i, "addr": {"zip": None if i % 3 else f"z{i}"}},
            "timestamp": f"2026-01-01T00:{(i * 37) % 60:02d}:00Z",
            **({"metadata": {"by": "test"}} if i % 4 == 0 else {}),
        }
        for i in range(first, first + n)
    ]
    store.append_batch(rows)


def test_export_holds_exactly_the_sealed_events_never_the_tail(tmp_path: Path) -> None:
    uri = tmp_path / "events.delta"
    with asl.open(tmp_path / "s.events") as store:
        append_some(store, 40)
        store.checkpoint()
        append_some(store, 5, first=40)  # the unsealed tail
        done = store.export_delta(uri)
        assert done["exported"] == 40 and done["through_sequence"] == 40
        assert table_rows(uri) == expected_rows(store, 40)
        schema = pa.schema(DeltaTable(str(uri)).schema().to_arrow())
        assert str(schema.field("event_id").type) == "string"
        assert str(schema.field("payload").type) == "string"
        assert str(schema.field("timestamp").type) == "timestamp[us, tz=UTC]"
        done = store.export_delta(uri, checkpoint=True)
        assert done["exported"] == 5 and done["through_sequence"] == 45
        assert table_rows(uri) == expected_rows(store, 45)


def test_each_commit_is_sorted_by_entity_then_sequence(tmp_path: Path) -> None:
    uri = tmp_path / "events.delta"
    store = asl.open()
    append_some(store, 100)
    store.export_delta(uri, checkpoint=True)
    files = DeltaTable(str(uri)).file_uris()
    import pyarrow.parquet as pq

    for name in files:
        rows = pq.read_table(name, columns=["entity_id", "sequence"]).to_pylist()
        keys = [(r["entity_id"].encode(), r["sequence"]) for r in rows]
        assert keys == sorted(keys)


def test_a_second_export_appends_only_what_was_sealed_since_even_after_compaction(
    tmp_path: Path,
) -> None:
    uri = tmp_path / "events.delta"
    with asl.open(tmp_path / "s.events") as store:
        for round_ in range(3):
            append_some(store, 30, first=30 * round_)
            store.checkpoint()
        assert store.export_delta(uri)["exported"] == 90
        version = DeltaTable(str(uri)).version()
        assert store.export_delta(uri)["exported"] == 0
        assert DeltaTable(str(uri)).version() == version  # nothing committed for nothing
        append_some(store, 25, first=90)
        store.checkpoint()
        store.compact()  # segments rewritten: the export goes by sequence, not by file
        assert store.export_delta(uri)["exported"] == 25
        rows = table_rows(uri)
        assert rows == expected_rows(store, 115)
        assert len({r["event_id"] for r in rows}) == 115


def test_an_empty_store_makes_an_empty_table_that_later_exports_fill(tmp_path: Path) -> None:
    uri = tmp_path / "events.delta"
    store = asl.open()
    done = store.export_delta(uri)
    assert done["exported"] == 0 and done["through_sequence"] == 0
    assert table_rows(uri) == []
    append_some(store, 3)
    assert store.export_delta(uri, checkpoint=True)["exported"] == 3
    assert [r["sequence"] for r in table_rows(uri)] == [1, 2, 3]


def test_progress_hears_of_every_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from allsource_lab._export import delta

    monkeypatch.setattr(delta, "ROWS_PER_COMMIT", 10)
    store = asl.open()
    append_some(store, 35)
    heard: list[tuple[int, int]] = []
    done = store.export_delta(
        tmp_path / "t", checkpoint=True, progress=lambda d, t: heard.append((d, t))
    )
    assert heard == [(0, 35), (10, 35), (20, 35), (30, 35), (35, 35)]
    assert done["commits"] == 4
    assert len(table_rows(tmp_path / "t")) == 35
    store.export_delta(tmp_path / "t", progress=lambda d, t: heard.append((d, t)))
    assert len(heard) == 5  # nothing new: no bar at all


# -- kill -9 in the middle of an export --------------------------------------------------

EXPORTER = textwrap.dedent(
    """
    import sys
    import allsource_lab as asl
    from allsource_lab._export import delta

    delta.ROWS_PER_COMMIT = int(sys.argv[3])
    store = asl.open(sys.argv[1], read_only=True)
    store.export_delta(sys.argv[2], progress=lambda done, total: print(done, flush=True))
    print("finished", flush=True)
    """
)


def check_consistent(uri: Path, app_id: str) -> int:
    """The table holds exactly sequences 1..v, each once, where v is its recorded
    export version; returns v (0 when no table was made yet)."""
    if not DeltaTable.is_deltatable(str(uri)):
        return 0
    table = DeltaTable(str(uri))
    version = table.transaction_version(app_id) or 0
    rows = table.to_pyarrow_table(columns=["sequence", "event_id"]).to_pylist()
    assert sorted(r["sequence"] for r in rows) == list(range(1, version + 1))
    assert len({r["event_id"] for r in rows}) == len(rows)
    return version


def kill_rounds(tmp_path: Path, rounds: int, seed: int) -> None:
    store_path = tmp_path / "s.events"
    with asl.open(store_path) as store:
        append_some(store, 6_000)
        store.checkpoint()
        app_id = f"allsource-lab-{store.store_id}"
        total = store.stats()["sealed_events"]
    rng = random.Random(seed)
    for round_ in range(rounds):
        uri = tmp_path / f"t{round_}.delta"
        child = subprocess.Popen(
            [sys.executable, "-c", EXPORTER, str(store_path), str(uri), "500"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        wait_lines = rng.randint(1, 6)  # the first line comes before the first commit
        for _ in range(wait_lines):
            line = child.stdout.readline()
            if not line or line.startswith("finished"):
                break
        time.sleep(rng.uniform(0, 0.05))
        child.kill()
        child.wait()
        child.stdout.close()
        before = check_consistent(uri, app_id)
        with asl.open(store_path, read_only=True) as store:
            done = store.export_delta(uri)
        assert done["exported"] == total - before
        assert check_consistent(uri, app_id) == total
        rows = DeltaTable(str(uri)).to_pyarrow_table(columns=["event_id"])
        assert rows.num_rows == len(set(rows.column("event_id").to_pylist())) == total


def test_a_killed_export_leaves_whole_commits_and_the_next_completes_it_once(
    tmp_path: Path,
) -> None:
    kill_rounds(tmp_path, rounds=3, seed=1)


@pytest.mark.slow
def test_many_killed_exports_each_complete_exactly_once(tmp_path: Path) -> None:
    kill_rounds(tmp_path, rounds=20, seed=2)


# -- refused targets ---------------------------------------------------------------------


def sealed_store() -> asl.EventStore:
    store = asl.open()
    append_some(store, 4)
    store.checkpoint()
    return store


def test_a_table_with_another_schema_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    uri = tmp_path / "other.delta"
    deltalake.write_deltalake(str(uri), pa.table({"id": [1, 2], "name": ["a", "b"]}))
    with pytest.raises(asl.InvalidArgument, match=r"another schema.*missing columns sequence"):
        sealed_store().export_delta(uri)
    table = DeltaTable(str(uri))
    assert table.version() == 0 and table.to_pyarrow_table().num_rows == 2


def test_another_stores_table_is_refused(tmp_path: Path) -> None:
    uri = tmp_path / "t.delta"
    first = sealed_store()
    first.export_delta(uri)
    other = sealed_store()
    with pytest.raises(asl.InvalidArgument, match=f"another store \\({first.store_id}\\)"):
        other.export_delta(uri)
    assert DeltaTable(str(uri)).version() == 0


def test_unreachable_targets_and_missing_credentials_are_storage_errors() -> None:
    store = sealed_store()
    local = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ALLOW_HTTP": "true"}
    local |= {"AWS_REGION": "us-east-1", "max_retries": "0"}
    keys = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    with pytest.raises(asl.StorageError, match=r"cannot reach.*nothing was written"):
        store.export_delta("s3://bucket/events", local | keys)
    # No key given: the client asks the instance metadata service, here refused.
    no_keys = local | {"AWS_METADATA_ENDPOINT": "http://127.0.0.1:9"}
    with pytest.raises(asl.StorageError, match=r"no credentials.*storage_options"):
        store.export_delta("s3://bucket/events", no_keys)


def test_bad_uris_and_options_are_invalid_arguments(tmp_path: Path) -> None:
    store = sealed_store()
    with pytest.raises(asl.InvalidArgument, match="Unknown scheme"):
        store.export_delta("nosuch://bucket/events")
    with pytest.raises(asl.InvalidArgument, match="table URI"):
        store.export_delta(42)  # type: ignore[arg-type]
    with pytest.raises(asl.InvalidArgument, match="storage_options"):
        store.export_delta(tmp_path / "t", {"a": 1})  # type: ignore[dict-item]
    (tmp_path / "file").write_text("x")
    with pytest.raises(asl.StorageError, match="cannot reach or write"):
        store.export_delta(tmp_path / "file" / "t")
    assert not (tmp_path / "t").exists()


# -- the command line and the magic -------------------------------------------------------


def test_cli_export_delta_appends_and_then_has_nothing_new(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.events"
    with asl.open(path) as store:
        append_some(store, 12)
        store.flush()
    uri = tmp_path / "t.delta"
    assert main(["export-delta", str(path), str(uri)]) == 0
    out, err = capsys.readouterr()
    assert "exported 12 events (sequences 1-12)" in out and "12/12 events" in err
    assert main(["export-delta", str(path), str(uri), "--checkpoint", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("nothing new to export") and not err
    assert main(["export-delta", str(path), str(uri), "--storage-option", "nokey"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert len(table_rows(uri)) == 12


def test_magic_export_delta_shows_what_it_did_and_binds_the_result(tmp_path: Path) -> None:
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    from allsource_lab import display
    from allsource_lab.display import MIMETYPE, bundle
    from allsource_lab.notebook import load_ipython_extension, unload_ipython_extension

    ip = InteractiveShell.instance()
    load_ipython_extension(ip)
    try:
        ip.run_line_magic("allsource", f"open {tmp_path / 's.events'}")
        for i in range(3):
            ip.run_line_magic("allsource", f'append order.placed o-{i} {{"n": {i}}}')
        uri = tmp_path / "t.delta"
        view = ip.run_line_magic("allsource", f"export-delta {uri} --checkpoint -o done")
        assert ip.user_ns["done"]["exported"] == 3
        shown = orjson.dumps(bundle(view)[MIMETYPE]).decode()
        assert "exported to Delta Lake" in shown and str(uri) in shown
        with pytest.raises(UsageError, match="KEY=VALUE"):
            ip.run_line_magic("allsource", f"export-delta {uri} --storage-option x")
        assert len(table_rows(uri)) == 3
    finally:
        unload_ipython_extension(ip)
        ip.run_line_magic("reset", "-f")
        # The shared shell keeps %config settings of earlier tests (displaylimit among
        # them), which loading the extension applied to the process's display.
        display.set_default_limit(display.DEFAULT_LIMIT)
