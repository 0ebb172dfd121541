"""Followers in a reader: what listens on a read-only store hears its writer's events.

A subscription, a live projection, a pipeline and the live-tail widget on a store opened
with ``read_only=True`` must each get every event the folder's writer appends after they
start, in sequence order and exactly once, whichever way the events reach the folder:
WAL records (single appends and batches), segments (automatic and explicit checkpoints,
whose WAL the writer trims), a compaction (which merges the segments), WAL rotation (small
``wal_segment_bytes``) and a writer that closes and opens again.

The writer shares this process (a read-only open takes no lock); nothing here reads the
reader's store while waiting, so what the followers get comes from the reader's own
polling thread (``Settings.follow_interval_s``), not from a read's check. Every wait has
a deadline and asks only whether the followers have the events yet.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import allsource_lab as asl
from allsource_lab.notebook import widgets
from allsource_lab.projections import EventBatch

WRITER: dict[str, Any] = {
    "checkpoint_every_events": 50,
    "wal_segment_bytes": 4096,
    "fsync": "always",
}
TYPES = ("made", "moved", "paid")
DEADLINE_S = 10.0


class Sequences(asl.Projection):
    """Records what it is fed: (sequence, event_id), in the order fed."""

    def reset(self) -> None:
        self.fed: list[tuple[int, str]] = []

    def apply(self, event: asl.Event) -> None:
        self.fed.append((event.sequence, str(event.event_id)))

    def apply_batch(self, batch: EventBatch) -> None:
        for event in batch:
            self.apply(event)

    def state(self, key: Any = None) -> Any:
        return list(self.fed)


def wait_until(what: str, ready: Callable[[], bool]) -> None:
    """Poll ``ready`` until it holds, failing after ``DEADLINE_S``."""
    deadline = time.monotonic() + DEADLINE_S
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE_S} s: {what}")
        time.sleep(0.005)


def rows(n: int, start: int, kinds: tuple[str, ...] = TYPES) -> list[dict[str, Any]]:
    return [
        {
            "event_type": kinds[(start + i) % len(kinds)],
            "entity_id": f"e{(start + i) % 7}",
            "payload": {"n": start + i, f"k{(start + i) % 3}": i},
        }
        for i in range(n)
    ]


class Followers:
    """The four followers of a reader, started at its head, and what each has got."""

    def __init__(self, reader: asl.EventStore) -> None:
        self.reader = reader
        self.start = reader.feed.head()
        self.heard: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        self.subscription = reader.subscribe("follow", self._hear, start="end")
        self.projection = reader.projections.add(Sequences("sequences"), start="now")
        self.snapshots = reader.projections.add(asl.EntitySnapshots(), start="beginning")
        self.pipeline = reader.pipelines.add(
            asl.Pipeline("positive", list(TYPES)).filter("payload.n", "ge", 0), start="now"
        )
        self.tail = widgets.live_tail(reader, rows=25)
        self.tail_shown: list[list[int]] = []  # every value `shown` took
        self.tail.observe(lambda change: self.tail_shown.append(list(change["new"])), "shown")

    def _hear(self, event: asl.Event) -> None:
        with self._lock:
            self.heard.append((event.sequence, str(event.event_id)))

    def pipeline_sequences(self) -> list[int]:
        results = self.reader.pipelines.results("positive")
        return [int(s) for s in results["sequence"]] if len(results) else []

    def have(self, head: int) -> bool:
        """Whether every follower has got every event through ``head``."""
        with self._lock:
            heard = self.heard[-1][0] if self.heard else self.start
        fed = self.projection.fed[-1][0] if self.projection.fed else self.start
        seqs = self.pipeline_sequences()
        piped = seqs[-1] if seqs else self.start
        return min(heard, fed, piped, self.tail.seen) >= head

    def check(self, writer: asl.EventStore) -> None:
        """Each follower got the writer's events after ``start``, in order, once."""
        table = writer.events(after=self.start).to_arrow()
        expected = [
            (s, str(e))
            for s, e in zip(
                table.column("sequence").to_pylist(),
                table.column("event_id").to_pylist(),
                strict=True,
            )
        ]
        head = writer.feed.head()
        assert expected and expected[-1][0] == head
        with self._lock:
            assert self.heard == expected, "the subscription"
        assert self.projection.fed == expected, "the live projection"
        assert self.pipeline_sequences() == [s for s, _ in expected], "the pipeline"
        # The live tail: it counts what came and shows the newest, newest first.
        assert self.tail.seen == head
        assert self.tail.received == len(expected)
        assert self.tail.shown == list(range(head, max(head - 25, 0), -1))
        for shown in self.tail_shown:
            assert shown == list(range(shown[0], shown[0] - len(shown), -1)) if shown else True
        # The projection that started at the beginning folds to the writer's states.
        for entity in {r["entity_id"] for r in writer.events().to_arrow().to_pylist()}:
            assert self.snapshots.state(entity) == writer.state(entity), entity

    def close(self) -> None:
        self.tail.close()
        self.subscription.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "s.events"


