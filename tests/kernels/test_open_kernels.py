"""What an open of a large store relies on: a key table keeps its numbers through
``reserve`` and ``truncate``, as a dict would; with the JIT on and off."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from allsource_lab._kernels.keytable import KeyTable


def buffers(keys: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    data = np.frombuffer(b"".join(keys), np.uint8)
    offsets = np.zeros(len(keys) + 1, np.int64)
    np.cumsum([len(k) for k in keys], out=offsets[1:])
    return data, offsets


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.binary(max_size=20), unique=True, max_size=200),
    st.integers(0, 200),
    st.lists(st.binary(max_size=20), max_size=30),
)
def test_reserve_and_truncate_keep_numbers_as_a_dict_would(keys, keep, more):
    table = KeyTable(capacity=1)
    table.reserve(len(keys), sum(map(len, keys)))
    assert table.intern_many(*buffers(keys)).tolist() == list(range(len(keys)))
    keep = min(keep, len(keys))
    table.truncate(keep)
    model = {k: i for i, k in enumerate(keys[:keep])}
    assert len(table) == keep
    for k in keys:
        assert table.lookup(k) == model.get(k, -1)
    for k in more:  # numbering goes on after the kept keys, growing as it must
        assert table.intern(k) == model.setdefault(k, len(model))
    assert [table.key(i) for i in range(len(table))] == list(model)


NO_JIT = r"""
import warnings
warnings.simplefilter("error")
import numba, numpy as np
assert numba.config.DISABLE_JIT
from allsource_lab._kernels.keytable import KeyTable

t = KeyTable(capacity=1)
t.reserve(3, 6)
numbers = t.intern_many(np.frombuffer(b"aabbcc", np.uint8), np.array([0, 2, 4, 6]))
assert numbers.tolist() == [0, 1, 2]
t.truncate(1)
assert (t.lookup(b"aa"), t.lookup(b"bb"), t.intern(b"cc")) == (0, -1, 1)
print("ok")
"""


def test_open_kernels_give_the_same_answers_with_the_jit_disabled(run_without_jit):
    run_without_jit(NO_JIT)
