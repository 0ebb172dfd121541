"""A second writer is told who holds the store as a person knows it: the notebook, else the
command line, with the pid; lock files written by older versions (a bare pid) still read."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

import allsource_lab as asl

# Holds a store open for writing; on "old" it rewrites LOCK as an older version did.
HOLDER = """
import sys, allsource_lab as asl
from pathlib import Path
store = asl.open(sys.argv[1], fsync="interval")
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "old":
        (Path(sys.argv[1]) / "LOCK").write_text("4242\\n")
    print("ok", flush=True)
"""


class Holder:
    """Another process holding ``path`` for writing, started with ``env``."""

    def __init__(self, script: Path, path: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.answer() == "ready"

    def answer(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the holder process died"
        return line.strip()

    def do(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        assert self.answer() == "ok"

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


@pytest.fixture
def start_holder(tmp_path: Path) -> Iterator[object]:
    """Starts holders of ``tmp_path/s.events``, as a kernel of ``notebook`` when given."""
    script = tmp_path / "hold_store.py"
    script.write_text(HOLDER)
    started: list[Holder] = []

    def start(notebook: str | None = None) -> Holder:
        env = {k: v for k, v in os.environ.items() if k != "JPY_SESSION_NAME"}
        if notebook is not None:
            env["JPY_SESSION_NAME"] = notebook
        started.append(Holder(script, tmp_path / "s.events", env))
        return started[-1]

    yield start
    for holder in started:
        holder.kill()


def refusal(path: Path) -> str:
    with pytest.raises(asl.StoreLocked) as info:
        asl.open(path)
    return str(info.value)


def test_a_second_writer_is_told_the_notebook_that_holds_the_store(
    start_holder, tmp_path, monkeypatch
):
    notebook = tmp_path / "analysis.ipynb"
    holder = start_holder(str(notebook))
    monkeypatch.chdir(tmp_path)  # a notebook beside the reader is named by its file name
    message = refusal(tmp_path / "s.events")
    assert f"is open for writing by the notebook analysis.ipynb (process {holder.proc.pid})" in (
        message
    )
    assert "read_only=True" in message


def test_a_notebook_elsewhere_is_named_by_its_full_path(start_holder, tmp_path, monkeypatch):
    notebook = tmp_path / "work" / "analysis.ipynb"
    holder = start_holder(str(notebook))
    monkeypatch.chdir(tmp_path.parent)
    message = refusal(tmp_path / "s.events")
    inside = os.path.relpath(notebook)
    assert f"by the notebook {inside} (process {holder.proc.pid})" in message
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert f"by the notebook {notebook} (process {holder.proc.pid})" in refusal(
        tmp_path / "s.events"
    )


def test_a_writer_outside_a_notebook_is_named_by_its_command_line(start_holder, tmp_path):
    holder = start_holder()
    message = refusal(tmp_path / "s.events")
    assert "by the command '" in message and "hold_store.py" in message
    assert f"(process {holder.proc.pid})" in message
    assert "notebook" not in message


def test_the_lock_file_records_pid_host_and_notebook(start_holder, tmp_path):
    holder = start_holder("/home/ann/analysis.ipynb")
    fields = orjson.loads((tmp_path / "s.events" / "LOCK").read_bytes())
    assert fields["pid"] == holder.proc.pid
    assert fields["host"] == socket.gethostname()
    assert fields["notebook"] == "/home/ann/analysis.ipynb"
    assert "hold_store.py" in fields["command"]


def test_a_lock_file_written_by_an_older_version_still_names_its_pid(start_holder, tmp_path):
    holder = start_holder()
    holder.do("old")
    message = refusal(tmp_path / "s.events")
    assert "is open for writing by process 4242;" in message


def test_a_refused_writer_leaves_the_holders_lock_file_as_it_was(start_holder, tmp_path):
    start_holder("/home/ann/analysis.ipynb")
    lock = tmp_path / "s.events" / "LOCK"
    before = lock.read_bytes()
    refusal(tmp_path / "s.events")
    assert lock.read_bytes() == before
