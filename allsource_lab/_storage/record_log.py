"""Files of checksummed records: the snapshot log, the schema registry log, state files.

Each record is framed like a WAL record (``u32 length, u32 crc32c(body), body``, little
endian; :data:`allsource_lab._storage.wal.FRAME`) but the files carry no magic: they hold
derived or small data that the store can rebuild or report, so a damaged record is
skipped and reported rather than fatal. What a body means (a snapshot, a schema
version, a projection's state) is decided above storage.

Named state records (projection states, subscription cursors) live one per file under
``<store>/<kind>/``, named by :func:`state_file_name`.
"""

from __future__ import annotations

import hashlib

import crc32c

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

    A record cut short at the end (a crash mid-write) ends the scan quietly; a record
    whose checksum fails is skipped and reported, and the scan goes on after it. A
    length past :data:`MAX_BODY_BYTES` ends the scan with a problem (nothing after it
    can be trusted to start a record). ``good end`` is the offset just past the last
    whole record: a writer cuts the file there before appending.

    >>> good = frame_record(b"a") + frame_record(b"b")
    >>> read_records(good + good[:3])
    ([b'a', b'b'], [], 18)
    >>> bad = frame_record(b"x")[:-1] + b"y"
    >>> read_records(bad + frame_record(b"b"))
    ([b'b'], [(0, 'checksum mismatch')], 18)
    """
    bodies: list[bytes] = []
    problems: list[tuple[int, str]] = []
    at = 0
    end = 0
    while at + FRAME.size <= len(data):
        n, crc = FRAME.unpack_from(data, at)
        if n > MAX_BODY_BYTES:
            problems.append((at, f"record length {n} is impossible; the rest is unreadable"))
            break
        body = data[at + FRAME.size : at + FRAME.size + n]
        if len(body) < n:
            break  # torn final record
        if crc32c.crc32c(body) != crc:
            problems.append((at, "checksum mismatch"))
        else:
            bodies.append(body)
        at += FRAME.size + n
        end = at
    return bodies, problems, end


def state_file_name(name: str) -> str:
    """A state record's file name: any name maps to a safe, fixed-length one.

    The name is hashed (SHA-256, first 32 hex digits): a projection or subscription
    name may hold any character, ``/`` and ``..`` included. The record keeps the name.

    >>> state_file_name("orders")
    '1c168adb00d208e42f93314529f1fa9c.state'
    """
    return hashlib.sha256(name.encode()).hexdigest()[:32] + ".state"
