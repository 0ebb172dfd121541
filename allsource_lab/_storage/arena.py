"""Memory that a seal's sorted rows are written into, kept from one seal to the next.

A seal sorts its tail into new columns (~200 MB for 1M events), encodes them as Parquet,
writes them as the column file and maps that file; the sorted copy is then dropped. From
Arrow's allocator, that copy was fresh memory every time: the allocator hands freed pages
back to the system, and on the virtual machines the benchmark runs on the first touch of
each page then costs a fault the hypervisor serves (~50K faults, 0.12-0.5 s, per 1M
events sealed, measured; the same sort into memory touched before: 0.06-0.08 s). An
:class:`Arena` keeps one mapping for it instead, lent to one seal at a time; its memory
belongs to whoever holds the lease, and is written over by the next one. What is sorted
into it must not outlive the lease: a seal whose column file cannot be mapped keeps a
copy of the rows instead (``FolderStorage.seal``).

The mapping is as large as the largest recent seal needed (a seal that needs less than a
quarter of it gets a smaller one), and goes when the store closes.
"""

from __future__ import annotations

import contextlib
import mmap
import threading
from collections.abc import Callable, Iterator

import pyarrow as pa

__all__ = ["Arena"]

_ALIGN = 64  # Arrow's buffer alignment
# Below this a seal sorts with Arrow's allocator: keeping memory is not worth it.
_SMALLEST = 4 << 20


class Arena:
    """One mapping, lent whole to one sort at a time (see the module docstring)."""

    def __init__(self) -> None:
        self._view: memoryview | None = None
        self._size = 0
        self._used = 0
        self._lent = threading.Lock()  # held for the lease
        self._bump = threading.Lock()  # two threads allocate during a sort

    @contextlib.contextmanager
    def lend(self, need: int) -> Iterator[Callable[[int], pa.Buffer]]:
        """An allocate function (bytes -> writable ``pa.Buffer``) from this arena for the
        ``with`` block, sized for about ``need`` bytes; past that, or when the arena is
        lent already, or for small needs, Arrow's allocator serves."""
        if need < _SMALLEST or not self._lent.acquire(blocking=False):
            yield pa.allocate_buffer
            return
        try:
            if need > self._size or need < self._size // 4:
                size = -(-need * 9 // 8 // mmap.PAGESIZE) * mmap.PAGESIZE
                # The old mapping goes once the last buffer cut from it is gone.
                self._view = memoryview(mmap.mmap(-1, size))
                self._size = size
            self._used = 0
            yield self._allocate
        finally:
            self._lent.release()

    def _allocate(self, size: int) -> pa.Buffer:
        with self._bump:
            start = -(-self._used // _ALIGN) * _ALIGN
            end = start + size
            fits = self._view is not None and end <= self._size
            if fits:
                self._used = end
        if not fits:
            return pa.allocate_buffer(size)
        assert self._view is not None
        return pa.py_buffer(self._view[start:end])

    def close(self) -> None:
        """Drop the mapping (it is unmapped once no buffer cut from it is left)."""
        with self._lent:
            self._view = None
            self._size = 0
