"""Durable subscriptions: catch-up then live, in order, at least once, across restarts."""

from __future__ import annotations

import gc
import itertools
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

import allsource_lab as asl
from allsource_lab.events import Event
from allsource_lab.subscriptions import KIND
from tests.conftest import open_after_crash

WAIT_S = 10.0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    """Poll ``condition`` until it holds; fail (never hang) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def fill(store: asl.EventStore, n: int, event_type: str = "tick") -> None:
    store.append_batch(
        [
            {"event_type": event_type, "entity_id": f"e{i % 7}", "payload": {"i": i}}
            for i in range(n)
        ]
    )


def stored_cursor(store: asl.EventStore, name: str) -> int | None:
    bodies, _ = store._storage.load_states(KIND)
    body = bodies.get(name)
    return None if body is None else int(orjson.loads(body)["cursor"])


class Recorder:
    """A handler that records sequences and checks that deliveries never overlap."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.events: list[Event] = []
        self._active = 0
        self.overlapped = False

    def __call__(self, event: Event) -> None:
        self._active += 1
        if self._active > 1:
            self.overlapped = True
        self.seen.append(event.sequence)
        self.events.append(event)
        self._active -= 1


# -- delivery order, both modes ------------------------------------------------------------


@pytest.mark.parametrize("delivery", ["background", "sync"])
def test_delivers_stored_events_then_new_ones_in_order(store_factory: Any, delivery: str) -> None:
    store = store_factory()
    fill(store, 30)
    rec = Recorder()
    sub = store.subscribe("s", rec, delivery=delivery, batch_size=8)
    if delivery == "sync":
        assert rec.seen == list(range(1, 31))  # catch-up happened inside subscribe()
    for i in range(10):
        store.append("live", "x", {"i": i})
    fill(store, 5)
    wait_until(lambda: len(rec.seen) >= 45, "45 deliveries")
    assert rec.seen == list(range(1, 46))
    assert [e.event_type for e in rec.events[30:40]] == ["live"] * 10
    assert rec.events[31].payload == {"i": 1}
    assert sub.position == 45
    assert sub.lag == 0
    assert sub.status == "running"


@pytest.mark.parametrize("delivery", ["background", "sync"])
def test_appends_from_many_threads_are_delivered_once_each_in_order(delivery: str) -> None:
    store = asl.open()
    rec = Recorder()
    undelivered_on_return: list[int] = []
    sub = store.subscribe("s", rec, delivery=delivery)

    def writer(k: int) -> None:
        for i in range(150):
            ev = store.append("t", f"w{k}", {"i": i})
            # A sync subscription has delivered an event when its append returns.
            if delivery == "sync" and ev.sequence > sub.position:
                undelivered_on_return.append(ev.sequence)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    wait_until(lambda: len(rec.seen) >= 600, "600 deliveries")
    assert rec.seen == list(range(1, 601))
    assert not rec.overlapped
    assert undelivered_on_return == []
    store.close()


def test_sync_handler_that_appends_gets_its_own_events_after_the_current_one() -> None:
    store = asl.open()
    seen: list[tuple[int, str]] = []

    def handler(event: Event) -> None:
        seen.append((event.sequence, event.event_type))
        if event.event_type == "order.placed":
            store.append("order.checked", event.entity_id, {})

    store.subscribe("s", handler, delivery="sync")
    store.append("order.placed", "o-1", {})
    store.append("order.placed", "o-2", {})
    assert seen == [
        (1, "order.placed"),
        (2, "order.checked"),
        (3, "order.placed"),
        (4, "order.checked"),
    ]


# -- what is delivered -------------------------------------------------------------------


