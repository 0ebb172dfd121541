"""Opening a store never cuts a damaged record log before deciding whether the damage is fatal.

The snapshot log and the schema registry log are files of framed records
(``u32 length, u32 crc32c(body), body``). A torn final record (a crash cut the last append
short, and nothing valid follows it) is cut off by a default open, as a crash leaves it
nothing anyone was promised. Anything else is damage: an open that refuses the store for it
changes no byte, ``recovery="strict"`` changes no byte at all, and only ``"salvage"``
rewrites a damaged log, after skipping and reporting what it could not read.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

import allsource_lab as asl

SCHEMA = {"type": "object"}
IMPOSSIBLE = 0x7FFF_FFFF  # past the 256 MiB a record body may have


def frames(log: Path) -> list[tuple[int, int]]:
    """(offset, body length) of each frame, walking the lengths as written."""
    data = log.read_bytes()
    found = []
    at = 0
    while at < len(data):
        n = struct.unpack_from("<I", data, at)[0]
        found.append((at, n))
        at += 8 + n
    assert at == len(data), "the log was not whole before the test damaged it"
    return found


def set_length(log: Path, record: int, length: int) -> int:
    """Overwrite the length field of one record; returns that record's offset."""
    at = frames(log)[record][0]
    data = bytearray(log.read_bytes())
    struct.pack_into("<I", data, at, length)
    log.write_bytes(bytes(data))
    return at


# -- the schema registry log ----------------------------------------------------------------


@pytest.fixture
def registry(tmp_path: Path) -> tuple[Path, Path]:
    """A store with three schemas registered, one record each: ``a``, ``b``, ``c``."""
    path = tmp_path / "s.events"
    with asl.open(path) as store:
        for subject in "abc":
            store.schemas.register(subject, SCHEMA)
    log = path / "schemas" / "registry.log"
    assert len(frames(log)) == 3
    return path, log


def test_a_registry_length_past_the_limit_changes_no_byte_and_salvage_gets_the_schemas_back(
    registry,
):
    path, log = registry
    at = set_length(log, 1, IMPOSSIBLE)
    damaged = log.read_bytes()
    with pytest.raises(asl.CorruptionError, match="registry") as refused:
        asl.open(path)
    assert Path(refused.value.path or "").name == "registry.log"
    assert refused.value.offset == at
    assert log.read_bytes() == damaged, "a refused open changed the registry log"
    with asl.open(path, recovery="salvage") as store:
        # Reading resyncs past the damaged frame: the schema after it is read too.
        assert store.schemas.subjects() == ["a", "c"]
        assert any("registry.log" in p and f"at byte {at}" in p for p in store.recovery_problems)
    # Salvage rewrote the log with what it could read: a default open takes it as it is.
    with asl.open(path) as store:
        assert store.schemas.subjects() == ["a", "c"]
        assert store.recovery_problems == []
        store.schemas.register("d", SCHEMA)
    with asl.open(path) as store:
        assert store.schemas.subjects() == ["a", "c", "d"]


def test_a_registry_length_past_the_end_with_records_after_it_is_damage_not_a_torn_tail(
    registry,
):
    path, log = registry
    at = set_length(log, 1, log.stat().st_size)  # allowed, but runs past the end of the file
    damaged = log.read_bytes()
    with pytest.raises(asl.CorruptionError, match="registry") as refused:
        asl.open(path)
    assert refused.value.offset == at
    assert log.read_bytes() == damaged
    with asl.open(path, recovery="salvage") as store:
        assert store.schemas.subjects() == ["a", "c"]


def test_a_whole_final_registry_record_with_a_damaged_length_is_damage_not_a_torn_tail(
    registry,
):
    path, log = registry
    at, n = frames(log)[2]
    set_length(log, 2, n + 1000)  # its body is all there and still matches its checksum
    damaged = log.read_bytes()
    with pytest.raises(asl.CorruptionError, match="registry") as refused:
        asl.open(path)
    assert refused.value.offset == at
    assert log.read_bytes() == damaged
    with asl.open(path, recovery="salvage") as store:
        assert store.schemas.subjects() == ["a", "b"]
        assert any(f"at byte {at}" in p for p in store.recovery_problems)


def test_a_damaged_registry_with_a_torn_tail_too_is_refused_with_neither_cut(registry):
    path, log = registry
    data = bytearray(log.read_bytes())
    data[8 + 3] ^= 0xFF  # the first record's body: its checksum no longer fits
    data += data[-20:-5]  # and a torn record at the end
    log.write_bytes(bytes(data))
    with pytest.raises(asl.CorruptionError, match="registry"):
        asl.open(path)
    assert log.read_bytes() == bytes(data)
    with asl.open(path, recovery="salvage") as store:
        assert store.schemas.subjects() == ["b", "c"]
    with asl.open(path) as store:
        assert store.schemas.subjects() == ["b", "c"]


@pytest.mark.parametrize("kept", [1, 7, 8, 9, -1])
def test_a_torn_final_registry_record_is_cut_and_the_store_opens(registry, kept):
    path, log = registry
    whole = log.read_bytes()
    _, n = frames(log)[0]
    extra = whole[: 8 + n]  # a copy of the first record, torn after ``kept`` bytes
    log.write_bytes(whole + extra[:kept])
    with asl.open(path) as store:
        assert store.schemas.subjects() == ["a", "b", "c"]
        assert store.recovery_problems == []
        assert log.read_bytes() == whole
        store.schemas.register("d", SCHEMA)
    with asl.open(path) as store:
        assert store.schemas.subjects() == ["a", "b", "c", "d"]


