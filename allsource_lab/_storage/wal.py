"""The write-ahead log: files of checksummed frames under ``<store>/wal/``.

A frame is ``u32 length, u32 crc32c(body), body``; a file is an 8-byte magic followed
by frames, and is named after the sequence of the first event it may hold, so that the
files that only hold sealed events can be found by name alone. Framing knows nothing
about what a body means (``records.py`` does).
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import crc32c
import numpy as np

from allsource_lab._kernels import walframes as frames
from allsource_lab._storage import direct
from allsource_lab._storage.manifest import fsync_folder
from allsource_lab.errors import CorruptionError, StorageError

__all__ = [
    "FRAME",
    "MAGIC",
    "LogFollower",
    "LogScan",
    "WriteAheadLog",
    "check_wal_file",
    "fill_checksums",
    "frame",
]

MAGIC = b"ASLWAL\x00\x01"
FRAME = struct.Struct("<II")
# A batch of a few million events is one record; anything longer is damage.
MAX_RECORD_BYTES = 2**31 - 1
# A file time at least this old can be trusted to change with the next change: file times
# come from a clock that ticks every few milliseconds.
SETTLED_NS = 50_000_000
_IOV_MAX = 512


def frame(body: bytes) -> bytes:
    """One framed record.

    >>> frame(b"x")[:4]
    b'\\x01\\x00\\x00\\x00'
    """
    return FRAME.pack(len(body), crc32c.crc32c(body)) + body


def fill_checksums(data: bytearray) -> None:
    """Fill in the checksum of every frame in ``data``: frames the single-append path
    made with a zero in its place, which the WAL writer computes in bulk, in a compiled
    call that releases the GIL, instead of one hardware CRC call per append.

    Raises:
        ValueError: ``data`` is not whole frames (a bug: nothing was written).

    >>> data = bytearray(FRAME.pack(1, 0) + b"x")
    >>> fill_checksums(data); bytes(data) == frame(b"x")
    True
    """
    buf = np.frombuffer(data, np.uint8)
    stop = frames.fill_checksums(buf, 0, len(buf), MAX_RECORD_BYTES)
    del buf  # release the export
    if stop != len(data):
        # Not InvalidArgument: only the store's own append path makes these bytes, so this
        # is a bug, whose traceback must not be shortened into a user's one-line error.
        raise ValueError(f"WAL bytes to write are not whole frames (stopped at {stop})")


@dataclass(slots=True)
class LogFile:
    """The valid frames of one WAL file, as offsets into its bytes."""

    path: Path
    data: np.ndarray
    starts: list[np.ndarray] = field(default_factory=list)


@dataclass(slots=True)
class LogScan:
    """What reading the WAL found: the files' good frames and every problem met."""

    files: list[LogFile] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    truncated: list[tuple[str, int]] = field(default_factory=list)  # (file, cut at byte)
    damaged_last_file: bool = False