def test_event_types_filter_delivers_only_those_and_moves_past_the_rest(
    store_factory: Any,
) -> None:
    store = store_factory()
    for i in range(6):
        store.append("a" if i % 2 else "b", "x", {"i": i})
    rec = Recorder()
    sub = store.subscribe("only-a", rec, event_types="a", delivery="sync")
    assert rec.seen == [2, 4, 6]
    store.append("b", "x", {})
    assert sub.position == 7  # moved past the "b" it did not deliver
    sub.pause()
    store.append("b", "x", {})
    store.append("a", "x", {})
    store.append("c", "x", {})
    assert sub.lag == 1  # only what it would deliver
    sub.resume()
    assert rec.seen == [2, 4, 6, 9]
    both = Recorder()
    store.subscribe("a-and-c", both, event_types=["a", "c", "a"], delivery="sync")
    assert both.seen == [2, 4, 6, 9, 10]  # each once, though "a" was named twice


def test_start_end_delivers_only_events_appended_afterwards(store_factory: Any) -> None:
    store = store_factory()
    fill(store, 5)
    rec = Recorder()
    sub = store.subscribe("s", rec, start="end", delivery="sync")
    assert rec.seen == []
    assert (sub.position, sub.lag) == (5, 0)
    store.append("t", "x", {})
    assert rec.seen == [6]


def test_start_int_is_the_first_sequence_delivered(store_factory: Any) -> None:
    store = store_factory()
    fill(store, 5)
    rec = Recorder()
    store.subscribe("s", rec, start=3, delivery="sync")
    assert rec.seen == [3, 4, 5]
    later = Recorder()
    store.subscribe("ahead", later, start=8, delivery="sync")
    fill(store, 4)
    assert later.seen == [8, 9]


def test_a_stored_cursor_wins_over_start(store_factory: Any) -> None:
    store = store_factory()
    fill(store, 4)
    rec = Recorder()
    first = store.subscribe("s", rec, delivery="sync")
    first.close()
    fill(store, 3)
    again = store.subscribe("s", rec, start="end", delivery="sync")
    assert rec.seen == list(range(1, 8))
    assert again.position == 7


def test_a_new_cursor_is_stored_at_once(tmp_path: Path) -> None:
    # start="end" places the cursor when subscribing: events appended while the
    # subscription is not open are still delivered to it afterwards.
    path = tmp_path / "s.events"
    with asl.open(path) as store:
        fill(store, 3)
        store.subscribe("s", Recorder(), start="end")
    with asl.open(path) as store:
        fill(store, 2)
    with asl.open(path) as store:
        rec = Recorder()
        store.subscribe("s", rec, start="end", delivery="sync")
        assert rec.seen == [4, 5]


# -- durability ----------------------------------------------------------------------------


@pytest.mark.parametrize("delivery", ["background", "sync"])
def test_resumes_after_reopen_from_the_stored_cursor(tmp_path: Path, delivery: str) -> None:
    path = tmp_path / "s.events"
    rec = Recorder()
    with asl.open(path) as store:
        fill(store, 25)
        sub = store.subscribe("s", rec, delivery=delivery, batch_size=10)
        wait_until(lambda: sub.position == 25, "catch-up")
        store.append("t", "x", {})
        wait_until(lambda: sub.position == 26, "the live event")
        # store.close() (on leaving the with block) closes the subscription.
    assert sub.status == "closed"
    with asl.open(path) as store:
        assert stored_cursor(store, "s") == 26
        fill(store, 4)
        sub = store.subscribe("s", rec, delivery=delivery)
        wait_until(lambda: sub.position == 30, "resumed delivery")
    assert rec.seen == list(range(1, 31))  # nothing lost, nothing repeated on clean close


def test_sync_delivery_writes_the_cursor_every_batch_size_events(tmp_path: Path) -> None:
    path = tmp_path / "s.events"
    with asl.open(path) as store:
        sub = store.subscribe("s", Recorder(), delivery="sync", batch_size=3)
        for i in range(7):
            store.append("t", "x", {"i": i})
            assert stored_cursor(store, "s") == [0, 0, 3, 3, 3, 6, 6][i]
        assert sub.position == 7
        sub.pause()  # pausing (like stopping or closing) writes it
        assert stored_cursor(store, "s") == 7


