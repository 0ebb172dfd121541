"""Frames whose checksum the WAL writer fills in: what single appends leave for later."""

from __future__ import annotations

import random

import crc32c
import numpy as np
import pytest

import allsource_lab as asl
from allsource_lab._kernels import walframes as frames
from allsource_lab._storage.wal import FRAME, MAGIC, MAX_RECORD_BYTES, fill_checksums, frame


def test_filled_frames_equal_frames_made_whole():
    rng = random.Random(7)
    bodies = [rng.randbytes(rng.choice([1, 7, 8, 9, 64, 1000])) for _ in range(300)]
    data = bytearray(b"".join(FRAME.pack(len(b), 0) + b for b in bodies))
    fill_checksums(data)
    assert bytes(data) == b"".join(frame(b) for b in bodies)
    buf = np.frombuffer(bytes(data), np.uint8)
    starts, status, stop = frames.scan(buf, 0, len(buf), MAX_RECORD_BYTES)
    assert (len(starts), status, stop) == (len(bodies), frames.OK, len(buf))


@pytest.mark.parametrize(
    "data",
    [
        FRAME.pack(5, 0) + b"abc",  # the body runs past the end
        FRAME.pack(0, 0),  # an empty body
        FRAME.pack(1, 0) + b"x" + b"\x01\x02",  # a partial header after a whole frame
    ],
)
def test_bytes_that_are_not_whole_frames_are_refused(data):
    with pytest.raises(ValueError, match="not whole frames"):
        fill_checksums(bytearray(data))


def test_single_appends_reach_the_wal_with_their_checksums(tmp_path):
    store = asl.open(tmp_path / "s", checkpoint_every_events=10**9)
    for i in range(500):
        store.append("tick", f"e{i % 9}", {"i": i, "pad": "x" * (i % 40)})
    store.flush()
    (wal,) = (tmp_path / "s" / "wal").glob("*.wal")
    raw = wal.read_bytes()
    assert raw.startswith(MAGIC)
    buf = np.frombuffer(raw, np.uint8)
    starts, status, stop = frames.scan(buf, len(MAGIC), len(buf), MAX_RECORD_BYTES)
    assert (len(starts), status, stop) == (500, frames.OK, len(buf))
    for p in starts[:3]:
        length, crc = FRAME.unpack_from(raw, p)
        assert crc == crc32c.crc32c(raw[p + 8 : p + 8 + length]) != 0
    store.close()
