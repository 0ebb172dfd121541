"""Back-to-back seals: the next seal starts once the previous segment is in place, while
the previous one's derived files (index file, entity index, snapshots) are still being
written. Each segment must still get its own index file, and whatever goes wrong on that
late stretch must reach whoever waits next instead of vanishing with the thread.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import allsource_lab as asl
from allsource_lab._storage.folder import FolderStorage
from allsource_lab._storage.index_file import decode_index

PER_BATCH = 300  # events per append_batch; every batch fills the tail and starts a seal


def batch(k: int) -> list[dict[str, object]]:
    return [
        {
            "event_type": ("placed", "paid")[i % 2],
            "entity_id": f"acct-{(k * 7 + i) % 23}",
            "payload": {"k": k, "i": i},
        }
        for i in range(PER_BATCH)
    ]


def answers(store: asl.EventStore) -> dict[str, object]:
    ids = sorted({e.entity_id for e in store.events()})
    return {
        "events": store.events().to_arrow().to_pylist(),
        "by_entity": {i: [e.sequence for e in store.events(entity_id=i)] for i in ids},
        "by_type": {t: len(store.events(event_type=t)) for t in ("placed", "paid")},
        "states": {i: store.state(i) for i in ids},
    }


def slow_index_writes(monkeypatch: pytest.MonkeyPatch, seconds: float) -> list[int]:
    """Delay every index file write, so that the next seal commits its segment first;
    returns the list of segment positions written, in order."""
    original = FolderStorage.write_index
    written: list[int] = []

    def write_index(self: FolderStorage, k: int, index: object) -> None:
        time.sleep(seconds)
        written.append(k)
        original(self, k, index)  # type: ignore[arg-type]

    monkeypatch.setattr(FolderStorage, "write_index", write_index)
    return written


def test_each_segment_gets_its_own_index_file_when_seals_overlap(tmp_path, monkeypatch):
    path = tmp_path / "s"
    written = slow_index_writes(monkeypatch, 0.3)
    with asl.open(path, checkpoint_every_events=PER_BATCH) as store:
        for k in range(5):
            store.append_batch(batch(k))
    monkeypatch.undo()
    assert written == [0, 1, 2, 3, 4]  # in seal order, each its own position
    files = sorted((path / "segments").glob("*.index"))
    assert len(files) == 5
    for f in files:  # every file says it is its own segment's, with that segment's rows
        assert decode_index(f.read_bytes(), f.name.replace(".index", ".parquet"), PER_BATCH)
    with asl.open(path) as store:
        from_files = answers(store)
    for f in files:
        f.unlink()
    with asl.open(path) as store:  # indexed from the segments' rows instead
        assert answers(store) == from_files
    assert from_files["by_type"] == {"placed": 5 * PER_BATCH // 2, "paid": 5 * PER_BATCH // 2}


def test_appends_go_on_while_the_previous_seal_writes_its_index_file(tmp_path, monkeypatch):
    path = tmp_path / "s"
    release = threading.Event()
    original = FolderStorage.write_index
    entered = threading.Event()

    def write_index(self: FolderStorage, k: int, index: object) -> None:
        entered.set()
        assert release.wait(30)
        original(self, k, index)  # type: ignore[arg-type]

    monkeypatch.setattr(FolderStorage, "write_index", write_index)
    store = asl.open(path, checkpoint_every_events=PER_BATCH)
    try:
        store.append_batch(batch(0))  # seal 1 starts
        assert entered.wait(30)  # seal 1 is in place, held while writing its index file
        store.append_batch(batch(1))  # seal 2 starts: it does not wait for that file
        assert len(store.events()) == 2 * PER_BATCH
        assert store.events(entity_id="acct-3").to_arrow().num_rows > 0
        assert not list((path / "segments").glob("*.index"))
    finally:
        release.set()
        store.close()
    assert len(list((path / "segments").glob("*.index"))) == 2


def test_a_bug_while_writing_derived_files_reaches_a_caller_and_stops_writes(tmp_path, monkeypatch):
    path = tmp_path / "s"

    def write_index(self: FolderStorage, k: int, index: object) -> None:
        raise RuntimeError("index writer bug")

    monkeypatch.setattr(FolderStorage, "write_index", write_index)
    store = asl.open(path, checkpoint_every_events=PER_BATCH)
    raised: list[BaseException] = []
    acknowledged = 0
    for k in range(20):
        try:
            store.append_batch(batch(k))
            acknowledged += PER_BATCH
        except (RuntimeError, asl.StorageError) as exc:
            raised.append(exc)
        time.sleep(0.05)
    assert raised, "writes went on after the sealing thread failed"
    with pytest.raises(asl.StorageError):
        store.append_batch(batch(99))  # writes stay refused
    for _ in range(3):  # the bug itself reaches a caller: an append or close
        try:
            store.close()
            break
        except RuntimeError as exc:
            raised.append(exc)
    assert store.closed
    assert any(isinstance(e, RuntimeError) and "index writer bug" in str(e) for e in raised), raised
    monkeypatch.undo()
    with asl.open(path) as store:  # nothing acknowledged was lost
        events = store.events()
        assert len(events) >= acknowledged
        assert [e.sequence for e in events] == list(range(1, len(events) + 1))


def test_checkpoint_returns_with_the_index_file_written(tmp_path, monkeypatch):
    written = slow_index_writes(monkeypatch, 0.2)
    path: Path = tmp_path / "s"
    with asl.open(path, checkpoint_every_events=PER_BATCH) as store:
        store.append_batch(batch(0))
        store.append_batch(batch(1))
        result = store.checkpoint()
        assert result is None or result["events"] >= 0
        assert written == [0, 1]
        assert len(list((path / "segments").glob("*.index"))) == 2
