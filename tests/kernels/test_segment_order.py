"""Segment order by the kernels is exactly Arrow's: the same rows, in the same order.

The reference is what sealing did before the kernels: ``pc.sort_indices`` by SORT_KEYS
(a stable sort), ``take`` and ``combine_chunks``.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allsource_lab._kernels.segment_order import _sort_rows, inverse, segment_order
from allsource_lab._storage.arrowbuf import string_buffers
from allsource_lab._storage.segments import SORT_KEYS, sort_for_segment
from allsource_lab.events import EVENT_SCHEMA

# Ids that are prefixes of one another, empty, multi-byte UTF-8, a NUL byte, and long
# ones that tie for several depths of the radix sort (5 bytes, then 7 at a time).
SPECIAL_IDS = [
    "",
    "a",
    "ab",
    "a\x00",
    "é",
    "日本",
    "order-1",
    "order-12",
    "order-123456",
    "order-1234567",
    "customer/2026/region-eu-west/0001",
    "customer/2026/region-eu-west/0001x",
    "customer/2026/region-eu-west/0002",
]
entity_ids = st.one_of(st.sampled_from(SPECIAL_IDS), st.text(max_size=14))


def reference(table: pa.Table) -> tuple[pa.Table, np.ndarray]:
    order = pc.sort_indices(table, sort_keys=SORT_KEYS)
    return table.take(order).combine_chunks(), order.to_numpy()


def event_table(
    ids: list[str],
    partitions: list[int],
    seqs: list[int],
    versions: list[int | None],
    seed: int,
) -> pa.Table:
    """An EVENT_SCHEMA table: one row per id, with the given partitions, sequences and
    nullable schema versions, and everything else derived from the row."""
    n = len(ids)
    rng = np.random.default_rng(seed)
    times = pa.array(1_700_000_000_000_000 + rng.integers(0, 10**9, n), pa.timestamp("us", "UTC"))
    uuids = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), n, [None, pa.py_buffer(rng.bytes(16 * n))]
    )
    payloads = [f'{{"i": {i}, "note": "{"ü" * (i % 4)}"}}' for i in range(n)]
    columns = [
        pa.array(seqs, pa.int64()),
        pa.ExtensionArray.from_storage(pa.uuid(), uuids),
        pa.array([f"type.{i % 3}" for i in range(n)], pa.string()),
        pa.array(ids, pa.string()),
        pa.array(rng.integers(1, 100, n), pa.int64()),
        times,
        times,
        pa.ExtensionArray.from_storage(pa.json_(), pa.array(payloads, pa.string())),
        pa.ExtensionArray.from_storage(pa.json_(), pa.array(["{}"] * n, pa.string())),
        pa.array(partitions, pa.int16()),
        pa.array(versions, pa.int32()),
    ]
    return pa.Table.from_arrays(columns, schema=EVENT_SCHEMA)


def rechunked(table: pa.Table, cuts: list[int], lead: int) -> pa.Table:
    """``table`` as record batches split at ``cuts``, each a slice of a longer batch
    (``lead`` rows in front), so that the arrays have non-zero offsets."""
    n = table.num_rows
    bounds = sorted({0, n, *(c % (n + 1) for c in cuts)})
    padded = pa.concat_tables([table.slice(0, min(lead, n)), table]).combine_chunks()
    whole = padded.to_batches()[0] if padded.num_rows else None
    batches = [whole.slice(min(lead, n) + a, b - a) for a, b in itertools.pairwise(bounds)]
    if whole is not None:
        batches.insert(1, whole.slice(0, 0))  # an empty chunk among them
    return pa.Table.from_batches(batches, EVENT_SCHEMA)


@st.composite
def event_tables(draw: st.DrawFn) -> pa.Table:
    ids = draw(st.lists(entity_ids, max_size=60))
    many = draw(st.booleans())
    partitions = st.integers(-32768, 32767) if many else st.integers(0, 3)
    n = len(ids)
    if draw(st.integers(0, 9)) == 0:  # not a function of the id, as the store's are
        parts = draw(st.lists(partitions, min_size=n, max_size=n))
    else:
        partition_of = {e: draw(partitions) for e in ids}
        parts = [partition_of[e] for e in ids]
    seqs = list(range(1, n + 1))
    shape = draw(st.sampled_from(["in order", "ties", "shuffled"]))
    if shape == "ties":  # repeated sequences: the stable order decides
        seqs = sorted(draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)))
    elif shape == "shuffled":
        seqs = draw(st.permutations(seqs))
    versions = draw(st.lists(st.none() | st.integers(1, 4), min_size=n, max_size=n))
    table = event_table(ids, parts, seqs, versions, draw(st.integers(0, 2**32)))
    if draw(st.booleans()):
        cuts = draw(st.lists(st.integers(0, 100), max_size=4))
        table = rechunked(table, cuts, draw(st.integers(0, 3)))
    return table


def assert_like_reference(table: pa.Table) -> None:
    ordered, order = sort_for_segment(table)
    want, want_order = reference(table)
    assert ordered.schema == EVENT_SCHEMA
    assert all(col.num_chunks == 1 for col in ordered.columns)
    assert order.dtype == np.int64
    assert order.tolist() == want_order.tolist()
    assert ordered.equals(want)


@settings(max_examples=300, deadline=None)
@given(table=event_tables())
def test_segment_order_is_arrows_stable_sort(table):
    assert_like_reference(table)


@settings(max_examples=200, deadline=None)
@given(table=event_tables(), seed=st.integers(0, 2**32 - 1))
def test_the_stores_entity_numbers_give_arrows_stable_sort_too(table, seed):
    # A seal passes each row's entity number as the store keeps them: any non-negative
    # ints, one per distinct id, not dense and not in first-seen order.
    ids = table.column("entity_id").to_pylist()
    rng = np.random.default_rng(seed)
    pool = rng.permutation(10 * (len(set(ids)) + 1))
    number = {e: int(pool[k]) for k, e in enumerate(dict.fromkeys(ids))}
    entities = np.array([number[e] for e in ids], np.int32)
    ordered, order = sort_for_segment(table, entities=entities)
    want, want_order = reference(table)
    assert order.tolist() == want_order.tolist()
    assert ordered.equals(want)


@pytest.mark.parametrize("n", [0, 1])
def test_tables_of_zero_and_one_row_sort_like_arrow(n):
    table = event_table(["é"] * n, [7] * n, list(range(n)), [None] * n, seed=1)
    assert_like_reference(table)
    assert_like_reference(rechunked(table, [0], 0))


@pytest.mark.parametrize(
    ("rows", "entities", "in_order"),
    [
        (6_000, 100, True),  # few entities: keys numbered, then a counting sort
        (6_000, 6_000, True),  # an entity a row: the rows sorted directly
        (6_000, 3_000, False),  # out of sequence order, as compaction hands it
        (6_000, 50, False),
    ],
)
def test_large_tables_take_either_path_to_the_same_order(rows, entities, in_order):
    rng = np.random.default_rng(rows + entities)
    names = [f"customer/2026/{i * 7919 % entities:08d}" for i in range(entities)]
    ids = [names[i] for i in rng.integers(0, entities, rows)]
    seqs = np.arange(rows) if in_order else rng.permutation(rows)
    partition_of = {e: int(h) for e, h in zip(names, rng.integers(0, 32, entities), strict=True)}
    versions = [None if i % 7 == 0 else i % 3 for i in range(rows)]
    table = event_table(ids, [partition_of[e] for e in ids], seqs.tolist(), versions, rows)
    assert_like_reference(table)
    assert_like_reference(rechunked(table, [100, 2_000, 4_500], 5))


@pytest.mark.parametrize(("rows", "entities"), [(20_000, 300), (20_000, 20_000)])
def test_columns_moved_on_two_threads_match_arrow(rows, entities):
    rng = np.random.default_rng(rows + entities)
    ids = [f"acct-{i}" for i in rng.integers(0, entities, rows)]
    versions = [None if i % 5 == 0 else i % 4 for i in range(rows)]
    table = event_table(ids, [len(e) % 7 for e in ids], list(range(rows)), versions, rows)
    want, want_order = reference(table)
    with ThreadPoolExecutor(max_workers=1) as helper:
        for t in (table, rechunked(table, [3_000, 11_000], 2)):
            ordered, order = sort_for_segment(t, helper)
            assert order.tolist() == want_order.tolist()
            assert ordered.equals(want)
            assert all(col.num_chunks == 1 for col in ordered.columns)


def test_an_error_on_one_thread_waits_for_the_other_half(monkeypatch):
    import allsource_lab._storage.segments as segments

    rows = 20_000
    table = event_table(
        [f"e{i % 9}" for i in range(rows)], [1] * rows, list(range(rows)), [None] * rows, 4
    )
    finished: list[str] = []
    original = segments._in_order

    def in_order(col, order, to, allocate):
        if pa.types.is_int16(col.type):  # the partition column fails, wherever it runs
            raise MemoryError("no room")
        out = original(col, order, to, allocate)
        finished.append(str(col.type))
        return out

    monkeypatch.setattr(segments, "_in_order", in_order)
    with ThreadPoolExecutor(max_workers=1) as helper, pytest.raises(MemoryError):
        sort_for_segment(table, helper)
    # Both halves ran to their end before the error was raised: nothing is left
    # writing into buffers once sort_for_segment has returned.
    assert len(finished) == table.num_columns - 1


def test_read_only_chunks_beside_writable_ones_sort_like_arrow():
    ids = [f"e{i % 7}" for i in range(50)]
    versions = [None if i % 3 else 1 for i in range(50)]
    table = event_table(ids, [len(e) for e in ids], list(range(50)), versions, seed=3)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    frozen = pa.ipc.open_stream(pa.py_buffer(sink.getvalue().to_pybytes())).read_all()
    assert not np.frombuffer(
        frozen.column("payload").chunk(0).storage.buffers()[2], np.uint8
    ).flags.writeable
    mixed = pa.Table.from_batches(table.slice(0, 20).to_batches() + frozen.slice(20).to_batches())
    assert_like_reference(mixed)


def test_keys_of_other_types_or_with_nulls_sort_as_arrow_sorts_them():
    table = pa.table(
        {
            "sequence": pa.array([3, None, 1], pa.int64()),
            "entity_id": ["b", "a", None],
            "partition": pa.array([1, 1, 1], pa.int32()),
            "payload": pa.array([[1], [2, 3], []]),  # a nested column: Arrow's take
        }
    )
    ordered, order = sort_for_segment(table)
    want, want_order = reference(table)
    assert order.tolist() == want_order.tolist() and ordered.equals(want)


@given(ids=st.lists(st.tuples(st.integers(-2, 2), entity_ids), max_size=80))
def test_rows_sort_by_partition_then_id_bytes_keeping_row_order_among_equals(ids):
    data, offsets = string_buffers(pa.array([e for _, e in ids], pa.string()))
    parts = np.array([p for p, _ in ids], np.int16)
    rows = np.arange(len(ids), dtype=np.int64)
    _sort_rows(data, offsets, parts, rows)
    want = sorted(range(len(ids)), key=lambda r: (ids[r][0], ids[r][1].encode(), r))
    assert rows.tolist() == want


@given(
    rows=st.lists(st.tuples(st.integers(0, 3), entity_ids, st.integers(-(2**63), 2**63 - 1))),
    numbered=st.booleans(),
)
def test_segment_order_breaks_ties_by_sequence_then_row(rows, numbered):
    data, offsets = string_buffers(pa.array([e for _, e, _ in rows], pa.string()))
    parts = np.array([p for p, _, _ in rows], np.int16)
    seqs = np.array([s for _, _, s in rows], np.int64)
    number: dict[str, int] = {}
    keys = [number.setdefault(e, len(number)) for _, e, _ in rows] if numbered else []
    got = segment_order(data, offsets, parts, seqs, np.array(keys, np.int32))
    key = lambda r: (rows[r][0], rows[r][1].encode(), rows[r][2], r)  # noqa: E731
    assert got.tolist() == sorted(range(len(rows)), key=key)


@given(order=st.integers(0, 40).flatmap(lambda n: st.permutations(range(n))))
def test_inverse_says_where_each_row_goes(order):
    to = inverse(np.array(order, np.int64))
    assert [order[t] for t in to.tolist()] == list(range(len(order)))


SCRIPT = r"""
import warnings
warnings.simplefilter("error")
import numba, numpy as np, pyarrow as pa, pyarrow.compute as pc
assert numba.config.DISABLE_JIT
from allsource_lab._storage.segments import SORT_KEYS, sort_for_segment
ids = ["b", "a", "", "é", "a", "order-1234567", "order-1234567x", "b"] * 3
table = pa.table({
    "sequence": pa.array([5, 1, 2, 9, 3, 4, -2, 8] * 3, pa.int64()),
    "entity_id": pa.array(ids, pa.string()),
    "partition": pa.array([len(e) % 2 for e in ids], pa.int16()),
    "uuid": pa.array([bytes([i]) * 16 for i in range(24)], pa.binary(16)),
    "version": pa.array([None, 1, 2] * 8, pa.int32()),
    "payload": pa.array(["{}", '{"x": "ü"}', ""] * 8, pa.large_string()),
})
table = pa.Table.from_batches(table.to_batches(max_chunksize=10))
ordered, order = sort_for_segment(table)
want = pc.sort_indices(table, sort_keys=SORT_KEYS)
assert order.tolist() == want.to_pylist()
assert ordered.equals(table.take(want).combine_chunks())
print("ok")
"""


def test_the_kernels_give_the_same_order_with_the_jit_disabled(run_without_jit):
    run_without_jit(SCRIPT)
