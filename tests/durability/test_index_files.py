"""Index files beside segments: an open indexes a segment from its ``.index`` file when the
file is whole and the segment's, and from the segment's rows otherwise — with the same
answers either way, and a writable open writes a missing or damaged file again.
"""

from __future__ import annotations

import datetime as dt
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

import allsource_lab as asl
from allsource_lab._storage.index_file import decode_index

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def build(path: Path, segments: int = 3, per_segment: int = 400) -> None:
    rng = random.Random(5)
    with asl.open(path, checkpoint_every_events=10**9) as store:
        for s in range(segments):
            rows = [
                {
                    "event_type": rng.choice(["placed", "paid", "shipped", "ü-type"]),
                    "entity_id": f"acct-{rng.randrange(40)}{'é' if i % 7 == 0 else ''}",
                    "payload": {"n": s * per_segment + i, "v": {"deep": i % 3}},
                    "timestamp": START + dt.timedelta(microseconds=rng.randrange(10**9)),
                }
                for i in range(per_segment)
            ]
            store.append_batch(rows)
            store.checkpoint()


def answers(store: asl.EventStore) -> dict[str, object]:
    ids = sorted({e.entity_id for e in store.events()})
    return {
        "events": store.events().to_arrow().to_pylist(),
        "states": {i: store.state(i) for i in ids},
        "as_of": {i: as_of(store, i) for i in ids},
        "types": {t: len(store.events(event_type=t)) for t in ["placed", "paid", "ü-type"]},
        "stats": {k: store.stats()[k] for k in ("events", "entities", "event_types")},
    }


def as_of(store: asl.EventStore, entity_id: str) -> object:
    try:
        return store.state(entity_id, as_of=START + dt.timedelta(seconds=500))
    except asl.NotFound:
        return None


def index_files(path: Path) -> list[Path]:
    return sorted((path / "segments").glob("*.index"))


def test_every_segment_gets_an_index_file_and_an_open_uses_it(tmp_path):
    path = tmp_path / "s"
    build(path)
    files = index_files(path)
    assert len(files) == 3
    with asl.open(path) as store:
        with_index = answers(store)
    for f in files:
        assert decode_index(f.read_bytes(), f.name.replace(".index", ".parquet"), 400)
        f.unlink()
    with asl.open(path) as store:  # indexed from the rows, files written again
        assert answers(store) == with_index
    assert [f.name for f in index_files(path)] == [f.name for f in files]
    with asl.open(path) as store:
        assert answers(store) == with_index


@pytest.mark.parametrize("damage", ["truncate", "flip", "zeros", "empty", "other-segment"])
def test_a_damaged_index_file_is_ignored_and_written_again(tmp_path, damage):
    path = tmp_path / "s"
    build(path)
    with asl.open(path) as store:
        expected = answers(store)
    files = index_files(path)
    target = files[1]
    data = bytearray(target.read_bytes())
    if damage == "truncate":
        target.write_bytes(bytes(data[: len(data) - 9]))
    elif damage == "flip":
        data[len(data) // 2] ^= 0x04
        target.write_bytes(bytes(data))
    elif damage == "zeros":
        target.write_bytes(bytes(len(data)))
    elif damage == "empty":
        target.write_bytes(b"")
    else:
        target.write_bytes(files[0].read_bytes())  # whole, but another segment's
    with asl.open(path) as store:
        assert answers(store) == expected
        assert store.verify().ok
    segment = target.name.replace(".index", ".parquet")
    assert decode_index(target.read_bytes(), segment, 400) is not None, "not written again"
    with asl.open(path) as store:
        assert answers(store) == expected


def test_a_read_only_open_without_index_files_writes_none(tmp_path):
    path = tmp_path / "s"
    build(path, segments=2)
    with asl.open(path) as store:
        expected = answers(store)
    for f in index_files(path):
        f.unlink()
    store = asl.open(path, read_only=True)
    try:
        assert answers(store) == expected
    finally:
        store.close()
    assert index_files(path) == []


def test_versions_and_numbers_after_an_indexed_open_go_on_as_before(tmp_path):
    path = tmp_path / "s"
    build(path, segments=2)
    with asl.open(path) as store:
        ids = sorted({e.entity_id for e in store.events()})
        versions = {i: len(store.events(entity_id=i)) for i in ids}
    with asl.open(path) as store:
        for i in ids:
            ev = store.append("more", i, {"x": 1})
            assert ev.version == versions[i] + 1
        with pytest.raises(asl.ConcurrencyError):
            store.append("more", ids[0], {}, expected_version=versions[ids[0]])
        store.checkpoint()
        store.compact()
        expected = answers(store)
    assert len(index_files(path)) == 1
    with asl.open(path) as store:
        assert answers(store) == expected


# Appends singles and batches with a checkpoint every 3,000 events (each writes an index
# file) and prints "acked N" after each write, until killed.
_WRITER = """
import sys, allsource_lab as asl
store = asl.open(sys.argv[1], fsync="always", checkpoint_every_events=3_000)
i = 0
while True:
    if i % 5 == 0:
        rows = [{"event_type": "b", "entity_id": f"e{j % 37}", "payload": {}} for j in range(500)]
        res = store.append_batch(rows)
        print("acked", res.last_sequence, flush=True)
    else:
        print("acked", store.append("s", f"e{i % 37}", {"i": i}).sequence, flush=True)
    i += 1
"""


def test_kills_while_seals_write_index_files_lose_nothing(tmp_path):
    path = tmp_path / "s"
    rng = random.Random(11)
    acked = 0
    for _ in range(6):
        with subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True
        ) as child:
            assert child.stdout is not None
            deadline = None
            for line in child.stdout:
                acked = max(acked, int(line.split()[1]))
                if deadline is None:
                    deadline = time.monotonic() + rng.uniform(0.2, 1.2)
                elif time.monotonic() >= deadline:
                    child.send_signal(signal.SIGKILL)
                    break
            for line in child.stdout:
                acked = max(acked, int(line.split()[1]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", asl.RecoveryWarning)
            store = asl.open(path)
        try:
            events = store.events().to_arrow()
            assert events.num_rows >= acked
            seqs = sorted(events.column("sequence").to_pylist())
            assert seqs == list(range(1, len(seqs) + 1))
            for e in ("e0", "e5", "e36"):
                versions = store.events(entity_id=e).to_arrow().column("version").to_pylist()
                assert versions == list(range(1, len(versions) + 1))
            assert store.verify().ok
        finally:
            store.close()
    assert len(index_files(path)) >= 2
