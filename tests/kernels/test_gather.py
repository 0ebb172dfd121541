"""Reads gathered in one compiled pass give exactly the rows that slicing and taking gave.

The reference is the read side's former ``Reader.table``, kept here: every piece's span
sliced (consecutive rows) or taken, then one ``Table.from_batches``. Readers are built
straight from record batches, so that pieces can be what the store may hold: slices of
larger batches (non-zero array offsets), batches over read-only memory (as a memory-mapped
column file gives), schema_version with and without nulls, texts in any script.
"""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import allsource_lab as asl
from allsource_lab._kernels import gather
from allsource_lab._kernels.keytable import KeyTable
from allsource_lab._query import reads
from allsource_lab._query.reads import Reader
from allsource_lab._storage.arrowbuf import string_buffers
from allsource_lab.events import EVENT_SCHEMA


@pytest.fixture(autouse=True, scope="module")
def gather_small_pieces():
    """Pieces here are small; the read side gathers only from pieces of 1,024 rows or
    more (smaller ones are taken from, as before), so lower that for these tests."""
    rows = reads._GATHER_ROWS
    reads._GATHER_ROWS = 1
    yield
    reads._GATHER_ROWS = rows


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


def reference_table(reader: Reader, positions: np.ndarray, columns: list[str] | None) -> pa.Table:
    """``Reader.table`` as it was before the gather kernel."""
    schema = (
        EVENT_SCHEMA if columns is None else pa.schema([EVENT_SCHEMA.field(c) for c in columns])
    )
    if not len(positions):
        return schema.empty_table()
    pieces = reader.pieces if columns is None else [p.select(columns) for p in reader.pieces]
    parts = [
        pieces[k].slice(first, n) if rows is None else pieces[k].take(rows)
        for k, first, n, rows in reader._spans(positions)
    ]
    return pa.Table.from_batches(parts, schema)


def event_batch(rnd: random.Random, first_seq: int, n: int, texts: list[str]) -> pa.RecordBatch:
    """``n`` events with sequences from ``first_seq``, rows in a shuffled order."""
    seqs = list(range(first_seq, first_seq + n))
    rnd.shuffle(seqs)

    def text() -> str:
        return rnd.choice(texts)

    columns = [
        pa.array(seqs, pa.int64()),
        pa.ExtensionArray.from_storage(
            pa.uuid(), pa.array([rnd.randbytes(16) for _ in range(n)], pa.binary(16))
        ),
        pa.array([f"type.{text()}" for _ in range(n)], pa.string()),
        pa.array([f"e{rnd.randrange(5)}{text()}" for _ in range(n)], pa.string()),
        pa.array([rnd.randrange(1, 10**6) for _ in range(n)], pa.int64()),
        pa.array([rnd.randrange(-(2**62), 2**62) for _ in range(n)], pa.int64()),
        pa.array([rnd.randrange(0, 2**62) for _ in range(n)], pa.int64()),
        pa.array(['{"t":"' + text().replace('"', "") + '"}' for _ in range(n)], pa.string()),
        pa.array([rnd.choice(["{}", '{"m":"' + text().replace('"', "") + '"}']) for _ in range(n)]),
        pa.array([rnd.randrange(-(2**15), 2**15) for _ in range(n)], pa.int16()),
        pa.array(
            [rnd.choice([None, rnd.randrange(-(2**31), 2**31)]) for _ in range(n)], pa.int32()
        ),
    ]
    columns[5] = columns[5].cast(EVENT_SCHEMA.field("timestamp").type)
    columns[6] = columns[6].cast(EVENT_SCHEMA.field("recorded_at").type)
    for i in (7, 8):
        columns[i] = pa.ExtensionArray.from_storage(pa.json_(), columns[i])
    if rnd.random() < 0.5:  # no nulls at all: the piece has no validity bitmap to read
        columns[10] = pa.array([rnd.randrange(100) for _ in range(n)], pa.int32())
    return pa.RecordBatch.from_arrays(columns, schema=EVENT_SCHEMA)


