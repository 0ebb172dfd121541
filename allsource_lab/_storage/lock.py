"""The single-writer lock of a store folder: one process may write, any may read.

The lock file also says who holds the lock, as a person knows the holder: the notebook
its kernel runs (Jupyter Server names it in ``JPY_SESSION_NAME``), else the command line,
with the pid and host. A second writer's ``StoreLocked`` names it, so a notebook user
reads "the notebook analysis.ipynb (process 32325)" rather than a bare pid.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson

from allsource_lab.errors import StorageError, StoreLocked

__all__ = ["LockHolder", "StoreLock"]

# Jupyter Server sets this for the kernel of a notebook (or console) session: the session's
# path, absolute since jupyter_server 2. ipykernel copies it into ``__session__``.
SESSION_VARIABLE = "JPY_SESSION_NAME"
# A command line can be any length; the lock file only needs enough to recognise it.
_COMMAND_CHARS = 200
# Reading more than this of a lock file would only be reading garbage.
_LOCK_FILE_MAX_BYTES = 4096


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who holds (or last held) a store's write lock, as its lock file says."""

    pid: int | None
    host: str | None = None
    notebook: str | None = None
    command: str | None = None

    @classmethod
    def of_this_process(cls) -> LockHolder:
        """This process as a lock holder: its notebook if Jupyter named one, its command line.

        >>> holder = LockHolder.of_this_process()
        >>> holder.pid == os.getpid() and holder.host == socket.gethostname()
        True
        """
        command = shlex.join(sys.orig_argv)
        if len(command) > _COMMAND_CHARS:
            command = command[: _COMMAND_CHARS - 1] + "…"
        return cls(
            pid=os.getpid(),
            host=socket.gethostname(),
            notebook=os.environ.get(SESSION_VARIABLE) or None,
            command=command or None,
        )

    def to_bytes(self) -> bytes:
        """The lock file's text: one JSON object and a newline.

        >>> LockHolder(7, "box", "/home/ann/a.ipynb", None).to_bytes()
        b'{"pid":7,"host":"box","notebook":"/home/ann/a.ipynb"}\\n'
        """
        fields = {"pid": self.pid, "host": self.host}
        fields |= {"notebook": self.notebook, "command": self.command}
        return orjson.dumps({k: v for k, v in fields.items() if v is not None}) + b"\n"

    @classmethod
    def from_bytes(cls, text: bytes) -> LockHolder:
        """Read a lock file's text: the JSON object, or the bare decimal pid older versions
        wrote. Anything else (a file mid-write, damage) is an unknown holder, never an error:
        the text only serves a message.

        >>> LockHolder.from_bytes(b"32325\\n")
        LockHolder(pid=32325, host=None, notebook=None, command=None)
        >>> LockHolder.from_bytes(b'{"pid": 9, "notebook": "a.ipynb"}').notebook
        'a.ipynb'
        >>> LockHolder.from_bytes(b"\\x00garbage").pid is None
        True
        """
        stripped = text.strip()
        if stripped.isdigit():
            return cls(pid=int(stripped))
        try:
            fields = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            return cls(pid=None)
        if not isinstance(fields, dict):
            return cls(pid=None)
        pid = fields.get("pid")

        def text_field(name: str) -> str | None:
            value = fields.get(name)
            return value if isinstance(value, str) and value else None

        return cls(
            pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
            host=text_field("host"),
            notebook=text_field("notebook"),
            command=text_field("command"),
        )

    def describe(self) -> str:
        """The holder as a person knows it, for a message: the notebook, else the command.

        A notebook inside the current directory is named relative to it; the host only
        when it is not this one (a store on a shared disk).

        >>> LockHolder(32325, notebook="analysis.ipynb").describe()
        'the notebook analysis.ipynb (process 32325)'
        >>> LockHolder(41, command="python load.py").describe()
        "the command 'python load.py' (process 41)"
        >>> LockHolder(41, host="elsewhere-42").describe()
        'process 41 on host elsewhere-42'
        >>> LockHolder(None).describe()
        'an unknown process'
        """
        process = "an unknown process" if self.pid is None else f"process {self.pid}"
        if self.host is not None and self.host != socket.gethostname():
            process += f" on host {self.host}"
        if self.notebook is not None:
            return f"the notebook {_relative(self.notebook)} ({process})"
        if self.command is not None:
            return f"the command {self.command!r} ({process})"
        return process


def _relative(path: str) -> str:
    try:
        inside = os.path.relpath(path)
    except ValueError:
        return path
    return path if inside.startswith(os.pardir) else inside


class StoreLock:
    """An exclusive, non-blocking ``flock`` on ``<store>/LOCK`` naming the writer.

    ``flock`` is released by the kernel when the holder dies, so a ``kill -9`` never
    leaves a stale lock behind (a pid file alone would). Non-blocking because a second
    writer must be told at once, not hang.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / "LOCK"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock. Raises StoreLocked (naming the holder) if another has it.

        The message's first clause ("... is open for writing by ...") stands on its own:
        the notebook's session shows it alone when it falls back to a read-only open.
        """
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot create the lock file {self.path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = LockHolder.from_bytes(os.pread(fd, _LOCK_FILE_MAX_BYTES, 0))
            os.close(fd)
            raise StoreLocked(
                f"{self.path.parent} is open for writing by {holder.describe()}; close it "
                "there, or open this one with read_only=True"
            ) from None
        # Write, then cut to length: a reader racing this never sees an empty file, at worst
        # a mix it reads as an unknown holder.
        text = LockHolder.of_this_process().to_bytes()
        os.pwrite(fd, text, 0)
        os.ftruncate(fd, len(text))
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
