"""The kernels also run as plain Python (NUMBA_DISABLE_JIT=1), which coverage relies on."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = r"""
import warnings
import numpy as np
warnings.simplefilter("error")
np.seterr(over="ignore")  # uint64 wrap-around is the hash's arithmetic, not an error
import crc32c as ref_crc, xxhash, orjson
import allsource_lab as asl
from allsource_lab.kernels import checksum, hashing, jsontext, keytable
data = bytes(range(256)) * 3
a = np.frombuffer(data, np.uint8)
assert int(hashing.xxh64(a, 0, 100, 0)) == xxhash.xxh64_intdigest(data[:100])
assert checksum.crc32c(a, 0, 300, 0) == ref_crc.crc32c(data[:300])
t = keytable.KeyTable(capacity=1)
assert t.intern_many(a[:6], np.array([0, 2, 4, 6], np.int64)).tolist() == [0, 1, 2]
text = b'{"a": [1, 2.5, "x"], "b": null}'
assert jsontext.check_objects(np.frombuffer(text, np.uint8), np.array([0, len(text)]), 64)[0] == -1
s = asl.open()
s.append("t", "e", {"i": 1})
s.append_batch([{"event_type": "t", "entity_id": "e", "payload": {"i": 2}}])
assert [e.version for e in s.events()] == [1, 2]
assert s.verify().ok
print("ok")
"""


def test_kernels_run_with_the_jit_disabled():
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "ok"
