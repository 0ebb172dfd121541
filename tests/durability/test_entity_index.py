"""The entity index (``entities.index``): an open numbers the entity ids it keeps and takes
the entity of each run of a covered segment from it instead of looking ids up — with the
same answers as an open that indexes every row, whatever happened to the file: missing,
torn at any byte, damaged, stale after a compaction, crafted with a valid checksum, or
cut short by a writer killed while appending to it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import shutil
import signal
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import crc32c
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import allsource_lab as asl
from allsource_lab._storage.entity_index import (
    ENTITY_INDEX_FILE,
    EntityIndexFile,
    read_entity_index,
)
from allsource_lab._storage.manifest import Manifest

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TYPES = ["placed", "paid", "shipped", "ü-type"]


def build(path: Path, segments: int = 4, per_segment: int = 300, seed: int = 5) -> None:
    """Segments whose entities overlap and grow: each brings some ids never seen before."""
    rng = random.Random(seed)
    with asl.open(path, checkpoint_every_events=10**9) as store:
        for s in range(segments):
            rows = [
                {
                    "event_type": rng.choice(TYPES),
                    "entity_id": f"acct-{rng.randrange(20 + 15 * s)}{'é' if i % 7 == 0 else ''}",
                    "payload": {"n": s * per_segment + i, "v": {"deep": i % 3}},
                    "timestamp": START + dt.timedelta(microseconds=rng.randrange(10**9)),
                }
                for i in range(per_segment)
            ]
            store.append_batch(rows)
            store.checkpoint()
        store.append("single", "acct-new", {"tail": True})  # sealed by close()


def answers(store: asl.EventStore) -> dict[str, Any]:
    ids = sorted({e.entity_id for e in store.events()})
    return {
        "events": store.events().to_arrow().to_pylist(),
        "by_entity": {i: store.events(entity_id=i).to_arrow().to_pylist() for i in ids},
        "states": {i: store.state(i) for i in ids},
        "as_of": {i: as_of(store, i) for i in ids},
        "types": {t: len(store.events(event_type=t)) for t in TYPES},
        "stats": {k: store.stats()[k] for k in ("events", "entities", "event_types")},
    }


def as_of(store: asl.EventStore, entity_id: str) -> object:
    try:
        return store.state(entity_id, as_of=START + dt.timedelta(seconds=500))
    except asl.NotFound:
        return None


def reference(path: Path, tmp: Path) -> dict[str, Any]:
    """The answers of a copy of the store opened without any derived index file."""
    copy = tmp / "reference"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(path, copy)
    (copy / ENTITY_INDEX_FILE).unlink(missing_ok=True)
    for f in (copy / "segments").glob("*.index"):
        f.unlink()
    store = asl.open(copy, read_only=True)
    try:
        return answers(store)
    finally:
        store.close()


def live(path: Path) -> list[Any]:
    return Manifest.from_bytes((path / "manifest.json").read_bytes(), "manifest.json").segments


def covered(path: Path) -> int:
    """Live segments the store's entity index file covers."""
    return len(read_entity_index((path / ENTITY_INDEX_FILE).read_bytes(), live(path)).runs)


def test_every_seal_extends_the_file_and_an_open_answers_as_without_it(tmp_path):
    path = tmp_path / "s"
    build(path)
    assert covered(path) == len(live(path)) == 5
    with asl.open(path) as store:
        got = answers(store)
    assert got == reference(path, tmp_path)
    with asl.open(path) as store:
        store.append_batch(
            [{"event_type": "paid", "entity_id": f"z{i}", "payload": {}} for i in range(9)]
        )
        store.checkpoint()
        assert covered(path) == 6
        after = answers(store)
    assert after == reference(path, tmp_path)
    with asl.open(path, read_only=True) as store:
        assert answers(store) == after


def test_the_open_takes_entity_numbers_from_the_file(tmp_path, monkeypatch):
    path = tmp_path / "s"
    build(path)
    from allsource_lab._store.entities import EntityTable

    def refuse(*args: object) -> None:
        raise AssertionError("a covered segment's entity ids were looked up")

    monkeypatch.setattr(EntityTable, "absorb_runs", refuse)
    with asl.open(path, read_only=True) as store:
        assert answers(store) == reference(path, tmp_path)


