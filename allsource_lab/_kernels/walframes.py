"""Walk a buffer of WAL frames (``u32 length, u32 crc32c(body), body``) and check each.

Framing knows nothing of what a body holds (byte layout apart from logic: CONTRIBUTING.md);
the only thing it asks of a body is that it is not empty, so that a run of zero bytes (a
file extended but never written, as some file systems leave after a crash) never passes
for a record.
"""

from __future__ import annotations

import numpy as np

from allsource_lab._kernels.checksum import crc32c
from allsource_lab._kernels.jit import jit

FRAME_SIZE = 8

OK = 0
SHORT_HEADER = 1  # fewer than 8 bytes left for a frame header
BAD_LENGTH = 2  # length 0 or past the per-record limit
TRUNCATED = 3  # the body runs past the end of the buffer
BAD_CRC = 4  # the body does not match its checksum

STATUS_TEXT = (
    "ok",
    "incomplete record header",
    "impossible record length",
    "record runs past the end of the file",
    "checksum mismatch",
)


@jit
def _u32(b: np.ndarray, p: int) -> int:
    return int(b[p]) | (int(b[p + 1]) << 8) | (int(b[p + 2]) << 16) | (int(b[p + 3]) << 24)


@jit
def check_frame(buf: np.ndarray, p: int, end: int, max_length: int) -> int:
    """Status of the frame starting at ``p`` (one of the constants above)."""
    if p + FRAME_SIZE > end:
        return SHORT_HEADER
    length = _u32(buf, p)
    if length == 0 or length > max_length:
        return BAD_LENGTH
    if p + FRAME_SIZE + length > end:
        return TRUNCATED
    if crc32c(buf, p + FRAME_SIZE, p + FRAME_SIZE + length, 0) != _u32(buf, p + 4):
        return BAD_CRC
    return OK


@jit
def scan(buf: np.ndarray, start: int, end: int, max_length: int) -> tuple[np.ndarray, int, int]:
    """Starts of the valid frames from ``start``, up to the first bad one.

    Returns ``(starts, status, stop)``: ``stop`` is where scanning ended (``end`` when
    every frame was good, else the offset of the bad frame) and ``status`` why.
    """
    starts = np.empty((end - start) // (FRAME_SIZE + 1) + 1, np.int64)
    n = 0
    p = start
    status = OK
    while p < end:
        status = check_frame(buf, p, end, max_length)
        if status != OK:
            break
        starts[n] = p
        n += 1
        p = p + FRAME_SIZE + _u32(buf, p)
    return starts[:n].copy(), status, p


@jit
def fill_checksums(buf: np.ndarray, start: int, end: int, max_length: int) -> int:
    """Write each frame's CRC32C from ``start`` on into its header, for frames made with
    the checksum left for later; returns where it stopped (``end``, or the offset of a
    frame whose length does not fit)."""
    p = start
    while p + FRAME_SIZE <= end:
        length = _u32(buf, p)
        if length == 0 or length > max_length or p + FRAME_SIZE + length > end:
            return p
        c = crc32c(buf, p + FRAME_SIZE, p + FRAME_SIZE + length, 0)
        for k in range(4):
            buf[p + 4 + k] = (c >> (8 * k)) & 0xFF
        p += FRAME_SIZE + length
    return p


# next_valid's answer when finding out would cost more checksum work than it may spend.
UNKNOWN = -2


@jit
def next_valid(buf: np.ndarray, bad: int, end: int, max_length: int) -> int:
    """Where a valid frame begins after the bad frame at ``bad``: -1 if none does, UNKNOWN
    if finding out would checksum more than ~16x the bytes after ``bad`` (plus 64 MiB).

    Bit rot usually lands in a body, leaving the length intact: the frame its length points
    to is tried first, in O(1) checksums. Otherwise every later offset is a candidate, and
    each one whose length fits costs a checksum of that length; with random bytes for
    lengths that is quadratic in the file size, hence the budget.
    """
    if bad + FRAME_SIZE <= end:
        length = _u32(buf, bad)
        implied = bad + FRAME_SIZE + length
        fits = 0 < length <= max_length and implied + FRAME_SIZE <= end
        if fits and check_frame(buf, implied, end, max_length) == OK:
            return implied
    budget = 16 * (end - bad) + (64 << 20)
    for p in range(bad + 1, end - FRAME_SIZE):
        length = _u32(buf, p)
        if length == 0 or length > max_length or p + FRAME_SIZE + length > end:
            continue
        budget -= length
        if budget < 0:
            return UNKNOWN
        if check_frame(buf, p, end, max_length) == OK:
            return p
    return -1


@jit
def next_tiling(buf: np.ndarray, bad: int, end: int, max_length: int) -> int:
    """Where valid frames begin after the bad frame at ``bad`` *and run on to* ``end``, one
    after another with nothing between them; -1 if no offset starts such a run.

    For when ``next_valid`` gives up (UNKNOWN): the bytes after a torn final batch record
    are its own columns, whose offsets look like frame lengths and make ``next_valid``
    checksum each one. Here a candidate must first tile the rest of the buffer by its
    lengths alone (no checksum; random lengths overshoot within a step or two), and only a
    tiling run is checksummed. Finds records after damage only when nothing else is
    damaged after them, so it decides "torn tail or not", not where salvage resumes.
    """
    for p in range(bad + 1, end - FRAME_SIZE + 1):
        q = p
        while q + FRAME_SIZE <= end:
            length = _u32(buf, q)
            if length == 0 or length > max_length:
                break
            q += FRAME_SIZE + length
        if q != end:
            continue
        q = p
        while q < end and check_frame(buf, q, end, max_length) == OK:
            q += FRAME_SIZE + _u32(buf, q)
        if q == end:
            return p
    return -1


@jit
def all_zero(buf: np.ndarray, start: int, end: int) -> bool:
    """True if buf[start:end] holds only zero bytes."""
    return all(buf[p] == 0 for p in range(start, end))
