"""A damaged record in the middle of a large WAL file: found at once, never a hang.

After a bad frame, recovery asks whether valid records follow (then it is corruption, not
a torn tail) and, when salvaging, where they resume. Tried naively at every later offset,
each candidate whose random "length" fits costs a checksum that long: quadratic in the
file, hours for a WAL file of tens of MiB. These tests damage a ~27 MiB WAL file in a
length field and in a body and hold recovery to its answers.
"""

from __future__ import annotations

import shutil
import time
import warnings

import numpy as np
import pytest

import allsource_lab as asl
from allsource_lab._kernels import walframes as frames
from allsource_lab._storage.wal import MAGIC, MAX_RECORD_BYTES

ROWS = 20_000
BATCHES = 8


@pytest.fixture(scope="module")
def big_wal(tmp_path_factory: pytest.TempPathFactory):
    """A store copy whose one WAL file holds BATCHES records of ~3.4 MB each."""
    root = tmp_path_factory.mktemp("resync")
    live = root / "live"
    store = asl.open(live, checkpoint_every_events=10**9, wal_segment_bytes=1 << 30)
    for b in range(BATCHES):
        store.append_batch(
            [
                {
                    "event_type": "t",
                    "entity_id": f"e{i % 50}",
                    "payload": {"b": b, "pad": "x" * 150},
                }
                for i in range(ROWS)
            ]
        )
    store.flush()
    copy = root / "copy"
    shutil.copytree(live, copy, ignore=shutil.ignore_patterns("LOCK"))
    store.close()
    (wal,) = (copy / "wal").glob("*.wal")
    data = np.frombuffer(wal.read_bytes(), np.uint8)
    starts, status, _ = frames.scan(data, len(MAGIC), len(data), MAX_RECORD_BYTES)
    assert status == frames.OK and len(starts) == BATCHES
    assert len(data) > 20 << 20
    return copy, wal, starts


def damaged(tmp_path, big_wal, where: str):
    copy, wal, starts = big_wal
    target = tmp_path / "s"
    shutil.copytree(copy, target)
    path = target / "wal" / wal.name
    data = bytearray(path.read_bytes())
    frame = int(starts[BATCHES // 2])
    at = frame + 2 if where == "length" else frame + 8 + 1000
    data[at] ^= 0x40
    path.write_bytes(bytes(data))
    return target


@pytest.mark.parametrize("where", ["length", "body"])
def test_a_damaged_record_mid_file_is_refused_quickly_naming_file_and_offset(
    tmp_path, big_wal, where
):
    target = damaged(tmp_path, big_wal, where)
    start = time.monotonic()
    with pytest.raises(asl.CorruptionError) as caught:
        asl.open(target)
    assert time.monotonic() - start < 20, "recovery hunted for the next record too long"
    assert caught.value.offset == int(big_wal[2][BATCHES // 2])
    assert caught.value.path.endswith(".wal")


def test_salvage_after_body_damage_keeps_every_other_batch(tmp_path, big_wal):
    target = damaged(tmp_path, big_wal, "body")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", asl.RecoveryWarning)
        store = asl.open(target, recovery="salvage")
    try:
        kept = sorted({e.payload["b"] for e in store.events(entity_id="e0")})
        assert kept == [b for b in range(BATCHES) if b != BATCHES // 2]
        assert any("skipped damaged bytes" in p for p in store.recovery_problems)
    finally:
        store.close()


def test_salvage_after_length_damage_keeps_what_it_can_and_says_so(tmp_path, big_wal):
    target = damaged(tmp_path, big_wal, "length")
    start = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", asl.RecoveryWarning)
        store = asl.open(target, recovery="salvage")
    try:
        assert time.monotonic() - start < 20
        kept = sorted({e.payload["b"] for e in store.events(entity_id="e0")})
        assert kept[: BATCHES // 2] == list(range(BATCHES // 2))  # everything before
        assert BATCHES // 2 not in kept
        assert store.recovery_problems
    finally:
        store.close()


def test_verify_reports_mid_file_damage_quickly(tmp_path, big_wal):
    from allsource_lab._storage.wal import check_wal_file

    target = damaged(tmp_path, big_wal, "length")

    (wal,) = (target / "wal").glob("*.wal")
    start = time.monotonic()
    problems = check_wal_file(wal)
    assert time.monotonic() - start < 20
    assert problems and str(int(big_wal[2][BATCHES // 2])) in problems[0]