def test_postings_built_on_two_threads_answer_the_same(tmp_path, monkeypatch):
    path = tmp_path / "s"
    build(path)
    from allsource_lab._store import opening

    monkeypatch.setattr(opening, "_PARALLEL_POSTINGS", 0)  # as a large store does
    with asl.open(path) as store:
        assert answers(store) == reference(path, tmp_path)
        store.append("paid", "acct-1", {"after": True})  # postings extend as usual
        assert store.events(entity_id="acct-1").to_arrow().column("payload")[-1].as_py() == (
            '{"after":true}'
        )


@pytest.mark.parametrize(
    "damage", ["missing", "empty", "magic", "flip", "zeros", "truncate", "garbage-after"]
)
def test_a_damaged_file_is_ignored_and_written_again(tmp_path, damage):
    path = tmp_path / "s"
    build(path)
    expected = reference(path, tmp_path)
    target = path / ENTITY_INDEX_FILE
    data = bytearray(target.read_bytes())
    if damage == "missing":
        target.unlink()
    elif damage == "empty":
        target.write_bytes(b"")
    elif damage == "magic":
        data[0] ^= 1
        target.write_bytes(bytes(data))
    elif damage == "flip":
        data[len(data) // 2] ^= 0x10
        target.write_bytes(bytes(data))
    elif damage == "zeros":
        target.write_bytes(bytes(len(data)))
    elif damage == "truncate":
        target.write_bytes(bytes(data[: len(data) - 5]))
    else:
        target.write_bytes(bytes(data) + b"\x07" * 40)
    with asl.open(path, read_only=True) as store:
        assert answers(store) == expected
    assert target.exists() == (damage != "missing"), "a read-only open wrote"
    with asl.open(path) as store:
        assert answers(store) == expected
    assert covered(path) == 5, "not written again"
    with asl.open(path) as store:
        assert answers(store) == expected


def test_a_torn_final_frame_at_every_byte_leaves_the_frames_before_it(tmp_path):
    path = tmp_path / "s"
    build(path, segments=3, per_segment=40)
    data = (path / ENTITY_INDEX_FILE).read_bytes()
    segments = live(path)
    whole = read_entity_index(data, segments)
    assert len(whole.runs) == 4
    for cut in range(whole.ends[2], len(data)):
        torn = read_entity_index(data[:cut], segments)
        assert len(torn.runs) == 3
        assert torn.keys == whole.keys_at[2]
    for at in range(whole.ends[2], len(data)):
        flipped = bytearray(data)
        flipped[at] ^= 0x01
        assert len(read_entity_index(bytes(flipped), segments).runs) == 3, at


def test_a_compaction_rewrites_the_file_for_the_merged_segment(tmp_path):
    path = tmp_path / "s"
    build(path)
    with asl.open(path) as store:
        store.compact()
        assert covered(path) == 1
        expected = answers(store)
    assert expected == reference(path, tmp_path)
    with asl.open(path, read_only=True) as store:
        assert answers(store) == expected


def test_a_stale_file_after_a_compaction_it_missed_is_rewritten(tmp_path):
    path = tmp_path / "s"
    build(path)
    before = (path / ENTITY_INDEX_FILE).read_bytes()
    with asl.open(path) as store:
        store.compact()
    (path / ENTITY_INDEX_FILE).write_bytes(before)  # as if the rewrite never happened
    assert covered(path) == 0
    expected = reference(path, tmp_path)
    with asl.open(path) as store:
        assert answers(store) == expected
    assert covered(path) == 1


def _frame_fields(data: bytes, at: int) -> tuple[int, int]:
    """(body length, offset of the body) of the frame at ``at``."""
    (size,) = struct.unpack_from("<Q", data, at)
    return size, at + 16


def _reframe(body: bytearray) -> bytes:
    return struct.pack("<QI4x", len(body), crc32c.crc32c(bytes(body))) + bytes(body)


@pytest.mark.parametrize("craft", ["number-too-high", "negative-number", "duplicate-ids", "runs"])
def test_a_crafted_file_with_valid_checksums_is_not_trusted(tmp_path, craft):
    path = tmp_path / "s"
    build(path, segments=2, per_segment=60)
    expected = reference(path, tmp_path)
    data = bytearray((path / ENTITY_INDEX_FILE).read_bytes())
    size, body_at = _frame_fields(bytes(data), 8)
    body = bytearray(data[body_at : body_at + size])
    runs, keys = struct.unpack_from("<q", body, 8)[0], struct.unpack_from("<q", body, 24)[0]
    if craft == "number-too-high":
        struct.pack_into("<i", body, len(body) - 4, keys + 3)
    elif craft == "negative-number":
        struct.pack_into("<i", body, len(body) - 4 * runs, -1)
    elif craft == "duplicate-ids":
        # One id overwritten by an earlier one of the same length.
        name_bytes = struct.unpack_from("<I", body, 40)[0]
        lengths_at = 112 + name_bytes + (-name_bytes % 8)
        lengths = np.frombuffer(bytes(body[lengths_at : lengths_at + 4 * keys]), "<u4")
        ids_at = lengths_at + 4 * keys
        starts = [ids_at + int(x) for x in np.concatenate([[0], np.cumsum(lengths)])]
        i, j = next((i, j) for j in range(keys) for i in range(j) if lengths[i] == lengths[j])
        body[starts[j] : starts[j + 1]] = body[starts[i] : starts[i + 1]]
    else:
        struct.pack_into("<q", body, 8, runs - 1)  # runs no longer add up to the body
    data[8 : body_at + size] = _reframe(body)
    (path / ENTITY_INDEX_FILE).write_bytes(bytes(data))
    with asl.open(path, read_only=True) as store:
        assert answers(store) == expected
    with asl.open(path) as store:
        assert answers(store) == expected
    assert covered(path) == 3


def test_a_frame_that_disagrees_with_the_index_file_is_not_used(tmp_path):
    path = tmp_path / "s"
    build(path, segments=2, per_segment=60)
    expected = reference(path, tmp_path)
    segments = live(path)
    kept = read_entity_index((path / ENTITY_INDEX_FILE).read_bytes(), segments)
    # The same ids, but segment 1's runs one short: whole and well-formed, yet not its.
    file = EntityIndexFile(path / ENTITY_INDEX_FILE, read_only=False)
    file.read([])
    runs = [kept.runs[0], kept.runs[1][:-1], kept.runs[2]]
    file.write(segments, 0, (kept.key_data, kept.key_offsets), runs)
    assert covered(path) == 3
    with asl.open(path) as store:
        assert answers(store) == expected
    fixed = read_entity_index((path / ENTITY_INDEX_FILE).read_bytes(), segments)
    assert len(fixed.runs[1]) == len(kept.runs[1])


def test_the_writer_appends_only_after_frames_it_knows(tmp_path):
    path = tmp_path / ENTITY_INDEX_FILE

    class Seg:
        def __init__(self, k: int, rows: int) -> None:
            self.file, self.rows, self.sha256 = f"seg-{k}.parquet", rows, f"{k:064x}"

    segments = [Seg(0, 3), Seg(1, 2), Seg(2, 4)]
    data = np.frombuffer(b"abcde", np.uint8)
    offsets = np.array([0, 1, 2, 3, 4, 5])
    file = EntityIndexFile(path, read_only=False)
    file.write(segments, 1, (data, offsets[:3]), [np.array([0])])  # nothing read yet
    assert not path.exists()
    file.read(segments)
    file.write(segments, 0, (data, offsets[:3]), [np.array([0, 1])])
    file.write(segments, 2, (data, offsets), [np.array([4, 0])])  # segment 1 missing
    got = read_entity_index(path.read_bytes(), segments)
    assert [r.tolist() for r in got.runs] == [[0, 1]]
    file.write(segments, 1, (data, offsets[:4]), [np.array([2])])
    file.write(segments, 2, (data, offsets), [np.array([4, 0, 3])])
    got = read_entity_index(path.read_bytes(), segments)
    assert [r.tolist() for r in got.runs] == [[0, 1], [2], [4, 0, 3]]
    assert bytes(got.key_data) == b"abcde" and got.key_offsets.tolist() == offsets.tolist()
    assert got.keys_at == [2, 3, 5]
    EntityIndexFile(path, read_only=True).write(segments, 0, (data, offsets), [])
    assert len(read_entity_index(path.read_bytes(), segments).runs) == 3


_EXAMPLES = itertools.count()


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, Any]]:
    steps = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["batch", "single", "checkpoint", "compact", "reopen"]))
        if kind == "batch":
            ids = draw(st.lists(st.integers(0, 60), min_size=1, max_size=40))
            steps.append((kind, ids))
        elif kind == "single":
            steps.append((kind, draw(st.integers(0, 60))))
        else:
            steps.append((kind, None))
    return steps


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=histories())
def test_any_history_opens_to_the_same_answers_as_without_the_file(tmp_path, steps):
    path = tmp_path / f"h{next(_EXAMPLES)}"
    store = asl.open(path, checkpoint_every_events=10**9)
    try:
        n = 0
        for kind, arg in steps:
            if kind == "batch":
                rows = [
                    {"event_type": TYPES[i % 4], "entity_id": f"k{i}", "payload": {"n": n + j}}
                    for j, i in enumerate(arg)
                ]
                store.append_batch(rows)
                n += len(rows)
            elif kind == "single":
                store.append("single", f"k{arg}", {"n": n})
                n += 1
            elif kind == "checkpoint":
                store.checkpoint()
            elif kind == "compact":
                store.compact()
            else:
                store.close()
                store = asl.open(path, checkpoint_every_events=10**9)
        store.checkpoint()
        expected = answers(store)
    finally:
        store.close()
    if (path / ENTITY_INDEX_FILE).exists():
        assert covered(path) == len(live(path))
    assert reference(path, tmp_path) == expected
    with asl.open(path, read_only=True) as again:
        assert answers(again) == expected


