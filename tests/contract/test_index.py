"""The event index: postings and the selection kernels against plain-Python models."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from allsource_lab._kernels import postings as kernels
from allsource_lab._query.index import EventIndex, Growable, Postings


def model_positions(keys: list[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for p, k in enumerate(keys):
        out.setdefault(k, []).append(p)
    return out


@given(
    chunks=st.lists(st.lists(st.integers(0, 12), max_size=40), max_size=12),
    min_delta=st.sampled_from([1, 8, 65_536]),
)
def test_postings_extended_chunk_by_chunk_equal_a_model(chunks, min_delta):
    postings = Postings()
    postings.MIN_DELTA = min_delta  # small: the rebuild from CSR + chain runs often
    keys: list[int] = []
    for chunk in chunks:
        keys.extend(chunk)
        n_keys = max(keys, default=-1) + 1
        postings.extend(np.array(keys, np.int32), n_keys)
        want = model_positions(keys)
        for k in range(n_keys + 2):
            got = postings.positions(k).tolist()
            assert got == want.get(k, [])
            assert postings.count(k) == len(got)


def test_bulk_build_equals_extending():
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 50, 5000).astype(np.int32)
    bulk = Postings()
    bulk.build(keys, 50)
    step = Postings()
    for end in range(0, 5001, 700):
        step.extend(keys[:end], 50)
    step.extend(keys, 50)
    for k in range(50):
        assert bulk.positions(k).tolist() == step.positions(k).tolist()


def test_growable_keeps_values_across_growth():
    g = Growable(np.int64, capacity=2)
    for i in range(100):
        g.extend(np.array([i, -i]))
    assert g.view.tolist() == [v for i in range(100) for v in (i, -i)]
    g.reserve(250, fill=7)
    assert g.n == 250 and g.view[200:].tolist() == [7] * 50


@given(
    n=st.integers(0, 60),
    seed=st.integers(0, 2**16),
    reverse=st.booleans(),
    limit=st.one_of(st.none(), st.integers(0, 10)),
    everything=st.booleans(),
)
def test_select_kernel_equals_a_filter(n, seed, reverse, limit, everything):
    rng = np.random.default_rng(seed)
    ts = rng.integers(0, 20, n).astype(np.int64)
    types = rng.integers(0, 3, n).astype(np.int32)
    candidates = np.sort(rng.choice(max(n, 1), size=min(n, 15), replace=False)).astype(np.int64)
    if n == 0:
        candidates = candidates[:0]
    lo, hi = sorted(rng.integers(0, n + 1, 2).tolist())
    ts_lo, ts_hi = sorted(rng.integers(-1, 21, 2).tolist())
    event_type = int(rng.integers(-1, 3))
    pool = list(range(lo, hi)) if everything else candidates.tolist()
    want = [
        p
        for p in pool
        if lo <= p < hi and ts_lo <= ts[p] <= ts_hi and (event_type < 0 or types[p] == event_type)
    ]
    if reverse:
        want.reverse()
    if limit is not None:
        want = want[:limit]
    got = kernels.select(
        candidates,
        everything,
        lo,
        hi,
        ts,
        types,
        event_type,
        ts_lo,
        ts_hi,
        kernels.NO_LIMIT if limit is None else limit,
        reverse,
    )
    assert got.tolist() == want


@pytest.mark.parametrize("descending", [False, True])
def test_groups_split_positions_by_piece_and_spot_slices(descending):
    bases = np.array([0, 5, 9], np.int64)
    # piece 0 rows are scrambled (a segment), pieces 1 and 2 in order (tail chunks)
    row = np.array([3, 0, 4, 1, 2, 0, 1, 2, 3, 0, 1, 2], np.int32)
    positions = np.array([1, 3, 5, 6, 7, 10, 11], np.int64)
    if descending:
        positions = positions[::-1].copy()
    got = kernels.groups(positions, row, bases).tolist()
    if descending:
        assert got == [[2, 0, 2, 0, 2], [1, 2, 5, 0, 2], [0, 5, 7, 0, 1]]
    else:
        assert got == [[0, 0, 2, 1, 0], [1, 2, 5, 1, 0], [2, 5, 7, 1, 1]]


def test_place_ranks_gapless_sequences_and_refuses_gaps():
    assert kernels.place(np.array([12, 10, 11]), 10).tolist() == [1, 2, 0]
    assert kernels.place(np.array([12, 10, 13]), 10).tolist() == [-1, -1, -1]
    assert kernels.place(np.array([10, 10, 11]), 10).tolist() == [-1, -1, -1]


def test_cuts_find_known_at_and_after_by_binary_search():
    index = EventIndex()
    seq = np.array([1, 2, 3, 5, 8], np.int64)
    rec = np.array([10, 10, 20, 30, 30], np.int64)
    zeros = np.zeros(5, np.int32)
    index.add(seq, seq, rec, zeros, zeros, zeros)
    assert [index.known_cut(t) for t in (None, 9, 10, 25, 30)] == [5, 0, 2, 3, 5]
    assert [index.after_cut(a) for a in (None, 0, 3, 4, 8)] == [0, 0, 3, 3, 5]


def test_groups_handle_positions_in_any_order():
    bases = np.array([0, 4, 8], np.int64)
    row = np.arange(12, dtype=np.int32) % 4
    positions = np.array([9, 1, 2, 10, 11, 0, 5], np.int64)  # back and forth across pieces
    got = kernels.groups(positions, row, bases).tolist()
    assert got == [
        [2, 0, 1, 1, 1],
        [0, 1, 3, 1, 1],
        [2, 3, 5, 1, 2],
        [0, 5, 6, 1, 0],
        [1, 6, 7, 1, 1],
    ]


@pytest.mark.parametrize("mapped", [True, False])
def test_growable_past_the_mapping_threshold_keeps_values_and_old_views(monkeypatch, mapped):
    """Past _MAP_BYTES a Growable moves into a reserved mapping and grows in place; where
    the reservation is refused it goes on copying. Either way values and views survive."""
    from allsource_lab._query import index as index_module

    monkeypatch.setattr(index_module, "_MAP_BYTES", 4096)
    monkeypatch.setattr(index_module, "_RESERVE_BYTES", 1 << 16)  # forces a re-map too
    if not mapped:
        monkeypatch.setattr(index_module, "_reserve", lambda size: None)
    g = Growable(np.int64, capacity=4)
    views = []
    model: list[int] = []
    for step in range(40):
        values = np.arange(step * 300, step * 300 + 300, dtype=np.int64)
        g.extend(values)
        model.extend(values.tolist())
        views.append((g.view, len(model)))
    assert g.view.tolist() == model
    assert (g._map is not None) == mapped
    for view, n in views:  # each view still reads what was there when it was taken
        assert view.tolist() == model[:n]
    g.reserve(len(model) + 10, fill=-1)
    assert g.view[-10:].tolist() == [-1] * 10
