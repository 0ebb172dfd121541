"""One writer per folder, readers alongside, and threads that share one store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import allsource_lab as asl

HOLDER = """
import sys, time, allsource_lab as asl
s = asl.open(sys.argv[1], fsync="always")
for i in range(5):
    s.append("t", "e", {"i": i})
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path: Path):
    path = tmp_path / "s.events"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    yield path, proc
    proc.kill()
    proc.wait()
    proc.stdout.close()


def test_second_writer_process_gets_store_locked_with_the_holders_pid(holder):
    path, proc = holder
    script = (
        "import sys, allsource_lab as asl\n"
        "try:\n    asl.open(sys.argv[1])\n"
        "except asl.StoreLocked as e:\n    print('LOCKED', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.startswith("LOCKED") and str(proc.pid) in out


def test_same_process_second_open_is_locked_too(tmp_path):
    path = tmp_path / "s.events"
    with asl.open(path), pytest.raises(asl.StoreLocked):
        asl.open(path)


def test_read_only_open_works_beside_the_writer(holder):
    path, _ = holder
    reader = asl.open(path, read_only=True)
    try:
        assert [e.payload["i"] for e in reader.events()] == [0, 1, 2, 3, 4]
        with pytest.raises(asl.StorageError, match="read_only"):
            reader.append("t", "e", {})
        with pytest.raises(asl.StorageError, match="read_only"):
            reader.append_batch([{"event_type": "t", "entity_id": "e", "payload": {}}])
    finally:
        reader.close()


def test_a_killed_writers_lock_is_released(holder):
    path, proc = holder
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with asl.open(path) as store:
        assert store.stats()["events"] == 5
        assert store.append("t", "e", {}).version == 6


def test_read_only_open_of_a_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(asl.StorageError, match="not a store"):
        asl.open(tmp_path / "nothing", read_only=True)


def hammer(store: asl.EventStore, threads: int = 8, rounds: int = 150) -> None:
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(rounds):
                if i % 10 == 0:
                    store.append_batch(
                        [
                            {"event_type": "b", "entity_id": f"e{j % 3}", "payload": {"t": t}}
                            for j in range(5)
                        ]
                    )
                else:
                    store.append("s", f"e{(t + i) % 3}", {"t": t, "i": i})
                if i == 75 and t == 0:
                    store.checkpoint()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    assert not errors, errors


def assert_clean_log(store: asl.EventStore, expected: int) -> None:
    table = store.events().to_arrow()
    assert table.column("sequence").to_pylist() == list(range(1, expected + 1))
    ids = table.column("event_id").to_pylist()
    assert len(set(ids)) == expected
    versions: dict[str, int] = {}
    for entity, version in zip(
        table.column("entity_id").to_pylist(), table.column("version").to_pylist(), strict=True
    ):
        versions[entity] = versions.get(entity, 0) + 1
        assert version == versions[entity]
    assert store.verify().ok


@pytest.mark.parametrize("fsync", ["always", "interval"])
def test_threads_appending_concurrently_leave_a_gapless_log(tmp_path, fsync):
    expected = 8 * (135 + 15 * 5)
    path = tmp_path / "s.events"
    store = asl.open(path, fsync=fsync, checkpoint_every_events=400)
    hammer(store)
    assert_clean_log(store, expected)
    store.close()
    with asl.open(path) as again:
        assert_clean_log(again, expected)


def test_threads_on_a_memory_store_leave_a_gapless_log():
    store = asl.open(checkpoint_every_events=400)
    hammer(store)
    assert_clean_log(store, 8 * (135 + 15 * 5))
