"""Every read answer equals a brute-force computation over the full event list.

Random histories (out-of-order event times, several entities and types, single appends
and batches, checkpoints, explicit snapshots, reopening in between) are replayed into a
store and into a plain list; then ``events``, ``state`` and ``states`` with random
arguments are compared with filters and folds over that list. The same histories run
with automatic snapshots every 2 versions and with none: a snapshot never changes an
answer.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import allsource_lab as asl

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
ENTITIES = ["a", "b", "c", "d"]
TYPES = ["t.one", "t.two", "t.three"]


def reference_merge(target: Any, patch: Any) -> Any:
    """RFC 7386 as its pseudo-code states it (functional, no sharing)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = reference_merge(result.get(key), value)
    return result


@dataclass
class Row:
    seq: int
    entity: str
    type: str
    version: int
    ts: dt.datetime
    known: int  # index of the first cut taken after it was appended
    payload: dict[str, Any]


leaf = st.one_of(st.integers(-3, 3), st.none(), st.text("xy", max_size=2))
inner = st.dictionaries(st.sampled_from(["x", "y"]), leaf, max_size=2)
payloads = st.dictionaries(
    st.sampled_from(["p", "q", "r"]),
    st.one_of(leaf, inner, st.lists(st.integers(0, 2), max_size=2)),
    max_size=3,
)
event = st.tuples(st.sampled_from(ENTITIES), st.sampled_from(TYPES), st.integers(0, 40), payloads)
step = st.one_of(
    st.tuples(st.just("append"), event),
    st.tuples(st.just("batch"), st.lists(event, min_size=1, max_size=5)),
    st.tuples(st.just("checkpoint"), st.none()),
    st.tuples(st.just("cut"), st.none()),
    st.tuples(st.just("snapshot"), st.sampled_from(ENTITIES)),
    st.tuples(st.just("reopen"), st.none()),
)
moment = st.one_of(st.none(), st.integers(-1, 41))


def minutes(m: int | None) -> dt.datetime | None:
    return None if m is None else T0 + dt.timedelta(minutes=m)


class History:
    """The store under test and the plain list it must agree with."""

    def __init__(self, path: Path | None, every: int) -> None:
        self.path = path
        self.every = every
        self.store = asl.open(path, snapshot_every_versions=every, checkpoint_every_events=10**6)
        self.rows: list[Row] = []
        self.cuts: list[int] = []  # recorded-time cuts (us) taken between steps

    def reopen(self) -> None:
        if self.path is not None:
            self.store.close()
            self.store = asl.open(
                self.path, snapshot_every_versions=self.every, checkpoint_every_events=10**6
            )

    def add(self, entity: str, type_: str, ts: int, payload: dict[str, Any]) -> None:
        version = 1 + sum(r.entity == entity for r in self.rows)
        self.rows.append(
            Row(len(self.rows) + 1, entity, type_, version, minutes(ts), len(self.cuts), payload)
        )

    def run(self, steps: list[tuple[str, Any]]) -> None:
        for kind, arg in steps:
            if kind == "append":
                entity, type_, ts, payload = arg
                self.store.append(type_, entity, payload, timestamp=minutes(ts))
                self.add(*arg)
            elif kind == "batch":
                self.store.append_batch(
                    [
                        {"event_type": t, "entity_id": e, "payload": p, "timestamp": minutes(ts)}
                        for e, t, ts, p in arg
                    ]
                )
                for entity, type_, ts, payload in arg:
                    self.add(entity, type_, ts, payload)
            elif kind == "checkpoint":
                self.store.checkpoint()
            elif kind == "cut":
                # recorded_at may run a few microseconds ahead of the clock when appends
                # come faster than it ticks; a pause on both sides makes the cut exact.
                time.sleep(0.002)
                self.cuts.append(time.time_ns() // 1000)
                time.sleep(0.002)
            elif kind == "snapshot":
                if any(r.entity == arg for r in self.rows):
                    assert self.store.snapshot(arg) == sum(r.entity == arg for r in self.rows)
                else:
                    with pytest.raises(asl.NotFound):
                        self.store.snapshot(arg)
            elif kind == "reopen":
                self.reopen()

    # -- the brute-force answers ---------------------------------------------------------

    def visible(self, as_of: int | None, cut: int | None) -> list[Row]:
        return [
            r
            for r in self.rows
            if (as_of is None or r.ts <= minutes(as_of)) and (cut is None or r.known <= cut)
        ]

    def known_at(self, cut: int | None) -> dt.datetime | None:
        if cut is None:
            return None
        return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=self.cuts[cut])

    def check_events(self, args: dict[str, Any]) -> None:
        cut = args.pop("cut")
        want = self.visible(args["as_of"], cut)
        if args["entity_id"] is not None:
            want = [r for r in want if r.entity == args["entity_id"]]
        if args["event_type"] is not None:
            want = [r for r in want if r.type == args["event_type"]]
        if args["since"] is not None:
            want = [r for r in want if r.ts >= minutes(args["since"])]
        if args["until"] is not None:
            want = [r for r in want if r.ts < minutes(args["until"])]
        if args["after"] is not None:
            want = [r for r in want if r.seq > args["after"]]
        if args["reverse"]:
            want.reverse()
        if args["limit"] is not None:
            want = want[: args["limit"]]
        frame = self.store.events(
            entity_id=args["entity_id"],
            event_type=args["event_type"],
            since=minutes(args["since"]),
            until=minutes(args["until"]),
            as_of=minutes(args["as_of"]),
            known_at=self.known_at(cut),
            after=args["after"],
            limit=args["limit"],
            reverse=args["reverse"],
        )
        assert len(frame) == len(want)
        got = [(e.sequence, e.entity_id, e.version, e.payload) for e in frame]
        assert got == [(r.seq, r.entity, r.version, r.payload) for r in want]

    def fold(self, rows: list[Row]) -> dict[str, Any]:
        state: dict[str, Any] = {}
        for r in rows:
            state = reference_merge(state, r.payload)
        return state

    def check_state(self, entity: str, as_of: int | None, cut: int | None) -> None:
        rows = [r for r in self.visible(as_of, cut) if r.entity == entity]
        kwargs = {"as_of": minutes(as_of), "known_at": self.known_at(cut)}
        if not rows:
            with pytest.raises(asl.NotFound):
                self.store.state(entity, **kwargs)
            return
        got = self.store.state(entity, **kwargs)
        assert got == self.fold(rows)
        got["mutated"] = True  # the caller's copy: the store must not see this
        assert self.store.state(entity, **kwargs) == self.fold(rows)

    def check_states(self, event_type: str | None, as_of: int | None, cut: int | None) -> None:
        rows = self.visible(as_of, cut)
        want = []
        for entity in sorted({r.entity for r in rows}):
            mine = [r for r in rows if r.entity == entity]
            if event_type is not None and not any(r.type == event_type for r in mine):
                continue
            want.append((entity, mine[-1].version, mine[-1].ts, self.fold(mine)))
        frame = self.store.states(
            event_type=event_type, as_of=minutes(as_of), known_at=self.known_at(cut)
        )
        got = [
            (e, v, t.to_pydatetime(), s)
            for e, v, t, s in frame[["entity_id", "version", "timestamp", "state"]].itertuples(
                index=False
            )
        ]
        assert got == want


