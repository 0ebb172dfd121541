"""Files of checksummed records: the snapshot log, the schema registry log, state files.

Each record is framed like a WAL record (``u32 length, u32 crc32c(body), body``, little
endian; :data:`allsource_lab._storage.wal.FRAME`) but the files carry no magic. Reading
tells a torn final record (a crash cut the last append short) from damage, and skips
and reports damage; whether damage is fatal, and what an open may change, is decided by
the reader's caller (``FolderStorage._load_log``). What a body means (a snapshot, a
schema version, a projection's state) is decided above storage.

Named state records (projection states, subscription cursors) live one per file under
``<store>/<kind>/``, named by :func:`state_file_name`.
"""

from __future__ import annotations

import hashlib

import crc32c
import numpy as np

from allsource_lab._kernels import walframes as frames
from allsource_lab._storage.wal import FRAME

__all__ = ["MAX_BODY_BYTES", "STATE_KINDS", "frame_record", "read_records", "state_file_name"]

# A longer length is taken for a damaged header: trusting it would swallow the rest of the
# file as one record.
MAX_BODY_BYTES = 256 * 1024 * 1024

# The folders of named state records (projection states, subscription cursors).
STATE_KINDS = ("projections", "subscriptions")


def frame_record(body: bytes) -> bytes:
    """``body`` framed for a record file: its length and CRC32C, then the body itself.

    >>> frame_record(b"hi")
    b'\\x02\\x00\\x00\\x00\\xc2\\xd9\\x9d\\xf5hi'
    """
    return FRAME.pack(len(body), crc32c.crc32c(body)) + body


def read_records(data: bytes) -> tuple[list[bytes], list[tuple[int, str]], int]:
    """Bodies of the framed records in ``data``: (bodies, problems by offset, good end).

    A torn final record (a crash mid-append: a header cut short, or a body that runs past
    the end of ``data``, with no valid record after it) ends the scan quietly. Anything
    else that cannot be read is damage, reported at its offset:

    * a checksum that fails: the record is skipped, and the scan goes on where its
      length points (or, if no record starts there, at the next valid record);
    * a length past :data:`MAX_BODY_BYTES`, or past the end of ``data`` while a valid
      record follows or the bytes to the end match its checksum (then only the length
      was damaged): the scan goes on at the next valid record, if any; otherwise the rest
      is unreadable.

    ``good end`` is the offset just past the last whole record. Bytes after it are a torn
    final record unless a problem is reported at or after it (an unreadable rest); a
    writer that may change the file cuts a torn final record there before appending.

    >>> good = frame_record(b"a") + frame_record(b"b")
    >>> read_records(good + good[:3])
    ([b'a', b'b'], [], 18)
    >>> bad = frame_record(b"x")[:-1] + b"y"
    >>> read_records(bad + frame_record(b"b"))
    ([b'b'], [(0, 'checksum mismatch')], 18)
    >>> huge = FRAME.pack(MAX_BODY_BYTES + 1, 0) + b"x"
    >>> bodies, problems, end = read_records(frame_record(b"a") + huge + frame_record(b"b"))
    >>> bodies, end, problems[0][0], problems[0][1].endswith("starts at byte 18)")
    ([b'a', b'b'], 27, 9, True)
    """
    bodies: list[bytes] = []
    problems: list[tuple[int, str]] = []
    at = 0
    end = 0
    while at + FRAME.size <= len(data):
        n, crc = FRAME.unpack_from(data, at)
        body = data[at + FRAME.size : at + FRAME.size + n]
        if n <= MAX_BODY_BYTES and len(body) == n:
            implied = at + FRAME.size + n
            if crc32c.crc32c(body) == crc:
                bodies.append(body)
                at = end = implied
                continue
            # Bit rot usually spares the length, so the next record starts where it says;
            # if none does, the length is suspect too and the next valid frame is sought.
            resume = _next_valid(data, at)
            if resume < 0 or resume == implied:
                problems.append((at, "checksum mismatch"))
                at = end = implied
            else:
                problems.append(
                    (at, f"checksum mismatch (the next valid record starts at byte {resume})")
                )
                at = end = resume
            continue
        resume = _next_valid(data, at)
        if n > MAX_BODY_BYTES:
            why = f"record length {n} is impossible"
        elif body and crc32c.crc32c(body) == crc:
            # A torn append leaves a prefix of its body, which matches the checksum of the
            # whole body only by a 1-in-2**32 chance: here the body is whole and the
            # length was damaged.
            why = f"record length {n} runs past the end of the file, which its checksum fits"
        elif resume == -1:
            break  # a torn final record
        else:
            why = f"record length {n} runs past the end of the file"
        if resume < 0:
            gave_up = "" if resume == -1 else " (where records resume could not be found)"
            problems.append((at, f"{why}; the rest is unreadable{gave_up}"))
            break
        problems.append((at, f"{why} (the next valid record starts at byte {resume})"))
        at = resume
    return bodies, problems, end


def _next_valid(data: bytes, bad: int) -> int:
    """Where a valid record starts after the bad frame at ``bad``, as the WAL resyncs:
    -1 if none does, :data:`~allsource_lab._kernels.walframes.UNKNOWN` if finding out
    would cost too much checksumming (see ``walframes.next_valid``)."""
    buf = np.frombuffer(data, np.uint8)
    return int(frames.next_valid(buf, bad, len(buf), MAX_BODY_BYTES))


def state_file_name(name: str) -> str:
    """A state record's file name: any name maps to a safe, fixed-length one.

    The name is hashed (SHA-256, first 32 hex digits): a projection or subscription
    name may hold any character, ``/`` and ``..`` included. The record keeps the name.

    >>> state_file_name("orders")
    '1c168adb00d208e42f93314529f1fa9c.state'
    """
    return hashlib.sha256(name.encode()).hexdigest()[:32] + ".state"
