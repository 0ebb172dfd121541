"""Everything at once on one folder store: writers (append and append_batch), a background
replay, a live projection, a subscription and readers (events, state, sql, window), with
checkpoints every few hundred events and a compaction midway. Afterwards the store equals
a model of what was acknowledged, and no reader ever saw a torn state.

A watchdog fails the test with every thread's stack instead of hanging.
"""

from __future__ import annotations

import faulthandler
import random
import tempfile
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import allsource_lab as asl
from allsource_lab.events import Event

JOIN_GRACE_S = 30.0
ALL_READS = ["entity", "state", "listing", "sql", "window"]


class Run:
    """What the threads share: a stop flag, the first failure, and the model."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.failures: list[str] = []
        self.acked: dict[Any, tuple[str, int]] = {}  # event_id -> (entity, n)
        self.acked_count = 0
        self.reads = defaultdict(int)

    def fail(self, what: str) -> None:
        with self.lock:
            self.failures.append(what)
        self.stop.set()

    def thread(self, name: str, body: Callable[[], None]) -> threading.Thread:
        def guarded() -> None:
            try:
                while not self.stop.is_set():
                    body()
            except Exception:
                self.fail(f"{name}: {traceback.format_exc()}")

        return threading.Thread(target=guarded, name=name, daemon=True)


def writer_singles(store: asl.EventStore, run: Run, entities: list[str]) -> Callable[[], None]:
    """Appends to its own entities, each payload carrying the version it must get."""
    next_n = dict.fromkeys(entities, 1)
    rnd = random.Random(1)

    def body() -> None:
        entity = rnd.choice(entities)
        n = next_n[entity]
        expected = n - 1 if rnd.random() < 0.5 else None
        event = store.append("tick", entity, {"n": n}, expected_version=expected)
        if event.version != n:
            run.fail(f"{entity}: got version {event.version}, expected {n}")
        next_n[entity] = n + 1
        with run.lock:
            run.acked[event.event_id] = (entity, n)
            run.acked_count += 1

    return body


def writer_batches(store: asl.EventStore, run: Run, entities: list[str]) -> Callable[[], None]:
    next_n = dict.fromkeys(entities, 1)
    rnd = random.Random(2)

    def body() -> None:
        rows, meta = [], []
        for _ in range(rnd.randint(1, 40)):
            entity = rnd.choice(entities)
            n = next_n[entity]
            next_n[entity] = n + 1
            rows.append({"event_type": "tock", "entity_id": entity, "payload": {"n": n}})
            meta.append((entity, n))
        result = store.append_batch(rows)
        got = store.events(after=result.first_sequence - 1, limit=result.count).to_arrow()
        ids = got.column("event_id").to_pylist()
        with run.lock:
            for eid, model in zip(ids, meta, strict=True):
                run.acked[eid] = model
            run.acked_count += len(rows)

    return body


def reader(
    store: asl.EventStore, run: Run, entities: list[str], seed: int, kinds: list[str]
) -> Callable[[], None]:
    """Reads every way in ``kinds``; what it saw may only grow."""
    rnd = random.Random(seed)
    seen_version: dict[str, int] = defaultdict(int)
    seen = {"sql": 0, "window": 0, "events": 0}

    def body() -> None:
        kind = rnd.choice(kinds)
        entity = rnd.choice(entities)
        if kind == "entity":
            rows = store.events(entity_id=entity).to_arrow().to_pylist()
            versions = [r["version"] for r in rows]
            if versions != list(range(1, len(versions) + 1)):
                run.fail(f"{entity}: versions {versions[:10]}... have a gap")
            if len(versions) < seen_version[entity]:
                run.fail(f"{entity}: {len(versions)} events after {seen_version[entity]}")
            seen_version[entity] = max(seen_version[entity], len(versions))
        elif kind == "state":
            try:
                n = store.state(entity)["n"]
            except asl.NotFound:
                n = 0
            if n < seen_version[entity]:
                run.fail(f"{entity}: state at n={n} after version {seen_version[entity]}")
            seen_version[entity] = max(seen_version[entity], n)
        elif kind == "listing":
            after = rnd.randint(0, max(0, seen["events"] - 500))
            seqs = store.events(after=after, limit=500).to_arrow().column("sequence").to_pylist()
            if seqs != list(range(after + 1, after + 1 + len(seqs))):
                run.fail(f"events(after={after}) has a gap: {seqs[:5]}...")
            seen["events"] = max(seen["events"], after + len(seqs))
        elif kind == "sql":
            query = "select count(*), coalesce(max(sequence), 0) from events"
            count, top = store.sql(query).fetchall()[0]
            if count != top or count < seen["sql"]:
                run.fail(f"sql saw {count} events up to {top} after {seen['sql']}")
            seen["sql"] = count
        else:
            frame = store.window(every="1h")
            total = int(frame["count"].sum()) if len(frame) else 0
            if total < seen["window"]:
                run.fail(f"window counted {total} after {seen['window']}")
            seen["window"] = total
        with run.lock:
            run.reads[kind] += 1

    return body


def dump_stacks() -> str:
    with tempfile.TemporaryFile("w+") as out:
        faulthandler.dump_traceback(out, all_threads=True)
        out.seek(0)
        return out.read()


def join_or_fail(threads: list[threading.Thread], deadline: float) -> None:
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    if stuck:
        pytest.fail(f"threads {stuck} did not finish in time; every stack:\n{dump_stacks()}")


@pytest.mark.parametrize(
    "duration_s",
    [
        pytest.param(10, id="10s"),
        pytest.param(120, id="120s", marks=[pytest.mark.slow, pytest.mark.timeout(400)]),
    ],
)
def test_concurrent_writers_readers_replay_and_subscription_match_the_model(
    tmp_path: Path, duration_s: float
) -> None:
    path = tmp_path / "load.events"
    store = asl.open(path, fsync="interval", checkpoint_every_events=700)
    run = Run()
    live = store.projections.add(asl.EventCounter())
    delivered: list[Event] = []
    sub = store.subscribe("load", delivered.append, start="beginning", batch_size=200)
    singles = [f"s{i}" for i in range(8)]
    batched = [f"b{i}" for i in range(8)]
    threads = [
        run.thread("append", writer_singles(store, run, singles)),
        run.thread("append_batch", writer_batches(store, run, batched)),
        run.thread("reader-1", reader(store, run, singles + batched, 3, ALL_READS)),
        run.thread("reader-2", reader(store, run, singles + batched, 4, ALL_READS)),
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    jobs = []
    compacted = None
    while time.monotonic() - started < duration_s and not run.stop.is_set():
        time.sleep(0.2)
        if not jobs or jobs[-1].status not in ("pending", "running"):
            jobs.append(store.replay(asl.EntitySnapshots(), batch_size=500))
        if compacted is None and time.monotonic() - started > duration_s / 2:
            compacted = store.compact()
    run.stop.set()
    join_or_fail(threads, time.monotonic() + JOIN_GRACE_S)
    for job in jobs:
        if not job.wait(JOIN_GRACE_S):
            pytest.fail(f"replay {job} did not finish; every stack:\n{dump_stacks()}")
    assert not run.failures, "\n".join(run.failures)
    assert compacted is not None and compacted["segments"] >= 2

    # Every acknowledged event is stored exactly once, each entity's versions are gapless
    # and every payload holds the version it was written for.
    table = store.events().to_arrow()
    rows = table.to_pylist()
    assert [r["sequence"] for r in rows] == list(range(1, len(rows) + 1))
    assert len(rows) == run.acked_count == len(run.acked)
    by_id = {r["event_id"]: r for r in rows}
    assert len(by_id) == len(rows)
    versions: dict[str, list[int]] = defaultdict(list)
    for eid, (entity, n) in run.acked.items():
        row = by_id[eid]
        assert (row["entity_id"], row["version"]) == (entity, n)
        versions[entity].append(n)
    for entity, got in versions.items():
        assert sorted(got) == list(range(1, len(got) + 1)), entity

    # The subscription got every event, in order, at least once.
    last = len(rows)
    deadline = time.monotonic() + JOIN_GRACE_S
    while sub.position < last:
        if time.monotonic() > deadline or sub.error is not None:
            pytest.fail(f"subscription at {sub.position} of {last} ({sub.error}):\n{dump_stacks()}")
        time.sleep(0.01)
    sub.close()
    firsts = list(dict.fromkeys(e.sequence for e in delivered))
    assert firsts == list(range(1, last + 1))

    # Replays equal a fresh replay of the same events; the live projection equals one of all.
    finished = [job for job in jobs if job.status == "done"]
    assert finished, [job.status for job in jobs]
    for job in finished[-3:]:
        upto = job.progress.total
        fresh = store.replay(asl.EntitySnapshots(), until=upto + 1, background=False).result
        assert job.result.state() == fresh.state()
    counted = store.replay(asl.EventCounter(), background=False).result
    assert live.state() == counted.state()
    assert counted.state()["total"] == last

    report = store.verify()
    assert report.ok, report.problems
    assert all(run.reads[k] for k in ("entity", "state", "listing", "sql", "window")), run.reads
    store.close()
    with asl.open(path) as again:
        assert again.events().to_arrow().equals(table)
        assert again.verify().ok
