"""Fixtures shared by the suite: the store contract runs on both storages."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import allsource_lab as asl

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(params=["memory", "folder"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """Opens stores of one kind; every store it opened is closed afterwards."""
    opened: list[asl.EventStore] = []
    path = tmp_path / "store.events"

    def factory(**settings: object) -> asl.EventStore:
        store = asl.open(None if request.param == "memory" else path, **settings)
        opened.append(store)
        return store

    factory.kind = request.param  # type: ignore[attr-defined]
    factory.path = path  # type: ignore[attr-defined]
    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(store_factory: object) -> asl.EventStore:
    return store_factory()  # type: ignore[operator]


@pytest.fixture
def run_without_jit() -> Callable[[str], None]:
    """Runs a Python script in a child with numba's JIT off; it must print exactly "ok"."""

    def run(script: str) -> None:
        env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr[-3000:]
        assert out.stdout.strip() == "ok"

    return run


def open_after_crash(path: Path | str, **settings: object) -> asl.EventStore:
    """Open a store whose writer was killed: a torn final WAL record (the kill landed
    mid-write, so it was never acknowledged) is cut off with a RecoveryWarning, expected
    here; anything else still raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", asl.RecoveryWarning)
        return asl.open(path, **settings)  # type: ignore[arg-type]
