"""A real ``allsource serve`` on loopback, in a subprocess, for the server's tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

import allsource_lab as asl


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_store(path: Path) -> Path:
    """A new, empty store folder."""
    asl.open(path).close()
    return path


class Server:
    """One server process; ``url`` to reach it, ``stop()`` (SIGINT) or ``kill()`` (-9)."""

    def __init__(self, args: list[str], host: str = "127.0.0.1") -> None:
        self.port = free_port()
        self.args = args
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "allsource_lab.cli", "serve", *args]
        command += ["--host", host, "--port", str(self.port)]
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"allsource-serve-{self.port}.log"
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(command, stdout=self._log_file, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the server did not start: {self.log.read_text()}")

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()  # SIGKILL: no clean-up at all
            self.process.wait()
        self._log_file.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers with ``serve(*args, host=...)``; all are stopped after the test."""
    started: list[Server] = []

    def start(*args: str, host: str = "127.0.0.1") -> Server:
        server = Server(list(args), host)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return make_store(tmp_path / "shop.events")
