"""Replays: same state as the live projection, bounds, progress, cancel and failure roll back."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import allsource_lab as asl
from tests.features.test_projections import (
    Recorder,
    expected_counts,
    expected_states,
    history,
    split_names,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_replay_into_fresh_projections_equals_the_live_ones(store_factory):
    store = store_factory()
    live_counter = store.projections.add(asl.EventCounter())
    live_snaps = store.projections.add(asl.EntitySnapshots())
    history(store, 400, seed=21)
    for batch_size in (1, 7, 10_000):
        job = store.replay(asl.EventCounter(), batch_size=batch_size)
        assert job.wait(10)
        counter = job.result
        snaps = store.replay(asl.EntitySnapshots(), batch_size=batch_size, background=False)
        assert counter.state() == live_counter.state()
        assert snaps.result.state() == live_snaps.state() == expected_states(store)
        assert snaps.result.versions == live_snaps.versions


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 300), st.booleans())
def test_replay_equals_live_on_random_histories_with_reopen(tmp_path_factory, seed, n, reopen):
    path = tmp_path_factory.mktemp("replay")
    store = asl.open(path, checkpoint_every_events=97)
    store.projections.add(asl.EntitySnapshots())
    store.projections.add(asl.EventCounter())
    history(store, n, seed=seed)
    if reopen:
        store.close()
        store = asl.open(path)
        store.projections.add(asl.EntitySnapshots())
        store.projections.add(asl.EventCounter())
        history(store, n // 3 + 1, seed=seed + 1)
    live_snaps = store.projections["entity_snapshots"]
    live_counter = store.projections["event_counter"]
    snaps = store.replay(asl.EntitySnapshots(), batch_size=13, background=False).result
    counter = store.replay(asl.EventCounter(), background=False).result
    assert snaps.state() == live_snaps.state() == expected_states(store)
    assert counter.state() == live_counter.state() == expected_counts(store)
    store.close()


def timed_store() -> asl.EventStore:
    store = asl.open()
    for i in range(1, 21):
        # Event times out of order against sequences: even sequences are an hour earlier.
        at = T0 + dt.timedelta(minutes=i) - dt.timedelta(hours=i % 2 == 0)
        store.append("tick" if i % 3 else "tock", f"e{i % 4}", {"i": i}, timestamp=at)
    return store


def test_since_and_until_take_sequences_or_times_and_event_types_narrow():
    store = timed_store()
    seen = store.replay(Recorder(), since=5, until=9, background=False).result.seen
    assert seen == [5, 6, 7, 8]
    late = T0 + dt.timedelta(minutes=10)
    by_time = store.replay(Recorder(), since=late.isoformat(), background=False).result.seen
    assert by_time == [e.sequence for e in store.events(since=late)]
    early = store.replay(Recorder(), until=T0, background=False).result.seen
    assert early == [e.sequence for e in store.events(until=T0)]
    tocks = store.replay(Recorder(), event_types="tock", background=False).result.seen
    assert tocks == [3, 6, 9, 12, 15, 18]
    own = Recorder(event_types=["tock"])
    assert store.replay(own, event_types=["tick", "tock"], background=False).result.seen == tocks


def test_bad_replay_arguments_are_clear_errors():
    store = timed_store()
    with pytest.raises(TypeError, match="takes a Projection"):
        store.replay("counter")
    with pytest.raises(ValueError, match="batch_size"):
        store.replay(Recorder(), batch_size=0)
    with pytest.raises(ValueError, match=">= 1"):
        store.replay(Recorder(), since=0)
    with pytest.raises(ValueError, match="since"):
        store.replay(Recorder(), since=True)
    with pytest.raises(asl.InvalidEvent, match="since"):
        store.replay(Recorder(), since="not a time")
    with pytest.raises(ValueError, match="event_types"):
        store.replay(Recorder(), event_types=[""])


class Gate(asl.Projection):
    """Blocks in every batch until the test lets it go; can fail on a sequence."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.entered = threading.Semaphore(0)
        self.go = threading.Semaphore(0)
        super().__init__("gate")

    def reset(self) -> None:
        self.seen: list[int] = []

    def apply_batch(self, batch: asl.EventBatch) -> None:
        self.entered.release()
        assert self.go.acquire(timeout=10), "the test never let the batch go"
        for seq in batch.sequences.tolist():
            if seq == self.fail_at:
                raise RuntimeError(f"bad event {seq}")
            self.seen.append(seq)

    def state(self, key: Any = None) -> Any:
        return self.seen


def test_progress_and_cancel_rolls_back_to_the_state_before():
    store = timed_store()
    gate = Gate()
    gate.seen = [-1]  # a state from before the replay, to come back to
    job = store.replay(gate, batch_size=5)
    assert gate.entered.acquire(timeout=10)
    assert job.status == "running" and job.progress.total == 20
    gate.go.release()
    assert gate.entered.acquire(timeout=10)
    progress = job.progress
    assert progress.processed == 5 and progress.percent == 25.0
    assert progress.events_per_sec > 0 and progress.eta_s is not None
    job.cancel()
    gate.go.release()
    assert job.wait(10)
    assert job.status == "cancelled" and job.result is None
    assert gate.seen == [-1]
    assert "cancelled" in repr(job)


def test_a_failing_replay_is_failed_and_rolled_back():
    store = timed_store()
    gate = Gate(fail_at=7)
    for _ in range(10):
        gate.go.release()
    job = store.replay(gate, batch_size=5)
    assert job.wait(10)
    assert job.status == "failed" and "bad event 7" in str(job.error)
    assert gate.seen == []


def test_replaying_a_live_projection_pauses_it_and_then_it_goes_on(store):
    history(store, 50, seed=31)
    live = store.projections.add(Recorder())
    gate = Gate()
    gate.go.release()
    store.projections.add(gate)
    assert gate.entered.acquire(timeout=10)  # the catch-up batch (inside add)
    job = store.replay(gate, batch_size=100)
    assert gate.entered.acquire(timeout=10)  # the replay's batch
    assert store.projections.info("gate").status == "replaying"
    with pytest.raises(ValueError, match="still running"):
        store.replay(gate)
    gate.go.release()
    assert job.wait(10) and job.status == "done"
    for _ in range(10):
        gate.go.release()
    history(store, 10, seed=32)  # after the replay: fed live again, from where it ended
    assert gate.seen == list(range(1, 61)) == live.seen


def test_replays_are_listed_and_finished_ones_removed():
    store = timed_store()
    done = store.replay(asl.EventCounter(), background=False)
    gate = Gate()
    running = store.replay(gate)
    assert gate.entered.acquire(timeout=10)
    assert store.replays() == [done, running]
    with pytest.raises(ValueError, match="cancel"):
        store.remove_replay(running)
    store.remove_replay(done)
    assert store.replays() == [running]
    gate.go.release()
    running.wait(10)
    store.close()  # also cancels and waits for anything still running


def test_upcasters_apply_during_replay(store):
    split_names(store)
    store.append("user.joined", "u2", {"first": "Alan", "last": "Turing"})
    snaps = store.replay(asl.EntitySnapshots(), background=False).result
    assert snaps.state() == {
        "u1": {"first": "Ada", "last": "Lovelace"},
        "u2": {"first": "Alan", "last": "Turing"},
    }


def test_replay_of_an_empty_store_is_done_at_once():
    store = asl.open()
    job = store.replay(asl.EventCounter(), background=False)
    assert job.status == "done" and job.progress.percent == 100.0
    assert job.result.state("total") == 0