def piece(
    rnd: random.Random, first_seq: int, n: int, texts: list[str], shape: str | None = None
) -> pa.RecordBatch:
    """A piece of ``n`` rows: a plain batch, a slice of a larger one (non-zero offsets), or
    a batch over read-only memory (``shape``; drawn when None)."""
    shape = shape or rnd.choice(["plain", "slice", "read-only"])
    batch = event_batch(rnd, first_seq, n, texts)
    if shape == "slice":
        before = event_batch(rnd, -100, rnd.randrange(1, 9), texts)
        after = event_batch(rnd, -50, rnd.randrange(1, 9), texts)
        whole = pa.Table.from_batches([before, batch, after]).combine_chunks().to_batches()
        batch = whole[0].slice(before.num_rows, n)
    elif shape == "read-only":
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, EVENT_SCHEMA) as writer:
            writer.write_batch(batch)
        batch = pa.ipc.open_stream(pa.py_buffer(sink.getvalue().to_pybytes())).read_next_batch()
    return batch


def reader_of(pieces: list[pa.RecordBatch]) -> Reader:
    """A reader whose segments are ``pieces`` (each a gapless range of sequences)."""
    reader = Reader(KeyTable(16))
    for batch in pieces:
        numbers = reader.entity_keys.intern_many(*string_buffers(batch.column("entity_id")))
        reader.add_segment(batch, numbers)
    reader.finish_open()
    return reader


@st.composite
def readers(draw: st.DrawFn) -> Reader:
    rnd = random.Random(draw(st.integers(0, 2**32)))
    texts = draw(st.lists(TEXT, min_size=1, max_size=6))
    sizes = draw(st.lists(st.integers(1, 40), min_size=1, max_size=6))
    pieces, seq = [], 1
    for n in sizes:
        pieces.append(piece(rnd, seq, n, texts))
        seq += n
    return reader_of(pieces)


@st.composite
def reads_of(draw: st.DrawFn) -> tuple[Reader, np.ndarray, list[str] | None]:
    reader = draw(readers())
    n = reader.index.n
    how = draw(st.sampled_from(["subset", "all", "reversed", "shuffled", "runs", "empty"]))
    if how == "empty":
        positions = []
    elif how == "all":
        positions = list(range(n))
    elif how == "reversed":
        positions = list(range(n))[::-1]
    elif how == "runs":
        start = draw(st.integers(0, n - 1))
        positions = list(range(start, draw(st.integers(start + 1, n))))
    else:
        positions = draw(st.lists(st.integers(0, n - 1), max_size=3 * n))
        if how == "subset":
            positions = sorted(set(positions))
    columns = draw(
        st.none() | st.lists(st.sampled_from(EVENT_SCHEMA.names), min_size=1, max_size=11)
    )
    return reader, np.array(positions, np.int64), columns


@settings(max_examples=300)
@given(reads_of(), st.sampled_from(["one call", "two calls", "two threads"]))
def test_table_equals_slicing_and_taking_the_pieces(case, how):
    reader, positions, columns = case
    small, two = reads._SMALL_READ, reads._TWO_THREADS_ROWS
    # Small reads take one kernel call, bigger ones two, the biggest plan and copy on two
    # threads: every way for every case.
    reads._SMALL_READ = small if how == "one call" else 0
    reads._TWO_THREADS_ROWS = 0 if how == "two threads" else two
    try:
        got = reader.table(positions, columns)
    finally:
        reads._SMALL_READ, reads._TWO_THREADS_ROWS = small, two
    want = reference_table(reader, positions, columns)
    assert got.schema == want.schema
    assert got.equals(want)
    got.validate(full=True)


@settings(max_examples=100)
@given(readers(), st.data())
def test_payloads_and_event_ids_come_from_the_same_views(reader, data):
    n = reader.index.n
    positions = np.array(data.draw(st.lists(st.integers(0, n - 1), max_size=20)), np.int64)
    want = reference_table(reader, positions, ["payload", "event_id"])
    assert (
        bytes(reader.payload_array(positions))
        == ("[" + ",".join(want.column("payload").to_pylist()) + "]").encode()
    )
    ids = [reader.event_id_at(int(p)) for p in positions]
    assert ids == [u.bytes for u in want.column("event_id").to_pylist()]


