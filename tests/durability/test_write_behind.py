"""Batch records written behind their append (EventLog.write_batch, docs/architecture.md).

Under fsync "interval" and "never", a batch record of 1 MiB or more is written by the WAL
writer thread after ``append_batch`` returns, holding the I/O lock until it is out. The
promise of those policies (RELIABILITY.md) must hold as before: records reach the file in
sequence order, a failed write stops the store and the next call says so, a full disk
keeps the bytes until there is room, and a ``kill -9`` loses at most a suffix of whole
batches acknowledged in the last interval. Real files; the kill is a real process.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pyarrow as pa
import pytest

import allsource_lab as asl
from tests.durability.faultfs import FailingDisk

# Rows of ~200 bytes encoded: a batch of BIG rows is a ~2 MB record, past the 1 MiB
# from which a batch is written behind.
BIG = 10_000
NOTE = "x" * 150


def big_batch(first: int, rows: int = BIG) -> pa.Table:
    return pa.table(
        {
            "event_type": ["t"] * rows,
            "entity_id": [f"e{i % 97}" for i in range(first, first + rows)],
            "payload": [json.dumps({"i": i, "note": NOTE}) for i in range(first, first + rows)],
        }
    )


def in_wal(path: str) -> bool:
    return "/wal/" in path


def numbers(store: asl.EventStore) -> list[int]:
    return [e.payload["i"] for e in store.events()]


@pytest.fixture
def disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FailingDisk:
    layer = FailingDisk(tmp_path)
    layer.install(monkeypatch)
    return layer


def test_batches_written_behind_stay_in_sequence_order_with_single_appends(tmp_path):
    path = tmp_path / "s"
    # No checkpoint: the reopen reads everything back from the WAL.
    store = asl.open(path, fsync="interval", checkpoint_every_events=10**9)
    want: list[int] = []
    i = 0
    for round_ in range(3):
        for _ in range(5):
            store.append("t", "e0", {"i": i, "note": NOTE})
            want.append(i)
            i += 1
        store.append_batch(big_batch(i))
        want.extend(range(i, i + BIG))
        i += BIG
        if round_ == 0:
            assert store._log._writer is not None, "the batch was not written behind"
    store.append("t", "e1", {"i": i, "note": NOTE})
    want.append(i)
    assert numbers(store) == want
    store.close()
    with asl.open(path) as reopened:
        assert numbers(reopened) == want
        assert [e.sequence for e in reopened.events(entity_id="e1")][-1] == len(want)
        assert reopened.verify().ok


@pytest.mark.parametrize("err", [errno.EIO, errno.ENOSPC])
def test_a_write_behind_that_fails_is_said_by_the_next_call(tmp_path, disk, err):
    """EIO stops the store (reopen to go on); a full disk keeps the record's bytes, and
    writes resume once there is room. Either way nothing written before is lost, and a
    reopen finds whole batches in order."""
    path = tmp_path / "s"
    store = asl.open(path, fsync="interval", fsync_interval_s=0.05, checkpoint_every_events=10**9)
    store.append_batch(big_batch(0))
    store.flush()
    before = list(range(BIG))
    for name in ("pwrite", "writev", "write"):
        disk.fail(name, err, in_wal)
    store.append_batch(big_batch(BIG))  # acknowledged: its record goes behind, and fails
    expected = "disk is full" if err == errno.ENOSPC else "disk error|could not be written"
    with pytest.raises(asl.StorageError, match=expected):
        store.flush()  # waits for the writer, then meets the disk itself
    with pytest.raises(asl.StorageError, match=expected):
        store.append("t", "e", {"i": -1})
    disk.heal()
    if err == errno.ENOSPC:
        deadline = time.monotonic() + 10
        while True:  # the flusher retries the kept bytes on its own
            try:
                store.append("t", "e", {"i": 2 * BIG})
                break
            except asl.StorageError:
                assert time.monotonic() < deadline, "writes never resumed after the disk had room"
                time.sleep(0.02)
        store.close()
        with asl.open(path) as reopened:
            assert numbers(reopened) == [*range(2 * BIG), 2 * BIG]
    else:
        with pytest.raises(asl.StorageError):
            store.append_batch(big_batch(2 * BIG))
        store.close()
        with asl.open(path) as reopened:
            assert numbers(reopened) == before  # the failed record was never written


WRITER = r"""
import json, sys, time
import pyarrow as pa
import allsource_lab as asl
from tests.durability.test_write_behind import BIG, big_batch
store = asl.open(sys.argv[1], fsync="interval", fsync_interval_s=0.05)
first = 0
while True:
    result = store.append_batch(big_batch(first))
    print(result.last_sequence, flush=True)
    first += BIG
    time.sleep(float(sys.argv[2]))
"""


@pytest.mark.parametrize("seed", range(3))
def test_kill_9_loses_at_most_the_batches_of_the_last_interval(tmp_path, seed):
    """A writer appending large batches (written behind) is killed right after an
    acknowledgement: every batch before the last one acknowledged is there (an append
    waits for the record before its own to be written), the last one whole or not at
    all, nothing twice, sequences without a gap."""
    path = tmp_path / "s"
    pause = 0.15  # more than the writer's fsync interval (0.05 s)
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(pause)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    acked: list[int] = []
    try:
        assert child.stdout is not None
        for _ in range(3 + seed):
            acked.append(int(child.stdout.readline()))
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", asl.RecoveryWarning)  # a torn final record is fine
        store = asl.open(path)
    with store:
        count = len(store.events())
        assert count in (acked[-2], acked[-1]), (count, acked)
        assert [e.sequence for e in store.events()] == list(range(1, count + 1))
        assert numbers(store) == list(range(count))
        assert store.verify().ok