def test_followers_in_a_reader_hear_every_way_the_writer_writes(path: Path) -> None:
    writer = asl.open(path, **WRITER)
    writer.append_batch(rows(20, 0))
    reader = asl.open(path, read_only=True)
    followers = Followers(reader)
    try:
        assert followers.start == 20

        def step(what: str, *acts: Callable[[], object]) -> None:
            for act in acts:
                act()
            head = writer.feed.head()
            wait_until(f"followers hear {what} (through {head})", lambda: followers.have(head))
            followers.check(writer)

        n = 20
        segments = writer.stats()["segments"]

        def singles(count: int) -> None:
            nonlocal n
            for r in rows(count, n):
                writer.append(r["event_type"], r["entity_id"], r["payload"])
            n += count

        def batch(count: int) -> None:
            nonlocal n
            writer.append_batch(rows(count, n))
            n += count

        step("single appends in the WAL", lambda: singles(5))
        step("a batch in the WAL", lambda: batch(17))
        step("an automatic checkpoint", lambda: batch(60))
        # (The automatic checkpoint seals on a thread of its own.)
        wait_until("the automatic checkpoint", lambda: writer.stats()["segments"] > segments)
        step("an explicit checkpoint", lambda: singles(3), writer.checkpoint)
        wal_files = {p.name for p in (path / "wal").glob("*.wal")}
        step("WAL rotation", lambda: singles(120))
        assert {p.name for p in (path / "wal").glob("*.wal")} - wal_files, "no new WAL file"
        step("a compaction", lambda: batch(5), writer.compact)
        assert writer.stats()["segments"] == 1
        step("appends after the compaction", lambda: singles(4), lambda: batch(9))

        def restart() -> None:
            nonlocal writer
            writer.close()
            writer = asl.open(path, **WRITER)
            singles(6)

        step("a writer that closed and opened again", restart)
        # Many small writes racing the polling thread, across checkpoints and rotations.
        step(
            "a burst", *[(lambda: singles(3)) if i % 2 else (lambda: batch(11)) for i in range(40)]
        )
        assert reader.refresh() == 0  # the polling thread had it all
    finally:
        followers.close()
        reader.close()
        writer.close()


step = st.one_of(
    st.tuples(st.just("singles"), st.integers(1, 12)),
    st.tuples(st.just("batch"), st.integers(1, 80)),
    st.tuples(st.just("checkpoint"), st.just(0)),
    st.tuples(st.just("compact"), st.just(0)),
    st.tuples(st.just("reopen"), st.just(0)),
)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=st.lists(step, min_size=1, max_size=8), wait_every=st.integers(1, 4))
def test_followers_hear_random_histories(
    tmp_path_factory: pytest.TempPathFactory, history: list[tuple[str, int]], wait_every: int
) -> None:
    """Random writes, checkpoints, compactions and writer restarts, the followers left
    to catch up only every few steps (so that one catch-up meets several changes)."""
    path = tmp_path_factory.mktemp("followers") / "s.events"
    writer = asl.open(path, **WRITER)
    writer.append_batch(rows(3, 0))
    reader = asl.open(path, read_only=True)
    followers = Followers(reader)
    n = 3
    try:
        for i, (kind, count) in enumerate(history):
            if kind == "singles":
                for r in rows(count, n):
                    writer.append(r["event_type"], r["entity_id"], r["payload"])
                n += count
            elif kind == "batch":
                writer.append_batch(rows(count, n))
                n += count
            elif kind == "checkpoint":
                writer.checkpoint()
            elif kind == "compact":
                writer.compact()
            else:
                writer.close()
                writer = asl.open(path, **WRITER)
            if (i + 1) % wait_every == 0 or i == len(history) - 1:
                head = writer.feed.head()
                wait_until(f"followers hear through {head}", lambda: followers.have(head))  # noqa: B023
        writer.append("paid", "e1", {"n": n})
        head = writer.feed.head()
        wait_until(f"followers hear through {head}", lambda: followers.have(head))
        followers.check(writer)
    finally:
        followers.close()
        reader.close()
        writer.close()


def test_followers_started_in_a_reader_opened_before_any_segment(path: Path) -> None:
    """A reader opened on a folder whose events are all in the WAL, whose writer then
    seals and trims that WAL before the reader looks again: the followers get the
    events from the segment."""
    writer = asl.open(path, checkpoint_every_events=1_000_000, fsync="always")
    writer.append("made", "e0", {"n": 0})
    # A polling thread that does not look before the writer is done: refresh() does.
    reader = asl.open(path, read_only=True, follow_interval_s=3_600)
    followers = Followers(reader)
    try:
        writer.append_batch(rows(40, 1))
        writer.checkpoint()
        writer.append_batch(rows(40, 41))
        writer.checkpoint()
        writer.append("paid", "e3", {"n": 81})
        assert not list((path / "wal").glob("*.wal")) or all(
            p.stat().st_size < 200 for p in (path / "wal").glob("*.wal")
        ), "the WAL the reader never read is trimmed"
        assert reader.refresh() == 81
        head = writer.feed.head()
        wait_until(f"followers hear through {head}", lambda: followers.have(head))
        followers.check(writer)
    finally:
        followers.close()
        reader.close()
        writer.close()


