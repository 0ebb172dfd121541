"""``states()`` folds in bounded calls and still answers exactly as a fold over every event.

``states()`` folds a limited number of payloads per kernel call, so an entity's events
can straddle calls and a long history takes many calls (``States.fold_payloads``). Here
that limit is set to a few payloads, so every history crosses call boundaries, and the
frame is compared with a brute-force fold of ``events()``: the visible events at
(as_of, known_at), each entity's states folded with ``merge_patch``, the key order of
every state included. Payloads come as dicts and as JSON texts stored verbatim
(whitespace, a key twice, escaped keys, nulls and objects at any depth), on both
storages, with checkpoints between (so events lie in segments and in the tail),
snapshots taken on the way, and upcasters.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import allsource_lab as asl
from allsource_lab.events import merge_patch

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
ENTITIES = ["a", "b", "c", "é"]
TYPES = ["t.one", "t.two"]
TEXTS = [
    '{"n": 1, "tags": ["x", null]}',
    '{ "n" : 2 ,\n "o": {"p": 1} }',
    '{"o": {"q": 2}}',
    '{"o": {"p": null}, "m": true}',
    '{"n": null}',
    '{"n": 3, "n": 4}',
    '{"\\u006e": 5}',
    '{"s": "a \\" quote", "f": 1.5e3}',
    '{"n": null, "n": 6}',
    "{}",
]
payload = st.one_of(
    st.sampled_from(TEXTS),
    st.dictionaries(
        st.sampled_from(["n", "m", "o", "s"]),
        st.one_of(st.integers(-5, 5), st.none(), st.text("xy", max_size=2)),
        max_size=3,
    ),
)
event = st.tuples(st.sampled_from(ENTITIES), st.sampled_from(TYPES), st.integers(0, 30), payload)
step = st.one_of(
    st.tuples(st.just("batch"), st.lists(event, min_size=1, max_size=6)),
    st.tuples(st.just("append"), event),
    st.tuples(st.just("checkpoint"), st.none()),
    st.tuples(st.just("state"), st.sampled_from(ENTITIES)),  # snapshots every 2 versions
    st.tuples(st.just("cut"), st.none()),
)


def minutes(m: int | None) -> dt.datetime | None:
    return None if m is None else T0 + dt.timedelta(minutes=m)


def brute_force(
    store: asl.EventStore, event_type: str | None, as_of: dt.datetime | None, known_at: Any
) -> list[tuple[str, int, dt.datetime, bytes]]:
    """Every entity with a visible event, by id: (id, last visible version, its time,
    its state as JSON text, so that the key order counts)."""
    rows: dict[str, list[Any]] = {}
    for e in store.events():  # in sequence order, so in version order per entity
        if as_of is not None and e.timestamp > as_of:
            continue
        if known_at is not None and e.recorded_at > known_at:
            continue
        rows.setdefault(e.entity_id, []).append(e)
    want = []
    for entity in sorted(rows):
        mine = rows[entity]
        if event_type is not None and not any(e.event_type == event_type for e in mine):
            continue
        state: dict[str, Any] = {}
        for e in mine:
            merge_patch(state, e.payload)
        want.append((entity, mine[-1].version, mine[-1].timestamp, orjson.dumps(state)))
    return want


def check(store: asl.EventStore, event_type: str | None, as_of: Any, known_at: Any) -> None:
    frame = store.states(event_type=event_type, as_of=as_of, known_at=known_at)
    got = [
        (e, v, t.to_pydatetime(), orjson.dumps(s))
        for e, v, t, s in frame[["entity_id", "version", "timestamp", "state"]].itertuples(
            index=False
        )
    ]
    assert got == brute_force(store, event_type, as_of, known_at)


def run(store: asl.EventStore, steps: list[tuple[str, Any]]) -> list[dt.datetime]:
    cuts = []
    for kind, arg in steps:
        if kind == "batch":
            store.append_batch(
                [
                    {"event_type": t, "entity_id": e, "payload": p, "timestamp": minutes(ts)}
                    for e, t, ts, p in arg
                ]
            )
        elif kind == "append":
            entity, type_, ts, p = arg
            if isinstance(p, str):
                p = orjson.loads(p)  # single appends take dicts
            store.append(type_, entity, p, timestamp=minutes(ts))
        elif kind == "checkpoint":
            store.checkpoint()
        elif kind == "state":
            with contextlib.suppress(asl.NotFound):
                store.state(arg)
        elif kind == "cut":
            time.sleep(0.002)  # recorded_at may run a little ahead of the clock
            cuts.append(dt.datetime.now(dt.UTC))
            time.sleep(0.002)
    return cuts


@settings(max_examples=60)
@given(
    steps=st.lists(step, max_size=20),
    limit=st.integers(1, 5),
    folder=st.booleans(),
    data=st.data(),
)
def test_states_in_calls_of_a_few_payloads_equal_a_fold_of_every_event(steps, limit, folder, data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.events" if folder else None
        store = asl.open(path, snapshot_every_versions=2, checkpoint_every_events=10**6)
        try:
            store._states.fold_payloads = limit
            cuts = run(store, steps)
            check(store, None, None, None)
            for _ in range(3):
                as_of = minutes(data.draw(st.one_of(st.none(), st.integers(-1, 31))))
                known_at = data.draw(st.one_of(st.none(), st.sampled_from(cuts or [None])))
                event_type = data.draw(st.one_of(st.none(), st.sampled_from(TYPES)))
                check(store, event_type, as_of, known_at)
        finally:
            store.close()


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 1 << 16])
def test_long_entities_straddle_calls(store_factory, limit):
    """A few entities with many events each (and one with a single event), folded
    in calls of ``limit`` payloads: most calls stop inside an entity."""
    store = store_factory(snapshot_every_versions=0)
    store._states.fold_payloads = limit
    rows = []
    for i in range(40):
        for entity in ("long", "longer") if i % 3 else ("long", "longer", "nested"):
            rows.append(
                {
                    "event_type": "t",
                    "entity_id": entity,
                    "payload": {"i": i, f"k{i % 5}": i}
                    if entity != "nested"
                    else {"o": {f"k{i % 4}": i, "gone": None}},
                }
            )
        if i == 20:
            store.append_batch(rows)
            store.checkpoint()
            rows = []
    rows.append({"event_type": "t", "entity_id": "one", "payload": {"only": 1}})
    store.append_batch(rows)
    check(store, None, None, None)
    frame = store.states()
    assert frame["entity_id"].tolist() == ["long", "longer", "nested", "one"]
    assert frame["version"].tolist() == [40, 40, 14, 1]
    nested = frame["state"][2]
    assert list(nested["o"].items()) == [("k0", 36), ("k3", 39), ("k2", 30), ("k1", 33)]


def test_states_start_from_snapshots_in_calls(store_factory):
    store = store_factory(snapshot_every_versions=4)
    for i in range(23):
        store.append("t", "x", {"i": i, f"k{i % 3}": i, "gone": None if i % 2 else i})
        store.append("t", "y", {"j": i})
    assert store.state("x")["i"] == 22 and store.state("y")["j"] == 22  # snapshots at 4..20
    assert store.stats()["snapshots"] == 10
    for limit in (1, 2, 5, 1 << 16):
        store._states.fold_payloads = limit
        check(store, None, None, None)
        check(store, None, T0 + dt.timedelta(days=10**4), None)


def test_upcast_payloads_fold_in_calls(store_factory):
    store = store_factory()
    store.schemas.register("user.joined", {"type": "object", "required": ["name"]})
    for i in range(7):
        store.append("user.joined", f"u{i % 3}", {"name": f"Ann{i} Lee", "n": i})
    split = {"type": "object", "required": ["first"]}
    store.schemas.register("user.joined", split, compatibility="NONE")
    store.append("user.joined", "u1", {"first": "Bob", "n": None})

    @store.schemas.upcaster("user.joined", 1)
    def split_name(payload):
        first, _, last = payload.pop("name").partition(" ")
        return {**payload, "first": first, "last": last}

    for limit in (1, 2, 3, 1 << 16):
        store._states.fold_payloads = limit
        check(store, None, None, None)
    assert store.states()["state"].tolist() == [
        {"n": 6, "first": "Ann6", "last": "Lee"},
        {"first": "Bob", "last": "Lee"},
        {"n": 5, "first": "Ann5", "last": "Lee"},
    ]


def test_entity_ids_sort_as_python_strings(store):
    """The frame is sorted by entity id as Python sorts strings (code points), whatever
    the order the entities were first seen in (UTF-8 bytes sort the same way)."""
    ids = ["b", "a", "é", "Z", "日本", "a\U0001f600", "ab", "\uffff", "\U0010ffff"]
    for entity in ids:
        store.append("t", entity, {"n": 1})
    assert store.states()["entity_id"].tolist() == sorted(ids)


def test_decoded_payloads_fold_to_the_same_states(store_factory, monkeypatch):
    """Should the pieces' rows ever not add up to the index, ``states()`` folds decoded
    payloads rather than reading past a piece in the kernel: the same answers, snapshots
    used."""
    import allsource_lab._store.states as states_module

    store = store_factory(snapshot_every_versions=3)
    for i in range(20):
        store.append("t", f"e{i % 3}", {"i": i, "o": {"k": i} if i % 4 else None})
        if i == 9:
            store.checkpoint()
    for entity in ("e0", "e1", "e2"):
        store.state(entity)  # snapshots every 3 versions
    want = [orjson.dumps(s) for s in store.states()["state"]]
    real = states_module.payload_texts

    def short(pieces):
        texts = real(pieces)
        texts.bases[-1] += 1
        return texts

    monkeypatch.setattr(states_module, "payload_texts", short)
    monkeypatch.setattr(store._states, "_fold_texts", lambda *_: pytest.fail("kernel fold"))
    for limit in (1, 2, 1 << 16):
        store._states.fold_payloads = limit
        check(store, None, None, None)
        assert [orjson.dumps(s) for s in store.states()["state"]] == want
