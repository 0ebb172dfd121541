"""Damaged files: a torn tail is cut, anything else is named by file and offset, never obeyed.

The stores under test are written by a real child process with ``fsync="always"`` that
exits without closing, so their events sit in the WAL exactly as a crash leaves them.
Every damage is done to a copy; the pristine stores are built once per module.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import crc32c
import pytest

import allsource_lab as asl

MAGIC = b"ASLWAL\x00\x01"
FRAME = struct.Struct("<II")  # u32 body length, u32 crc32c(body), little-endian

# Writes 12 events in 10 WAL records: 8 single appends, a batch of 3 (sequences 9-11),
# one single (12) and, when asked, a final batch of 4 (13-16). Then dies without close().
BUILD = """
import os, sys
import allsource_lab as asl
path, final_batch, wal_bytes = sys.argv[1], sys.argv[2] == "batch", int(sys.argv[3])
s = asl.open(path, fsync="always", wal_segment_bytes=wal_bytes)
for i in range(8):
    s.append("tick", f"e{i % 3}", {"i": i, "pad": "x" * 40})
s.append_batch([{"event_type": "bulk", "entity_id": f"e{j}", "payload": {"j": j}}
                for j in range(3)])
s.append("tick", "e0", {"i": 8})
if final_batch:
    s.append_batch([{"event_type": "bulk", "entity_id": "e1", "payload": {"k": k}}
                    for k in range(4)])
os._exit(0)
"""

# Opens a store (cutting its torn tail), appends one event durably, dies without close().
APPEND_AND_DIE = """
import os, sys, warnings
import allsource_lab as asl
warnings.simplefilter("ignore", asl.RecoveryWarning)
s = asl.open(sys.argv[1], fsync="always")
print(s.append("tick", "e0", {"after": "cut"}).sequence, flush=True)
os._exit(0)
"""


# Opens a store in a child (a malformed record may crash the process) and says what happened.
OPEN_AND_REPORT = """
import sys, warnings
import allsource_lab as asl
warnings.simplefilter("ignore", asl.RecoveryWarning)
try:
    asl.open(sys.argv[1]).close()
    print("opened")
except asl.CorruptionError as exc:
    print("CorruptionError", exc.path, exc.offset)
"""

# The fixed header of a single-event record (docs/format.md; defined in records.py): kind,
# sequence, version, timestamp, recorded_at, event_id, schema_version, partition, then the
# byte lengths of event type, entity id, metadata and payload.
SINGLE_HEADER = struct.Struct("<Bqqqq16sihHHII")


def build(path: Path, last: str = "single", wal_bytes: int = 64 * 1024 * 1024) -> Path:
    subprocess.run(
        [sys.executable, "-c", BUILD, str(path), last, str(wal_bytes)], check=True, timeout=120
    )
    return path


def wal_files(path: Path) -> list[Path]:
    files = sorted((path / "wal").glob("*.wal"))
    assert files, f"no WAL file in {path}"
    return files


def frames(wal: Path) -> list[tuple[int, int]]:
    """(offset, total length) of every frame of a WAL file, read by the documented layout."""
    data = wal.read_bytes()
    assert data[: len(MAGIC)] == MAGIC
    out = []
    p = len(MAGIC)
    while p < len(data):
        (length,) = FRAME.unpack_from(data, p)[:1]
        out.append((p, FRAME.size + length))
        p += FRAME.size + length
    assert p == len(data), "the pristine WAL must end on a frame boundary"
    return out


def copy(pristine: Path, tmp_path: Path, name: str = "s.events") -> Path:
    target = tmp_path / name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(pristine, target)
    return target


def open_recording(path: Path, **settings: object) -> tuple[asl.EventStore, list[str]]:
    """Open, returning the store and every warning raised while opening."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = asl.open(path, **settings)
    return store, [f"{w.category.__name__}: {w.message}" for w in caught]


def reference(path: Path) -> list[tuple[int, str, int, str]]:
    """(sequence, entity_id, version, payload) of every event, read without changing a byte."""
    store = asl.open(path, read_only=True)
    try:
        return [(e.sequence, e.entity_id, e.version, str(e.payload)) for e in store.events()]
    finally:
        store.close()


def contents(store: asl.EventStore) -> list[tuple[int, str, int, str]]:
    return [(e.sequence, e.entity_id, e.version, str(e.payload)) for e in store.events()]