def test_a_faster_follow_interval_is_used(path: Path) -> None:
    """``follow_interval_s`` set on the reader: a subscription hears a single append."""
    with asl.open(path, fsync="always") as writer:
        writer.append("made", "e0", {"n": 0})
        with asl.open(path, read_only=True, follow_interval_s=0.005) as reader:
            heard: list[int] = []
            sub = reader.subscribe("fast", lambda e: heard.append(e.sequence), start="end")
            try:
                for i in range(1, 21):
                    writer.append("made", "e0", {"n": i})
                    wait_until(f"event {i + 1} heard", lambda: heard[-1:] == [i + 1])  # noqa: B023
                assert heard == list(range(2, 22))
            finally:
                sub.close()


def test_a_read_sees_what_was_written_a_millisecond_before_it_even_after_a_long_catch_up(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read checks at most once a millisecond, which promises that it sees what the
    writer had written a millisecond before it. Here an event is written while a catch-up
    is under way, after it read the WAL, and the catch-up goes on 5 ms more: a read right
    after it must still look again."""
    from allsource_lab._store.following import Follower

    with asl.open(path, fsync="always") as writer, asl.open(path, read_only=True) as reader:
        writer.append("made", "e0", {"n": 0})
        follow_registry = Follower._follow_registry
        written: list[int] = []

        def slow_end(self: Follower) -> None:
            if not written:
                written.append(writer.append("made", "e1", {"n": 1}).sequence)
                time.sleep(0.005)
            follow_registry(self)

        monkeypatch.setattr(Follower, "_follow_registry", slow_end)
        assert reader.refresh() == 1  # event 1; event 2 is written during it
        assert written == [2]
        assert len(reader.events()) == 2  # event 2 was written 5 ms before this read


def test_a_read_waits_for_a_catch_up_under_way_on_another_thread(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The followers' polling thread (or any other reader thread) may be catching up
    when a read comes: the read must still see what the writer had written a
    millisecond before it, so it cannot answer before that catch-up is done."""
    from allsource_lab._store.following import Follower

    with asl.open(path, fsync="always") as writer:
        writer.append("made", "e0", {"n": 0})
        with asl.open(path, read_only=True) as reader:
            writer.append("made", "e1", {"n": 1})
            time.sleep(0.002)  # event 2 is now more than a millisecond old
            follow_log = Follower._follow_log
            entered, go_on = threading.Event(), threading.Event()

            def held(self: Follower, *, gap_allowed: bool) -> bool:
                entered.set()
                go_on.wait(1.0)
                return follow_log(self, gap_allowed=gap_allowed)

            monkeypatch.setattr(Follower, "_follow_log", held)
            other = threading.Thread(target=lambda: len(reader.events()))
            other.start()
            assert entered.wait(5)
            seen = len(reader.events())  # the other thread's catch-up is under way
            go_on.set()
            other.join()
            assert seen == 2


def test_the_live_tail_counts_each_event_once_when_events_come_during_its_read(
    path: Path,
) -> None:
    """In a reader, every read may take in the writer's news: the tail's count of what
    arrived must not count an event that came in between its reads twice. (A writable
    store whose events are appended by another thread during the tail's read is the
    same case; a read-only store meets it at every catch-up.)"""
    with asl.open(path, fsync="always") as writer:
        writer.append("made", "e0", {"n": 0})
        with asl.open(path, read_only=True) as reader:
            tail = widgets.live_tail(reader, rows=10)
            tail.paused = True  # only the poll() calls below read
            try:
                events = reader.events
                during: list[int] = []

                def events_with_a_writer_meanwhile(*args: Any, **kwargs: Any) -> Any:
                    # The tail's last read of a poll counts after what it had seen: the
                    # writer appends just before it, and the read takes that in.
                    if kwargs.get("after") == tail.seen and "limit" not in kwargs and not during:
                        during.append(writer.append("moved", "e1", {"n": 2}).sequence)
                        time.sleep(0.002)  # past the read check's millisecond
                    return events(*args, **kwargs)

                reader.events = events_with_a_writer_meanwhile  # type: ignore[method-assign]
                writer.append("made", "e1", {"n": 1})
                time.sleep(0.002)
                tail.poll()
                assert during == [3]
                tail.poll()
                assert tail.seen == 3
                assert tail.received == 2  # events 2 and 3, once each
            finally:
                tail.close()