def test_strict_recovery_refuses_a_torn_registry_record_and_changes_nothing(registry):
    path, log = registry
    torn = log.read_bytes() + log.read_bytes()[:30]
    log.write_bytes(torn)
    with pytest.raises(asl.CorruptionError, match="torn final record") as refused:
        asl.open(path, recovery="strict")
    assert refused.value.offset == len(torn) - 30
    assert log.read_bytes() == torn
    with asl.open(path) as store:  # the default mode cuts it
        assert store.schemas.subjects() == ["a", "b", "c"]
    assert len(log.read_bytes()) == len(torn) - 30


# -- the snapshot log -----------------------------------------------------------------------


@pytest.fixture
def snapshots(tmp_path: Path) -> tuple[Path, Path]:
    """A store with one snapshot record each for entities ``a``, ``b``, ``c``."""
    path = tmp_path / "s.events"
    with asl.open(path, snapshot_every_versions=0) as store:
        for entity in "abc":
            store.append("t", entity, {"who": entity})
            store.snapshot(entity)
    log = path / "snapshots" / "snapshots.log"
    assert len(frames(log)) == 3
    return path, log


def right(store: asl.EventStore, entities: str = "abc") -> bool:
    return all(store.state(e) == {"who": e} for e in entities)


def test_a_damaged_snapshot_length_is_reported_and_the_log_is_not_cut(snapshots):
    path, log = snapshots
    at = set_length(log, 1, IMPOSSIBLE)
    damaged = log.read_bytes()
    with asl.open(path, snapshot_every_versions=0) as store:
        assert any("snapshots.log" in p and f"at byte {at}" in p for p in store.recovery_problems)
        assert store.stats()["snapshots"] == 2  # a's and c's: reading resyncs past b's
        assert right(store)
    assert log.read_bytes() == damaged, "a default open cut a damaged snapshot log"
    with asl.open(path, recovery="salvage", snapshot_every_versions=0) as store:
        assert store.stats()["snapshots"] == 2
        assert any("rewritten" in p for p in store.recovery_problems)
    assert len(frames(log)) == 2
    with asl.open(path, snapshot_every_versions=0) as store:
        assert store.recovery_problems == []
        assert store.stats()["snapshots"] == 2
        assert right(store)


def test_strict_recovery_leaves_a_damaged_snapshot_log_as_it_is(snapshots):
    path, log = snapshots
    set_length(log, 1, IMPOSSIBLE)
    data = log.read_bytes() + log.read_bytes()[:12]  # and a torn record at the end
    log.write_bytes(data)
    with asl.open(path, recovery="strict", snapshot_every_versions=0) as store:
        assert any("torn final record" in p for p in store.recovery_problems)
        assert right(store)
        store.append("t", "d", {"who": "d"})
        store.snapshot("d")  # kept in memory: appending after the torn record would bury it
        assert store.state("d") == {"who": "d"}
    assert log.read_bytes() == data


def test_snapshots_saved_after_an_unreadable_end_are_found_on_the_next_open(snapshots):
    path, log = snapshots
    at = set_length(log, 2, IMPOSSIBLE)  # nothing valid after it: the rest is unreadable
    damaged = log.read_bytes()
    with asl.open(path, snapshot_every_versions=0) as store:
        assert any(f"at byte {at}" in p for p in store.recovery_problems)
        store.append("t", "d", {"who": "d"})
        store.snapshot("d")
    assert log.read_bytes().startswith(damaged)  # left as it was, the new record after it
    with asl.open(path, snapshot_every_versions=0) as store:
        assert store.stats()["snapshots"] == 3  # a's, b's and the new d's
        assert right(store, "abcd")


def test_a_torn_final_snapshot_record_is_cut_by_a_default_open_and_left_by_a_strict_one(
    snapshots,
):
    path, log = snapshots
    whole = log.read_bytes()
    torn = whole + whole[:20]
    log.write_bytes(torn)
    with asl.open(path, recovery="strict", snapshot_every_versions=0) as store:
        assert store.stats()["snapshots"] == 3
        assert any("torn final record" in p for p in store.recovery_problems)
    assert log.read_bytes() == torn
    with asl.open(path, snapshot_every_versions=0) as store:
        assert store.recovery_problems == []
        store.append("t", "d", {"who": "d"})
        store.snapshot("d")
    assert log.read_bytes().startswith(whole) and len(frames(log)) == 4
    with asl.open(path, snapshot_every_versions=0) as store:
        assert store.stats()["snapshots"] == 4


def test_a_read_only_open_changes_no_record_log(registry):
    path, log = registry
    with asl.open(path, snapshot_every_versions=0) as store:
        store.append("t", "a", {"who": "a"})
        store.snapshot("a")
    snapshot_log = path / "snapshots" / "snapshots.log"
    set_length(log, 1, IMPOSSIBLE)
    snapshot_log.write_bytes(snapshot_log.read_bytes() + b"\x40\x00\x00\x00torn")
    before = {p: p.read_bytes() for p in (log, snapshot_log)}
    with pytest.raises(asl.CorruptionError, match="registry"):
        asl.open(path, read_only=True)
    with asl.open(path, read_only=True, recovery="salvage") as store:
        assert store.schemas.subjects() == ["a", "c"]
        assert store.stats()["snapshots"] == 1
    assert {p: p.read_bytes() for p in before} == before
