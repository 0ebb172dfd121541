"""A fault-injecting file layer for tests: simulated power loss and injected I/O errors.

``PowerCut`` models what a disk keeps when the power goes, the way LevelDB's and SQLite's
crash tests do: a file's bytes are durable only as of its last ``fsync``, and a name
created, renamed or removed in a folder only as of that folder's last ``fsync``. Data
written but not synced is dropped (the worst case a POSIX file system allows), and so is a
new file whose folder was never synced. The store runs for real on real files; the layer
watches the calls that change durability (``os.open`` with ``O_CREAT``, ``open`` for
writing, ``fsync``, ``replace``, ``unlink``, ``mkdir``, ``truncate``), counts them, and can
cut the power just before the N-th: that call and every later one under the disk raise
``SimulatedCrash``, and ``image(dest)`` writes out the folder as it would be after the
reboot.

``FailingDisk`` makes chosen calls fail with an ``OSError`` (EIO from fsync, ENOSPC from a
write) while armed, to test how the store surfaces them.

Both patch the ``os`` module and ``builtins.open`` through pytest's ``monkeypatch``, and
act only on paths under the folder they were given; nothing in the package knows of them.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["FailingDisk", "PowerCut", "SimulatedCrash"]

_REAL = {
    name: getattr(os, name)
    for name in (
        "open",
        "fsync",
        "fdatasync",
        "replace",
        "rename",
        "unlink",
        "remove",
        "mkdir",
        "rmdir",
        "ftruncate",
        "truncate",
        "write",
        "writev",
        "pwrite",
    )
}
_REAL_OPEN = builtins.open
_DIR = -1  # a listing's mark for a subfolder
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class SimulatedCrash(BaseException):
    """The power went: raised by every watched call from the cut on (a BaseException, so
    the store's ``except Exception``/``except OSError`` handlers cannot swallow it)."""


def _fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


class _Watcher:
    """Patches the ``os`` calls and ``open``; subclasses decide what each call does."""

    def __init__(self, disk: Path) -> None:
        self.disk = str(Path(disk).resolve())
        self.lock = threading.RLock()

    def mine(self, path: Any) -> bool:
        if isinstance(path, int):
            path = _fd_path(path)
        elif isinstance(path, bytes):
            path = path.decode()
        try:
            text = os.path.abspath(os.fspath(path))
        except TypeError:
            return False
        return text == self.disk or text.startswith(self.disk + os.sep)

    def install(self, monkeypatch: Any) -> None:
        for name in _REAL:
            monkeypatch.setattr(os, name, self._wrap(name))
        monkeypatch.setattr(builtins, "open", self._open_file)
        monkeypatch.setattr(io, "open", self._open_file)  # pathlib's Path.open uses it

    def _wrap(self, name: str) -> Callable[..., Any]:
        real = _REAL[name]

        def call(*args: Any, **kwargs: Any) -> Any:
            if args and self.mine(args[0]):
                return self.on_call(name, real, args, kwargs)
            return real(*args, **kwargs)

        call.__name__ = name
        return call

    def _open_file(self, file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if not isinstance(file, int) and self.mine(file):
            return self.on_call("open_file", _REAL_OPEN, (file, mode, *args), kwargs)
        return _REAL_OPEN(file, mode, *args, **kwargs)

    def on_call(self, name: str, real: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        return real(*args, **kwargs)


class PowerCut(_Watcher):
    """Durability model of the folder ``disk`` (see the module docstring).

    ``cut_at``: cut the power just before the watched call with this number (0-based);
    ``None`` never cuts, which is how a test counts the calls of a run (``calls``).
    """

    def __init__(self, disk: Path, cut_at: int | None = None) -> None:
        super().__init__(disk)
        Path(self.disk).mkdir(parents=True, exist_ok=True)
        self.cut_at = cut_at
        self.calls = 0
        self.kinds: list[str] = []  # the kind of each watched call, in order
        self.crashed = False
        self._next_fid = 0
        self._fid_of_inode: dict[int, int] = {}
        self._bytes: dict[int, bytes] = {}  # file id -> content as of its last fsync
        self._listing: dict[str, dict[str, int]] = {}  # folder -> name -> file id/_DIR
        # What is on the disk when the layer starts is durable.
        for folder, subfolders, files in os.walk(self.disk):
            names: dict[str, int] = dict.fromkeys(subfolders, _DIR)
            for name in files:
                path = os.path.join(folder, name)
                fid = self._new_fid(os.stat(path).st_ino)
                with _REAL_OPEN(path, "rb") as f:
                    self._bytes[fid] = f.read()
                names[name] = fid
            self._listing[folder] = names

    def _new_fid(self, inode: int) -> int:
        self._next_fid += 1
        self._fid_of_inode[inode] = self._next_fid
        return self._next_fid

    def _fid(self, inode: int) -> int:
        fid = self._fid_of_inode.get(inode)
        return self._new_fid(inode) if fid is None else fid

    # -- the calls ----------------------------------------------------------------------

    def on_call(self, name: str, real: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        with self.lock:
            if self.crashed:
                raise SimulatedCrash(f"{name} after the power cut")
            kind = self._kind(name, args, kwargs)
            if kind is not None:
                if self.calls == self.cut_at:
                    self.crashed = True
                    raise SimulatedCrash(f"power cut before {kind} (call {self.calls})")
                self.calls += 1
                self.kinds.append(kind)
            path = args[0]
            existed = isinstance(path, int) or os.path.lexists(path)
            result = real(*args, **kwargs)
            if name in ("fsync", "fdatasync"):
                self._synced(args[0])
            elif not existed and name in ("open", "open_file"):
                fd = result if name == "open" else result.fileno()
                self._new_fid(os.fstat(fd).st_ino)
            return result

    @staticmethod
    def _kind(name: str, args: tuple, kwargs: dict) -> str | None:
        """What the call does to durability, or None for calls that cannot change it."""
        if name == "open":
            flags = args[1] if len(args) > 1 else kwargs.get("flags", 0)
            return "create" if flags & (os.O_CREAT | os.O_TRUNC) else None
        if name == "open_file":
            mode = args[1] if len(args) > 1 else "r"
            return "create" if any(c in mode for c in "wax+") else None
        if name in ("write", "writev", "pwrite"):
            return None  # unsynced bytes are dropped at a cut either way
        return name

    def _synced(self, fd: int) -> None:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            folder = _fd_path(fd)
            names: dict[str, int] = {}
            with os.scandir(folder) as entries:
                for entry in entries:
                    is_dir = entry.is_dir(follow_symlinks=False)
                    names[entry.name] = _DIR if is_dir else self._fid(entry.inode())
            self._listing[folder] = names
        else:
            with _REAL_OPEN(f"/proc/self/fd/{fd}", "rb") as f:
                self._bytes[self._fid(info.st_ino)] = f.read()

    # -- after the cut ------------------------------------------------------------------

    def image(self, dest: Path) -> None:
        """Write the disk as it is after the reboot into the new folder ``dest``."""
        with self.lock:
            self._copy(self.disk, Path(dest))

    def _copy(self, folder: str, dest: Path) -> None:
        dest.mkdir(parents=True)
        for name, fid in self._listing.get(folder, {}).items():
            if fid == _DIR:
                self._copy(os.path.join(folder, name), dest / name)
            else:
                with _REAL_OPEN(dest / name, "wb") as f:
                    f.write(self._bytes.get(fid, b""))


class FailingDisk(_Watcher):
    """Makes watched calls under ``disk`` fail while armed.

    ``fail(name, err, when=...)``: calls of ``os.NAME`` (``"fsync"``, ``"write"``,
    ``"writev"``, ``"open"``, ``"replace"``, ``"open_file"``) raise ``OSError(err)`` while
    ``when(path)`` is true for the call's path (default: always). ``heal()`` stops it.
    """

    def __init__(self, disk: Path) -> None:
        super().__init__(disk)
        self._rules: list[tuple[str, int, Callable[[str], bool]]] = []
        self.failures = 0

    def fail(self, name: str, err: int, when: Callable[[str], bool] | None = None) -> None:
        with self.lock:
            self._rules.append((name, err, when or (lambda path: True)))

    def heal(self) -> None:
        with self.lock:
            self._rules.clear()

    @contextmanager
    def failing(
        self, name: str, err: int, when: Callable[[str], bool] | None = None
    ) -> Iterator[None]:
        self.fail(name, err, when)
        try:
            yield
        finally:
            self.heal()

    def on_call(self, name: str, real: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        path = args[0]
        text = _fd_path(path) if isinstance(path, int) else os.fspath(path)
        with self.lock:
            for rule, err, when in self._rules:
                if rule == name and when(str(text)):
                    self.failures += 1
                    raise OSError(err, f"{os.strerror(err)} (injected)", str(text))
        return real(*args, **kwargs)


ENOSPC = errno.ENOSPC
EIO = errno.EIO