def append_frame(wal: Path, body: bytes) -> int:
    """Append a well-framed record (right length and CRC32C); returns its offset."""
    offset = wal.stat().st_size
    with open(wal, "ab") as fh:
        fh.write(FRAME.pack(len(body), crc32c.crc32c(body)) + body)
    return offset


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def flip(path: Path, offset: int, bit: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pristine")
    return {
        "single": build(root / "single.events", "single"),
        "batch": build(root / "batch.events", "batch"),
        # A few records per WAL file, so that some files are older than the newest.
        "rotated": build(root / "rotated.events", "single", wal_bytes=300),
    }


@pytest.fixture
def pristine(stores: dict[str, Path]) -> Path:
    return stores["single"]


@pytest.fixture
def sealed(pristine: Path, tmp_path: Path) -> Path:
    """A copy of the pristine store whose events were all sealed into one segment."""
    path = copy(pristine, tmp_path, "sealed.events")
    store, caught = open_recording(path)
    assert caught == []
    store.close()  # close() checkpoints
    assert len(segments(path)) == 1
    return path


def segments(path: Path) -> list[Path]:
    return sorted((path / "segments").glob("*.parquet"))


# -- a torn final record -------------------------------------------------------------------


@pytest.mark.parametrize("last", ["single", "batch"])
def test_a_torn_final_record_is_cut_off_at_every_byte_offset(stores, tmp_path, last):
    pristine = stores[last]
    before = reference(pristine)
    wal = wal_files(pristine)[-1]
    start, length = frames(wal)[-1]
    survivors = before[: len(before) - (4 if last == "batch" else 1)]
    for cut in range(start + 1, start + length):
        path = copy(pristine, tmp_path)
        torn = wal_files(path)[-1]
        with open(torn, "r+b") as fh:
            fh.truncate(cut)
        store, caught = open_recording(path)
        try:
            assert len(caught) == 1 and caught[0].startswith("RecoveryWarning"), (cut, caught)
            assert str(torn) in caught[0] and f"at byte {start}" in caught[0], caught
            # Cut back to the last whole record, so new appends follow good data.
            assert torn.stat().st_size == start
            # A torn batch is gone entirely, never in part.
            assert contents(store) == survivors, cut
            assert store.verify().ok
            ev = store.append("tick", "e2", {"after": cut})
            assert ev.sequence == len(survivors) + 1
            assert ev.version == 1 + sum(e[1] == "e2" for e in survivors)
        finally:
            store.close()


def test_a_large_torn_final_batch_is_cut_off_not_called_damage(tmp_path):
    # The bytes after a torn batch record are its own columns; the int32 offsets among
    # them look like frame lengths, too many to checksum one by one. A kill -9 in the
    # middle of writing a 1M-event batch leaves exactly this.
    writer = tmp_path / "writer.events"
    store = asl.open(writer, fsync="always", checkpoint_every_events=10**9)
    store.append("tick", "e0", {"n": 0})
    rows = [
        {"event_type": "bulk", "entity_id": f"e{i % 50}", "payload": {"i": i, "pad": "x" * 90}}
        for i in range(30_000)
    ]
    store.append_batch(rows)
    path = copy(writer, tmp_path)  # as a kill would leave it: nothing sealed
    store.close()
    wal = wal_files(path)[-1]
    start, length = frames(wal)[-1]
    assert length > 1_000_000
    for cut in (start + 9, start + length // 3, start + length - 1):
        torn = copy(path, tmp_path, f"cut-{cut}")
        with open(torn / "wal" / wal.name, "r+b") as fh:
            fh.truncate(cut)
        store, caught = open_recording(torn)
        try:
            assert len(caught) == 1 and "torn final WAL record" in caught[0], caught
            assert [e.payload for e in store.events()] == [{"n": 0}]
        finally:
            store.close()


@pytest.mark.parametrize("last", ["single", "batch"])
def test_strict_recovery_refuses_a_torn_final_record_and_changes_nothing(stores, tmp_path, last):
    path = copy(stores[last], tmp_path)
    wal = wal_files(path)[-1]
    start, length = frames(wal)[-1]
    # Longest cut first: each step only shortens the same file further.
    for cut in range(start + length - 1, start, -1):
        with open(wal, "r+b") as fh:
            fh.truncate(cut)
        with pytest.raises(asl.CorruptionError) as info:
            asl.open(path, recovery="strict")
        assert (info.value.path, info.value.offset) == (str(wal), start), cut
        assert f"byte {start}" in str(info.value) and "truncate_tail" in str(info.value)
        assert wal.stat().st_size == cut, "strict recovery must not repair"


def test_a_wal_cut_on_a_record_boundary_opens_without_a_warning(pristine, tmp_path):
    path = copy(pristine, tmp_path)
    wal = wal_files(path)[-1]
    start, _ = frames(wal)[-1]
    with open(wal, "r+b") as fh:
        fh.truncate(start)
    store, caught = open_recording(path, recovery="strict")
    try:
        assert caught == []
        assert contents(store) == reference(pristine)[:-1]
    finally:
        store.close()


def test_appends_after_a_cut_tail_survive_the_next_crash(pristine, tmp_path):
    path = copy(pristine, tmp_path)
    wal = wal_files(path)[-1]
    start, length = frames(wal)[-1]
    with open(wal, "r+b") as fh:
        fh.truncate(start + length // 2)
    out = subprocess.run(
        [sys.executable, "-c", APPEND_AND_DIE, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.split() == ["12"]
    store, caught = open_recording(path)
    try:
        assert caught == [], "the cut was made once, durably"
        events = contents(store)
        assert events[:-1] == reference(pristine)[:-1]
        assert events[-1][0] == 12 and events[-1][3] == str({"after": "cut"})
    finally:
        store.close()


@pytest.mark.parametrize("zeros", [1, 7, 8, 9, 4096])
def test_trailing_zero_bytes_are_a_torn_tail(pristine, tmp_path, zeros):
    # A file extended but never written (as some file systems leave one after a crash).
    path = copy(pristine, tmp_path)
    wal = wal_files(path)[-1]
    size = wal.stat().st_size
    with open(wal, "ab") as fh:
        fh.write(bytes(zeros))
    with pytest.raises(asl.CorruptionError) as info:
        asl.open(path, recovery="strict")
    assert (info.value.path, info.value.offset) == (str(wal), size)
    store, caught = open_recording(path)
    try:
        assert len(caught) == 1 and caught[0].startswith("RecoveryWarning"), caught
        assert contents(store) == reference(pristine)
        assert wal.stat().st_size == size
        assert store.append("tick", "e0", {}).sequence == 13
    finally:
        store.close()


@pytest.mark.parametrize("written", range(len(MAGIC)))
def test_a_newest_wal_file_with_an_incomplete_header_is_a_torn_tail(pristine, tmp_path, written):
    # The store died while starting a new WAL file: nothing in it was acknowledged.
    path = copy(pristine, tmp_path)
    (path / "wal" / f"{13:020d}.wal").write_bytes(MAGIC[:written])
    store, caught = open_recording(path)
    try:
        assert len(caught) == 1 and caught[0].startswith("RecoveryWarning"), caught
        assert contents(store) == reference(pristine)
        assert store.append("tick", "e0", {}).sequence == 13
    finally:
        store.close()


def test_only_the_newest_wal_file_may_have_a_torn_tail(stores, tmp_path):
    # Older files were fsynced before the next one began: a short one is damage.
    path = copy(stores["rotated"], tmp_path)
    files = wal_files(path)
    assert len(files) >= 3
    older = files[-2]
    start, length = frames(older)[-1]
    with open(older, "r+b") as fh:
        fh.truncate(start + length - 1)
    with pytest.raises(asl.CorruptionError) as info:
        asl.open(path)
    assert (info.value.path, info.value.offset) == (str(older), start)
    assert older.stat().st_size == start + length - 1, "a refused open must not repair"


# -- damage inside the log -------------------------------------------------------------


def test_a_flipped_bit_anywhere_in_an_earlier_record_names_file_and_offset(pristine, tmp_path):
    path = copy(pristine, tmp_path)
    wal = wal_files(path)[-1]
    damaged = frames(wal)[:-1]
    assert len(damaged) >= 9
    for start, length in damaged:
        for offset in range(start, start + length):  # header and body alike
            bit = offset % 8
            flip(wal, offset, bit)
            before = wal.read_bytes()
            with pytest.raises(asl.CorruptionError) as info:
                asl.open(path)
            assert (info.value.path, info.value.offset) == (str(wal), start), offset
            assert f"{wal} at byte {start}" in str(info.value)
            assert wal.read_bytes() == before, "damage must never be cut away as a tail"
            flip(wal, offset, bit)
    store, caught = open_recording(path)  # every flip undone: the store is whole again
    assert caught == [] and contents(store) == reference(pristine)
    store.close()


def test_strict_recovery_refuses_damage_too(pristine, tmp_path):
    path = copy(pristine, tmp_path)
    wal = wal_files(path)[-1]
    start, length = frames(wal)[3]
    flip(wal, start + length - 1, 0)
    with pytest.raises(asl.CorruptionError) as info:
        asl.open(path, recovery="strict")
    assert (info.value.path, info.value.offset) == (str(wal), start)


@pytest.mark.parametrize("record", range(9))
def test_salvage_skips_a_damaged_record_keeps_the_rest_and_reports_it(pristine, tmp_path, record):
    path = copy(pristine, tmp_path)
    wal = wal_files(path)[-1]
    start, length = frames(wal)[record]
    flip(wal, start + FRAME.size + length // 2, 3)  # a bit in the body
    lost = {9, 10, 11} if record == 8 else {record + 1}  # record 8 is the batch of 3
    kept = [e for e in reference(pristine) if e[0] not in lost]
    store, caught = open_recording(path, recovery="salvage")
    try:
        assert caught == []
        (problem,) = store.recovery_problems
        assert str(wal) in problem and f"bytes {start}.." in problem
        assert contents(store) == kept
        report = store.verify()
        assert not report.ok and any("gapless" in p for p in report.problems)
        assert store.append("tick", "e0", {}).sequence == 13
    finally:
        store.close()
    # What salvage kept, and what came after, is the store from now on.
    store, caught = open_recording(path)
    try:
        assert caught == [] and store.recovery_problems == []
        assert [e[0] for e in contents(store)] == [e[0] for e in kept] + [13]
    finally:
        store.close()


def test_a_file_that_is_not_a_wal_is_refused(pristine, tmp_path):
    path = copy(pristine, tmp_path)
    stray = path / "wal" / f"{0:020d}.wal"  # sorts before the real file
    stray.write_bytes(b"garbage!" * 10)
    with pytest.raises(asl.CorruptionError, match="not a WAL file") as info:
        asl.open(path)
    assert (info.value.path, info.value.offset) == (str(stray), 0)
    store, _ = open_recording(path, recovery="salvage")
    try:
        assert contents(store) == reference(pristine)
        assert any(str(stray) in p for p in store.recovery_problems)
    finally:
        store.close()


def test_a_newest_wal_file_that_is_not_a_wal_is_refused(pristine, tmp_path):
    path = copy(pristine, tmp_path)
    stray = path / "wal" / f"{13:020d}.wal"
    stray.write_bytes(b"garbage!" * 10)
    with pytest.raises(asl.CorruptionError, match="not a WAL file"):
        asl.open(path)


def test_a_checksummed_record_of_an_unknown_kind_is_refused(pristine, tmp_path):
    path = copy(pristine, tmp_path)
    wal = wal_files(path)[-1]
    offset = append_frame(wal, bytes([9]) + bytes(80))
    with pytest.raises(asl.CorruptionError, match="kind") as info:
        asl.open(path)
    assert (info.value.path, info.value.offset) == (str(wal), offset)


def test_a_checksummed_batch_record_that_is_malformed_is_refused(pristine, tmp_path):
    path = copy(pristine, tmp_path)
    wal = wal_files(path)[-1]
    # Kind 2 (batch) claiming 1000 rows, with no columns after the header.
    offset = append_frame(wal, struct.pack("<BIqq3x", 2, 1000, 13, 0))
    with pytest.raises(asl.CorruptionError, match="malformed batch") as info:
        asl.open(path)
    assert (info.value.path, info.value.offset) == (str(wal), offset)


@pytest.mark.parametrize(
    "body",
    [
        bytes([1]),  # the kind byte of a single event, and nothing else
        SINGLE_HEADER.pack(1, 13, 1, 0, 0, bytes(16), -1, 0, 200, 200, 50_000, 50_000) + b"x",
    ],
    ids=["shorter-than-its-header", "lengths-past-its-end"],
)
def test_a_checksummed_single_record_that_is_malformed_is_refused_not_crashed_on(
    pristine, tmp_path, body
):
    # A CRC32C only catches accidents; a record written by a buggy or hostile writer must
    # still be refused as corruption, never read out of bounds.
    path = copy(pristine, tmp_path)
    wal = wal_files(path)[-1]
    offset = append_frame(wal, body)
    done = subprocess.run(
        [sys.executable, "-c", OPEN_AND_REPORT, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout.strip()) == (0, f"CorruptionError {wal} {offset}"), (
        done.stderr[-2000:]
    )


def test_a_read_only_open_of_a_torn_store_changes_no_byte(pristine, tmp_path):
    path = copy(pristine, tmp_path)
    wal = wal_files(path)[-1]
    start, length = frames(wal)[-1]
    with open(wal, "r+b") as fh:
        fh.truncate(start + length // 2)
    before = snapshot(path)
    store, _ = open_recording(path, read_only=True)
    try:
        assert contents(store) == reference(pristine)[:-1]
    finally:
        store.close()
    assert snapshot(path) == before


# -- segments and the manifest ------------------------------------------------------------


def test_a_damaged_segment_refuses_open_naming_the_file(sealed):
    (segment,) = segments(sealed)
    # Without its column file the open reads the segment, and checks it whole.
    columns = segment.with_suffix(".arrow")
    saved = columns.read_bytes()
    columns.unlink()
    size = segment.stat().st_size
    for offset in (0, size // 2, size - 1):
        flip(segment, offset, 4)
        for read_only in (False, True):
            with pytest.raises(asl.CorruptionError) as info:
                asl.open(sealed, read_only=read_only)
            assert info.value.path == str(segment) and segment.name in str(info.value)
        flip(segment, offset, 4)
    assert not columns.exists(), "a refused open writes nothing"
    columns.write_bytes(saved)
    # The refused opens left no lock behind, and deleted nothing.
    with asl.open(sealed) as store:
        assert len(store.events()) == 12 and store.verify().ok


def test_verify_reports_a_segment_damaged_while_the_store_is_open(sealed):
    (segment,) = segments(sealed)
    store = asl.open(sealed)
    try:
        assert store.verify().ok
        flip(segment, segment.stat().st_size // 2, 0)
        report = store.verify()  # reports, never raises
        assert not report.ok
        assert any(str(segment) in p and "SHA-256" in p for p in report.problems)
        assert report.files_checked >= 3  # manifest, segment, WAL
    finally:
        store.close()
    # An open reads the column file, not the segment: still open, still reported.
    with asl.open(sealed) as store:
        assert len(store.events()) == 12
        assert any(str(segment) in p and "SHA-256" in p for p in store.verify().problems)


def test_a_missing_segment_is_a_clear_error(sealed):
    (segment,) = segments(sealed)
    segment.unlink()
    for read_only in (False, True):
        with pytest.raises(asl.CorruptionError, match="missing") as info:
            asl.open(sealed, read_only=read_only)
        assert info.value.path == str(segment)


def test_every_flipped_bit_of_the_manifest_is_detected(sealed):
    manifest = sealed / "manifest.json"
    size = manifest.stat().st_size
    for offset in range(size):
        bit = offset % 8
        flip(manifest, offset, bit)
        with pytest.raises(asl.CorruptionError, match="manifest") as info:
            asl.open(sealed)
        assert info.value.path == str(manifest), offset
        flip(manifest, offset, bit)
    assert segments(sealed), "a refused open must not treat segments as orphans"


@pytest.mark.parametrize("keep", [0.0, 0.5, 0.99])
def test_a_truncated_manifest_is_detected(sealed, keep):
    manifest = sealed / "manifest.json"
    data = manifest.read_bytes()
    manifest.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(asl.CorruptionError, match="manifest"):
        asl.open(sealed)
    assert segments(sealed)


def test_a_missing_manifest_is_refused_and_deletes_no_segment(sealed):
    # Without a manifest every segment would look like an orphan of a crashed checkpoint.
    (segment,) = segments(sealed)
    manifest = sealed / "manifest.json"
    manifest.unlink()
    before = snapshot(sealed)
    with pytest.raises(asl.CorruptionError, match="manifest") as info:
        asl.open(sealed)
    assert info.value.path == str(manifest)
    assert segment.exists() and snapshot(sealed) == before, "a refused open changes nothing"
