"""Single appends left in many WAL buffers read back whole and in order.

The tail decodes the records the WAL writer took while nobody read in groups of buffers
(one chunk per group); whatever the grouping, every event must read back as appended.
"""

from __future__ import annotations

import pytest

import allsource_lab as asl
from allsource_lab._storage import tail as tail_module


def _append(store: asl.EventStore, n: int) -> list[tuple[int, str, dict[str, int]]]:
    expected = []
    for i in range(n):
        event = store.append(f"type.{i % 3}", f"entity-{i % 7}", {"i": i, "pad": "x" * (i % 50)})
        expected.append((event.sequence, event.entity_id, {"i": i, "pad": "x" * (i % 50)}))
    return expected


def _read(store: asl.EventStore) -> list[tuple[int, str, dict[str, int]]]:
    return [(e.sequence, e.entity_id, e.payload) for e in store.events()]


@pytest.mark.parametrize("group_bytes", [1, 5_000, 64 * 1024 * 1024])
def test_events_left_in_many_wal_buffers_read_back_in_order(
    store_factory: object, monkeypatch: pytest.MonkeyPatch, group_bytes: int
) -> None:
    monkeypatch.setattr(tail_module, "_GROUP_BYTES", group_bytes)
    # 4 KiB WAL buffers: ~40 records each, so 3,000 appends leave ~70 buffers undecoded.
    store = store_factory(wal_buffer_bytes=4096, checkpoint_every_events=1_000_000)  # type: ignore[operator]
    expected = _append(store, 3_000)
    assert _read(store) == expected
    # More appends after a read, decoded on the next read after the first chunks.
    expected += _append(store, 500)
    assert _read(store) == expected
    store.checkpoint()
    assert _read(store) == expected
