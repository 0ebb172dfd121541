"""The memory a seal sorts its rows into, kept from one seal to the next
(``allsource_lab/_storage/arena.py``).

Each seal's rows are written over the last one's, so nothing sorted into the arena may
outlive its seal: these tests seal many tails in a row and check every answer afterwards,
also when a column file cannot be mapped and the sorted rows themselves stay in use.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

import allsource_lab as asl
import allsource_lab._storage.folder as folder
from allsource_lab._storage.arena import Arena
from allsource_lab.errors import CorruptionError


def tail(n: int, first: int) -> pa.Table:
    return pa.table(
        {
            "event_type": [f"t{(first + i) % 3}" for i in range(n)],
            "entity_id": [f"e{(first + i) % 101}" for i in range(n)],
            "payload": [
                f'{{"i": {first + i}, "s": "{"y" * ((first + i) % 29)}"}}' for i in range(n)
            ],
        }
    )


def expected_rows(tables: list[pa.Table]) -> list[tuple[str, str, str]]:
    rows = []
    for t in tables:
        rows += list(
            zip(
                t.column("event_type").to_pylist(),
                t.column("entity_id").to_pylist(),
                t.column("payload").to_pylist(),
                strict=True,
            )
        )
    return rows


def stored_rows(store: asl.EventStore) -> list[tuple[str, str, str]]:
    t = store.events().to_arrow()
    return list(
        zip(
            t.column("event_type").to_pylist(),
            t.column("entity_id").to_pylist(),
            [p for p in t.column("payload").cast(pa.string()).to_pylist()],
            strict=True,
        )
    )


def normalized(rows: list[tuple[str, str, str]]) -> list[tuple[str, str, object]]:
    import json

    return [(a, b, json.loads(c)) for a, b, c in rows]


def test_many_seals_through_one_arena_keep_every_event(tmp_path):
    # Tails of ~5 MB and more go through the arena; each seal writes over the last one's
    # rows, and every sealed event must still read back as it was appended.
    tables = [tail(40_000, k * 40_000) for k in range(6)]
    with asl.open(tmp_path / "s", checkpoint_every_events=10**9) as store:
        for t in tables:
            store.append_batch(t)
            store.checkpoint()
        assert store._storage._arena._size > 0  # the seals used it
        assert normalized(stored_rows(store)) == normalized(expected_rows(tables))
        assert store.state("e5") is not None
    with asl.open(tmp_path / "s") as again:
        assert normalized(stored_rows(again)) == normalized(expected_rows(tables))
        assert again.verify().ok


def test_rows_kept_in_the_heap_when_a_column_file_cannot_be_mapped(tmp_path, monkeypatch):
    # The seal's rows themselves are then the segment: they must leave the arena before
    # the next seal writes over it.
    def unmappable(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise CorruptionError("cannot map (injected)")

    monkeypatch.setattr(folder, "open_columns", unmappable)
    tables = [tail(40_000, k * 40_000) for k in range(4)]
    with asl.open(tmp_path / "s", checkpoint_every_events=10**9) as store:
        for t in tables:
            store.append_batch(t)
            store.checkpoint()
        assert normalized(stored_rows(store)) == normalized(expected_rows(tables))


def test_an_arena_lends_to_one_sort_at_a_time_and_shrinks():
    arena = Arena()
    need = 8 << 20
    with arena.lend(need) as allocate:
        a = allocate(1000)
        assert isinstance(a, pa.Buffer) and a.is_mutable and a.address % 64 == 0
        b = allocate(1000)
        assert b.address - a.address == 1024  # bumped, aligned
        with arena.lend(need) as other:
            assert other is pa.allocate_buffer  # lent already: Arrow's allocator
        big = allocate(1 << 30)  # past the arena: Arrow's allocator too
        assert not (a.address <= big.address < a.address + arena._size)
    size = arena._size
    assert size >= need
    with arena.lend(need) as allocate:
        assert allocate(10).address == a.address  # the next lease starts over
    with arena.lend(size * 8) as allocate:
        assert arena._size >= size * 8
    with arena.lend(need) as allocate:
        assert arena._size < size * 8  # a quarter or less of it: a smaller one
    with arena.lend(1024) as allocate:
        assert allocate is pa.allocate_buffer  # too small to be worth keeping memory
    arena.close()
    assert bytes(a)[:0] == b""  # a buffer cut from a closed arena is still readable


@pytest.mark.parametrize("n", [0, 1])
def test_small_and_empty_tails_skip_the_arena(tmp_path, n):
    with asl.open(tmp_path / "s", checkpoint_every_events=10**9) as store:
        if n:
            store.append("t", "e", {"i": 1})
        store.checkpoint()
        assert store._storage._arena._size == 0
        assert len(store.events()) == n
