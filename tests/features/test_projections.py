"""Live projections: catch-up, live updates, failures, durable positions, reopen, kill -9."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from typing import Any

import orjson
import pytest

import allsource_lab as asl
from allsource_lab.errors import NotFound
from tests.conftest import open_after_crash


def history(store: asl.EventStore, n: int, seed: int = 1, entities: int = 7) -> None:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        payload: dict[str, Any] = {"k": rnd.randint(0, 5), "i": i}
        if rnd.random() < 0.2:
            payload["k"] = None
        if rnd.random() < 0.3:
            payload["nested"] = {"a": rnd.randint(0, 3), "b": None if rnd.random() < 0.3 else 1}
        rows.append(
            {
                "event_type": rnd.choice(["a", "b", "c"]),
                "entity_id": f"e{rnd.randrange(entities)}",
                "payload": payload,
            }
        )
    for lo in range(0, n, 37):
        if rnd.random() < 0.5:
            store.append_batch(rows[lo : lo + 37])
        else:
            for row in rows[lo : lo + 37]:
                store.append(row["event_type"], row["entity_id"], row["payload"])


def expected_counts(store: asl.EventStore, types: set[str] | None = None) -> dict[str, Any]:
    events = [e for e in store.events() if types is None or e.event_type in types]
    return {
        "total": len(events),
        "by_type": dict(Counter(e.event_type for e in events)),
        "by_entity": dict(Counter(e.entity_id for e in events)),
    }


def expected_states(store: asl.EventStore) -> dict[str, dict[str, Any]]:
    return {eid: store.state(eid) for eid in {e.entity_id for e in store.events()}}


class Recorder(asl.Projection):
    """Durable: remembers every sequence applied, so a double application shows."""

    def __init__(self, name: str = "recorder", fail_at: int | None = None, **kw: Any) -> None:
        self.fail_at = fail_at
        super().__init__(name, **kw)

    def reset(self) -> None:
        self.seen: list[int] = []

    def apply(self, event: asl.Event) -> None:
        if event.sequence == self.fail_at:
            raise RuntimeError(f"cannot take {event.sequence}")
        self.seen.append(event.sequence)

    def state(self, key: Any = None) -> Any:
        return list(self.seen)

    def dump_state(self) -> Any:
        return self.seen

    def load_state(self, data: Any) -> None:
        self.seen = list(data)


class BatchRecorder(Recorder):
    """Applies whole batches (and may fail half way through one)."""

    def apply_batch(self, batch: asl.EventBatch) -> None:
        for seq in batch.sequences.tolist():
            if seq == self.fail_at:
                raise RuntimeError(f"cannot take {seq}")
            self.seen.append(seq)


def test_catch_up_then_live_updates_from_singles_and_batches(store_factory):
    store = store_factory()
    history(store, 150, seed=2)
    counter = store.projections.add(asl.EventCounter())
    snaps = store.projections.add(asl.EntitySnapshots())
    assert counter.state() == expected_counts(store)
    history(store, 200, seed=3)
    assert counter.state() == expected_counts(store)
    assert snaps.state() == expected_states(store)
    for eid, version in snaps.versions.items():
        assert version == len(store.events(entity_id=eid))


def test_start_now_and_a_sequence_and_event_types(store):
    history(store, 60, seed=4)
    head = store.feed.head()
    now = store.projections.add(Recorder("now"), start="now")
    from_ten = store.projections.add(Recorder("ten"), start=10)
    only_a = store.projections.add(asl.EventCounter("a-only", event_types="a"))
    history(store, 40, seed=5)
    assert now.seen == list(range(head + 1, store.feed.head() + 1))
    assert from_ten.seen == list(range(10, store.feed.head() + 1))
    assert only_a.state() == expected_counts(store, {"a"})


def test_bad_arguments_are_clear_errors(store):
    with pytest.raises(TypeError, match="takes a Projection"):
        store.projections.add(object())
    with pytest.raises(ValueError, match="start must be"):
        store.projections.add(Recorder(), start="yesterday")
    with pytest.raises(ValueError, match="start must be"):
        store.projections.add(Recorder(), start=0)
    store.projections.add(Recorder())
    with pytest.raises(ValueError, match="already added"):
        store.projections.add(Recorder())
    with pytest.raises(NotFound):
        store.projections["nope"]
    with pytest.raises(NotFound):
        store.projections.remove("nope")
    with pytest.raises(ValueError, match="non-empty name"):
        Recorder("")


@pytest.mark.parametrize("kind", [Recorder, BatchRecorder])
def test_a_failing_projection_stops_at_the_event_not_the_append(store, kind):
    history(store, 30, seed=6)
    rec = store.projections.add(kind(fail_at=45))
    other = store.projections.add(asl.EventCounter())
    history(store, 40, seed=7)  # appends go through although the projection raises
    assert store.feed.head() == 70
    info = store.projections.info("recorder")
    assert (info.status, info.failed_sequence, info.position) == ("stopped", 45, 44)
    assert "cannot take 45" in info.error and info.lag == 26
    assert rec.seen == list(range(1, 45))  # the half-applied batch was rolled back
    assert other.state("total") == 70  # the others go on
    rec.fail_at = None
    assert store.projections.resume("recorder").status == "running"
    assert rec.seen == list(range(1, 71))
    history(store, 5, seed=8)
    assert rec.seen == list(range(1, 76))


def test_a_failure_after_a_save_rolls_back_to_the_save(tmp_path):
    store = asl.open(tmp_path / "s")
    rec = store.projections.add(BatchRecorder(fail_at=25))
    history(store, 20, seed=9)
    assert store.projections.save() == 1
    history(store, 20, seed=10)
    assert rec.seen == list(range(1, 25))
    assert store.projections.info("recorder").position == 24
    store.close()


def test_remove_stops_feeding_and_forgets_the_saved_state(tmp_path):
    store = asl.open(tmp_path / "s")
    rec = store.projections.add(Recorder())
    history(store, 10)
    store.checkpoint()
    assert store.projections.remove("recorder") is rec
    history(store, 10, seed=2)
    assert rec.seen == list(range(1, 11)) and "recorder" not in store.projections
    store.close()
    store = asl.open(tmp_path / "s")
    again = store.projections.add(Recorder(), start="now")
    assert again.seen == []  # nothing saved under the name any more
    store.close()


def test_durable_projections_resume_after_reopen_without_applying_twice(tmp_path):
    store = asl.open(tmp_path / "s")
    rec = store.projections.add(Recorder())
    counter = store.projections.add(asl.EventCounter())
    history(store, 120, seed=11)
    store.close()  # saves states and positions
    store = asl.open(tmp_path / "s")
    rec = Recorder()
    rec.reset()
    # start is ignored: the saved position wins.
    store.projections.add(rec, start="now")
    counter = store.projections.add(asl.EventCounter())
    assert store.projections.info("recorder").position == 120
    history(store, 30, seed=12)
    assert rec.seen == list(range(1, 151))
    assert counter.state() == expected_counts(store)
    store.close()
    store = asl.open(tmp_path / "s")
    fresh = store.projections.add(Recorder(), start="now", resume=False)
    assert fresh.seen == []
    store.close()


def test_non_durable_projections_fold_again_from_their_start(tmp_path):
    class Plain(asl.Projection):
        def reset(self) -> None:
            self.n = 0

        def apply(self, event: asl.Event) -> None:
            self.n += 1

        def state(self, key: Any = None) -> Any:
            return self.n

    store = asl.open(tmp_path / "s")
    plain = store.projections.add(Plain("plain"))
    history(store, 50)
    assert plain.state() == 50 and not plain.durable
    store.close()
    store = asl.open(tmp_path / "s")
    assert store.projections.add(Plain("plain")).state() == 50
    store.close()


def test_a_damaged_saved_state_is_reported_and_rebuilt(tmp_path):
    store = asl.open(tmp_path / "s")
    store.projections.add(asl.EventCounter())
    history(store, 40)
    store.close()
    (saved,) = (tmp_path / "s" / "projections").glob("*.state")
    data = bytearray(saved.read_bytes())
    data[-3] ^= 0xFF
    saved.write_bytes(bytes(data))
    store = asl.open(tmp_path / "s")
    assert any("checksum" in p for p in store.recovery_problems)
    counter = store.projections.add(asl.EventCounter())
    assert counter.state() == expected_counts(store)
    store.close()


def test_batch_and_one_at_a_time_paths_agree(store):
    class OneByOne(asl.EntitySnapshots):
        def apply_batch(self, batch: asl.EventBatch) -> None:
            for event in batch:
                self.apply(event)

    class CountOneByOne(asl.EventCounter):
        def apply_batch(self, batch: asl.EventBatch) -> None:
            for event in batch:
                self.apply(event)

    history(store, 300, seed=13)
    fast = store.projections.add(asl.EntitySnapshots())
    slow = store.projections.add(OneByOne("slow"))
    fast_count = store.projections.add(asl.EventCounter())
    slow_count = store.projections.add(CountOneByOne("slow-count"))
    history(store, 100, seed=14)
    assert fast.state() == slow.state() == expected_states(store)
    assert fast.versions == slow.versions
    assert fast_count.state() == slow_count.state() == expected_counts(store)


def split_names(store: asl.EventStore) -> None:
    """u1 joined under schema v1 ({"name"}); v2 has first and last, and an upcaster."""
    store.schemas.register("user.joined", {"type": "object", "properties": {"name": {}}})
    store.append("user.joined", "u1", {"name": "Ada Lovelace"})
    store.schemas.register(
        "user.joined", {"type": "object", "properties": {"first": {}, "last": {}}}, "NONE"
    )

    @store.schemas.upcaster("user.joined", 1)
    def split(p: dict[str, Any]) -> dict[str, Any]:
        first, last = p.pop("name").split(" ")
        return {**p, "first": first, "last": last}


def test_projections_see_upcast_payloads(store):
    split_names(store)
    snaps = store.projections.add(asl.EntitySnapshots())
    assert snaps.state("u1") == {"first": "Ada", "last": "Lovelace"}


KILLED_WRITER = textwrap.dedent(
    """
    import sys, allsource_lab as asl
    store = asl.open(sys.argv[1], fsync="always", checkpoint_every_events=50)
    store.projections.add(asl.EventCounter())
    store.projections.add(asl.EntitySnapshots())
    i = 0
    while True:
        i += 1
        if i == 60:
            # Past the second checkpoint (every 50 events; batches add 5): the saved
            # positions are past 50 before the kill, however slow the machine is.
            print("ready", flush=True)
        if i % 3:
            store.append("t%d" % (i % 4), "e%d" % (i % 9), {"i": i, "x": i % 5 or None})
        else:
            store.append_batch([{"event_type": "b", "entity_id": "e%d" % (i % 7),
                                 "payload": {"i": i, "y": {"z": i % 3}}} for _ in range(5)])
    """
)


@pytest.mark.parametrize("delay", [0.4, 0.9, 1.5])
def test_after_kill_9_projections_resume_exactly(tmp_path, delay):
    path = tmp_path / "s"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    store = open_after_crash(path)
    assert store.feed.head() > 0
    states, problems = store._storage.load_states("projections")
    positions = [orjson.loads(body.partition(b"\n")[0])["position"] for body in states.values()]
    assert not problems and len(positions) == 2 and min(positions) >= 50
    counter = store.projections.add(asl.EventCounter())
    snaps = store.projections.add(asl.EntitySnapshots())
    assert counter.state() == expected_counts(store)
    assert snaps.state() == expected_states(store)
    assert store.verify().ok
    # Restored, not rebuilt. (The test's folder name holds "projections": a torn WAL file
    # header, which a kill mid-rotation leaves, names that folder without being about them.)
    problems = [p.replace(str(path), "<store>") for p in store.recovery_problems]
    assert not [p for p in problems if "projection" in p]
    store.close()


def test_a_single_append_feeds_followers_the_event_in_hand_with_the_same_answers(store):
    history(store, 20, seed=15)
    store.projections.add(asl.EventCounter())  # a follower: singles keep their event
    event = store.append("a", "e1", {"k": 3, "nested": {"a": 1}})
    fast = store.feed.batch(event.sequence - 1)
    assert type(fast) is asl.projections.base.EventList
    store._log.recent = None  # the general path, for comparison
    slow = store.feed.batch(event.sequence - 1)
    assert type(slow) is asl.EventBatch
    assert fast.to_arrow().equals(slow.to_arrow())
    for name in ("version", "entity_id", "timestamp", "payload"):
        assert fast.column(name).to_pylist() == slow.column(name).to_pylist()
    assert fast.payloads() == slow.payloads() and fast.count_by_type() == slow.count_by_type()
    assert [e.sequence for e in fast] == [e.sequence for e in slow] == [event.sequence]
    store._log.recent = event
    assert len(store.feed.batch(event.sequence - 1, event_types=("b",))) == 0
    assert len(store.feed.batch(event.sequence - 1, limit=0)) == 0
    store.append_batch([{"event_type": "a", "entity_id": "x", "payload": {}}])
    assert type(store.feed.batch(event.sequence - 1)) is asl.EventBatch  # not in hand
