"""state(), snapshots and bitemporal reads: the cases a user meets first, by name."""

from __future__ import annotations

import datetime as dt
import struct
import time

import pandas as pd
import pytest

import allsource_lab as asl
from allsource_lab._query.state import merge_patch

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def pause() -> dt.datetime:
    """A moment strictly between what was recorded before and after it."""
    time.sleep(0.002)
    moment = dt.datetime.now(dt.UTC)
    time.sleep(0.002)
    return moment


@pytest.mark.parametrize(
    ("target", "patch", "want"),
    [  # the examples of RFC 7386, appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_follows_rfc_7386(target, patch, want):
    assert merge_patch(target, patch) == want


def test_state_folds_payloads_in_version_order(store):
    store.append("cart.opened", "cart-1", {"items": {"tea": 1}, "owner": "ann", "tags": ["a"]})
    store.append("cart.changed", "cart-1", {"items": {"jam": 2, "tea": None}, "tags": ["b"]})
    store.checkpoint()
    store.append("cart.changed", "cart-1", {"owner": None, "paid": True})
    assert store.state("cart-1") == {"items": {"jam": 2}, "tags": ["b"], "paid": True}


def test_state_is_a_copy_the_caller_may_change(store):
    store.append("a", "x", {"n": {"deep": [1]}, "flat": 1})
    first = store.state("x")
    first["n"]["deep"].append(2)
    first["flat"] = 99
    assert store.state("x") == {"n": {"deep": [1]}, "flat": 1}


def test_hot_state_follows_every_kind_of_append(store):
    store.append("a", "x", {"n": 1})
    assert store.state("x") == {"n": 1}
    store.append_batch([{"event_type": "a", "entity_id": "x", "payload": {"m": 2}}])
    assert store.state("x") == {"n": 1, "m": 2}
    store.append("a", "x", {"n": None})
    store.checkpoint()
    assert store.state("x") == {"m": 2}


def test_unknown_entity_and_empty_moment_are_not_found(store):
    store.append("a", "x", {"n": 1}, timestamp=at(10))
    with pytest.raises(asl.NotFound, match="nobody"):
        store.state("nobody")
    with pytest.raises(asl.NotFound):
        store.state("x", as_of=at(5))
    with pytest.raises(KeyError):  # NotFound is a KeyError, as a dict user expects
        store.state("nobody")


def test_times_must_be_aware_and_parse(store):
    store.append("a", "x", {"n": 1})
    with pytest.raises(asl.InvalidEvent, match="as_of"):
        store.state("x", as_of=dt.datetime(2024, 1, 1))  # naive: which zone?
    with pytest.raises(asl.InvalidEvent, match="known_at"):
        store.events(known_at="yesterday")
    with pytest.raises(asl.InvalidEvent, match="as_of"):
        store.states(as_of=dt.datetime(2024, 1, 1))
    now = "2999-01-01T00:00:00+00:00"
    for moment in (now, pd.Timestamp(now), dt.datetime.fromisoformat(now)):
        assert store.state("x", as_of=moment, known_at=moment) == {"n": 1}


def test_a_late_event_with_an_early_time_is_bitemporal(store_factory):
    """Appended later with an earlier timestamp: visible to as_of at that earlier time,
    invisible to known_at before it was recorded."""
    store = store_factory()
    store.append("price", "sku-1", {"price": 10}, timestamp=at(0))
    store.append("price", "sku-1", {"price": 12}, timestamp=at(20))
    before_correction = pause()
    store.append("price", "sku-1", {"price": 11, "fixed": True}, timestamp=at(10))

    assert store.state("sku-1", as_of=at(15)) == {"price": 11, "fixed": True}
    assert store.state("sku-1", as_of=at(15), known_at=before_correction) == {"price": 10}
    # version order decides the current state, not event time
    assert store.state("sku-1") == {"price": 11, "fixed": True}
    assert store.state("sku-1", known_at=before_correction) == {"price": 12}
    got = [e.version for e in store.events(entity_id="sku-1", as_of=at(15))]
    assert got == [1, 3]
    got = [
        e.version for e in store.events(entity_id="sku-1", as_of=at(15), known_at=before_correction)
    ]
    assert got == [1]
    frame = store.states(as_of=at(15), known_at=before_correction)
    assert frame.to_dict("records") == [
        {
            "entity_id": "sku-1",
            "version": 1,
            "timestamp": pd.Timestamp(at(0)),
            "state": {"price": 10},
        }
    ]
    frame = store.states(as_of=at(15))
    assert frame["version"].tolist() == [3] and frame["timestamp"][0] == pd.Timestamp(at(10))


def test_states_has_one_row_per_entity_and_filters_by_type(store):
    store.append_batch(
        [
            {"event_type": "order.placed", "entity_id": f"o{i}", "payload": {"n": i}}
            for i in range(5)
        ]
    )
    store.append("order.paid", "o3", {"paid": True})
    store.append("user.joined", "u1", {"name": "ann"})
    frame = store.states()
    assert list(frame.columns) == ["entity_id", "version", "timestamp", "state"]
    assert frame["entity_id"].tolist() == ["o0", "o1", "o2", "o3", "o4", "u1"]
    assert frame.set_index("entity_id")["state"]["o3"] == {"n": 3, "paid": True}
    assert str(frame["timestamp"].dtype) == "datetime64[us, UTC]"
    assert store.states(event_type="order.paid")["entity_id"].tolist() == ["o3"]
    assert store.states(event_type="nothing.like.it").empty


def test_snapshots_are_taken_every_n_versions_and_used(store_factory, monkeypatch):
    store = store_factory(snapshot_every_versions=10)
    for i in range(35):
        store.append("tick", "x", {"i": i, f"k{i % 4}": i}, timestamp=at(i))
    assert store.state("x")["i"] == 34  # the fold passes versions 10, 20 and 30
    assert store.stats()["snapshots"] == 3
    folded = []
    original = store._sealer.reader.payload_array

    def spy(positions):
        folded.append(len(positions))
        return original(positions)

    monkeypatch.setattr(store._sealer.reader, "payload_array", spy)
    assert store.state("x", as_of=at(25)) == {"i": 25, "k0": 24, "k1": 25, "k2": 22, "k3": 23}
    assert folded == [6]  # versions 21..26, from the snapshot at 20


def test_snapshot_survives_reopen_and_is_used(store_factory, monkeypatch):
    if store_factory.kind == "memory":
        pytest.skip("a memory store cannot be reopened")
    store = store_factory(snapshot_every_versions=0)
    for i in range(50):
        store.append("tick", "x", {"i": i})
    assert store.snapshot("x") == 50
    store.append("tick", "x", {"last": True})
    store.close()
    store = asl.open(store_factory.path, snapshot_every_versions=0)
    try:
        assert store.stats()["snapshots"] == 1
        folded = []
        original = store._sealer.reader.payload_array
        monkeypatch.setattr(
            store._sealer.reader, "payload_array", lambda p: folded.append(len(p)) or original(p)
        )
        assert store.state("x") == {"i": 49, "last": True}
        assert folded == [1]
    finally:
        store.close()


def test_snapshot_of_unknown_entity_is_not_found(store):
    with pytest.raises(asl.NotFound):
        store.snapshot("ghost")


def snapshot_log(path):
    return path / "snapshots" / "snapshots.log"


def test_torn_and_damaged_snapshot_records_are_skipped_not_fatal(tmp_path):
    path = tmp_path / "s.events"
    with asl.open(path, snapshot_every_versions=0) as store:
        for entity in ("a", "b", "c"):
            store.append("t", entity, {"who": entity})
            store.snapshot(entity)
    log = snapshot_log(path)
    data = bytearray(log.read_bytes())
    first_len = struct.unpack_from("<I", data)[0]
    data[8 + 3] ^= 0xFF  # damage the first record's body (its checksum no longer fits)
    data += data[-10:-3]  # and a torn record at the end, as a crash mid-write leaves
    log.write_bytes(bytes(data))
    with asl.open(path) as store:
        assert any("checksum" in p for p in store.recovery_problems)
        assert store.stats()["snapshots"] == 2
        assert {e: store.state(e) for e in "abc"} == {e: {"who": e} for e in "abc"}
        report = store.verify()
        assert not report.ok and any("snapshots.log" in p for p in report.problems)
    assert len(log.read_bytes()) == len(data) - 7  # the torn tail was cut
    assert first_len > 0


def test_a_snapshot_ahead_of_the_events_is_ignored(tmp_path):
    """Events lost in a crash (fsync="never") while their snapshot survived elsewhere."""
    path = tmp_path / "s.events"
    with asl.open(path, snapshot_every_versions=0) as store:
        store.append("t", "x", {"n": 1})
        store.append("t", "x", {"n": 2})
        store.snapshot("x")
    saved = snapshot_log(path).read_bytes()
    other = tmp_path / "other.events"
    with asl.open(other, snapshot_every_versions=0) as store:
        store.append("t", "x", {"n": 1})
    snapshot_log(other).parent.mkdir()
    snapshot_log(other).write_bytes(saved)
    with asl.open(other) as store:
        assert any("ahead of the stored events" in p for p in store.recovery_problems)
        assert store.state("x") == {"n": 1}
        store.append("t", "x", {"n": 3})  # version 2 again, with other content
        assert store.state("x") == {"n": 3}


def test_a_snapshot_of_other_events_at_the_same_version_is_dropped(tmp_path):
    path = tmp_path / "s.events"
    with asl.open(path, snapshot_every_versions=0) as store:
        store.append("t", "x", {"n": 1, "from": "first"})
        store.snapshot("x")
    saved = snapshot_log(path).read_bytes()
    other = tmp_path / "other.events"
    with asl.open(other, snapshot_every_versions=0) as store:
        store.append("t", "x", {"n": 1, "from": "second"})
    snapshot_log(other).parent.mkdir()
    snapshot_log(other).write_bytes(saved)  # same entity and version, another event_id
    with asl.open(other) as store:
        assert store.state("x", as_of="2999-01-01T00:00:00Z") == {"n": 1, "from": "second"}
        assert store.state("x") == {"n": 1, "from": "second"}
        assert store.stats()["snapshots"] == 0


@pytest.mark.parametrize("cached", [0, 2])
def test_a_small_or_no_state_cache_gives_the_same_answers(store_factory, cached):
    store = store_factory(state_cache_entities=cached, snapshot_every_versions=3)
    for i in range(40):
        store.append("t", f"e{i % 5}", {"i": i, f"k{i % 3}": i})
        entity = f"e{(i * 7) % 5}"
        if any(j % 5 == (i * 7) % 5 for j in range(i + 1)):
            want: dict = {}
            for j in range(i + 1):
                if j % 5 == (i * 7) % 5:
                    want.update({"i": j, f"k{j % 3}": j})
            assert store.state(entity) == want
    assert len(store._states.hot.items) <= cached
    assert store.snapshot("e1") == 8
    assert store.state("e1")["i"] == 36