def test_scattered_rows_come_out_as_one_chunk_copied_by_the_kernel():
    rnd = random.Random(1)
    reader = reader_of([piece(rnd, 1 + 50 * i, 50, ["a", "é", "日本"]) for i in range(3)])
    positions = np.array([3, 140, 7, 60, 61, 2], np.int64)
    got = reader.table(positions)
    assert got.column(0).num_chunks == 1  # one gathered batch, not one per piece
    assert got.equals(reference_table(reader, positions, None))


def test_long_runs_of_consecutive_rows_are_slices_sharing_the_pieces_memory():
    rnd = random.Random(2)
    n = reads._SLICE_ROWS
    reader = reader_of([piece(rnd, 1 + n * i, n, ["x"]) for i in range(2)])
    # The first piece's rows in row order: one slice of it.
    k0_rows = np.argsort(reader.index.row.view[:n]).astype(np.int64)
    got = reader.table(k0_rows)
    assert got.column("payload").chunk(0).storage.buffers()[2].address == (
        reader.pieces[0].column("payload").storage.buffers()[2].address
    )
    # Short runs (one entity's events in ten segments) are copied: one chunk.
    short = np.concatenate([k0_rows[:10], np.argsort(reader.index.row.view[n:]) + n])[:20]
    got = reader.table(short.astype(np.int64))
    assert got.column(0).num_chunks == 1
    assert got.equals(reference_table(reader, short.astype(np.int64), None))


def test_sliced_and_read_only_pieces_are_read_where_their_rows_are():
    rnd = random.Random(6)
    pieces = [
        piece(rnd, 1 + 40 * i, 40, ["q", "ж"], shape)
        for i, shape in enumerate(["slice", "read-only", "slice"])
    ]
    assert all(column.offset > 0 for column in pieces[0].columns)
    assert not np.frombuffer(pieces[1].column(0).buffers()[1], np.uint8).flags.writeable
    reader = reader_of(pieces)
    for _ in range(50):
        positions = np.array([rnd.randrange(120) for _ in range(rnd.randrange(1, 30))], np.int64)
        assert reader.table(positions).equals(reference_table(reader, positions, None))


def test_every_column_list_has_a_header_the_kernel_can_fill():
    # If a pyarrow release writes record batch messages differently, reads fall back to
    # slicing and taking; this says so instead of letting them silently slow down.
    for columns in [None, *([name] for name in EVENT_SCHEMA.names), ["payload", "sequence"]]:
        assert reads._layout(columns).header is not None


def test_the_address_table_points_at_each_columns_first_row():
    rnd = random.Random(3)
    batch = piece(rnd, 1, 40, ["a", "bc"], "slice")
    row = reads._PieceViews(batch).addresses()
    assert row is not None and row[gather.ROWS] == 40
    for number, column in enumerate(batch.columns):
        arr = column.storage if isinstance(column, pa.ExtensionArray) else column
        values = arr.buffers()[1]
        width = 4 if pa.types.is_string(arr.type) else arr.type.byte_width
        assert row[number] == values.address + arr.offset * width
    # A piece of another schema is never gathered from.
    other = pa.RecordBatch.from_arrays(batch.columns, names=[f"x{n}" for n in EVENT_SCHEMA.names])
    assert reads._PieceViews(other).addresses() is None


def test_reads_bigger_than_the_prefetched_size_give_the_same_rows():
    # Past gather._SMALL rows the kernel prefetches as it goes instead of all at once.
    rnd = random.Random(7)
    reader = reader_of([piece(rnd, 1 + 400 * i, 400, ["a", "ü", ""]) for i in range(4)])
    for size in (gather._SMALL + 1, 3 * gather._SMALL):
        positions = np.array([rnd.randrange(1600) for _ in range(size)], np.int64)
        for columns in (None, ["payload", "schema_version", "event_id"]):
            got = reader.table(positions, columns)
            assert got.equals(reference_table(reader, positions, columns))


