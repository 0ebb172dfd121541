"""Checkpoints, segments, the manifest, WAL rotation and reopening a folder."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

import allsource_lab as asl
from tests.conftest import open_after_crash


def fill(store: asl.EventStore, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        store.append("tick", f"e{i % 5}", {"i": i})


def test_checkpoint_seals_a_sorted_zstd_segment_listed_in_the_manifest(tmp_path):
    path = tmp_path / "s"
    store = asl.open(path)
    fill(store, 40)
    info = store.checkpoint()
    assert info is not None and info["events"] == 40
    manifest = json.loads((path / "manifest.json").read_text())
    (segment,) = manifest["segments"]
    assert (segment["rows"], segment["first_sequence"], segment["last_sequence"]) == (40, 1, 40)
    assert manifest["sealed_through"] == 40
    parquet = pq.ParquetFile(path / "segments" / segment["file"])
    assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
    table = parquet.read()
    keys = list(
        zip(
            table.column("partition").to_pylist(),
            table.column("entity_id").to_pylist(),
            table.column("sequence").to_pylist(),
            strict=True,
        )
    )
    assert keys == sorted(keys)
    # Only the fresh WAL file remains, holding nothing but its header, once the removal
    # of the sealed ones (background work after the checkpoint returns) has run.
    store._storage.settle()
    wal = list((path / "wal").glob("*.wal"))
    assert len(wal) == 1 and wal[0].stat().st_size == 8
    assert store.checkpoint() is None  # nothing new to seal
    store.close()


def test_reopen_continues_sequences_versions_and_clock(tmp_path):
    path = tmp_path / "s"
    with asl.open(path) as store:
        fill(store, 12)
        last = store.append("tick", "e0", {})
    with asl.open(path) as store:
        assert [e.sequence for e in store.events()] == list(range(1, 14))
        ev = store.append("tick", "e0", {})
        assert (ev.sequence, ev.version) == (14, 5)  # e0 had i=0, 5, 10 and one more
        assert ev.recorded_at_us > last.recorded_at_us
        assert store.get(last.event_id) == last


def sealed(store: asl.EventStore) -> dict[str, int]:
    """Stats once no automatic checkpoint is running in the background."""
    deadline = time.monotonic() + 60
    while (stats := store.stats())["sealing_events"] and time.monotonic() < deadline:
        time.sleep(0.01)
    return stats


def test_automatic_checkpoint_every_n_events(tmp_path):
    path = tmp_path / "s"
    store = asl.open(path, checkpoint_every_events=10)
    fill(store, 25)
    stats = sealed(store)
    assert (stats["segments"], stats["sealed_events"], stats["tail_events"]) == (2, 20, 5)
    store.append_batch([{"event_type": "b", "entity_id": "x", "payload": {}}] * 7)
    stats = sealed(store)
    assert (stats["segments"], stats["sealed_events"], stats["tail_events"]) == (3, 32, 0)
    store.close()


def test_an_automatic_checkpoint_seals_in_the_background(tmp_path):
    # While a full tail is being sealed its events stay readable and new appends go on
    # into a new tail; every count adds up at every moment.
    store = asl.open(tmp_path / "s", checkpoint_every_events=50_000)
    rows = [
        {"event_type": "t", "entity_id": f"e{i % 97}", "payload": {"i": i}} for i in range(50_000)
    ]
    store.append_batch(rows)
    seen_sealing = False
    for i in range(2_000):
        store.append("t", "late", {"i": i})
        stats = store.stats()
        seen_sealing |= stats["sealing_events"] == 50_000
        assert (
            stats["sealed_events"] + stats["sealing_events"] + stats["tail_events"]
            == stats["events"]
        )
        if i % 500 == 0:
            assert len(store.events(entity_id="e5")) == len(range(5, 50_000, 97))
    assert seen_sealing, "the checkpoint was not running beside the appends"
    stats = sealed(store)
    assert (stats["segments"], stats["tail_events"]) == (1, 2_000)
    assert store.checkpoint()["events"] == 2_000
    store.close()
    with asl.open(tmp_path / "s") as again:
        assert len(again.events()) == 52_000 and again.verify().ok


def test_wal_rotates_by_size_and_replays_across_files(tmp_path):
    path = tmp_path / "s"
    store = asl.open(path, fsync="always", wal_segment_bytes=2_000)
    fill(store, 100)
    files = list((path / "wal").glob("*.wal"))
    assert len(files) > 3
    # Abandon without closing (no checkpoint): recovery must read every file.
    store._log._stop.set()
    store._storage.close()
    store._log.closed = True
    with asl.open(path) as again:
        assert [e.payload["i"] for e in again.events()] == list(range(100))
        assert again.verify().ok


def test_interval_policy_writes_the_wal_within_the_interval(tmp_path):
    path = tmp_path / "s"
    store = asl.open(path, fsync="interval", fsync_interval_s=0.05)
    wal = next((path / "wal").glob("*.wal"))
    before = wal.stat().st_size
    store.append("tick", "e", {"x": 1})
    deadline = time.monotonic() + 5
    while wal.stat().st_size == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert wal.stat().st_size > before
    store.close()


def test_a_full_wal_buffer_is_written_long_before_the_interval(tmp_path):
    # fsync once a minute, 4 KiB WAL buffers: a full buffer is written at once (the
    # flusher is woken for it), so a kill -9 loses at most the last, partial buffer.
    path = tmp_path / "s"
    script = (
        "import sys, time, allsource_lab as asl\n"
        "store = asl.open(sys.argv[1], fsync_interval_s=60, wal_buffer_bytes=4096)\n"
        "for i in range(100):\n"
        "    store.append('tick', f'e{i % 7}', {'i': i})\n"
        "print('appended', flush=True)\n"
        "time.sleep(60)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "appended"
            time.sleep(0.5)
        finally:
            child.kill()
    with open_after_crash(path) as store:
        kept = store.stats()["events"]
    # Each record here is ~90 bytes: 100 fill two buffers and part of a third, and a
    # buffer holds fewer than 4096 // 80.
    assert 100 - 4096 // 80 <= kept <= 100


def test_orphan_segments_and_temp_files_are_removed_on_open(tmp_path):
    path = tmp_path / "s"
    with asl.open(path) as store:
        fill(store, 5)
    live = next((path / "segments").glob("*.parquet"))
    orphan = path / "segments" / "seg-00000000000000000006-00000000000000000009.parquet"
    shutil.copy(live, orphan)
    (path / "segments" / "x.parquet.tmp").write_bytes(b"half")
    (path / "manifest.json.tmp").write_text("{")
    with asl.open(path) as store:
        assert store.stats()["events"] == 5
    assert not orphan.exists() and not (path / "manifest.json.tmp").exists()
    assert not (path / "segments" / "x.parquet.tmp").exists()


def test_wal_files_left_after_a_checkpoint_crash_are_not_replayed_twice(tmp_path):
    path = tmp_path / "s"
    store = asl.open(path, fsync="always")
    fill(store, 8)
    old = next((path / "wal").glob("*.wal"))
    saved = old.read_bytes()
    store.checkpoint()
    # As if the process died after the manifest update but before the WAL trim.
    old.write_bytes(saved)
    store._log._stop.set()
    store._storage.close()
    store._log.closed = True
    with asl.open(path) as again:
        assert [e.sequence for e in again.events()] == list(range(1, 9))
        assert again.verify().ok


def test_partitions_are_fixed_when_the_store_is_created(tmp_path):
    path = tmp_path / "s"
    with asl.open(path, partitions=8) as store:
        assert store.append("t", "x", {}).partition < 8
    with asl.open(path) as store:
        assert store.stats()["partitions"] == 8


def test_a_failed_fsync_stops_writes_until_reopen(tmp_path, monkeypatch):
    path = tmp_path / "s"
    store = asl.open(path, fsync="always")
    store.append("t", "x", {"ok": 1})

    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(asl.StorageError, match="synced"):
        store.append("t", "x", {"ok": 2})
    monkeypatch.undo()
    # Never retried: the pages may be gone, so the store refuses until reopened.
    with pytest.raises(asl.StorageError, match="disk error"):
        store.append("t", "x", {"ok": 3})
    store._log._stop.set()
    store._storage.close()
    store._log.closed = True
    with asl.open(path) as again:
        oks = [e.payload["ok"] for e in again.events()]
        # 2 was written but its fsync failed, so it was never acknowledged: it may or may
        # not be there. 3 was refused before anything was written.
        assert oks[:1] == [1] and 3 not in oks


def test_unknown_setting_is_a_clear_type_error():
    with pytest.raises(TypeError, match="known settings"):
        asl.open(fsync_every=3)
    with pytest.raises(ValueError, match="fsync"):
        asl.open(fsync="sometimes")


@pytest.mark.parametrize("buffer_bytes", [1, 4096, 1 << 20])
def test_reads_flushes_and_batches_interleaved_with_single_appends_lose_nothing(
    tmp_path, buffer_bytes
):
    # Single appends share their buffers between the WAL writer and the tail's decoder;
    # a buffer goes once both are done with it. Interleave writes (flushes, batches and
    # full buffers: with 1 byte every append fills one), reads and checkpoints at random
    # so every order of "written", "decoded" and "let go" happens.
    import random

    rng = random.Random(buffer_bytes)
    path = tmp_path / "s"
    store = asl.open(
        path, fsync="never", checkpoint_every_events=10**9, wal_buffer_bytes=buffer_bytes
    )
    expected: list[tuple[str, int]] = []
    for step in range(3000):
        roll = rng.random()
        if roll < 0.80:
            store.append("t", f"e{step % 7}", {"i": step, "pad": "x" * rng.randrange(400)})
            expected.append(("t", step))
        elif roll < 0.88:
            assert len(store.events()) == len(expected)
        elif roll < 0.94:
            store.flush()
        elif roll < 0.97:
            store.append_batch([{"event_type": "b", "entity_id": "e0", "payload": {"i": step}}])
            expected.append(("b", step))
        else:
            store.checkpoint()
    got = [(e.event_type, e.payload["i"]) for e in store.events()]
    assert got == expected
    store.close()
    with asl.open(path) as again:
        assert [(e.event_type, e.payload["i"]) for e in again.events()] == expected
        assert again.verify().ok
