"""Bit rot in every kind of file a store keeps is found, with the file and where in it.

One store holds every kind: WAL records not yet sealed, segments, the manifest, the
snapshot log, the schema registry, projection states and a subscription cursor. A single
flipped bit in any of them, at random offsets, is

* reported by ``verify()`` on the open store, naming the file (and the byte, or for a
  segment the 64 KiB block), and
* on open either refused with a ``CorruptionError`` naming the file, or reported (a
  RecoveryWarning or ``recovery_problems`` naming the file) with answers that are still
  right for what is kept: never a silently wrong answer.
"""

from __future__ import annotations

import random
import shutil
import warnings
from pathlib import Path

import pytest

import allsource_lab as asl
from allsource_lab._query.state import merge_patch

KINDS = ["wal", "segment", "manifest", "snapshots", "registry", "projection", "cursor"]
SEEDS = range(5)


def build(path: Path) -> tuple[Path, list[tuple[str, str, dict]]]:
    """A store with a file of every kind; returns a copy of it as a crash would leave it
    (WAL records unsealed) and the events it holds."""
    store = asl.open(path, fsync="always", snapshot_every_versions=2)
    store.schemas.register("moved", {"type": "object", "required": ["n"]})
    store.projections.add(asl.EventCounter())
    seen: list[int] = []
    store.subscribe("mirror", lambda e: seen.append(e.sequence), delivery="sync")
    for i in range(30):
        store.append("moved", f"e{i % 3}", {"n": i, "at": f"p{i % 5}"})
    store.checkpoint()  # a segment; the projection's state and the snapshots saved
    for i in range(30, 45):
        store.append("moved", f"e{i % 3}", {"n": i})  # in the WAL only
    store.state("e1", as_of="2999-01-01T00:00:00Z")
    store.snapshot("e0")
    events = [(e.event_type, e.entity_id, e.payload) for e in store.events()]
    copy = path.with_name(path.name + "-copy")
    shutil.copytree(path, copy, ignore=shutil.ignore_patterns("LOCK"))
    store.close()
    return copy, events


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    return build(tmp_path_factory.mktemp("rot") / "store")


def file_of(root: Path, kind: str) -> Path:
    found = {
        "wal": [p for p in (root / "wal").glob("*.wal") if p.stat().st_size > 8],
        "segment": sorted((root / "segments").glob("*.parquet")),
        "manifest": [root / "manifest.json"],
        "snapshots": [root / "snapshots" / "snapshots.log"],
        "registry": [root / "schemas" / "registry.log"],
        "projection": sorted((root / "projections").glob("*.state")),
        "cursor": sorted((root / "subscriptions").glob("*.state")),
    }[kind]
    assert found and found[0].exists(), f"the store has no {kind} file"
    return found[0]


def flip(path: Path, seed: int) -> int:
    data = bytearray(path.read_bytes())
    rng = random.Random(f"{path.name}-{seed}")
    at = rng.randrange(len(data))
    data[at] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))
    return at


def states_of(events: list[tuple[str, str, dict]]) -> dict[str, dict]:
    states: dict[str, dict] = {}
    for _, entity, payload in events:
        merge_patch(states.setdefault(entity, {}), payload)
    return states


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_flipped_bit_is_reported_on_open_or_refused_never_obeyed(pristine, tmp_path, kind, seed):
    source, events = pristine
    root = tmp_path / "store"
    shutil.copytree(source, root)
    target = file_of(root, kind)
    flip(target, seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            store = asl.open(root)
        except asl.CorruptionError as exc:
            assert exc.path is not None and Path(exc.path).name == target.name, str(exc)
            if kind in ("wal", "registry"):
                assert exc.offset is not None, str(exc)
            return
    try:
        delivered: list[int] = []
        store.subscribe("mirror", lambda e: delivered.append(e.sequence), delivery="sync")
        said = [str(w.message) for w in caught] + list(store.recovery_problems)
        named = [s for s in said if target.name in s]
        got = [(e.event_type, e.entity_id, e.payload) for e in store.events()]
        if kind == "wal" and named:
            # A final record whose checksum fails is a torn write: cut off and said so.
            assert got == events[: len(got)] and len(got) >= len(events) - 1
        else:
            assert got == events, f"events changed by a flipped bit in {target.name}"
        if kind in ("snapshots", "projection", "cursor"):
            # Derived data: a damaged record is reported and rebuilt from the events.
            assert named, f"damage to {target.name} went unreported: {said}"
            assert any("byte" in s for s in named), named
        for entity, state in states_of(got).items():
            assert store.state(entity) == state
            assert store.state(entity, as_of="2999-01-01T00:00:00Z") == state
        counter = asl.EventCounter()
        store.projections.add(counter)
        assert counter.state("total") == len(got)
        assert set(delivered) <= set(range(1, len(got) + 1))
    finally:
        store.close()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", KINDS)
def test_verify_reports_a_flipped_bit_with_the_file_and_where(pristine, tmp_path, kind, seed):
    source, _ = pristine
    root = tmp_path / "store"
    shutil.copytree(source, root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", asl.RecoveryWarning)
        store = asl.open(root)
    try:
        target = file_of(root, kind)
        at = flip(target, seed)
        report = store.verify()
        assert not report.ok, f"a flipped bit at byte {at} of {target.name} went unnoticed"
        named = [p for p in report.problems if target.name in p]
        assert named, report.problems
        if kind == "segment":
            assert any("block" in p for p in named), named
        elif kind != "manifest":  # the manifest has one checksum for the whole file
            assert any("byte" in p for p in named), named
    finally:
        store.close()