def test_texts_of_a_run_copied_together_stay_in_order():
    # Runs of consecutive rows, cut short and resumed, across pieces whose text bytes
    # may lie back to back.
    rnd = random.Random(8)
    reader = reader_of([piece(rnd, 1 + 50 * i, 50, ["ab", "c", ""], "plain") for i in range(3)])
    by_row = np.argsort(reader.index.row.view[:50]).astype(np.int64)
    positions = np.concatenate([by_row[3:9], by_row[20:22], [60, 61, 62], by_row[9:12]])
    assert reader.table(positions).equals(reference_table(reader, positions, None))


@pytest.mark.parametrize("kind", ["memory", "folder"])
def test_entity_and_type_positions_equal_the_postings_before_and_after_appends(kind, tmp_path):
    path = None if kind == "memory" else tmp_path / "s"
    store = asl.open(path)
    store.append_batch(
        [{"event_type": f"t{i % 3}", "entity_id": f"e{i % 7}", "payload": {}} for i in range(60)]
    )
    if path is not None:
        store.close()
        store = asl.open(path)
    for step in range(3):
        reader = store._sealer.reader
        index = reader.index
        for ent in range(len(reader.entity_keys)):
            assert reads._positions(index.entities, ent).tolist() == (
                index.entities.positions(ent).tolist()
            )
        for typ in range(len(reader.type_keys)):
            assert reads._positions(index.types, typ).tolist() == (
                index.types.positions(typ).tolist()
            )
        want = [e.sequence for e in store.events() if e.entity_id == "e3"]
        assert store.events(entity_id="e3").to_arrow().column("sequence").to_pylist() == want
        store.append(f"t{step}", "e3", {"step": step})  # the postings gain a delta
    store.close()


@pytest.mark.parametrize("gather_rows", [1, 1024])
@pytest.mark.parametrize("kind", ["memory", "folder"])
def test_store_reads_stay_right_as_pieces_are_sealed_and_merged(
    kind, gather_rows, tmp_path, monkeypatch
):
    monkeypatch.setattr(reads, "_GATHER_ROWS", gather_rows)
    store = asl.open(None if kind == "memory" else tmp_path / "s")
    store.schemas.register("paid", {"type": "object"})
    rnd = random.Random(4)
    reader_reads = 0
    for step in range(160):
        event_type = rnd.choice(["placed", "paid", "ünï"])
        store.append(event_type, f"o{rnd.randrange(7)}", {"n": step, "s": "ß" * (step % 4)})
        if step % 37 == 36:
            store.checkpoint()
        if step % 5 == 0:
            reader = store._sealer.reader
            for query in [{}, {"entity_id": "o3"}, {"event_type": "paid"}, {"reverse": True}]:
                positions = store._rows.positions(asl.eventframe.Query(**query))
                got = store.events(**query).to_arrow()
                assert got.equals(reference_table(reader, positions, None))
                reader_reads += 1
    assert reader_reads
    store.close()


NOJIT = r"""
import random, warnings
warnings.simplefilter("error")
import numba, numpy as np
assert numba.config.DISABLE_JIT
import tests.kernels.test_gather as t
t.reads._GATHER_ROWS = 1
rnd = random.Random(5)
reader = t.reader_of([t.piece(rnd, 1 + 20 * i, 20, ["a", "é"]) for i in range(3)])
for positions in ([5, 41, 3, 22, 59, 0], list(range(60))[::-1], [7]):
    positions = np.array(positions, np.int64)
    for columns in (None, ["schema_version", "payload"]):
        want = t.reference_table(reader, positions, columns)
        assert reader.table(positions, columns).equals(want)
print("ok")
"""


def test_the_gather_kernel_gives_the_same_rows_with_the_jit_disabled(run_without_jit):
    run_without_jit(NOJIT)
