"""Injected I/O errors: a full disk is a clear StorageError and passes; a failed fsync stops
the store until it is reopened. Real files, with ``tests.durability.faultfs.FailingDisk`` making
chosen calls fail."""

from __future__ import annotations

import errno
import time
from pathlib import Path

import pytest

import allsource_lab as asl
from tests.durability.faultfs import FailingDisk


def in_wal(path: str) -> bool:
    return "/wal/" in path


def in_segments(path: str) -> bool:
    return "/segments/" in path or path.endswith("manifest.json.tmp")


@pytest.fixture
def disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FailingDisk:
    layer = FailingDisk(tmp_path)
    layer.install(monkeypatch)
    return layer


def payloads(store: asl.EventStore) -> list[int]:
    return [e.payload["i"] for e in store.events()]


def check_reopened(path: Path, acked: list[int], maybe: list[int] = ()) -> None:
    with asl.open(path) as store:
        got = payloads(store)
        assert set(acked) <= set(got), "an acknowledged event was lost"
        assert set(got) <= set(acked) | set(maybe)
        assert len(got) == len(set(got))
        assert [e.sequence for e in store.events()] == list(range(1, len(got) + 1))
        assert store.verify().ok


def test_a_full_disk_refuses_appends_clearly_and_they_resume_once_there_is_room(tmp_path, disk):
    path = tmp_path / "s"
    store = asl.open(path, fsync="always")
    acked = [store.append("t", "e", {"i": i}).payload["i"] for i in range(5)]
    with disk.failing("writev", errno.ENOSPC, in_wal):
        with pytest.raises(asl.StorageError, match="disk is full") as caught:
            store.append("t", "e", {"i": 5})  # not acknowledged
        assert caught.value.__cause__.errno == errno.ENOSPC
        for i in (6, 7):  # refused, not accepted: nothing in memory either
            with pytest.raises(asl.StorageError, match="disk is full"):
                store.append("t", "e", {"i": i})
        with pytest.raises(asl.StorageError, match="disk is full"):
            store.append_batch([{"event_type": "t", "entity_id": "e", "payload": {"i": 8}}])
        with pytest.raises(asl.StorageError, match="disk is full"):
            store.checkpoint()
    # Room again: the next write gets the refused bytes out first, then its own.
    acked.append(store.append("t", "e", {"i": 9}).payload["i"])
    acked += [store.append("t", "e", {"i": i}).payload["i"] for i in range(10, 13)]
    assert payloads(store) == [0, 1, 2, 3, 4, 5, 9, 10, 11, 12]
    assert [e.version for e in store.events()] == list(range(1, 11))
    store.close()
    check_reopened(path, acked, maybe=[5])


def test_a_partial_wal_write_is_cut_back_so_later_records_follow_whole_ones(tmp_path, disk):
    # A writev that fails after writing part of the record must not leave the part in the
    # file: the records written once there is room would follow garbage.
    import os

    real_writev = os.writev
    path = tmp_path / "s"
    store = asl.open(path, fsync="always")
    store.append("t", "e", {"i": 0})
    calls = []

    def half_then_full(fd, views):
        if not calls:
            calls.append(1)
            return real_writev(fd, [bytes(views[0])[:5]])  # a short write...
        raise OSError(errno.ENOSPC, "No space left on device")  # ...then no room

    os.writev = half_then_full
    try:
        with pytest.raises(asl.StorageError, match="disk is full"):
            store.append("t", "e", {"i": 1})
    finally:
        os.writev = real_writev
    store.append("t", "e", {"i": 2})
    # The WAL as a crash would leave it (a close would seal everything into a segment).
    import shutil

    shutil.copytree(path, tmp_path / "copy", ignore=shutil.ignore_patterns("LOCK"))
    store.close()
    with asl.open(tmp_path / "copy") as again:  # no RecoveryWarning, no CorruptionError
        assert payloads(again) == [0, 1, 2]
        assert again.verify().ok


