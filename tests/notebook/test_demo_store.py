"""Two notebooks on the demo store: the second kernel's ``%allsource open`` reads it
read-only and says who writes it, in one line; any other held store is still refused."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import allsource_lab as asl
from allsource_lab.display import MIMETYPE, bundle
from allsource_lab.notebook import load_ipython_extension, unload_ipython_extension

# The first notebook's kernel: holds the store open for writing until killed.
FIRST_KERNEL = """
import sys, allsource_lab as asl
store = asl.open(sys.argv[1], fsync="interval")
store.append("order.placed", "order-1", {"amount": 10})
store.flush()
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    load_ipython_extension(ip)
    yield ip
    unload_ipython_extension(ip)
    ip.run_line_magic("reset", "-f")


@pytest.fixture
def first_kernel(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """The demo store, held for writing by the kernel of ``first.ipynb``."""
    path = tmp_path / "demo.events"
    env = dict(os.environ, JPY_SESSION_NAME=str(tmp_path / "first.ipynb"))
    proc = subprocess.Popen(
        [sys.executable, "-c", FIRST_KERNEL, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield path, proc.pid
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def doc(view: Any) -> dict[str, Any]:
    return bundle(view)[MIMETYPE]


def test_the_demo_store_held_by_another_kernel_opens_read_only_naming_it(
    shell, first_kernel, monkeypatch
):
    path, pid = first_kernel
    monkeypatch.setenv("ALLSOURCE_DEFAULT_STORE", str(path))
    monkeypatch.chdir(path.parent)
    opened = doc(shell.run_line_magic("allsource", "open"))
    assert opened["read_only"] is True and opened["events"] == 1
    note = opened["note"]
    assert note.startswith("opened read-only: ")
    assert f"open for writing by the notebook first.ipynb (process {pid})" in note
    assert "\n" not in note
    with pytest.raises(UsageError, match="read-only"):
        shell.run_line_magic("allsource", "append order.paid order-1 {}")


def test_the_demo_store_named_by_its_path_also_falls_back_to_read_only(
    shell, first_kernel, monkeypatch
):
    path, _ = first_kernel
    monkeypatch.setenv("ALLSOURCE_DEFAULT_STORE", str(path))
    assert doc(shell.run_line_magic("allsource", f"open {path}"))["read_only"] is True


def test_another_held_store_is_still_refused(shell, first_kernel, monkeypatch, tmp_path):
    path, pid = first_kernel
    monkeypatch.setenv("ALLSOURCE_DEFAULT_STORE", str(tmp_path / "some-other.events"))
    with pytest.raises(UsageError, match=f"StoreLocked: .*process {pid}"):
        shell.run_line_magic("allsource", f"open {path}")


def test_the_demo_store_nobody_else_holds_opens_for_writing(shell, tmp_path, monkeypatch):
    path = tmp_path / "demo.events"
    monkeypatch.setenv("ALLSOURCE_DEFAULT_STORE", str(path))
    opened = doc(shell.run_line_magic("allsource", "open"))
    assert opened["read_only"] is False and opened["note"] is None
    shell.run_line_magic("allsource", "append order.placed order-1 {}")
    shell.run_line_magic("allsource", "close")
    with asl.open(path, read_only=True) as store:
        assert store.stats()["events"] == 1
