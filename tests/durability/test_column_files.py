"""Column files: each segment's rows as a mapped Arrow IPC file beside its Parquet.

The column file is derived data. These tests hold the store to what docs/format.md
promises about it, on real files:

* a checkpoint and a compaction write it (the same rows as the Parquet, in the same
  order), record its size and CRC32C in the manifest, and keep the segment mapped from it;
* a column file that is missing, truncated, zero-filled or damaged where an open can see
  it is reported, read from the Parquet instead (answers unchanged), and written again by
  a writable open; a read-only open changes nothing on disk;
* damage an open cannot see (a flipped bit in the data) is found by ``verify()``;
* a store from before column files opens without a problem and gets them;
* orphaned column files are removed; a kill or a power cut never leaves a manifest naming
  a torn one.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import crc32c
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import allsource_lab as asl
from allsource_lab._query.state import merge_patch
from allsource_lab._storage.manifest import Manifest
from allsource_lab.events import EVENT_SCHEMA
from tests.conftest import open_after_crash
from tests.durability.faultfs import PowerCut, SimulatedCrash

ENTITIES = [f"acct-{i}" for i in range(7)]


# -- helpers ------------------------------------------------------------------------------


def build(path: Path, checkpoints: int = 3, per: int = 40) -> None:
    """A closed store of ``checkpoints`` segments (the last sealed by close) and a few
    events of every shape: non-ASCII ids, metadata, schema versions, given times."""
    store = asl.open(path, checkpoint_every_events=10**9)
    store.schemas.register("moved", {"type": "object", "required": ["n"]})
    n = 0
    for c in range(checkpoints):
        rows = []
        for _ in range(per):
            n += 1
            entity = ENTITIES[n % len(ENTITIES)] + ("-é" if n % 5 == 0 else "")
            rows.append(
                {
                    "event_type": "moved" if n % 3 else "noted",
                    "entity_id": entity,
                    "payload": {"n": n, "text": "x" * (n % 17)},
                    "metadata": {"c": c},
                }
            )
        store.append_batch(rows)
        store.append("noted", "solo", {"n": -c})
        if c < checkpoints - 1:
            store.checkpoint()
    store.close()


def answers(store: asl.EventStore) -> dict[str, Any]:
    """Everything a reader sees: events, states, SQL, a time-travel state."""
    events = [
        (e.sequence, e.event_type, e.entity_id, e.version, e.payload, e.metadata)
        for e in store.events()
    ]
    states: dict[str, dict] = {}
    for _, _, entity, _, payload, _ in events:
        merge_patch(states.setdefault(entity, {}), payload)
    return {
        "events": events,
        "states": {entity: store.state(entity) for entity in states},
        "as_of": store.state("acct-1", as_of="2999-01-01T00:00:00Z"),
        "sql": store.sql(
            "select event_type, count(*), sum(version) from events group by 1 order by 1"
        ).fetchall(),
    }


def segment_pairs(path: Path) -> list[tuple[Path, Path]]:
    """(Parquet, column file) of each live segment, oldest first."""
    manifest = Manifest.from_bytes((path / "manifest.json").read_bytes(), "manifest.json")
    folder = path / "segments"
    return [
        (folder / s.file, folder / s.file.replace(".parquet", ".arrow")) for s in manifest.segments
    ]


def segment_folder(path: Path) -> set[str]:
    """The Parquet and column files (and their temp files) in ``segments/``; other files
    kept there beside them are not this test's business."""
    return {
        p.name
        for p in (path / "segments").iterdir()
        if p.name.endswith((".parquet", ".arrow", ".tmp"))
    }


def manifest_segments(path: Path) -> list[Any]:
    return Manifest.from_bytes((path / "manifest.json").read_bytes(), "m").segments


def mapped_from(store: asl.EventStore) -> list[str | None]:
    """For each segment the store holds: the file its rows are mapped from, or None if
    they are in anonymous memory (found through /proc/self/maps)."""
    regions = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6:
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            regions.append((lo, hi, parts[5]))
    found: list[str | None] = []
    for table in store._sealer.segments:
        address = table.column("payload").chunk(0).storage.buffers()[2].address
        names = [Path(name).name for lo, hi, name in regions if lo <= address < hi]
        found.append(names[0] if names else None)
    return found