queries = st.fixed_dictionaries(
    {
        "entity_id": st.one_of(st.none(), st.sampled_from([*ENTITIES, "nobody"])),
        "event_type": st.one_of(st.none(), st.sampled_from([*TYPES, "t.none"])),
        "since": moment,
        "until": moment,
        "as_of": moment,
        "cut": st.one_of(st.none(), st.integers(0, 3)),
        "after": st.one_of(st.none(), st.integers(0, 30)),
        "limit": st.one_of(st.none(), st.integers(0, 6)),
        "reverse": st.booleans(),
    }
)


def check_everything(history: History, data: st.DataObject) -> None:
    n_cuts = len(history.cuts)
    cut_of = st.one_of(st.none(), st.integers(0, n_cuts - 1)) if n_cuts else st.none()
    for _ in range(6):
        args = data.draw(queries)
        if args["cut"] is not None and args["cut"] >= n_cuts:
            args["cut"] = None
        history.check_events(args)
    for entity in [*ENTITIES, "nobody"]:
        history.check_state(entity, None, None)
        history.check_state(entity, data.draw(moment), data.draw(cut_of))
    history.check_states(None, None, None)
    history.check_states(
        data.draw(st.one_of(st.none(), st.sampled_from(TYPES))),
        data.draw(moment),
        data.draw(cut_of),
    )


def run_history(
    steps: list[tuple[str, Any]], data: st.DataObject, folder: bool, every: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        history = History(Path(tmp) / "s.events" if folder else None, every)
        try:
            history.run(steps)
            check_everything(history, data)
            history.reopen()
            check_everything(history, data)
        finally:
            history.store.close()


@settings(max_examples=40)
@given(
    steps=st.lists(step, max_size=25),
    data=st.data(),
    folder=st.booleans(),
    every=st.sampled_from([0, 2]),
)
def test_reads_equal_brute_force_over_random_histories(steps, data, folder, every):
    run_history(steps, data, folder, every)


@pytest.mark.slow
@settings(max_examples=600)
@given(
    steps=st.lists(step, max_size=60),
    data=st.data(),
    folder=st.booleans(),
    every=st.sampled_from([0, 1, 2, 5]),
)
def test_reads_equal_brute_force_over_many_long_histories(steps, data, folder, every):
    run_history(steps, data, folder, every)
