"""The bulk fold kernel gives exactly what JSON Merge Patch in Python gives.

The reference folds each entity's visible payloads with ``merge_patch`` over
``orjson.loads`` of each text, from the state it starts at: what ``states()`` did before
the kernel. Texts are written by hand, so they can be what ``append_batch`` stores
verbatim: any whitespace, a key twice, keys spelled with escapes, nulls and objects at any
depth. The kernel must return, for each entity, either the reference state (with its keys
in the same order) or, where it leaves the entity to Python, exactly its visible payload
texts in version order; and it must not leave an entity of plain payloads to Python.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allsource_lab._kernels import folds
from allsource_lab._query.state import payload_texts
from allsource_lab.events import merge_patch

WS = st.sampled_from(["", "", "", " ", "\n", "\t ", " \r\n "])
PLAIN_KEYS = ["a", "b", "c", "é", "a b", "", "日本"]
# Escaped spellings: of "a", of a key holding a quote, of one holding a backslash.
ESCAPED_KEYS = ['"\\u0061"', '"q\\"x"', '"\\\\"']
plain_key = st.sampled_from(["a", "b", "c", "a", "b", "c", *PLAIN_KEYS])
key_text = st.one_of(
    *[plain_key.map(lambda k: orjson.dumps(k).decode())] * 6, st.sampled_from(ESCAPED_KEYS)
)
scalar = st.one_of(
    st.integers(-3, 3),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.booleans(),
)
leaf = st.one_of(scalar, st.just(None))
json_value = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(st.tuples(plain_key, inner), max_size=3),  # an object
    ),
    max_leaves=6,
)
# What a member's value may be, by the kind of history: "clean" ones fold in the kernel
# except where an object lands on an object; "nested" ones add objects that hold nulls
# (merging drops those); "twice" ones may give a key twice in one payload; "wild" ones
# add keys spelled with escapes.
VALUES = {
    "clean": st.one_of(
        scalar,
        scalar,
        st.just(None),  # deletes the key
        st.lists(st.tuples(plain_key, scalar), min_size=1, max_size=2),  # an object
        st.lists(scalar, max_size=3),
    ),
    "nested": st.one_of(scalar, st.just(None), json_value),
    "wild": st.one_of(scalar, st.just(None), json_value),
}
VALUES["twice"] = VALUES["clean"]  # clean, but a key may come twice in one payload


def render(value: Any, ws: list[str]) -> str:
    """``value`` as JSON text with whitespace drawn from ``ws`` between tokens; a list of
    (key, value) pairs is an object (so that it can hold a key twice)."""
    pad = ws[len(ws) % 7] if ws else ""
    ws.append(pad)
    if isinstance(value, list) and value and isinstance(value[0], tuple):
        members = [f"{pad}{orjson.dumps(k).decode()}{pad}:{render(v, ws)}" for k, v in value]
        return "{" + ",".join(members) + pad + "}"
    if isinstance(value, list):
        return "[" + ",".join(render(v, ws) for v in value) + pad + "]"
    return pad + orjson.dumps(value).decode()


@st.composite
def payload(draw: st.DrawFn, kind: str = "wild") -> str:
    """One payload's JSON text: an object whose members are of ``kind`` (see VALUES;
    "plain": only scalars that are not null, each key once)."""
    if kind == "plain":
        keys = draw(st.lists(st.sampled_from(PLAIN_KEYS), max_size=4, unique=True))
        values = [
            draw(st.one_of(st.integers(-9, 9), st.text(max_size=4), st.booleans())) for _ in keys
        ]
        return orjson.dumps(dict(zip(keys, values, strict=True))).decode()
    ws = [draw(WS) for _ in range(7)]
    if kind == "wild":
        keys = draw(st.lists(key_text, max_size=4))
    elif kind == "twice":
        keys = [orjson.dumps(k).decode() for k in draw(st.lists(plain_key, max_size=4))]
    else:
        keys = [
            orjson.dumps(k).decode() for k in draw(st.lists(plain_key, max_size=4, unique=True))
        ]
    members = [(k, draw(VALUES[kind])) for k in keys]
    pad = ws[0]
    body = ",".join(f"{pad}{k}{ws[1]}:{ws[2]}{render(v, list(ws))}{ws[3]}" for k, v in members)
    return "{" + ws[4] + body + ws[5] + "}" + ws[6]


def reference(start: bytes, texts: list[str]) -> dict[str, Any]:
    state: dict[str, Any] = orjson.loads(start) if start else {}
    for text in texts:
        merge_patch(state, orjson.loads(text))
    return state


def read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


class Layout:
    """Entities' histories laid out as the read side holds them: positions spread over
    pieces of shuffled rows (int32 or int64 offsets, texts not from byte 0), some
    positions hidden by a later event time, with the entity postings over them."""

    def __init__(self, histories: list[list[tuple[str, bool]]], pieces: int, rnd: random.Random):
        owners = [e for e, h in enumerate(histories) for _ in h]
        rnd.shuffle(owners)
        n = len(owners)
        taken = [0] * len(histories)
        texts, self.hidden = [], np.zeros(n, bool)
        positions: list[list[int]] = [[] for _ in histories]
        for p, e in enumerate(owners):
            text, hidden = histories[e][taken[e]]
            taken[e] += 1
            texts.append(text)
            self.hidden[p] = hidden
            positions[e].append(p)
        self.starts = np.zeros(len(histories) + 1, np.int64)
        np.cumsum([len(x) for x in positions], out=self.starts[1:])
        self.rows = np.array([p for x in positions for p in x], np.int32)
        self.ts = np.where(self.hidden, 10, 0).astype(np.int64)
        cuts = sorted(rnd.sample(range(1, n), min(pieces - 1, n - 1))) if n > 1 else []
        bounds = [0, *cuts, n]
        self.bases = np.array(bounds, np.int64)
        self.row_of = np.zeros(n, np.int32)
        self.wide = np.zeros(len(bounds) - 1, np.uint8)
        lists = None
        for k in range(len(bounds) - 1):
            lo, hi = bounds[k], bounds[k + 1]
            order = list(range(lo, hi))
            rnd.shuffle(order)  # row r of the piece holds position order[r]
            data = bytearray(b"junk")
            offsets = [len(data)]
            for r, p in enumerate(order):
                self.row_of[p] = r
                data += texts[p].encode()
                offsets.append(len(data))
            wide = rnd.random() < 0.5
            self.wide[k] = wide
            o32 = read_only(np.array([] if wide else offsets, np.int32))
            o64 = read_only(np.array(offsets if wide else [], np.int64))
            d = read_only(np.frombuffer(bytes(data), np.uint8))
            if lists is None:
                lists = folds.new_lists(o32, o64, d)
            else:
                folds.add_piece(lists, o32, o64, d)
        assert lists is not None
        self.lists = lists

    def fold(
        self,
        entities: np.ndarray,
        snap: np.ndarray,
        version: np.ndarray,
        ka: int,
        kb: int,
        first_i: int,
        limit: int,
        starts: list[bytes],
    ) -> tuple[Any, ...]:
        offsets = np.zeros(len(starts) + 1, np.int64)
        np.cumsum([len(s) for s in starts], out=offsets[1:])
        return folds.fold_texts(
            self.starts,
            self.rows,
            self.ts,
            5,
            self.row_of,
            self.bases,
            self.wide,
            *self.lists,
            entities,
            snap,
            version,
            ka,
            kb,
            first_i,
            limit,
            read_only(np.frombuffer(b"".join(starts), np.uint8)),
            offsets,
        )


def decode(buffer: np.ndarray, end: int) -> list[Any]:
    if end <= 1:
        return []
    text = bytes(buffer[: end - 1]) + b"]"
    return orjson.loads(text)  # type: ignore[no-any-return]


history = st.sampled_from(["clean", "clean", "nested", "twice", "wild"]).flatmap(
    lambda kind: st.lists(st.tuples(payload(kind), st.booleans()), min_size=1, max_size=6)
)


@settings(max_examples=300)
@given(
    histories=st.lists(history, min_size=1, max_size=5),
    pieces=st.integers(1, 4),
    seed=st.integers(0, 2**32),
    data=st.data(),
)
def test_one_call_gives_the_reference_state_or_the_texts(histories, pieces, seed, data):
    rnd = random.Random(seed)
    layout = Layout(histories, pieces, rnd)
    n_ent = len(histories)
    entities = np.arange(n_ent, dtype=np.int64)
    # Fold from a start: the state after a leading run of versions (as a snapshot gives).
    snap = np.array([data.draw(st.integers(0, len(h))) for h in histories], np.int64)
    version = np.array([len(h) for h in histories], np.int64)
    visible = [[t for t, hidden in h if not hidden] for h in histories]
    before = [[t for t, hidden in h[: snap[e]] if not hidden] for e, h in enumerate(histories)]
    after = [[t for t, hidden in h[snap[e] :] if not hidden] for e, h in enumerate(histories)]
    starts = [orjson.dumps(reference(b"", x)) if snap[e] else b"" for e, x in enumerate(before)]
    merged, merged_end, status, fallback, fallback_end, counts, stopped, _, _ = layout.fold(
        entities, snap, version, 0, n_ent, -1, 10**6, starts
    )
    assert stopped == -1 and len(status) == n_ent
    done, texts = iter(decode(merged, merged_end)), iter(decode(fallback, fallback_end))
    for e in range(n_ent):
        want = reference(b"", visible[e])
        if status[e] == folds.MERGED:
            assert orjson.dumps(next(done)) == orjson.dumps(want)
        else:
            got = [next(texts) for _ in range(counts[e])]
            assert got == [orjson.loads(t) for t in after[e]]
            assert orjson.dumps(reference(starts[e], after[e])) == orjson.dumps(want)
    assert next(done, None) is None and next(texts, None) is None


@settings(max_examples=100)
@given(
    texts=st.lists(payload("plain"), min_size=1, max_size=8),
    seed=st.integers(0, 2**32),
)
def test_plain_payloads_are_folded_in_the_kernel(texts, seed):
    layout = Layout([[(t, False) for t in texts]], 2, random.Random(seed))
    one = np.zeros(1, np.int64)
    merged, merged_end, status, *_ = layout.fold(
        one, one, np.array([len(texts)]), 0, 1, -1, 10**6, [b""]
    )
    assert status.tolist() == [folds.MERGED]
    assert orjson.dumps(decode(merged, merged_end)[0]) == orjson.dumps(reference(b"", texts))


@pytest.mark.parametrize(
    "texts",
    [
        # Deleted, then added again: at the end, as dict.pop and a new key put it.
        ['{"a":1,"b":2,"c":3}', '{"a":null}', '{"b":5,"a":4}', '{"c":null,"d":0}'],
        # A key twice in one payload: orjson keeps its first place and its last value.
        ['{"a":1,"b":2}', '{"a":null,"a":3}'],
        ['{"a":1,"b":2}', '{"b":{"x":1},"b":7, "a" :null}'],
        # An object into an object merges; an object with a null inside loses the null.
        ['{"o":{"x":1,"y":2}}', '{"o":{"y":null,"z":3}}'],
        ['{"o":{"x":1}}', '{"o":{"z":[null]}}'],
        ['{"o":5}', '{"o":{"z":null,"w":{"v":null}}}'],
        # The same key spelled two ways.
        ['{"a":1,"b":2}', '{"\\u0061":3}'],
        # Whitespace everywhere, an empty payload, an empty key.
        [' { "a" :\t1 ,\n"" : [ 1 , null ] } ', "{}", "{ }", '{"":"x"}'],
    ],
)
def test_orders_and_spellings_fold_as_in_python(texts):
    layout = Layout([[(t, False) for t in texts]], 1, random.Random(1))
    one = np.zeros(1, np.int64)
    merged, merged_end, status, fallback, fallback_end, *_ = layout.fold(
        one, one, np.array([len(texts)]), 0, 1, -1, 10**6, [b""]
    )
    want = reference(b"", texts)
    if status[0] == folds.MERGED:
        got = decode(merged, merged_end)[0]
    else:
        got = reference(b"", [])
        for patch in decode(fallback, fallback_end):
            merge_patch(got, patch)
    assert orjson.dumps(got) == orjson.dumps(want)


@settings(max_examples=150)
@given(
    histories=st.lists(history, min_size=1, max_size=4),
    pieces=st.integers(1, 3),
    limit=st.integers(1, 4),
    seed=st.integers(0, 2**32),
)
def test_calls_of_a_few_payloads_pass_the_state_on(histories, pieces, limit, seed):
    """An entity folded over several calls (as ``states()`` does past its payload limit)
    ends where one call ends: the state reached is handed to the next call as text."""
    layout = Layout(histories, pieces, random.Random(seed))
    n_ent = len(histories)
    entities = np.arange(n_ent, dtype=np.int64)
    snap = np.zeros(n_ent, np.int64)
    version = np.array([len(h) for h in histories], np.int64)
    got: list[Any] = []
    ka, first_i, carry = 0, -1, b""
    calls = 0
    while ka < n_ent:
        kb = ka + 1  # one entity a call, so that the limit splits them
        start = [carry if first_i >= 0 else b""]
        merged, merged_end, status, fallback, fallback_end, _, stopped, ca, cz = layout.fold(
            entities, snap, version, ka, kb, first_i, limit, start
        )
        calls += 1
        if status[0] == folds.MERGED:
            state = orjson.loads(bytes(merged[ca:cz])) if stopped >= 0 else None
            if state is None:
                state = decode(merged, merged_end)[0]
        else:
            state = reference(start[0], [])
            for patch in decode(fallback, fallback_end):
                merge_patch(state, patch)
        if stopped >= 0:
            carry, first_i = orjson.dumps(state), stopped
        else:
            got.append(state)
            ka, first_i = kb, -1
    for e, h in enumerate(histories):
        want = reference(b"", [t for t, hidden in h if not hidden])
        assert orjson.dumps(got[e]) == orjson.dumps(want)
    assert calls >= sum(-(-sum(not x for _, x in h) // limit) for h in histories)


def test_plan_counts_what_each_entity_folds_after_its_snapshot():
    # Entity 0: versions 1-4, version 3 hidden (a later event time); entity 1: one
    # version, recorded after the cut; entity 2: two versions, a snapshot at 2.
    starts = np.array([0, 4, 5, 7], np.int64)
    rows = np.array([0, 1, 3, 5, 6, 2, 4], np.int32)
    ts = np.array([0, 0, 0, 9, 0, 0, 0], np.int64)
    types = np.array([0, 1, 1, 0, 0, 1, 0], np.int32)
    snap_starts = np.array([0, 1, 1, 2], np.int64)
    snap_versions = np.array([3, 2], np.int64)
    entities, version, when, snap, fold_ends = folds.plan(
        starts, rows, ts, types, 6, 5, -1, snap_starts, snap_versions
    )
    assert entities.tolist() == [0, 2]
    assert version.tolist() == [4, 2]  # entity 0's last visible is version 4 (position 5)
    assert snap.tolist() == [0, 2]  # a snapshot past a hidden version is not used
    assert fold_ends.tolist() == [0, 3, 3]
    assert when.tolist() == [0, 0]
    typed = folds.plan(starts, rows, ts, types, 6, 5, 1, snap_starts, snap_versions)
    assert typed[0].tolist() == [0, 2]
    assert folds.plan(starts, rows, ts, types, 6, 5, 7, snap_starts, snap_versions)[0].size == 0


NO_JIT_SCRIPT = r"""
import warnings
warnings.simplefilter("error")
import numba, orjson
assert numba.config.DISABLE_JIT
import allsource_lab as asl
from allsource_lab.events import merge_patch

