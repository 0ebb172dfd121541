"""Compaction: same answers before and after (and after reopen), one segment left, crash-safe."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import allsource_lab as asl
from tests.conftest import open_after_crash
from tests.features.test_projections import history


def answers(store: asl.EventStore) -> dict[str, object]:
    events = [(e.sequence, e.entity_id, e.version, e.payload) for e in store.events()]
    entities = sorted({e[1] for e in events})
    return {
        "events": events,
        "by_entity": {eid: [e.sequence for e in store.events(entity_id=eid)] for eid in entities},
        "by_type": {t: len(store.events(event_type=t)) for t in ("a", "b", "c")},
        "states": {eid: store.state(eid) for eid in entities},
        "states_bulk": store.states()[["entity_id", "version"]].values.tolist(),
        "sql": store.sql(
            "select event_type, count(*) from events group by 1 order by 1"
        ).fetchall(),
    }


def test_compaction_keeps_every_answer(store_factory):
    store = store_factory(checkpoint_every_events=10**9)
    for seed in range(5):
        history(store, 60, seed=seed)
        store.checkpoint()
    history(store, 20, seed=9)  # an unsealed tail as well
    before = answers(store)
    frame = store.events(entity_id="e1")
    assert len(frame) > 0  # positions picked before the compaction...
    done = store.compact()
    assert done["segments"] == 5 and done["events"] == 300
    assert answers(store) == before
    assert [e.sequence for e in frame] == before["by_entity"]["e1"]  # ...rows read after
    assert store.verify().ok
    assert store.stats()["segments"] == 1
    history(store, 30, seed=10)
    store.checkpoint()
    assert store.compact()["segments"] == 2


def test_compacted_folder_reopens_with_one_segment(tmp_path):
    store = asl.open(tmp_path / "s", checkpoint_every_events=10**9)
    for seed in range(3):
        history(store, 50, seed=seed)
        store.checkpoint()
    before = answers(store)
    store.compact()
    files = sorted(p.name for p in (tmp_path / "s" / "segments").glob("*.parquet"))
    assert len(files) == 1
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert [s["file"] for s in manifest["segments"]] == files
    store.close()
    store = asl.open(tmp_path / "s")
    assert answers(store) == before and store.verify().ok
    store.close()


def test_nothing_to_compact_and_read_only(tmp_path):
    store = asl.open(tmp_path / "s")
    assert store.compact() is None
    history(store, 10)
    store.checkpoint()
    assert store.compact() is None  # one segment
    store.close()
    reader = asl.open(tmp_path / "s", read_only=True)
    with pytest.raises(asl.StorageError, match="read_only"):
        reader.compact()
    reader.close()


COMPACTING_WRITER = textwrap.dedent(
    """
    import sys, allsource_lab as asl
    store = asl.open(sys.argv[1], fsync="always", checkpoint_every_events=10**9)
    i = 0
    while True:
        for _ in range(40):
            i += 1
            store.append("t", "e%d" % (i % 7), {"i": i})
            print(i, flush=True)
        store.checkpoint()
        store.compact()
    """
)


@pytest.mark.parametrize("delay", [0.3, 0.6, 0.9, 1.2, 1.5, 1.8])
def test_kill_9_during_compactions_loses_nothing(tmp_path, delay):
    path = tmp_path / "s"
    child = subprocess.Popen(
        [sys.executable, "-c", COMPACTING_WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    # Lines are read on a thread and the kill comes on a clock: reacting to a line would
    # kill the writer right after a print, i.e. always between appends, never mid-compaction.
    acked: list[int] = []
    reader = threading.Thread(target=lambda: acked.extend(int(x) for x in child.stdout))
    reader.start()
    time.sleep(delay)
    while not acked or acked[-1] < 130:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    reader.join(timeout=30)
    child.stdout.close()
    acknowledged = acked[-1]
    store = open_after_crash(path)
    got = [e.payload["i"] for e in store.events()]
    assert got[:acknowledged] == list(range(1, acknowledged + 1))
    assert got == list(range(1, len(got) + 1))
    assert store.verify().ok
    live = {s.file for s in store._storage.manifest.segments}
    live |= {f.replace(".parquet", x) for f in live for x in (".arrow", ".index")}
    assert {p.name for p in (path / "segments").iterdir()} == live  # orphans removed
    store.close()
