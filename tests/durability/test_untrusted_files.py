"""Opening a store someone else made runs none of its bytes: nothing is unpickled or executed.

Every file the store reads back (WAL, segments, manifest, snapshots, schema registry,
projection states, subscription cursors) is replaced or joined by a crafted pickle whose
unpickling would create a marker file, correctly framed and checksummed where the format
has frames. Opening, reading, re-adding projections and subscribing must either ignore,
report or refuse those bytes — and the marker must never appear.
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import pytest

import allsource_lab as asl
from allsource_lab._storage.record_log import frame_record, state_file_name


class _Exploit:
    """Unpickling this creates the marker file (what a malicious pickle would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, int]]:
        return (os.open, (str(self.marker), os.O_CREAT | os.O_WRONLY))


def crafted(marker: Path) -> bytes:
    payload = pickle.dumps(_Exploit(marker))
    # The exploit really works when unpickled: the test could otherwise pass vacuously.
    probe = marker.with_suffix(".probe")
    os.close(pickle.loads(pickle.dumps(_Exploit(probe))))
    assert probe.exists()
    probe.unlink()
    return payload


def use_everything(path: Path) -> None:
    """Open the store and touch every part that reads stored bytes back."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            store = asl.open(path, recovery="salvage")
        except asl.AllSourceError:
            return  # refusing a damaged store is fine; running its bytes is not
    try:
        store.verify()
        list(store.events())
        for eid in {e.entity_id for e in store.events()}:
            store.state(eid)
        store.states()
        store.schemas.subjects()
        store.projections.add(asl.EventCounter())
        store.projections.add(asl.EntitySnapshots())
        store.subscribe("mirror", lambda e: None, delivery="sync").close()
    finally:
        store.close()


def make_store(path: Path) -> None:
    store = asl.open(path, snapshot_every_versions=2)
    store.schemas.register("t", {"type": "object"})
    store.projections.add(asl.EventCounter())
    store.projections.add(asl.EntitySnapshots())
    store.subscribe("mirror", lambda e: None, delivery="sync").close()
    for i in range(10):
        store.append("t", f"e{i % 2}", {"i": i})
    store.checkpoint()
    for i in range(5):
        store.state(f"e{i % 2}")
    store.snapshot("e0")
    store.close()


@pytest.mark.parametrize(
    "target",
    [
        "manifest.json",
        "segments/*.parquet",
        "snapshots/snapshots.log",
        "schemas/registry.log",
        "projections/*.state",
        "subscriptions/*.state",
    ],
)
@pytest.mark.parametrize("how", ["replace", "framed"])
def test_crafted_files_are_never_executed(tmp_path, target, how):
    path = tmp_path / "s"
    make_store(path)
    marker = tmp_path / "pwned"
    bad = crafted(marker)
    files = sorted(path.glob(target))
    assert files, target
    for file in files:
        if how == "replace":
            file.write_bytes(bad)
        elif file.suffix == ".state":
            name = "event_counter" if "projections" in str(file) else "mirror"
            file = file.with_name(state_file_name(name))
            encoded = name.encode()
            file.write_bytes(frame_record(len(encoded).to_bytes(4, "little") + encoded + bad))
        else:
            file.write_bytes(file.read_bytes() + frame_record(bad))
    use_everything(path)
    assert not marker.exists()


def test_a_crafted_wal_record_is_never_executed(tmp_path):
    path = tmp_path / "s"
    store = asl.open(path, checkpoint_every_events=10**9, fsync="always")
    for i in range(5):
        store.append("t", "e", {"i": i})
    store._log.write_wal(sync=True)
    marker = tmp_path / "pwned"
    bad = crafted(marker)
    wal = sorted((path / "wal").iterdir())[-1]
    store._storage.close()  # as a crash would: the WAL stays, the lock goes
    store._log.closed = True
    wal.write_bytes(wal.read_bytes() + frame_record(bad))
    use_everything(path)
    assert not marker.exists()