def test_a_full_disk_during_a_checkpoint_loses_nothing_and_the_next_one_works(tmp_path, disk):
    path = tmp_path / "s"
    store = asl.open(path, fsync="always", checkpoint_every_events=10**9)
    acked = [store.append("t", f"e{i % 3}", {"i": i}).payload["i"] for i in range(50)]
    with disk.failing("write", errno.ENOSPC, in_segments):
        with pytest.raises(asl.StorageError, match="disk full") as caught:
            store.checkpoint()
        assert "nothing acknowledged was lost" in str(caught.value)
    # Nothing half-written stays behind, and the store goes on.
    assert list((path / "segments").iterdir()) == []
    assert not (path / "manifest.json.tmp").exists()
    acked += [store.append("t", "e0", {"i": i}).payload["i"] for i in range(50, 60)]
    assert store.checkpoint()["events"] == 60
    assert len(list((path / "segments").glob("*.parquet"))) == 1  # one, with all 60
    store.close()
    check_reopened(path, acked)


def test_a_new_wal_file_without_room_keeps_the_old_one_going(tmp_path, disk):
    # Rotation is housekeeping: appends go on into the current file, and rotation happens
    # again once there is room.
    path = tmp_path / "s"
    store = asl.open(path, fsync="always", wal_segment_bytes=1024)
    with disk.failing("open", errno.ENOSPC, lambda p: p.endswith(".wal")):
        acked = [store.append("t", "e", {"i": i, "pad": "x" * 50}).payload["i"] for i in range(40)]
        assert len(list((path / "wal").iterdir())) == 1
    acked += [store.append("t", "e", {"i": i}).payload["i"] for i in range(40, 45)]
    assert len(list((path / "wal").iterdir())) == 2
    store.close()
    check_reopened(path, acked)


def test_the_interval_flusher_waits_out_a_full_disk(tmp_path, disk):
    path = tmp_path / "s"
    store = asl.open(path, fsync="interval", fsync_interval_s=0.05)
    acked = []
    disk.fail("writev", errno.ENOSPC, in_wal)
    deadline = time.monotonic() + 10
    refused = False
    i = 0
    while time.monotonic() < deadline and not refused:
        try:
            acked.append(store.append("t", "e", {"i": i}).payload["i"])
            i += 1
        except asl.StorageError as exc:
            assert "disk is full" in str(exc)
            refused = True
        time.sleep(0.001)
    assert refused, "the flusher never met the full disk"
    disk.heal()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the flusher retries on its own
        try:
            acked.append(store.append("t", "e", {"i": i}).payload["i"])
            break
        except asl.StorageError:
            time.sleep(0.02)
    else:
        pytest.fail("the store did not take writes again after the disk had room")
    store.flush()
    store.close()
    check_reopened(path, acked)


def test_a_failed_fsync_refuses_writes_until_reopen_even_once_fsync_works(tmp_path, disk):
    path = tmp_path / "s"
    store = asl.open(path, fsync="always")
    acked = [store.append("t", "e", {"i": i}).payload["i"] for i in range(3)]
    failing = disk.failing("fsync", errno.EIO, in_wal)
    with failing, pytest.raises(asl.StorageError, match="could not be written or synced"):
        store.append("t", "e", {"i": 3})
    # fsync works again, but the pages it failed on may be gone: no retry, no carrying on.
    with pytest.raises(asl.StorageError, match="reopen"):
        store.append("t", "e", {"i": 4})
    with pytest.raises(asl.StorageError, match="reopen"):
        store.checkpoint()
    store.close()
    check_reopened(path, acked, maybe=[3])


def test_a_failed_fsync_during_a_checkpoint_stops_writes(tmp_path, disk):
    path = tmp_path / "s"
    store = asl.open(path, fsync="always", checkpoint_every_events=10**9)
    acked = [store.append("t", "e", {"i": i}).payload["i"] for i in range(10)]
    failing = disk.failing("fsync", errno.EIO, in_segments)
    with failing, pytest.raises(asl.StorageError, match="checkpoint failed"):
        store.checkpoint()
    with pytest.raises(asl.StorageError, match="reopen"):
        store.append("t", "e", {"i": 10})
    store.close()
    check_reopened(path, acked)
