"""Large writes past the page cache (``allsource_lab/_storage/direct.py``).

A batch's WAL record, a segment's column file, its Parquet and its index file go to the
disk with ``O_DIRECT`` once they are large. These tests check that what lands is byte for
byte what the buffered path writes, that a WAL mixing direct and buffered writes reads
back whole, that a kill between a direct write and the cut that ends it loses nothing
acknowledged (a real process, killed for real), and that a file system without direct
I/O is written the old way. The power-cut suite runs with every write direct too
(``test_power_loss.py``).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

import allsource_lab as asl
from allsource_lab._storage import direct
from allsource_lab._storage.columns import write_columns
from allsource_lab._storage.wal import MAGIC
from tests.conftest import open_after_crash


def takes_direct_io(folder: Path) -> bool:
    fd = direct.open_direct(folder / "probe", os.O_WRONLY | os.O_CREAT)
    if fd is None:
        return False
    os.close(fd)
    (folder / "probe").unlink()
    return True


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    if not takes_direct_io(tmp_path):
        pytest.skip(f"{tmp_path} is on a file system without O_DIRECT")
    return tmp_path


def rows(n: int, first: int = 0) -> pa.Table:
    return pa.table(
        {
            "event_type": ["t"] * n,
            "entity_id": [f"e{(first + i) % 37}" for i in range(n)],
            "payload": [f'{{"i": {first + i}, "pad": "{"x" * (i % 13)}"}}' for i in range(n)],
        }
    )


def test_a_stage_writes_pieces_across_its_buffer_whole_and_in_order(disk):
    # A stage of two blocks, pieces that straddle its end and blocks, a head to keep.
    path = disk / "f"
    path.write_bytes(b"H" * 5000)
    pieces = [bytes([i % 251]) * size for i, size in enumerate((1, 4095, 9000, 3, 8192, 77))]
    stage = direct.Stage(size=2 * direct.ALIGN)
    fd = direct.open_direct(path, os.O_WRONLY)
    assert fd is not None
    try:
        stage.begin(fd, direct.ALIGN, b"H" * (5000 - direct.ALIGN))
        for piece in pieces:
            stage.add(piece)
        end = stage.end()
        assert end == 5000 + sum(map(len, pieces))
        assert os.fstat(fd).st_size % direct.ALIGN == 0  # the padded last block
        os.ftruncate(fd, end)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"H" * 5000 + b"".join(pieces)


def test_a_column_file_written_direct_is_the_buffered_one_byte_for_byte(disk, monkeypatch):
    with asl.open(disk / "s", checkpoint_every_events=10**9) as store:
        store.append_batch(rows(30_000))
        table = store._log.tail.table()
    assert table.nbytes >= direct.DIRECT_BYTES
    fd, size, crc = write_columns(disk / "direct.arrow", table)
    os.close(fd)
    monkeypatch.setattr(direct, "DIRECT_BYTES", 1 << 62)
    fd, size2, crc2 = write_columns(disk / "buffered.arrow", table)
    os.close(fd)
    assert (disk / "direct.arrow").read_bytes() == (disk / "buffered.arrow").read_bytes()
    assert (size, crc) == (size2, crc2) == ((disk / "direct.arrow").stat().st_size, crc)


@pytest.mark.parametrize("threshold", [1, direct.DIRECT_BYTES])
def test_a_wal_of_direct_and_buffered_writes_reads_back_whole(disk, threshold, monkeypatch):
    # threshold 1: every write direct, each starting inside the block the last one ended
    # in; the default: 1 MiB batches direct between single appends written buffered.
    monkeypatch.setattr(direct, "DIRECT_BYTES", threshold)
    path = disk / "s"
    sizes = [1, 7, 9_000, 3, 12_000] if threshold > 1 else [1, 7, 30, 3, 50]
    with asl.open(path, fsync="always", checkpoint_every_events=10**9) as store:
        first = 0
        for k, n in enumerate(sizes):
            store.append_batch(rows(n, first))
            first += n
            store.append("single", f"e{k}", {"k": k})
        expected = store.events().to_arrow()
        wal = sorted((path / "wal").glob("*.wal"))
        assert all(f.read_bytes().startswith(MAGIC) for f in wal)
        if threshold > 1:
            assert max(f.stat().st_size for f in wal) > direct.DIRECT_BYTES
        # Read from the WAL by a fresh open (closing would seal it all first).
        with asl.open(path, read_only=True) as reader:
            assert reader.events().to_arrow().equals(expected)
            assert reader.stats()["segments"] == 0
            assert reader.verify().ok


def test_a_sealed_store_with_direct_files_reopens_equal(disk):
    path = disk / "s"
    with asl.open(path, checkpoint_every_events=20_000) as store:
        for k in range(3):
            store.append_batch(rows(25_000, k * 25_000))
        store.checkpoint()
        expected = store.events().to_arrow()
        assert len(store.segment_files()) >= 2
    with asl.open(path) as again:
        assert again.events().to_arrow().equals(expected)
        assert again.state("e3") == open_after_crash(path, read_only=True).state("e3")
        assert again.verify().ok


_KILLED_AT_THE_CUT = """
import os, sys
import allsource_lab as asl
from allsource_lab._storage import direct
import pyarrow as pa