texts = [
    '{"a": 1, "b": [1, null], "c": {"d": 2}}', '{"a": null}', '{"b": 5, "a": {"x": 1}}',
    '{"c": {"e": 3}}', '{"c": {"d": null}}', '{"\\u0061": 7, "s": "q\\"x"}', '{"a":1,"a":2}',
]
s = asl.open(snapshot_every_versions=3)
s.append_batch([{"event_type": "t", "entity_id": f"e{i % 3}", "payload": t}
                for i, t in enumerate(texts * 3)])
s.append_batch([{"event_type": "t", "entity_id": "flat", "payload": {"i": i, "k": [i]}}
                for i in range(5)])
s.checkpoint()
s.append("t", "e1", {"tail": True})
s.append("t", "flat", {"i": None, "last": "x"})
s.state("e0")
want = {}
for e in s.events():
    merge_patch(want.setdefault(e.entity_id, {}), e.payload)
for limit in (1, 2, 100):
    s._states.fold_payloads = limit
    frame = s.states()
    keys = sorted(want)
    assert frame["entity_id"].tolist() == keys
    assert [orjson.dumps(x) for x in frame["state"]] == [orjson.dumps(want[k]) for k in keys]
print("ok")
"""


def test_the_fold_gives_the_same_states_with_the_jit_disabled(run_without_jit):
    run_without_jit(NO_JIT_SCRIPT)


def test_payload_views_read_every_kind_of_piece():
    """``payload_texts`` views pieces as the read side may hold them: a slice of a larger
    batch (its offsets do not start at 0), large_string payloads (int64 offsets), an
    empty piece; positions run on from piece to piece."""
    texts = [f'{{"n": {i}, "s": "{"é" * i}"}}' for i in range(9)]

    def batch(values: list[str], kind: pa.DataType) -> pa.RecordBatch:
        return pa.record_batch([pa.array(values, kind)], names=["payload"])

    pieces = [
        batch(["skipped", *texts[:3], "after"], pa.string()).slice(1, 3),
        batch([], pa.string()),
        batch(texts[3:7], pa.large_string()),
        pa.record_batch(
            [pa.ExtensionArray.from_storage(pa.json_(), pa.array(texts[7:], pa.string()))],
            names=["payload"],
        ),
    ]
    views = payload_texts(pieces)
    assert views.bases.tolist() == [0, 3, 3, 7, 9]
    assert views.wide.tolist() == [0, 0, 1, 0]
    got = []
    for k in range(len(pieces)):
        offsets = views.offsets64[k] if views.wide[k] else views.offsets32[k]
        data = views.datas[k]
        for r in range(views.bases[k + 1] - views.bases[k]):
            got.append(bytes(data[offsets[r] : offsets[r + 1]]).decode())
    assert got == texts
    assert payload_texts([]).bases.tolist() == [0]
