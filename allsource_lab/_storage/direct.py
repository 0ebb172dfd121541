"""Large writes that go straight to the disk (``O_DIRECT``), past the page cache.

A batch's WAL record and a segment's column file are a few hundred megabytes each for a
million events. Written through the page cache, every byte first needs a new cache page:
on the virtual machines the benchmark runs on that costs ~5 ns a byte (1 s for 200 MB,
measured with ``os.write`` to a new file; overwriting pages already cached: 0.023 s), far
more than the disk takes (an ``O_DIRECT`` write of the same 200 MB: 0.1 s, durable when
it returns). Direct writes skip that, and leave the cache to the data that is read.

Direct I/O wants the memory, the file offset and the length aligned to the disk's block:
:data:`ALIGN` (4 KiB) covers every block size in use. So the bytes are copied into an
aligned staging buffer (:class:`Stage`, kept for reuse) and written a
whole number of blocks at a time; a last partial block is written padded with zeros and
the file cut back to its true length after. Where the file system refuses ``O_DIRECT``
(tmpfs, some network file systems) :func:`open_direct` says so and the caller writes as
before. The layout of what is written is not changed by any of this
(docs/format.md, "How large writes reach the disk").
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["ALIGN", "DIRECT_BYTES", "Stage", "open_direct", "read_whole", "stage", "write_new"]

ALIGN = 4096
# A write at least this long goes direct; shorter ones gain nothing from it (the copy and
# a synchronous disk write cost more than a few cache pages do).
DIRECT_BYTES = 1 << 20
# The staging buffer: the bytes of one direct write call (a multiple of ALIGN).
_STAGE_BYTES = 8 << 20

_O_DIRECT = getattr(os, "O_DIRECT", 0)


def open_direct(path: Any, flags: int, mode: int = 0o644) -> int | None:
    """``os.open(path, flags | O_DIRECT)``, or None where the file system (or the
    platform) does not take direct I/O; other errors are raised as they came."""
    if not _O_DIRECT:
        return None
    try:
        return os.open(path, flags | _O_DIRECT, mode)
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # this file system has no O_DIRECT
            return None
        raise


class Stage:
    """An aligned buffer that turns a stream of byte pieces into aligned direct writes.

    ``begin(fd, offset, head)`` starts at ``offset`` (a multiple of ALIGN) with ``head``,
    the bytes the file already holds from ``offset`` on (fewer than ALIGN: they are
    written again, unchanged); ``add`` copies pieces in and writes each full buffer;
    ``end`` writes the rest padded to a block and returns the true end of the data, to
    which the caller cuts the file (``os.ftruncate``).
    """

    def __init__(self, size: int = _STAGE_BYTES) -> None:
        self._map = mmap.mmap(-1, size)
        self._view = memoryview(self._map)
        self._size = size
        self._fill = 0
        self._fd = -1
        self._offset = 0

    def begin(self, fd: int, offset: int, head: bytes = b"") -> None:
        assert offset % ALIGN == 0 and len(head) < ALIGN
        self._fd, self._offset = fd, offset
        self._view[: len(head)] = head
        self._fill = len(head)

    def add(self, data: Any) -> None:
        view = memoryview(data).cast("B")
        while view:
            room = self._size - self._fill
            take = min(room, len(view))
            self._view[self._fill : self._fill + take] = view[:take]
            self._fill += take
            view = view[take:]
            if self._fill == self._size:
                self._write(self._size)

    def end(self) -> int:
        """Write what is left (padded to a whole block); the true end of the data."""
        end = self._offset + self._fill
        if self._fill:
            padded = -(-self._fill // ALIGN) * ALIGN
            self._view[self._fill : padded] = bytes(padded - self._fill)
            self._write(padded)
        self._fd = -1
        return end

    def _write(self, length: int) -> None:
        view = self._view[:length]
        done = 0
        while done < length:
            # A short direct write stops on a block boundary (or at a full disk, which
            # raises on the next call): go on from there.
            n = os.pwrite(self._fd, view[done:], self._offset + done)
            if n <= 0:
                raise OSError(errno.ENOSPC, "no room for a direct write")
            done += n
        self._offset += length
        self._fill = 0


_free: list[Stage] = []
_free_lock = threading.Lock()


@contextlib.contextmanager
def stage() -> Iterator[Stage]:
    """A staging buffer (8 MiB) for one writer at a time. Buffers are kept for the next
    writer, not made per thread: sealing threads come and go, and a new buffer's pages
    cost a fault each on first touch (~10 ms for 8 MiB on the benchmark machine)."""
    with _free_lock:
        buffer = _free.pop() if _free else None
    if buffer is None:
        buffer = Stage()
    try:
        yield buffer
    finally:
        with _free_lock:
            _free.append(buffer)


def write_new(path: Any, *pieces: Any) -> int:
    """Create (or truncate) ``path`` and write ``pieces`` one after another, direct when
    they are large; returns the open fd (not fsynced: the caller fsyncs and closes it)."""
    views = [memoryview(p).cast("B") for p in pieces]
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = open_direct(path, flags) if sum(map(len, views)) >= DIRECT_BYTES else None
    try:
        if fd is not None:
            with stage() as buffer:
                buffer.begin(fd, 0)
                for view in views:
                    buffer.add(view)
                os.ftruncate(fd, buffer.end())
            return fd
        fd = os.open(path, flags, 0o644)
        for view in views:
            while view:
                view = view[os.write(fd, view) :]
    except BaseException:
        if fd is not None:
            os.close(fd)
        raise
    return fd


def read_whole(path: Any) -> memoryview | None:
    """All of the file at ``path``, read past the page cache into memory of its own; None
    where the file is smaller than :data:`DIRECT_BYTES` or its file system takes no direct
    I/O (the caller reads it another way). Errors of the read are raised as they came.

    A file written direct is not in the cache; reading it through the cache would make a
    cache page for every 4 KiB of it, at the cost a write pays (the module docstring).
    """
    fd = open_direct(path, os.O_RDONLY)
    if fd is None:
        return None
    try:
        size = os.fstat(fd).st_size
        if size < DIRECT_BYTES:
            return None
        view = memoryview(mmap.mmap(-1, -(-size // ALIGN) * ALIGN))
        done = 0
        while done < size:
            # Whole blocks at block offsets; the last read stops at the end of the file.
            n = os.preadv(fd, [view[done:]], done)
            if n <= 0:
                break
            done += n
        return view[:done]
    finally:
        os.close(fd)