class WriteAheadLog:
    """Appends frames to the newest WAL file, rotates, syncs, and reads them all back."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fd: int | None = None
        self._size = 0
        self._name_durable = True
        self.current: Path | None = None
        # Files rotated away without an fsync (a checkpoint that starts sealing them), by
        # path: the next sync() syncs them before the current file, so "synced" still
        # covers every byte written; trimming a sealed file closes its descriptor.
        self._unsynced: dict[Path, int] = {}
        self._unsynced_lock = threading.Lock()  # sync() and trim() run on different threads

    # -- naming ------------------------------------------------------------------------

    @staticmethod
    def file_name(first_sequence: int) -> str:
        return f"{first_sequence:020d}.wal"

    def files(self) -> list[Path]:
        """WAL files, oldest first (their names sort by first sequence)."""
        return sorted(self.folder.glob("*.wal"))

    # -- writing -----------------------------------------------------------------------

    def open_for_append(self, next_sequence: int, *, fresh: bool = False) -> None:
        """Append to the newest file, or start one at ``next_sequence`` if none (or fresh)."""
        existing = self.files()
        if existing and not fresh:
            path = existing[-1]
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            self._fd, self._size, self.current = fd, os.fstat(fd).st_size, path
            self._name_durable = False
        else:
            self._start(next_sequence)

    def _start(self, first_sequence: int) -> None:
        path = self.folder / self.file_name(first_sequence)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        try:
            if os.write(fd, MAGIC) != len(MAGIC):
                raise OSError(errno.ENOSPC, "short write of the WAL file header")
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        # The new name is made durable by the first sync() that needs it: until a record
        # in this file is acknowledged, losing the file (or a torn magic, which the scan
        # treats as a torn tail) loses nothing. Saves two fsyncs per checkpoint.
        self._name_durable = False
        self._fd, self._size, self.current = fd, len(MAGIC), path

    @property
    def size(self) -> int:
        """Bytes in the current file."""
        return self._size

    def write(self, *pieces: Any) -> None:
        """Write buffers, in order, at the end of the current file (no fsync).

        All or nothing: if a write fails part way (a full disk), the file is cut back to
        where it was, so a later write continues after whole records only. The OSError is
        raised as it came; if the cut itself fails, a StorageError says to reopen.
        """
        fd = self._require_fd()
        views = [memoryview(p).cast("B") for p in pieces if len(memoryview(p).cast("B"))]
        start = self._size
        large = sum(len(v) for v in views) >= direct.DIRECT_BYTES
        try:
            if large and self._write_direct(views):
                return
            while views:
                n = os.writev(fd, views[:_IOV_MAX])
                self._size += n
                # Drop what was written; a short write leaves part of one view.
                while views and n >= len(views[0]):
                    n -= len(views[0])
                    views.pop(0)
                if n:
                    views[0] = views[0][n:]
        except OSError as exc:
            if self._size != start or large:  # a direct write may have grown the file
                try:
                    os.ftruncate(fd, start)
                except OSError as cut:
                    raise StorageError(
                        f"writing the WAL {self.current} failed ({exc}) and the part written "
                        f"could not be cut off ({cut}); reopen the store once the disk is "
                        "healthy (recovery cuts it off then)"
                    ) from exc
                self._size = start
            raise

    def _write_direct(self, views: list[memoryview]) -> bool:
        """Write ``views`` past the page cache (``direct.py``); False if the file system
        takes no direct I/O (nothing was written then). The block the file ends in is
        written again with what it holds, so the write starts on a block boundary; the
        last block goes padded and the file is cut back to the data's end. A crash before
        that cut leaves zeros after the record, which the scan drops as a torn tail."""
        assert self.current is not None and self._fd is not None
        fd = direct.open_direct(self.current, os.O_WRONLY)
        if fd is None:
            return False
        try:
            start = self._size
            base = start - start % direct.ALIGN
            with open(self.current, "rb") as file:
                file.seek(base)
                head = file.read(start - base)
            with direct.stage() as buffer:
                buffer.begin(fd, base, head)
                for view in views:
                    buffer.add(view)
                end = buffer.end()
            os.ftruncate(self._fd, end)
            self._size = end
        finally:
            os.close(fd)
        return True

    def sync(self) -> None:
        """fsync the files rotated away unsynced, then the current file (and, the first
        time, the folder that names it)."""
        if self._unsynced:
            with self._unsynced_lock:
                for path, fd in list(self._unsynced.items()):
                    os.fsync(fd)
                    del self._unsynced[path]
                    os.close(fd)
        os.fsync(self._require_fd())
        if not self._name_durable:
            fsync_folder(self.folder)
            self._name_durable = True

    def rotate(self, next_sequence: int, *, sync: bool = True) -> None:
        """Close the current file and start a new one at ``next_sequence``.

        ``sync=False`` leaves the old file's fsync to the next :meth:`sync` (a checkpoint
        that is about to seal its events elsewhere: the appending thread does not wait
        for the disk, and the fsync policy still covers those bytes until the seal).
        """
        old, old_path = self._fd, self.current
        if old is not None and sync:
            self.sync()
        self._start(next_sequence)  # takes over only once the new file is ready
        if old is not None:
            if sync or old_path is None:
                os.close(old)
            else:
                with self._unsynced_lock:
                    self._unsynced[old_path] = old

    def trim(self, before: int) -> None:
        """Remove the files whose first sequence is below ``before`` (their events are all
        sealed: the manifest covers them). Files already gone are skipped."""
        for path in self.files():
            if int(path.stem) >= before or path == self.current:
                continue
            with self._unsynced_lock:
                fd = self._unsynced.pop(path, None)
            if fd is not None:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def close(self) -> None:
        with self._unsynced_lock:
            rotated, self._unsynced = self._unsynced, {}
        for fd in rotated.values():
            os.close(fd)  # their events are sealed or were synced by the last sync()
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = None

    def _require_fd(self) -> int:
        if self._fd is None:
            raise StorageError("the WAL is closed; reopen the store")
        return self._fd

    # -- reading -----------------------------------------------------------------------

    def scan(self, mode: str, *, repair: bool) -> LogScan:
        """Read and check every frame of every file.

        A bad frame in the newest file with no valid frame after it is a torn tail (a
        write cut short by a crash): ``strict`` refuses it, the other modes drop it —
        and, when ``repair`` is set, cut the file there so new appends follow good data.
        Anything else bad is corruption: ``salvage`` skips to the next valid frame and
        reports it, the other modes raise.

        Raises:
            CorruptionError: naming the file and byte offset.
        """
        result = LogScan()
        paths = self.files()
        for i, path in enumerate(paths):
            raw = path.read_bytes()
            last = i == len(paths) - 1
            if raw[: len(MAGIC)] != MAGIC:
                if last and len(raw) < len(MAGIC) and MAGIC.startswith(raw):
                    # Crashed while creating the file: nothing in it was acknowledged.
                    result.problems.append(f"{path}: incomplete file header (torn)")
                    result.truncated.append((str(path), 0))
                    if mode == "strict":
                        raise CorruptionError(
                            "incomplete WAL file header (the store crashed while "
                            "starting this file); open with recovery='truncate_tail'",
                            path=str(path),
                            offset=0,
                        )
                    if repair:
                        path.unlink()
                    continue
                if mode != "salvage":
                    raise CorruptionError(
                        "not a WAL file (bad magic); open with recovery='salvage' to skip it",
                        path=str(path),
                        offset=0,
                    )
                result.problems.append(f"{path}: not a WAL file (bad magic), skipped")
                continue
            data = np.frombuffer(raw, dtype=np.uint8)
            log_file = LogFile(path, data)
            result.files.append(log_file)
            self._scan_file(log_file, last, mode, repair, result)
        return result

    def _scan_file(
        self, log_file: LogFile, last: bool, mode: str, repair: bool, result: LogScan
    ) -> None:
        data, path = log_file.data, log_file.path
        end = len(data)
        p = len(MAGIC)
        while p < end:
            starts, status, stop = frames.scan(data, p, end, MAX_RECORD_BYTES)
            log_file.starts.append(starts)
            if status == frames.OK:
                return
            why = frames.STATUS_TEXT[status]
            following = frames.next_valid(data, stop, end, MAX_RECORD_BYTES)
            if last and following == frames.UNKNOWN:
                # Too costly to say where records resume: say at least whether any whole
                # records follow to the end of the file, or the final write was torn.
                following = frames.next_tiling(data, stop, end, MAX_RECORD_BYTES)
            if last and following == -1:
                # Torn tail: the final write never completed.
                result.problems.append(f"{path}: torn final record at byte {stop} ({why})")
                if mode == "strict":
                    raise CorruptionError(
                        f"torn final record ({why}); open with recovery='truncate_tail' "
                        "to drop it (it was never acknowledged under fsync='always')",
                        path=str(path),
                        offset=stop,
                    )
                result.truncated.append((str(path), stop))
                if repair:
                    with open(path, "r+b") as fh:
                        fh.truncate(stop)
                        os.fsync(fh.fileno())
                return
            if mode != "salvage":
                raise CorruptionError(
                    f"WAL record damaged ({why}) with valid records after it; run "
                    "store.verify() on a read-only open, or open with recovery='salvage' "
                    "to skip damaged records",
                    path=str(path),
                    offset=stop,
                )
            skipped_to = following if following >= 0 else end
            if following == frames.UNKNOWN:
                why += "; where records resume after it could not be found, so the rest of "
                why += "the file is skipped"
            result.problems.append(f"{path}: skipped damaged bytes {stop}..{skipped_to} ({why})")
            if last:
                result.damaged_last_file = True
            if following < 0:
                return
            p = following


class LogFollower:
    """Reads the whole frames a writer in another process adds to a WAL folder, from the
    point a read-only open had read to: the WAL side of a follower (``_store/following.py``).

    ``path`` is the file being read and ``offset`` how much of it is taken, always a frame
    boundary. ``changed`` is what a read asks before it looks: two ``stat`` calls (the
    folder, whose time changes when a file is created or removed, and the file being
    read), never a read of the bytes.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path: Path | None = None
        self.offset = 0
        self._folder_text = os.fspath(folder)  # what changed() stats, as str (faster)
        self._path_text = ""
        self._folder_time = -1  # the folder's st_mtime_ns when its files were last listed
        self.problems: list[str] = []  # what the last read skipped

    def start_after(self, scan: LogScan) -> None:
        """Begin where a scan's newest file's last whole frame ends."""
        if not scan.files:
            return
        last = scan.files[-1]
        end = len(MAGIC)
        starts = [s for s in last.starts if len(s)]
        if starts:
            p = int(starts[-1][-1])
            end = p + FRAME.size + int.from_bytes(last.data[p : p + 4].tobytes(), "little")
        self._at(last.path, end)

    def _at(self, path: Path, offset: int) -> None:
        """Taken: ``path`` through ``offset``."""
        self.path, self.offset, self._path_text = path, offset, os.fspath(path)

    def changed(self) -> bool:
        """Whether there may be new frames: a file created or removed, or the file being
        read grown past what was taken."""
        try:
            if os.stat(self._folder_text).st_mtime_ns != self._folder_time:
                return True
            path = self._path_text
            return bool(path) and os.stat(path).st_size != self.offset
        except FileNotFoundError:
            return True

    def read(self) -> tuple[list[tuple[Path, np.ndarray, np.ndarray]], bool]:
        """The whole frames added since the last read, per file: (file, its new bytes,
        the frames' starts in them), oldest first; and whether a file was gone when it
        was to be read (trimmed: its events are sealed, and the manifest says where).

        The newest file's last frame may be a write still under way: it is left for the
        next read. A file that has a newer one after it is complete, so a frame that does
        not check there is damage (a writer that crashed mid-write and started a new
        file): the rest of that file is skipped and said in ``problems``.

        Raises:
            CorruptionError: a new file that is not a WAL file.
        """
        listed = os.stat(self.folder).st_mtime_ns
        # A file created within the same clock tick as this listing leaves the folder's
        # time as it is: a time that recent is not trusted, so the next look lists again.
        self._folder_time = listed if time.time_ns() - listed > SETTLED_NS else -1
        paths = sorted(p for p in self.folder.glob("*.wal") if self.path is None or p >= self.path)
        found: list[tuple[Path, np.ndarray, np.ndarray]] = []
        gone = False
        self.problems.clear()
        for i, path in enumerate(paths):
            last = i == len(paths) - 1
            start = self.offset if path == self.path else 0
            try:
                with open(path, "rb") as fh:
                    fh.seek(start)
                    raw = fh.read()
            except FileNotFoundError:
                gone = True
                continue
            if start == 0:
                if len(raw) < len(MAGIC):
                    if last:
                        break  # the writer is creating it
                    self.problems.append(f"{path}: incomplete file header, skipped")
                    continue
                if raw[: len(MAGIC)] != MAGIC:
                    raise CorruptionError("not a WAL file (bad magic)", path=str(path), offset=0)
                raw, start = raw[len(MAGIC) :], len(MAGIC)
            data = np.frombuffer(raw, np.uint8)
            starts, status, stop = frames.scan(data, 0, len(data), MAX_RECORD_BYTES)
            if status != frames.OK and not last:
                self.problems.append(
                    f"{path}: {frames.STATUS_TEXT[status]} at byte {start + stop} in a file "
                    "a newer one follows; the rest of it is skipped"
                )
                stop = len(data)
            self._at(path, start + stop)
            if len(starts):
                found.append((path, data, starts))
        return found, gone