path = sys.argv[1]
direct.DIRECT_BYTES = 1
store = asl.open(path, fsync="always", checkpoint_every_events=10**9)
store.append_batch(pa.table({"event_type": ["t"] * 100, "entity_id": ["a"] * 100,
                             "payload": ['{"i": %d}' % i for i in range(100)]}))
print("acked", flush=True)
real = os.ftruncate
def cut(fd, size):
    if os.fstat(fd).st_size > size:  # the direct write is on disk, padded; die here
        os.kill(os.getpid(), 9)
    return real(fd, size)
os.ftruncate = cut
store.append("t", "a", {"i": 100})
print("not reached", flush=True)
"""


def test_a_kill_between_a_direct_write_and_its_cut_loses_nothing_acknowledged(disk):
    path = disk / "s"
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_KILLED_AT_THE_CUT), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert child.stdout.split() == ["acked"]
    wal = sorted((path / "wal").glob("*.wal"))[-1]
    assert wal.stat().st_size % direct.ALIGN == 0  # the zeros of the padded block
    with open_after_crash(path) as store:
        events = store.events().to_arrow()
        # The 100 acknowledged; the single was written whole before the kill, so it may
        # be read back too (it was never acknowledged, so either way is right).
        assert events.num_rows in (100, 101)
        assert events.column("sequence").to_pylist() == list(range(1, events.num_rows + 1))
        store.append("t", "a", {"i": "after"})
    with asl.open(path) as again:
        assert len(again.events()) == events.num_rows + 1
        assert again.verify().ok


def test_a_file_system_without_direct_io_is_written_through_the_cache(tmp_path, monkeypatch):
    # tmpfs refuses O_DIRECT with EINVAL; elsewhere that refusal is simulated.
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and not takes_direct_io(shm):
        folder = Path(tempfile.mkdtemp(prefix="asl-direct-", dir=shm))
    else:
        real = os.open

        def refuse(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
            if flags & getattr(os, "O_DIRECT", 0):
                raise OSError(errno.EINVAL, "Invalid argument")
            return real(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", refuse)
        folder = tmp_path
    monkeypatch.setattr(direct, "DIRECT_BYTES", 1)
    try:
        with asl.open(folder / "s", checkpoint_every_events=500) as store:
            store.append_batch(rows(2_000))
            store.append("t", "x", {"k": 1})
            store.checkpoint()
            expected = store.events().to_arrow()
        with asl.open(folder / "s") as again:
            assert again.events().to_arrow().equals(expected)
            assert again.verify().ok
    finally:
        if folder != tmp_path:
            shutil.rmtree(folder, ignore_errors=True)


def test_a_large_file_is_read_whole_past_the_cache(disk):
    data = bytes(range(256)) * (direct.DIRECT_BYTES // 256 + 17) + b"tail"  # not whole blocks
    (disk / "big").write_bytes(data)
    (disk / "small").write_bytes(b"x" * 100)
    view = direct.read_whole(disk / "big")
    assert view is not None and bytes(view) == data
    assert direct.read_whole(disk / "small") is None  # small: the caller maps it


def test_index_files_read_past_the_cache_equal_the_mapped_ones(disk, monkeypatch):
    path = disk / "s"
    with asl.open(path, checkpoint_every_events=10**9) as store:
        store.append_batch(rows(40_000))
        store.checkpoint()
        expected = store.events(entity_id="e3").to_arrow()
    index_file = next((path / "segments").glob("*.index"))
    assert index_file.stat().st_size >= direct.DIRECT_BYTES
    from allsource_lab._storage.index_file import read_index_file

    name = index_file.name.replace(".index", ".parquet")
    read = read_index_file(index_file, name, 40_000)
    monkeypatch.setattr(direct, "DIRECT_BYTES", 1 << 62)  # mapped instead
    mapped = read_index_file(index_file, name, 40_000)
    assert read is not None and mapped is not None
    for field in ("sequence", "timestamp", "recorded_at", "row", "entity", "type", "run_starts"):
        assert getattr(read, field).tolist() == getattr(mapped, field).tolist(), field
    monkeypatch.undo()
    with asl.open(path) as again:
        assert again.events(entity_id="e3").to_arrow().equals(expected)
