"""Damaged files: torn tails are cut, corruption is named by file and offset, never obeyed."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import allsource_lab as asl

MAGIC_SIZE = 8


def make_store_with_wal(path: Path, events: int = 12) -> None:
    """A store whose events are all in the WAL: the writer dies without closing."""
    script = (
        "import os, allsource_lab as asl\n"
        f"s = asl.open({str(path)!r}, fsync='always')\n"
        f"for i in range({events}):\n"
        "    s.append('tick', f'e{i % 3}', {'i': i, 'pad': 'x' * 40})\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


def frames(wal: Path) -> list[tuple[int, int]]:
    """(offset, total length) of every frame in a WAL file."""
    data = wal.read_bytes()
    out = []
    p = MAGIC_SIZE
    while p < len(data):
        (length,) = struct.unpack_from("<I", data, p)
        out.append((p, 8 + length))
        p += 8 + length
    return out


def wal_file(path: Path) -> Path:
    files = sorted((path / "wal").glob("*.wal"))
    assert files
    return files[-1]


def open_quietly(
    path: Path, **kwargs: object
) -> tuple[asl.EventStore, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = asl.open(path, **kwargs)
    return store, caught


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pristine") / "s.events"
    make_store_with_wal(path)
    return path


def copy(pristine: Path, tmp_path: Path) -> Path:
    target = tmp_path / "s.events"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(pristine, target)
    return target


def sequences(store: asl.EventStore) -> list[int]:
    return [e.sequence for e in store.events()]


def test_torn_final_record_is_cut_at_every_byte_offset(pristine, tmp_path):
    wal = wal_file(pristine)
    last_offset, last_length = frames(wal)[-1]
    for cut in range(last_offset, last_offset + last_length):
        path = copy(pristine, tmp_path)
        with open(wal_file(path), "r+b") as fh:
            fh.truncate(cut)
        store, caught = open_quietly(path)
        try:
            torn = cut > last_offset
            assert [w.category for w in caught] == ([asl.RecoveryWarning] if torn else [])
            assert sequences(store) == list(range(1, 12))
            assert store.verify().ok
            assert store.append("tick", "e0", {}).sequence == 12
        finally:
            store.close()


def test_strict_recovery_refuses_a_torn_tail(pristine, tmp_path):
    path = copy(pristine, tmp_path)
    wal = wal_file(path)
    offset, length = frames(wal)[-1]
    with open(wal, "r+b") as fh:
        fh.truncate(offset + length - 3)
    with pytest.raises(asl.CorruptionError) as info:
        asl.open(path, recovery="strict")
    assert info.value.path == str(wal) and info.value.offset == offset


def test_trailing_zero_bytes_are_a_torn_tail(pristine, tmp_path):
    path = copy(pristine, tmp_path)
    with open(wal_file(path), "ab") as fh:
        fh.write(bytes(300))
    store, caught = open_quietly(path)
    try:
        assert [w.category for w in caught] == [asl.RecoveryWarning]
        assert sequences(store) == list(range(1, 13))
    finally:
        store.close()


def test_flipped_bit_in_an_earlier_record_is_corruption_naming_file_and_offset(pristine, tmp_path):
    path = copy(pristine, tmp_path)
    wal = wal_file(path)
    offset, length = frames(wal)[4]
    data = bytearray(wal.read_bytes())
    data[offset + length - 5] ^= 0x10
    wal.write_bytes(bytes(data))
    with pytest.raises(asl.CorruptionError) as info:
        asl.open(path)
    assert info.value.path == str(wal) and info.value.offset == offset
    assert f"byte {offset}" in str(info.value) and wal.name in str(info.value)
    # A read-only look reports it too, without raising.
    store, _ = open_quietly(path, recovery="salvage", read_only=True)
    try:
        assert not store.verify().ok
    finally:
        store.close()


def test_salvage_skips_the_damaged_record_and_reports_it(pristine, tmp_path):
    path = copy(pristine, tmp_path)
    wal = wal_file(path)
    offset, _ = frames(wal)[4]
    data = bytearray(wal.read_bytes())
    data[offset + 12] ^= 0x01
    wal.write_bytes(bytes(data))
    store, _ = open_quietly(path, recovery="salvage")
    try:
        assert any(str(offset) in p for p in store.recovery_problems)
        assert 5 not in sequences(store)
        assert set(sequences(store)) == set(range(1, 13)) - {5}
    finally:
        store.close()


def sealed_store(pristine: Path, tmp_path: Path) -> tuple[Path, Path]:
    path = copy(pristine, tmp_path)
    store, _ = open_quietly(path)
    store.close()  # checkpoints everything into a segment
    segments = sorted((path / "segments").glob("*.parquet"))
    assert segments
    return path, segments[0]


def test_damaged_segment_refuses_open_and_is_reported_by_verify(pristine, tmp_path):
    path, segment = sealed_store(pristine, tmp_path)
    store = asl.open(path)
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    report = store.verify()
    assert not report.ok
    assert any(segment.name in p and "SHA-256" in p for p in report.problems)
    store.close()
    segment.write_bytes(bytes(data))  # close() does not rewrite sealed segments
    with pytest.raises(asl.CorruptionError) as info:
        asl.open(path)
    assert info.value.path == str(segment)


def test_missing_segment_is_a_clear_error(pristine, tmp_path):
    path, segment = sealed_store(pristine, tmp_path)
    segment.unlink()
    with pytest.raises(asl.CorruptionError, match="missing") as info:
        asl.open(path)
    assert info.value.path == str(segment)


def test_damaged_manifest_is_detected(pristine, tmp_path):
    path, _ = sealed_store(pristine, tmp_path)
    manifest = path / "manifest.json"
    data = bytearray(manifest.read_bytes())
    index = data.index(b'"rows"') + 10
    data[index] = ord("9") if data[index] != ord("9") else ord("8")
    manifest.write_bytes(bytes(data))
    with pytest.raises(asl.CorruptionError) as info:
        asl.open(path)
    assert "manifest" in str(info.value)


def test_a_file_that_is_not_a_wal_is_refused(pristine, tmp_path):
    path = copy(pristine, tmp_path)
    (path / "wal" / "00000000000000000001.wal").write_bytes(b"garbage!" * 10)
    with pytest.raises(asl.CorruptionError, match="not a WAL file"):
        asl.open(path)