def check_wal_file(path: Path) -> list[str]:
    """Every damaged stretch of one WAL file, each as ``"<file>: <why> at byte <n>"``.

    Unlike :meth:`WriteAheadLog.scan` this never raises for damage and never repairs: it
    is ``store.verify()``'s post-mortem, which must report every problem. A file that
    does not start with the magic is one problem (nothing after it is read).

    Raises:
        OSError: the file cannot be read (``FileNotFoundError`` if it is gone).

    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> log = WriteAheadLog(Path(tmp.name))
    >>> log.open_for_append(1)
    >>> log.write(frame(b"x"), frame(b"y"))
    >>> log.close()
    >>> check_wal_file(log.current)
    []
    >>> raw = bytearray(log.current.read_bytes())
    >>> raw[len(MAGIC) + FRAME.size] ^= 1  # flip a bit in the first record's body
    >>> _ = log.current.write_bytes(raw)
    >>> [p.split(": ", 1)[1] for p in check_wal_file(log.current)]
    ['checksum mismatch at byte 8']
    >>> tmp.cleanup()
    """
    raw = path.read_bytes()
    if raw[: len(MAGIC)] != MAGIC:
        return [f"{path}: not a WAL file (bad magic) at byte 0"]
    data = np.frombuffer(raw, np.uint8)
    problems = []
    p = len(MAGIC)
    while p < len(data):
        _, status, stop = frames.scan(data, p, len(data), MAX_RECORD_BYTES)
        if status == frames.OK:
            break
        problems.append(f"{path}: {frames.STATUS_TEXT[status]} at byte {stop}")
        nxt = frames.next_valid(data, stop, len(data), MAX_RECORD_BYTES)
        if nxt == frames.UNKNOWN:
            problems.append(f"{path}: records after byte {stop} could not be checked")
        if nxt < 0:
            break
        p = nxt
    return problems