def open_recording(path: Path, **settings: Any) -> tuple[asl.EventStore, list[str]]:
    """Open and return what it said: RecoveryWarnings and recovery_problems."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = asl.open(path, **settings)
    return store, [str(w.message) for w in caught] + list(store.recovery_problems)


def files(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != "LOCK"
    }


def make_old(path: Path) -> None:
    """The store as a version before column files left it: no column files, and segment
    entries without their keys."""
    manifest = Manifest.from_bytes((path / "manifest.json").read_bytes(), "m")
    manifest.segments = [
        replace(s, columns_bytes=None, columns_crc32c=None) for s in manifest.segments
    ]
    manifest.write(path)
    for column_file in (path / "segments").glob("*.arrow"):
        column_file.unlink()
    assert "columns_bytes" not in (path / "manifest.json").read_text()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("columns") / "store"
    build(path)
    with asl.open(path, read_only=True) as store:
        return path, answers(store)


@pytest.fixture
def copy(pristine: tuple[Path, dict[str, Any]], tmp_path: Path) -> Path:
    path = tmp_path / "store"
    shutil.copytree(pristine[0], path, ignore=shutil.ignore_patterns("LOCK"))
    return path


# -- what is written ----------------------------------------------------------------------


def test_each_segment_has_a_column_file_with_the_same_rows_in_the_same_order(copy):
    pairs = segment_pairs(copy)
    assert len(pairs) == 3
    assert sorted(segment_folder(copy)) == sorted(p.name for pair in pairs for p in pair)
    for (parquet, columns), info in zip(pairs, manifest_segments(copy), strict=True):
        with pa.memory_map(str(columns)) as source:
            reader = pa.ipc.open_file(source)
            assert reader.num_record_batches == 1
            stored = reader.read_all()
        assert stored.equals(pq.read_table(parquet))
        assert stored.schema.equals(EVENT_SCHEMA)
        data = columns.read_bytes()
        assert (info.columns_bytes, info.columns_crc32c) == (len(data), crc32c.crc32c(data))


def test_an_open_store_holds_every_segment_mapped_from_its_column_file(copy, pristine):
    store, said = open_recording(copy)
    try:
        assert said == []
        assert mapped_from(store) == [columns.name for _, columns in segment_pairs(copy)]
        assert answers(store) == pristine[1]
        store.append("moved", "acct-0", {"n": 1000})
        store.checkpoint()  # the new segment is kept mapped as soon as it is sealed
        assert mapped_from(store) == [columns.name for _, columns in segment_pairs(copy)]
        assert store.verify().ok
    finally:
        store.close()
    with asl.open(copy, read_only=True) as reader:
        assert mapped_from(reader) == [columns.name for _, columns in segment_pairs(copy)]


def open_descriptors_on(folder: Path) -> list[str]:
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            target = str(fd.readlink())
            if target.startswith(str(folder)):
                found.append(target)
    return found


def test_mapped_column_files_hold_no_descriptor_and_go_with_their_last_buffer(copy):
    """Each segment stays mapped (map_file) without a file descriptor per segment, and
    the mapping goes once nothing refers to its rows."""
    import gc

    from allsource_lab._storage.columns import map_file

    with asl.open(copy) as store:
        assert all(mapped_from(store))
        assert open_descriptors_on(copy / "segments") == []
    del store  # its segments hold their mappings
    gc.collect()
    _, first = segment_pairs(copy)[0]
    assert first.name not in Path("/proc/self/maps").read_text()
    buffer = map_file(first)
    assert buffer.to_pybytes()[:6] == b"ARROW1"
    assert open_descriptors_on(copy / "segments") == []
    tail = buffer.slice(buffer.size - 6)
    del buffer
    gc.collect()
    assert first.name in Path("/proc/self/maps").read_text()  # the slice keeps it
    assert tail.to_pybytes() == b"ARROW1"
    del tail
    gc.collect()
    assert first.name not in Path("/proc/self/maps").read_text()


def test_asking_for_a_column_ahead_is_only_a_hint(copy):
    """will_need takes mapped and in-memory columns, chunked or not, empty ones too, and
    changes nothing a read sees."""
    from allsource_lab._storage.columns import will_need

    with asl.open(copy, read_only=True) as store:
        table = store._sealer.segments[0]
        before = table.column("version").to_pylist()
        will_need(table.column("version"))
        will_need(table.column("payload").chunk(0).storage)
        assert table.column("version").to_pylist() == before
    will_need(pa.chunked_array([[1, 2], [3]], pa.int64()))
    will_need(pa.array([], pa.int64()))


# -- damage an open sees ------------------------------------------------------------------


def missing(path: Path) -> None:
    path.unlink()


def truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def zero_filled(path: Path) -> None:
    path.write_bytes(bytes(path.stat().st_size))


def footer_flipped(path: Path) -> None:
    # The last bytes: the IPC footer's length and the closing magic "ARROW1".
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10
    path.write_bytes(bytes(data))


def magic_garbled(path: Path) -> None:
    # The opening magic "ARROW1" (readers take the schema from the footer, not from the
    # copy after the magic, so only the magic is checked at open).
    data = bytearray(path.read_bytes())
    data[0:6] = b"ARROW2"
    path.write_bytes(bytes(data))


def extended(path: Path) -> None:
    with open(path, "ab") as f:
        f.write(b"\0" * 8)


DAMAGE = [missing, truncated, zero_filled, footer_flipped, magic_garbled, extended]


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda d: d.__name__)
def test_a_damaged_column_file_is_reported_read_from_parquet_and_written_again(
    copy, pristine, damage
):
    pairs = segment_pairs(copy)
    parquet, columns = pairs[1]
    damage(columns)
    store, said = open_recording(copy)
    try:
        named = [s for s in said if columns.name in s]
        assert len(said) == 1 and named, said
        assert answers(store) == pristine[1]
        # Written again from the Parquet, recorded, and mapped: no heap copy is kept.
        with pa.memory_map(str(columns)) as source:
            assert pa.ipc.open_file(source).read_all().equals(pq.read_table(parquet))
        data = columns.read_bytes()
        info = manifest_segments(copy)[1]
        assert (info.columns_bytes, info.columns_crc32c) == (len(data), crc32c.crc32c(data))
        assert mapped_from(store) == [c.name for _, c in pairs]
        assert store.verify().ok
    finally:
        store.close()
    again, said = open_recording(copy)
    with again:
        assert said == [] and answers(again) == pristine[1]


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda d: d.__name__)
def test_a_read_only_open_reads_the_parquet_instead_and_changes_nothing(copy, pristine, damage):
    _, columns = segment_pairs(copy)[0]
    damage(columns)
    before = files(copy)
    reader, said = open_recording(copy, read_only=True)
    with reader:
        assert len(said) == 1 and columns.name in said[0], said
        assert answers(reader) == pristine[1]
        assert mapped_from(reader)[0] is None  # in memory, read from the Parquet
        assert not reader.verify().ok
    assert files(copy) == before


def test_a_column_file_that_cannot_be_written_again_leaves_the_segment_in_memory(
    copy, pristine, monkeypatch
):
    _, columns = segment_pairs(copy)[2]
    columns.unlink()
    import allsource_lab._storage.folder as folder

    def no_room(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(folder, "rewrite_columns", no_room)
    store, said = open_recording(copy)
    try:
        assert any("could not be written" in s and columns.name in s for s in said), said
        assert answers(store) == pristine[1]
        assert mapped_from(store)[2] is None
    finally:
        store.close()
    monkeypatch.undo()
    store, said = open_recording(copy)  # with room again, the next open writes it
    with store:
        assert [s for s in said if columns.name in s] and columns.exists()
        assert answers(store) == pristine[1]


# -- damage only verify sees --------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_verify_finds_a_flipped_bit_anywhere_in_a_column_file(copy, seed):
    store = asl.open(copy)
    try:
        assert store.verify().ok
        _, columns = segment_pairs(copy)[seed % 3]
        size = columns.stat().st_size
        at = (seed * 7919 + 13) % size
        with open(columns, "r+b") as f:  # in place: the store has the file mapped
            f.seek(at)
            byte = f.read(1)[0]
            f.seek(at)
            f.write(bytes([byte ^ (1 << (seed % 8))]))
        report = store.verify()
        named = [p for p in report.problems if columns.name in p]
        assert not report.ok and len(named) == 1, report.problems
        assert "CRC32C" in named[0] and "delete it" in named[0], named
    finally:
        store.close()


def test_the_remedy_verify_gives_restores_the_column_file(copy, pristine):
    parquet, columns = segment_pairs(copy)[1]
    data = bytearray(columns.read_bytes())
    data[len(data) // 2] ^= 0x01  # in the data: no open can see it
    columns.write_bytes(bytes(data))
    with asl.open(copy) as store:
        # (The invariant checks over the mapped rows may report the flip as well.)
        (problem,) = [p for p in store.verify().problems if columns.name in p]
        assert parquet.name in problem and "delete it" in problem
    columns.unlink()  # as the problem says
    store, said = open_recording(copy)
    with store:
        assert len(said) == 1 and "missing" in said[0]
        assert answers(store) == pristine[1] and store.verify().ok


def test_a_damaged_parquet_beside_a_good_column_file_is_found_by_verify(copy, pristine):
    parquet, _ = segment_pairs(copy)[0]
    data = bytearray(parquet.read_bytes())
    data[len(data) // 2] ^= 0x04  # same size: only its SHA-256 can tell
    parquet.write_bytes(bytes(data))
    store, said = open_recording(copy)
    with store:
        assert said == []
        assert answers(store) == pristine[1]  # served from the column file
        problems = store.verify().problems
        assert len(problems) == 1 and parquet.name in problems[0] and "SHA-256" in problems[0]


def test_a_missing_or_resized_parquet_still_refuses_the_open(copy):
    parquet, _ = segment_pairs(copy)[1]
    data = parquet.read_bytes()
    parquet.write_bytes(data + b"\0")
    for read_only in (False, True):
        with pytest.raises(asl.CorruptionError, match="size") as info:
            asl.open(copy, read_only=read_only)
        assert info.value.path == str(parquet)
    parquet.unlink()
    for read_only in (False, True):
        with pytest.raises(asl.CorruptionError, match="missing"):
            asl.open(copy, read_only=read_only)


# -- older stores, compaction, orphans ----------------------------------------------------


def test_a_store_from_before_column_files_opens_cleanly_and_gets_them(copy, pristine):
    make_old(copy)
    before = files(copy)
    reader, said = open_recording(copy, read_only=True)
    with reader:
        assert said == [] and answers(reader) == pristine[1]
        assert mapped_from(reader) == [None, None, None]
    assert files(copy) == before, "a read-only open writes nothing"
    store, said = open_recording(copy)
    try:
        assert said == [], "an older store is not a damaged one"
        assert answers(store) == pristine[1]
        pairs = segment_pairs(copy)
        assert mapped_from(store) == [c.name for _, c in pairs]
        for info, (_, columns) in zip(manifest_segments(copy), pairs, strict=True):
            data = columns.read_bytes()
            assert (info.columns_bytes, info.columns_crc32c) == (len(data), crc32c.crc32c(data))
        assert store.verify().ok
    finally:
        store.close()


def test_compaction_writes_one_column_file_and_removes_the_old_ones(copy, pristine):
    store = asl.open(copy)
    try:
        old = {p.name for pair in segment_pairs(copy) for p in pair}
        assert store.compact()["segments"] == 3
        [(parquet, columns)] = segment_pairs(copy)
        assert segment_folder(copy) == {parquet.name, columns.name}
        assert not old & {parquet.name, columns.name}
        assert mapped_from(store) == [columns.name]
        assert answers(store) == pristine[1]
        assert store.verify().ok
    finally:
        store.close()
    with pa.memory_map(str(columns)) as source:
        assert pa.ipc.open_file(source).read_all().equals(pq.read_table(parquet))
    again, said = open_recording(copy)
    with again:
        assert said == [] and mapped_from(again) == [columns.name]
        assert answers(again) == pristine[1]


def test_orphaned_column_files_are_removed_by_a_writable_open_only(copy, pristine):
    folder = copy / "segments"
    _, live = segment_pairs(copy)[0]
    orphans = [
        folder / "seg-00000000000000000500-00000000000000000600.arrow",
        folder / (live.name + ".tmp"),
    ]
    for orphan in orphans:
        shutil.copy(live, orphan)
    with asl.open(copy, read_only=True) as reader:
        assert answers(reader) == pristine[1]
    assert all(orphan.exists() for orphan in orphans)
    store, said = open_recording(copy)
    with store:
        assert said == [] and answers(store) == pristine[1]
    assert not any(orphan.exists() for orphan in orphans)
    assert live.exists()


def test_segment_files_lists_the_parquet_only(copy):
    with asl.open(copy) as store:
        listed = store.segment_files()
    assert listed == [str(parquet) for parquet, _ in segment_pairs(copy)]


# -- crashes -------------------------------------------------------------------------------

CHECKPOINTING_WRITER = textwrap.dedent(
    """
    import sys, allsource_lab as asl
    store = asl.open(sys.argv[1], fsync="always", checkpoint_every_events=10**9)
    i = 0
    note = "x" * 300
    while True:
        for _ in range(30):  # ~1.2 MB of column file per checkpoint
            rows = []
            for _ in range(100):
                i += 1
                rows.append({"event_type": "t", "entity_id": "e%d" % (i % 97),
                             "payload": {"i": i, "note": note}})
            store.append_batch(rows)
            print(i, flush=True)
        store.checkpoint()
        if i % 15000 == 0:
            store.compact()
    """
)


@pytest.mark.parametrize("delay", [0.4, 0.9, 1.4, 1.9, 2.4])
def test_kill_9_while_writing_column_files_never_leaves_a_torn_one_named(tmp_path, delay):
    path = tmp_path / "s"
    child = subprocess.Popen(
        [sys.executable, "-c", CHECKPOINTING_WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    acked: list[int] = []
    reader = threading.Thread(target=lambda: acked.extend(int(x) for x in child.stdout))
    reader.start()
    started = time.monotonic()
    while not acked and time.monotonic() - started < 60:
        time.sleep(0.02)
    time.sleep(delay)  # on a clock, so that the kill lands anywhere in a checkpoint
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    reader.join(timeout=30)
    child.stdout.close()
    assert acked, "the writer never acknowledged a batch"
    store = open_after_crash(path)
    try:
        # (A torn final WAL record, the kill's own doing, may be reported; nothing else.)
        said = [s for s in store.recovery_problems if "torn final record" not in s]
        assert said == [], "a committed column file was torn"
        got = [e.payload["i"] for e in store.events()]
        assert got[: acked[-1]] == list(range(1, acked[-1] + 1))
        assert got == list(range(1, len(got) + 1))
        pairs = segment_pairs(path)
        assert mapped_from(store) == [c.name for _, c in pairs]
        assert segment_folder(path) == {p.name for pair in pairs for p in pair}
        assert store.verify().ok
    finally:
        store.close()


def power_workload(path: Path, acked: list[int], hit: list[asl.EventStore]) -> None:
    store = asl.open(path, fsync="always", checkpoint_every_events=10**9)
    try:
        n = 0
        for step in range(7):
            rows = []
            for _ in range(30):
                n += 1
                rows.append({"event_type": "t", "entity_id": f"e{n % 5}", "payload": {"n": n}})
            store.append_batch(rows)
            acked.extend(r["payload"]["n"] for r in rows)
            store.checkpoint()
            if step in (2, 5):
                store.compact()
        store.close()
    except SimulatedCrash:
        hit.append(store)  # abandoned once the power is back, as its process would be
        raise


def run_power_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut_at: int | None) -> int:
    disk = tmp_path / f"disk-{cut_at}"
    layer = PowerCut(disk, cut_at=cut_at)
    acked: list[int] = []
    hit: list[asl.EventStore] = []
    with monkeypatch.context() as patched:
        layer.install(patched)
        patched.setattr(threading, "excepthook", lambda args: None)
        try:
            power_workload(disk / "store", acked, hit)
        except SimulatedCrash:
            assert cut_at is not None
        after = tmp_path / f"after-{cut_at}"
        layer.image(after)
    for store in hit:
        store._log._stop.set()
        store._log.closed = store._log.refuse = True
        with contextlib.suppress(SimulatedCrash):
            store._storage.close()
    store, said = open_recording(after / "store")
    try:
        assert [s for s in said if ".arrow" in s] == [], said
        got = [e.payload["n"] for e in store.events()]
        assert got[: len(acked)] == acked and got == list(range(1, len(got) + 1))
        pairs = segment_pairs(after / "store")
        assert mapped_from(store) == [c.name for _, c in pairs]
        assert store.verify().ok
    finally:
        store.close()
    return layer.calls


def test_power_cut_at_every_step_of_checkpoints_and_compactions(tmp_path, monkeypatch):
    total = run_power_cut(tmp_path / "count", monkeypatch, None)
    assert total > 50
    for cut in range(total + 1):
        run_power_cut(tmp_path / "cuts", monkeypatch, cut)
