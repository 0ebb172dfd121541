"""The single-writer lock of a store folder: one process may write, any may read."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from allsource_lab.errors import StorageError, StoreLocked

__all__ = ["StoreLock"]


class StoreLock:
    """An exclusive, non-blocking ``flock`` on ``<store>/LOCK`` holding the writer's pid.

    ``flock`` is released by the kernel when the holder dies, so a ``kill -9`` never
    leaves a stale lock behind (a pid file alone would). Non-blocking because a second
    writer must be told at once, not hang.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / "LOCK"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock. Raises StoreLocked (naming the holder's pid) if another has it."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot create the lock file {self.path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StoreLocked(
                f"{self.path.parent} is open for writing by process {holder}; close it "
                "there, or open this one with read_only=True"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