# Subscribes (background delivery) and appends until killed. The handler writes each
# delivered sequence to a log and fsyncs it before returning: a line is an acknowledgement.
CHILD = """
import os, sys, time
import allsource_lab as asl

path, log, batch, pause_s = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
store = asl.open(path)  # fsync="interval": a cursor must wait for the WAL
fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

def handler(event):
    os.write(fd, b"%d\\n" % event.sequence)
    os.fsync(fd)
    time.sleep(pause_s)

store.subscribe("mirror", handler, batch_size=batch)
while True:
    store.append("tick", "clock", {"at": time.time()})
    time.sleep(0.001)
"""


@pytest.mark.parametrize(
    ("phase", "stored", "pause_s", "kill_at"),
    [
        # Killed amid catch-up batches (a slow handler: ~2 s to catch up on 5000).
        ("catch-up", 5000, 0.0005, 700),
        # Killed amid live delivery, where the newest events are not yet fsynced.
        ("live", 300, 0.0, 800),
    ],
)
def test_acknowledged_progress_survives_kill_9(
    tmp_path: Path, phase: str, stored: int, pause_s: float, kill_at: int
) -> None:
    path = tmp_path / "s.events"
    log = tmp_path / "delivered.log"
    batch = 50
    with asl.open(path) as store:
        fill(store, stored)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(log), str(batch), str(pause_s)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def far_enough() -> bool:
            if child.poll() is not None:
                assert child.stderr is not None
                pytest.fail(f"the child died: {child.stderr.read().decode()[-2000:]}")
            return log.exists() and log.read_bytes().count(b"\n") >= kill_at

        wait_until(far_enough, f"the child to deliver {kill_at} events", timeout=60)
        child.send_signal(signal.SIGKILL)
        child.wait(WAIT_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(WAIT_S)
        if child.stderr is not None:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    text = log.read_bytes()
    before = [int(x) for x in text[: text.rfind(b"\n") + 1].split()]
    acked = before[-1]
    assert before == list(range(1, acked + 1))  # in order, no gap, none twice
    if phase == "catch-up":
        assert acked < stored  # the kill did land mid catch-up

    with open_after_crash(path) as store:
        head = store.feed.head()
        cursor = stored_cursor(store, "mirror")
        assert cursor is not None
        # Never past an acknowledgement nor past the durable log (sequences after it are
        # reused by new events, which a cursor there would skip); never behind the batch
        # that was under way (the cursor is written after each batch).
        assert acked - batch <= cursor <= min(acked, head)
        rec = Recorder()
        sub = store.subscribe("mirror", rec, delivery="sync")
        assert not [p for p in store.recovery_problems if "subscription" in p]
        assert sub.position == head
    # Resumed right after the cursor: at or before the first unacknowledged event.
    assert rec.seen == list(range(cursor + 1, head + 1))
    assert set(before) | set(rec.seen) >= set(range(1, head + 1))


def test_a_damaged_cursor_delivers_again_from_the_beginning(tmp_path: Path) -> None:
    path = tmp_path / "s.events"
    with asl.open(path) as store:
        fill(store, 3)
        store.subscribe("s", Recorder(), delivery="sync")
    (state,) = (path / KIND).glob("*.state")
    state.write_bytes(b"not a record")
    with asl.open(path) as store:
        rec = Recorder()
        store.subscribe("s", rec, start="end", delivery="sync")
        assert rec.seen == [1, 2, 3]  # again rather than never
        assert any("'s' is damaged" in p for p in store.recovery_problems)
    with asl.open(path) as store:
        assert stored_cursor(store, "s") == 3  # written again


def test_read_only_store_keeps_the_cursor_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "s.events"
    with asl.open(path) as store:
        fill(store, 5)
        store.subscribe("s", Recorder(), delivery="sync", start=1).close()
        fill(store, 3)
    with asl.open(path, read_only=True) as store:
        rec = Recorder()
        sub = store.subscribe("s", rec, delivery="sync")
        assert rec.seen == [6, 7, 8]
        sub.close()
        again = Recorder()
        store.subscribe("s", again, delivery="sync")
        assert again.seen == []  # the session remembers
    with asl.open(path) as store:
        assert stored_cursor(store, "s") == 5  # the disk was not touched


# -- failures ----------------------------------------------------------------------------


def test_failing_handler_is_retried_with_backoff_then_stops(store_factory: Any) -> None:
    store = store_factory()
    fill(store, 5)
    seen: list[int] = []
    attempts: list[float] = []
    broken = True

    def handler(event: Event) -> None:
        if event.sequence == 3 and broken:
            attempts.append(time.monotonic())
            raise RuntimeError("downstream is down")
        seen.append(event.sequence)

    sub = store.subscribe("s", handler, max_retries=2, backoff=0.02)
    wait_until(lambda: sub.status == "stopped", "the subscription to stop")
    assert len(attempts) == 3  # the first call and two retries
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.02 * 0.8
    assert gaps[1] >= 0.04 * 0.8  # doubled
    assert isinstance(sub.error, RuntimeError)
    assert sub.failed_event is not None and sub.failed_event.sequence == 3
    assert sub.position == 2
    assert stored_cursor(store, "s") == 2
    assert sub.lag == 3
    store.append("t", "x", {})  # a stopped subscription skips nothing meanwhile
    assert seen == [1, 2]

    broken = False
    sub.resume()
    wait_until(lambda: seen == [1, 2, 3, 4, 5, 6], "delivery from the failed event")
    assert (sub.status, sub.error, sub.failed_event) == ("running", None, None)


def test_sync_handler_failure_never_makes_append_raise(store_factory: Any) -> None:
    store = store_factory()
    seen: list[int] = []
    broken = True

    def handler(event: Event) -> None:
        if broken:
            raise ValueError("nope")
        seen.append(event.sequence)

    sub = store.subscribe("s", handler, delivery="sync", max_retries=1, backoff=0.0)
    ev = store.append("t", "x", {})  # returns: the write succeeded
    assert ev.sequence == 1
    assert sub.status == "stopped"
    assert sub.failed_event is not None and sub.failed_event.sequence == 1
    store.append("t", "x", {})
    assert sub.status == "stopped" and seen == []
    broken = False
    sub.resume()  # a sync subscription delivers inside resume()
    assert seen == [1, 2]
    store.append("t", "x", {})
    assert seen == [1, 2, 3]


def test_pause_cuts_a_retry_backoff_short() -> None:
    store = asl.open()
    attempts: list[int] = []

    def handler(event: Event) -> None:
        attempts.append(event.sequence)
        raise RuntimeError("always")

    store.append("t", "x", {})
    sub = store.subscribe("s", handler, max_retries=5, backoff=30.0)
    wait_until(lambda: len(attempts) == 1, "the first attempt")
    sub.pause()  # would wait out 30 s of backoff if it did not interrupt it
    assert sub.status == "paused"
    assert attempts == [1]
    assert sub.failed_event is None and sub.position == 0  # not given up, not skipped
    sub.close()
    assert attempts == [1]


# -- control -------------------------------------------------------------------------------


@pytest.mark.parametrize("delivery", ["background", "sync"])
def test_pause_holds_deliveries_and_resume_goes_on(store_factory: Any, delivery: str) -> None:
    store = store_factory()
    fill(store, 3)
    rec = Recorder()
    sub = store.subscribe("s", rec, delivery=delivery)
    wait_until(lambda: sub.position == 3, "catch-up")
    sub.pause()
    assert sub.status == "paused"
    fill(store, 4)
    if delivery == "sync":
        assert rec.seen == [1, 2, 3]  # the appends did not deliver
    assert sub.lag == 4
    sub.resume()
    wait_until(lambda: sub.position == 7, "delivery after resume")
    assert rec.seen == list(range(1, 8))
    assert sub.lag == 0 and sub.status == "running"


def test_close_joins_the_thread_and_frees_the_name(store_factory: Any) -> None:
    store = store_factory()
    fill(store, 3)
    sub = store.subscribe("s", Recorder())
    thread = sub._thread
    assert thread is not None and thread.is_alive()
    with pytest.raises(ValueError, match="already open"):
        store.subscribe("s", Recorder())
    sub.close()
    assert sub.status == "closed"
    assert not thread.is_alive()
    assert "s" not in store.feed.subscriptions
    assert sub._on_append not in store._log.listeners
    sub.close()  # twice is fine
    with pytest.raises(ValueError, match="closed"):
        sub.resume()
    with pytest.raises(ValueError, match="closed"):
        sub.pause()
    again = store.subscribe("s", Recorder())
    assert again.status == "running"


def test_closing_the_store_closes_its_subscriptions(store_factory: Any) -> None:
    store = store_factory()
    subs = [store.subscribe(f"s{i}", Recorder()) for i in range(3)]
    threads = [s._thread for s in subs]
    store.close()
    assert [s.status for s in subs] == ["closed"] * 3
    assert not any(t is not None and t.is_alive() for t in threads)
    assert store.feed.subscriptions == {}
    with pytest.raises(asl.StorageError, match="closed"):
        store.subscribe("late", Recorder())


def test_a_dropped_store_closes_its_subscriptions() -> None:
    # The subscription holds its store weakly, so its thread does not keep it alive.
    store = asl.open()
    sub = store.subscribe("s", Recorder())
    thread = sub._thread
    del store
    gc.collect()
    wait_until(lambda: sub.status == "closed", "the store's collection to close it")
    assert thread is not None and not thread.is_alive()


def test_a_handler_may_close_its_own_subscription() -> None:
    store = asl.open()
    fill(store, 5)
    seen: list[int] = []
    subs: list[Any] = []
    ready = threading.Event()

    def handler(event: Event) -> None:
        ready.wait(WAIT_S)  # until subs[0] is set
        seen.append(event.sequence)
        if event.sequence == 2:
            subs[0].close()

    subs.append(store.subscribe("s", handler))
    ready.set()
    thread = subs[0]._thread
    wait_until(lambda: not thread.is_alive(), "the thread to end")
    assert seen == [1, 2]  # nothing after close()
    assert subs[0].status == "closed" and subs[0].position == 2
    assert stored_cursor(store, "s") == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"name": ""}, ValueError, "non-empty name"),
        ({"name": 7}, TypeError, "must be a str"),
        ({"handler": "print"}, TypeError, "callable"),
        ({"start": "middle"}, ValueError, "beginning"),
        ({"start": 0}, ValueError, "int >= 1"),
        ({"start": True}, ValueError, "int >= 1"),
        ({"batch_size": 0}, ValueError, "batch_size must be an int >= 1"),
        ({"batch_size": 2.5}, ValueError, "batch_size"),
        ({"delivery": "eager"}, ValueError, '"background" or "sync"'),
        ({"max_retries": -1}, ValueError, "max_retries must be an int >= 0"),
        ({"backoff": -0.1}, ValueError, "backoff"),
        ({"backoff": float("nan")}, ValueError, "backoff"),
        ({"event_types": []}, ValueError, "non-empty list"),
        ({"event_types": [""]}, ValueError, "non-empty str"),
        ({"event_types": 5}, TypeError, "event_types"),
    ],
)
def test_bad_arguments_say_what_is_accepted(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    store = asl.open()
    args: dict[str, Any] = {"name": "s", "handler": Recorder(), **kwargs}
    with pytest.raises(error, match=message):
        store.subscribe(**args)
    assert store.feed.subscriptions == {}
    assert store._log.listeners == []