# Appends batches of new and old entities with a checkpoint every 2,000 events (each
# appends a frame to the entity index) and prints "acked N" after each, until killed. Each
# run brings ids of its own, up to ~650.
_WRITER = """
import sys, allsource_lab as asl
store = asl.open(sys.argv[1], fsync="always", checkpoint_every_events=2_000)
i = 0
while True:
    ids = 50 + min(i, 15) * 40
    rows = [{"event_type": "b", "entity_id": f"{sys.argv[2]}-{(i * 300 + j) % ids}",
             "payload": {"i": i}} for j in range(300)]
    print("acked", store.append_batch(rows).last_sequence, flush=True)
    i += 1
"""


def sampled(store: asl.EventStore) -> dict[str, Any]:
    """What the crash test compares: every event's sequence and version, and 40 entities'
    reads."""
    events = store.events().to_arrow()
    ids = sorted(set(events.column("entity_id").to_pylist()))
    pick = random.Random(len(ids)).sample(ids, min(40, len(ids)))
    return {
        "events": events.column("sequence").to_numpy().tobytes()
        + events.column("version").to_numpy().tobytes(),
        "by_entity": {i: store.events(entity_id=i).to_arrow().to_pylist() for i in pick},
        "states": {i: store.state(i) for i in pick},
        "stats": {k: store.stats()[k] for k in ("events", "entities", "event_types")},
    }


def test_kills_while_seals_append_frames_lose_nothing(tmp_path):
    path = tmp_path / "s"
    rng = random.Random(13)
    acked = 0
    for round_ in range(6):
        with subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), f"r{round_}"],
            stdout=subprocess.PIPE,
            text=True,
        ) as child:
            assert child.stdout is not None
            deadline = None
            for line in child.stdout:
                acked = max(acked, int(line.split()[1]))
                if deadline is None:
                    deadline = time.monotonic() + rng.uniform(0.3, 1.5)
                elif time.monotonic() >= deadline:
                    child.send_signal(signal.SIGKILL)
                    break
            for line in child.stdout:
                acked = max(acked, int(line.split()[1]))
        copy = tmp_path / "reference"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(path, copy)
        (copy / ENTITY_INDEX_FILE).unlink(missing_ok=True)
        for f in (copy / "segments").glob("*.index"):
            f.unlink()
        with asl.open(copy, read_only=True) as store:
            expected = sampled(store)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", asl.RecoveryWarning)
            store = asl.open(path)
        try:
            got = sampled(store)
            assert got["stats"]["events"] >= acked
            assert got == expected, f"round {round_}"
        finally:
            store.close()
        if live(path):
            assert covered(path) == len(live(path))
