"""The kernels also run as plain Python (NUMBA_DISABLE_JIT=1), warning-free.

numba compiles the same source, so this is what coverage and a debugger see. The child
process turns every warning into an error and does not silence numpy's overflow
warnings: uint64 wrap-around in the hash must be handled by the kernels themselves.
"""

from __future__ import annotations

SCRIPT = r"""
import random, warnings
warnings.simplefilter("error")
import crc32c as ref_crc, numba, numpy as np, pyarrow as pa, xxhash
assert numba.config.DISABLE_JIT
import allsource_lab as asl
from allsource_lab._storage.arrowbuf import string_array_from_buffers, string_buffers
from allsource_lab._kernels import checksum, hashing, jsontext, keytable

rnd = random.Random(5)
for n in [0, 1, 3, 4, 7, 8, 31, 32, 33, 64, 100, 257]:
    b = rnd.randbytes(n)
    a = np.frombuffer(b, np.uint8)
    for seed in (0, 2**63 + 5):
        assert int(hashing.xxh64(a, 0, n, np.uint64(seed))) == xxhash.xxh64_intdigest(b, seed)
    assert checksum.crc32c(a, 0, n, 7) == ref_crc.crc32c(b, 7)

items = ["", "a", "ab", "é", "日本", "a"] + [f"k{i}" for i in range(40)]
data, offsets = string_buffers(pa.array(items).slice(1))
want = [xxhash.xxh64_intdigest(s.encode()) for s in items[1:]]
assert hashing.xxh64_many(data, offsets, 0).tolist() == want
assert hashing.partitions_of(np.array(want, np.uint64), 7).tolist() == [h % 7 for h in want]

t = keytable.KeyTable(capacity=1)  # grows and rehashes several times
model = {}
numbers = t.intern_many(data, offsets).tolist()
assert numbers == [model.setdefault(s, len(model)) for s in items[1:]]
assert t.intern(b"") == len(model) and t.lookup(b"zz") == -1
for i in range(40):  # one at a time, through growth
    key = f"single-{i}".encode()
    assert t.intern_hashed(key) == (len(model) + 1 + i, xxhash.xxh64_intdigest(key))
assert t.lookup_many(data, offsets).tolist() == numbers
singles = [f"single-{i}" for i in range(40)]
assert string_array_from_buffers(*t.key_buffers()).to_pylist() == list(model) + [""] + singles
assert t.hashes().tolist() == [
    xxhash.xxh64_intdigest(k.encode()) for k in list(model) + [""] + singles
]

from allsource_lab._storage import wal
framed = bytearray(wal.FRAME.pack(3, 0) + b"abc" + wal.FRAME.pack(1, 0) + b"z")
wal.fill_checksums(framed)
assert bytes(framed) == wal.frame(b"abc") + wal.frame(b"z")

text = b'{"a": [1, 2.5, "x"], "b": null}'
assert jsontext.check_objects(np.frombuffer(text, np.uint8), np.array([0, len(text)]), 64)[0] == -1

s = asl.open()
s.append("t", "e", {"i": 1})
s.append_batch([{"event_type": "t", "entity_id": "e", "payload": {"i": 2}}])
assert [e.version for e in s.events()] == [1, 2]
s.checkpoint()
s.append("u", "f", {"j": {"k": 1}})
s.append("t", "e", {"j": None, "i": 3}, timestamp="2000-01-01T00:00:00Z")
assert s.state("e") == {"i": 3} and s.state("e", as_of="2001-01-01T00:00:00Z") == {"i": 3}
assert [e.sequence for e in s.events(event_type="t", reverse=True, limit=2)] == [4, 2]
assert s.states()["version"].tolist() == [3, 1]
assert s.snapshot("e") == 3
assert s.verify().ok
print("ok")
"""


def test_kernels_give_the_reference_answers_with_the_jit_disabled(run_without_jit):
    run_without_jit(SCRIPT)
