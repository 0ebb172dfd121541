"""Simulated power loss at every call that changes what is on disk.

A seeded workload (single appends, batches, checkpoints, compactions, snapshots, schema
registrations; fsync="always", tiny WAL files and frequent checkpoints so that rotation,
sealing and removal happen often) runs once to count the calls the ``PowerCut`` layer
watches, then again with the power cut just before call N, for many N. The folder as a
reboot would find it (only what was fsynced, only names whose folder was fsynced) is
opened and must hold every acknowledged event exactly once, with gapless sequences and
versions, clean ``verify()``, and states, counts and SQL equal to a model; an event whose
call was cut may be there or not, but a batch is all there or not at all.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import allsource_lab as asl
from allsource_lab._query.state import merge_patch
from allsource_lab._storage import direct
from tests.conftest import open_after_crash
from tests.durability.faultfs import PowerCut, SimulatedCrash

ENTITIES = [f"acct-{i}" for i in range(5)]
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


@dataclass
class Ledger:
    """What the workload was told is stored, and what was in flight at the cut."""

    acked: list[dict[str, Any]] = field(default_factory=list)  # payloads, in order
    inflight: list[dict[str, Any]] = field(default_factory=list)
    inflight_batch: bool = False
    schemas: list[str] = field(default_factory=list)
    crashed_in: str = ""
    store: asl.EventStore | None = None  # the store the cut hit, kept from the collector


def workload(path: Path, ledger: Ledger, seed: int, steps: int = 70) -> None:
    rng = random.Random(seed)
    store = asl.open(
        path,
        fsync="always",
        checkpoint_every_events=25,
        wal_segment_bytes=2048,
        snapshot_every_versions=4,
    )
    n = 0
    try:
        for step in range(steps):
            roll = rng.random()
            if roll < 0.45:
                n += 1
                payload = {"n": n, "e": rng.choice(ENTITIES), "v": rng.randrange(100)}
                ledger.inflight, ledger.inflight_batch = [payload], False
                ledger.crashed_in = "append"
                store.append("moved", payload["e"], payload)
            elif roll < 0.65:
                rows = []
                for _ in range(rng.randrange(1, 12)):
                    n += 1
                    payload = {"n": n, "e": rng.choice(ENTITIES), "v": rng.randrange(100)}
                    rows.append(
                        {"event_type": "moved", "entity_id": payload["e"], "payload": payload}
                    )
                ledger.inflight = [r["payload"] for r in rows]
                ledger.inflight_batch = True
                ledger.crashed_in = "append_batch"
                store.append_batch(rows)
            elif roll < 0.75:
                ledger.inflight, ledger.crashed_in = [], "checkpoint"
                store.checkpoint()
            elif roll < 0.82:
                ledger.inflight, ledger.crashed_in = [], "compact"
                store.compact()
            elif roll < 0.92:
                ledger.inflight, ledger.crashed_in = [], "snapshot"
                if ledger.acked:
                    store.snapshot(rng.choice(ledger.acked)["e"])
                    store.state(rng.choice(ledger.acked)["e"], as_of="2999-01-01T00:00:00Z")
            else:
                subject = f"kind-{step}"
                ledger.inflight, ledger.crashed_in = [], "schema"
                store.schemas.register(subject, SCHEMA)
                ledger.schemas.append(subject)
            ledger.acked.extend(ledger.inflight)
            ledger.inflight = []
        ledger.crashed_in = "close"
        store.close()
    except SimulatedCrash:
        ledger.store = store  # no close() in __del__ while the power is still off
        raise
    except BaseException:
        store.close()
        raise


def check_recovered(path: Path, ledger: Ledger) -> None:
    store = open_after_crash(path)
    try:
        events = list(store.events())
        got = [e.payload["n"] for e in events]
        assert len(got) == len(set(got)), "an event is stored twice"
        acked = [p["n"] for p in ledger.acked]
        inflight = [p["n"] for p in ledger.inflight]
        missing = sorted(set(acked) - set(got))
        assert not missing, f"acknowledged events lost: {missing[:10]}"
        extra = set(got) - set(acked)
        assert extra <= set(inflight), f"events nobody appended: {sorted(extra)[:10]}"
        if ledger.inflight_batch and extra:
            assert extra == set(inflight), "a batch is half there"
        assert got[: len(acked)] == acked, "acknowledged events out of order"
        assert [e.sequence for e in events] == list(range(1, len(events) + 1))
        versions: dict[str, int] = {}
        model: dict[str, dict[str, Any]] = {}
        for e in events:
            versions[e.entity_id] = versions.get(e.entity_id, 0) + 1
            assert e.version == versions[e.entity_id], f"version gap in {e.entity_id}"
            merge_patch(model.setdefault(e.entity_id, {}), e.payload)
        for entity, state in model.items():
            assert store.state(entity) == state
            assert store.state(entity, as_of="2999-01-01T00:00:00Z") == state
        if events:
            assert store.sql("SELECT count(*) FROM events").fetchall() == [(len(events),)]
        for subject in ledger.schemas:
            assert store.schemas.get(subject).schema == SCHEMA
        report = store.verify()
        assert report.ok, report.problems
        # The recovered store takes writes and keeps them.
        store.append("moved", "acct-0", {"n": 0, "e": "acct-0", "v": 0})
    finally:
        store.close()
    with asl.open(path) as again:
        assert len(again.events()) == len(events) + 1
        assert again.verify().ok


def run_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, cut_at: int | None
) -> PowerCut:
    disk = tmp_path / f"disk-{cut_at}"
    layer = PowerCut(disk, cut_at=cut_at)
    ledger = Ledger()
    with monkeypatch.context() as patched:
        layer.install(patched)
        # The abandoned store's flusher and fsync helpers meet the cut too; that is the
        # point, not an error of the test.
        patched.setattr(threading, "excepthook", _quiet_crashes)
        try:
            workload(disk / "store", ledger, seed)
        except SimulatedCrash:
            assert cut_at is not None
        else:
            assert cut_at is None or cut_at >= layer.calls, "the cut never came"
        after = tmp_path / f"after-{cut_at}"
        layer.image(after)
    if ledger.store is not None:
        abandon(ledger.store)
    check_recovered(after / "store", ledger)
    return layer


def abandon(store: asl.EventStore) -> None:
    """Drop a store the power cut hit without writing anything: its process is gone."""
    store._log._stop.set()
    store._log.closed = store._log.refuse = True
    with contextlib.suppress(SimulatedCrash):  # background work the cut stopped
        store._storage.close()


def _quiet_crashes(args: threading.ExceptHookArgs) -> None:
    if not issubclass(args.exc_type, SimulatedCrash):
        threading.__excepthook__(args)


def cut_points(kinds: list[str], budget: int, seed: int) -> list[int]:
    """Every call that is not an fsync of a single append, plus a sample of the rest."""
    rare = [i for i, kind in enumerate(kinds) if kind != "fsync"]
    common = [i for i, kind in enumerate(kinds) if kind == "fsync"]
    rng = random.Random(seed)
    if len(rare) > budget // 2:
        rare = sorted(rng.sample(rare, budget // 2))
    sample = sorted(rng.sample(common, min(len(common), budget - len(rare))))
    return sorted(rare + sample)


SEED = 7


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory) -> PowerCut:
    monkeypatch = pytest.MonkeyPatch()
    try:
        return run_cut(tmp_path_factory.mktemp("count"), monkeypatch, SEED, None)
    finally:
        monkeypatch.undo()


def test_the_workload_exercises_every_kind_of_durable_change(counted):
    kinds = set(counted.kinds)
    assert {"create", "fsync", "replace", "unlink"} <= kinds, kinds
    assert counted.calls > 200


@pytest.mark.parametrize("index", range(40))
def test_power_cut_keeps_every_acknowledged_event(counted, tmp_path, monkeypatch, index):
    points = cut_points(counted.kinds, 40, SEED)
    if index >= len(points):
        pytest.skip("fewer cut points than tests")
    run_cut(tmp_path, monkeypatch, SEED, points[index])


@pytest.fixture(scope="module")
def counted_direct(tmp_path_factory: pytest.TempPathFactory) -> PowerCut:
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(direct, "DIRECT_BYTES", 1)
    try:
        return run_cut(tmp_path_factory.mktemp("count-direct"), monkeypatch, SEED, None)
    finally:
        monkeypatch.undo()


@pytest.mark.parametrize("index", range(16))
def test_power_cut_with_every_write_direct(counted_direct, tmp_path, monkeypatch, index):
    # Every WAL record, segment, column, index and manifest file written past the page
    # cache (_storage/direct.py): a cut between a direct write and its cut-back to the
    # data's end, or before its fsync, keeps every acknowledged event too.
    probe = direct.open_direct(tmp_path / "probe", os.O_WRONLY | os.O_CREAT)
    if probe is None:
        pytest.skip("this file system takes no O_DIRECT")
    os.close(probe)
    monkeypatch.setattr(direct, "DIRECT_BYTES", 1)
    assert "ftruncate" in counted_direct.kinds  # direct writes were cut back: they ran
    points = cut_points(counted_direct.kinds, 16, SEED + 1)
    if index >= len(points):
        pytest.skip("fewer cut points than tests")
    run_cut(tmp_path, monkeypatch, SEED, points[index])


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_power_cut_before_every_watched_call(tmp_path, monkeypatch):
    for seed in range(1, 9):
        total = run_cut(tmp_path / f"count-{seed}", monkeypatch, seed, None).calls
        for cut in range(total + 1):
            run_cut(tmp_path / f"seed-{seed}", monkeypatch, seed, cut)


def test_the_layer_drops_unsynced_bytes_and_unsynced_names(tmp_path, monkeypatch):
    # The model itself: written-not-synced is gone; a name is there only once its folder
    # was synced; an fsynced file under a synced name keeps exactly its synced bytes.
    import os

    disk = tmp_path / "disk"
    layer = PowerCut(disk)
    with monkeypatch.context() as patched:
        layer.install(patched)
        (disk / "a").write_bytes(b"lost")  # never synced, folder never synced
        fd = os.open(disk / "b", os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"kept")
        os.fsync(fd)
        os.write(fd, b"-dropped")
        dir_fd = os.open(disk, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dir_fd)
        os.close(dir_fd)
        os.close(fd)
        fd = os.open(disk / "c", os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"synced but unnamed")
        os.fsync(fd)
        os.close(fd)
        layer.image(tmp_path / "after")
    after = tmp_path / "after"
    assert sorted(p.name for p in after.iterdir()) == ["a", "b"]
    assert (after / "a").read_bytes() == b""  # named by the folder sync, bytes never synced
    assert (after / "b").read_bytes() == b"kept"
    assert layer.kinds == ["create", "create", "fsync", "fsync", "create", "fsync"]
