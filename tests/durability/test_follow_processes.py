"""Readers that follow a writer, as real processes, with kill -9 of the writer and of readers.

A writer process appends under load (single appends and batches of random sizes, an
automatic checkpoint every 2,000 events, explicit checkpoints and compactions now and then,
small WAL files so that they rotate, ``fsync="always"`` so that every acknowledged event
is on disk) and writes each acknowledged event as a line ``<time.monotonic()> <sequence>
<event_id>`` to an acknowledgement file of its own. Two reader processes open the folder
with ``read_only=True`` and, in a loop, hold every answer they can get to invariants and
to those acknowledgements (``Checker``):

- ``events()`` holds sequences 1..N with no gap, never fewer than at the reader's last
  look, and what it held then is unchanged (a prefix of what it holds now);
- every event is what its writer wrote: the event id encodes the writer's run, write
  and row, from which its type, entity and payload follow (``expected``);
- each entity's versions are 1..v with no gap, ``events(entity_id=e)`` agrees with
  ``events()``, and ``state(e)`` is a JSON merge patch fold of the entity's payloads
  (a fold computed here, by a reference implementation);
- ``len(events(event_type=t))`` over the types sums to the total, and each type's events
  are ``events()``'s of that type; ``sql("select count(*) ...")`` counts ``events()``
  with no gap; ``get(id)`` finds an acknowledged event;
- every event acknowledged before a read began is in it, at the sequence it was
  acknowledged with (a read checks the writer's news at most once a millisecond, so
  "before" is a millisecond before the read; after ``refresh()``, before the call).

The test kills the writer with SIGKILL at random moments and starts a new one on the
same folder (the readers follow across the restart), and kills readers at random moments
and starts new ones (each must open while the writer runs). At the end a last writer
opens the folder, appends and closes; every reader still running catches up and dumps
its events, and a fresh read-only open must agree with each dump exactly and hold every
acknowledged event exactly once.

A second test holds long reads in a reader (a slow SQL query and a slow iteration over
``events()``) while the writer appends, checkpoints and compacts, and checks that the
writer's acknowledgements kept coming meanwhile and that the long reads were whole.

Children are this file run as a script (``python test_follow_processes.py``): it imports
the package, then reads one JSON command on stdin, so that a spare child can be started
ahead of need and its import overlaps the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

THIS = Path(__file__)
WRITER_SETTINGS: dict[str, Any] = {
    "fsync": "always",
    "checkpoint_every_events": 2_000,
    "wal_segment_bytes": 128 * 1024,
}
TYPES = ("made", "moved", "paid")
ENTITIES = 29
# The writer compacts every so often (seconds, drawn uniformly).
COMPACT_EVERY_S = (1.5, 4.0)
# A read checks the writer's news at most once a millisecond (``following.CHECK_EVERY_NS``),
# so it promises what the writer had written a millisecond before it.
CHECK_S = 0.001
# Reads after ``refresh()`` are held to the moment refresh() was called, other reads to
# what was written a millisecond before them, and the last read of each reader to
# everything acknowledged.


# -- what the writer writes, and what a reader expects of it -------------------------------


def event_id(run: int, op: int, i: int) -> uuid.UUID:
    """The id of row ``i`` of write ``op`` of writer ``run``: the reader decodes it."""
    return uuid.UUID(int=(0xF0110 << 100) | (run << 64) | (op << 24) | i)


def decode_id(value: uuid.UUID) -> tuple[int, int, int]:
    n = value.int
    assert n >> 100 == 0xF0110, f"{value} is not an id this test's writer made"
    return (n >> 64) & ((1 << 36) - 1), (n >> 24) & ((1 << 40) - 1), n & ((1 << 24) - 1)


def expected(run: int, op: int, i: int) -> tuple[str, str, dict[str, Any]]:
    """(event_type, entity_id, payload) of row ``i`` of write ``op`` of writer ``run``:
    keys set, overwritten, deleted (None) and nested, so that folds are not trivial."""
    h = (run * 1_000_003 + op * 7_919 + i * 104_729) & 0xFFFFFFFF
    payload: dict[str, Any] = {"run": run, "op": op, "i": i, f"k{h % 5}": h % 1000}
    if h % 7 == 0:
        payload[f"k{(h >> 3) % 5}"] = None
    if h % 11 == 0:
        payload["nest"] = {f"n{(h >> 5) % 3}": h % 97, f"n{(h >> 7) % 3}": None}
    return TYPES[h % 3], f"e{(h >> 9) % ENTITIES}", payload


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch: the reference the store's folds are held to."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


# -- the children ----------------------------------------------------------------------------


def run_writer(path: str, folder: Path, run: int, seed: int, final: bool) -> None:
    """Append until killed, writing each acknowledged event to ``acks-<run>.log``;
    ``final``: append one batch and close cleanly instead."""
    import allsource_lab as asl

    rng = random.Random(seed * 7_777 + run)
    warnings.simplefilter("ignore", asl.RecoveryWarning)  # the last writer's torn tail
    store = asl.open(path, **WRITER_SETTINGS)
    fd = os.open(folder / f"acks-{run}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    def batch(op: int, n: int) -> None:
        rows = []
        for i in range(n):
            kind, entity, payload = expected(run, op, i)
            rows.append(
                {
                    "event_type": kind,
                    "entity_id": entity,
                    "payload": payload,
                    "event_id": str(event_id(run, op, i)),
                }
            )
        done = store.append_batch(rows)
        t = time.monotonic()
        ids = [event_id(run, op, i) for i in range(n)]
        seqs = range(done.first_sequence, done.last_sequence + 1)
        assert len(seqs) == n
        os.write(
            fd, "".join(f"{t!r} {s} {e.hex}\n" for s, e in zip(seqs, ids, strict=True)).encode()
        )

    if final:
        batch(0, 50)
        store.close()
        return
    next_compaction = time.monotonic() + rng.uniform(*COMPACT_EVERY_S)
    op = 1
    while True:
        if time.monotonic() >= next_compaction:
            store.compact()
            with open(folder / "compactions.log", "a") as done:
                done.write(f"{run}\n")
            next_compaction = time.monotonic() + rng.uniform(*COMPACT_EVERY_S)
        roll = rng.random()
        if roll < 0.01:
            store.checkpoint()
        elif roll < 0.65:
            kind, entity, payload = expected(run, op, 0)
            ev = store.append(kind, entity, payload, event_id=event_id(run, op, 0))
            t = time.monotonic()
            os.write(fd, f"{t!r} {ev.sequence} {event_id(run, op, 0).hex}\n".encode())
        else:
            batch(op, rng.choice((rng.randint(1, 20), rng.randint(20, 400))))
        op += 1
        # Paced: the machine is shared, and the readers need their share of it.
        time.sleep(rng.uniform(0, 0.002))


class AckLog:
    """Every writer's acknowledgements, read as they are written (whole lines only: a
    killed writer's last line may be cut short)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.offsets: dict[Path, int] = {}
        self.pending: list[tuple[float, int, int]] = []  # (time, sequence, id as int)

    def load(self) -> None:
        for path in sorted(self.folder.glob("acks-*.log")):
            start = self.offsets.get(path, 0)
            with open(path, "rb") as fh:
                fh.seek(start)
                data = fh.read()
            whole = data[: data.rfind(b"\n") + 1]
            self.offsets[path] = start + len(whole)
            for line in whole.decode().splitlines():
                t, seq, hex_id = line.split()
                self.pending.append((float(t), int(seq), int(hex_id, 16)))

    def due(self, cutoff: float) -> list[tuple[float, int, int]]:
        """The acknowledgements made before ``cutoff`` not handed out yet."""
        due = [a for a in self.pending if a[0] < cutoff]
        self.pending = [a for a in self.pending if a[0] >= cutoff]
        return due

    @staticmethod
    def every(folder: Path) -> dict[int, int]:
        """All acknowledgements in ``folder``: event id (as int) -> sequence."""
        log = AckLog(folder)
        log.load()
        out: dict[int, int] = {}
        for _, seq, ident in log.pending:
            assert out.setdefault(ident, seq) == seq, f"{uuid.UUID(int=ident)} acked twice"
        return out


@dataclass
class Checker:
    """A reader's checks: what it has verified so far, and each round of reads."""

    store: Any
    acks: AckLog
    rng: random.Random
    n: int = 0  # events verified (sequences 1..n)
    prev: pa.Table | None = None
    ids: list[int] = field(default_factory=list)  # event id (int) of sequence i + 1
    folds: dict[str, Any] = field(default_factory=dict)  # entity -> state at n
    versions: dict[str, int] = field(default_factory=dict)  # entity -> version at n
    rounds: int = 0

    def take(self, table: pa.Table, cutoff: float) -> None:
        """Check ``events()``'s answer and what the writer acknowledged before ``cutoff``."""
        seq = table.column("sequence").to_pylist()
        n = len(seq)
        assert seq == list(range(1, n + 1)), "events() has a gap or is out of order"
        assert n >= self.n, f"events() went back from {self.n} to {n} events"
        if self.prev is not None:
            assert table.slice(0, self.n).equals(self.prev), "events already read changed"
        for row in table.slice(self.n).to_pylist():
            run, op, i = decode_id(row["event_id"])
            kind, entity, payload = expected(run, op, i)
            got = (row["event_type"], row["entity_id"], json.loads(row["payload"]))
            assert got == (kind, entity, payload), f"event {row['sequence']} is {got}"
            version = self.versions.get(entity, 0) + 1
            assert row["version"] == version, f"{entity} version {row['version']} != {version}"
            self.versions[entity] = version
            self.folds[entity] = merge_patch(self.folds.get(entity, {}), payload)
            self.ids.append(row["event_id"].int)
        self.n, self.prev = n, table
        self.acks.load()
        for t, s, ident in self.acks.due(cutoff):
            assert s <= n, f"event {s}, acknowledged {cutoff - t:.4f} s before a read, is missing"
            assert self.ids[s - 1] == ident, f"event {s} is not the one acknowledged"

    def round(self) -> None:
        """One round of reads, each held to what the round before established."""
        store, rng = self.store, self.rng
        t0 = time.monotonic()
        if rng.random() < 0.5:
            store.refresh()
            cutoff = t0
        else:
            cutoff = t0 - CHECK_S
        self.take(store.events().to_arrow(), cutoff)
        n = self.n
        for entity in rng.sample(sorted(self.versions), min(3, len(self.versions))):
            self.entity(entity, n)
        counts = [len(store.events(event_type=t)) for t in TYPES]
        after = len(store.events())
        assert n <= sum(counts) <= after, f"types count {counts}, events {n}..{after}"
        if rng.random() < 0.2:
            for kind in TYPES:
                mine = store.events(event_type=kind).to_arrow()
                assert mine.column("sequence").to_pylist() == sorted(
                    mine.column("sequence").to_pylist()
                )
                head = mine.filter(pc.less_equal(mine.column("sequence"), n))
                assert self.prev is not None
                ref = self.prev.filter(pc.equal(self.prev.column("event_type"), kind))
                assert head.equals(ref), f"events(event_type={kind!r}) differs from events()"
        count, low, high = store.sql(
            "select count(*), min(sequence), max(sequence) from events"
        ).fetchall()[0]
        last = len(store.events())
        assert n <= count <= last, f"sql counts {count}, events {n}..{last}"
        assert count == 0 or (low, high) == (1, count), f"sql sees {low}..{high} for {count}"
        if n:
            s = rng.randint(1, n)
            assert store.get(uuid.UUID(int=self.ids[s - 1])).sequence == s
        self.rounds += 1

    def entity(self, entity: str, n: int) -> None:
        """``events(entity_id=...)`` and ``state(...)`` of one entity, against ``events()``:
        the state is read between two reads of the entity's events, so it must be the
        fold of the first k of them for a k between their lengths."""
        store = self.store
        first = store.events(entity_id=entity).to_arrow()
        state = store.state(entity)
        second = store.events(entity_id=entity).to_arrow()
        assert second.slice(0, first.num_rows).equals(first), f"{entity}'s events changed"
        assert self.prev is not None
        ref = self.prev.filter(pc.equal(self.prev.column("entity_id"), entity))
        assert first.slice(0, ref.num_rows).equals(ref), f"{entity}'s events differ"
        versions = second.column("version").to_pylist()
        assert versions == list(range(1, len(versions) + 1)), f"{entity}'s versions have a gap"
        fold = self.folds[entity]
        payloads = [json.loads(p) for p in second.column("payload").to_pylist()]
        k = ref.num_rows
        for payload in payloads[k : first.num_rows]:
            fold = merge_patch(fold, payload)
        k = first.num_rows
        candidates = [fold]
        for payload in payloads[k:]:
            fold = merge_patch(fold, payload)
            candidates.append(fold)
        assert state in candidates, f"state({entity!r}) is no fold of its events"


def write_atomically(path: Path, text: str) -> None:
    """A reader may be killed at any moment: its progress file is whole or the old one."""
    part = path.with_suffix(path.suffix + ".part")
    part.write_text(text)
    os.replace(part, path)


def run_reader(path: str, folder: Path, name: str, seed: int) -> None:
    """Check rounds until ``folder/stop`` exists; then catch up, check once more and dump
    ``events()`` to ``<name>.arrow``. Progress goes to ``<name>.progress``."""
    import allsource_lab as asl

    warnings.simplefilter("ignore", asl.RecoveryWarning)
    store = asl.open(path, read_only=True)
    checker = Checker(store, AckLog(folder), random.Random(seed))
    # Followers too: their polling thread catches up while the rounds read.
    heard: list[int] = []
    subscription = store.subscribe("watch", lambda e: heard.append(e.sequence))
    snapshots = store.projections.add(asl.EntitySnapshots(), start="beginning")
    progress = folder / f"{name}.progress"
    while not (folder / "stop").exists():
        checker.round()
        upto = len(heard)
        assert heard[:upto] == list(range(1, upto + 1)), "the subscription skipped or repeated"
        write_atomically(progress, f"{checker.rounds} {checker.n}\n")
    t0 = time.monotonic()
    store.refresh()
    table = store.events().to_arrow()
    checker.take(table, t0)
    deadline = time.monotonic() + 30
    while len(heard) < checker.n and time.monotonic() < deadline:
        time.sleep(0.01)
    subscription.close()
    assert heard == list(range(1, checker.n + 1)), "the subscription missed events"
    assert snapshots.versions == checker.versions, "the live projection's versions"
    assert snapshots.states == checker.folds, "the live projection's states"
    part = folder / f"{name}.arrow.part"
    with pa.OSFile(str(part), "wb") as sink, pa.ipc.new_file(sink, table.schema) as out:
        out.write_table(table)
    os.replace(folder / f"{name}.arrow.part", folder / f"{name}.arrow")
    write_atomically(progress, f"{checker.rounds} {checker.n}\n")
    store.close()


def run_long_reader(path: str, folder: Path) -> None:
    """Hold long reads (a slow SQL query, a slow walk over ``events()``) while a
    subscription keeps the store following the writer; write when each began and ended
    and what it saw to ``long.json``."""
    import allsource_lab as asl

    warnings.simplefilter("ignore", asl.RecoveryWarning)
    store = asl.open(path, read_only=True)
    heard: list[int] = []
    store.subscribe("long", lambda e: heard.append(e.sequence), start="end")
    report: dict[str, Any] = {}
    # A cross join sized to last a few seconds here: the query holds its view of the
    # events while the writer checkpoints and compacts.
    n = len(store.events())
    start = time.monotonic()
    (total,) = store.sql(
        f"select count(*) from events a, (select sequence from events limit {150_000_000 // n}) b "
        "where (a.sequence * 31 + b.sequence) % 7 = 3"
    ).fetchall()[0]
    report["sql"] = [start, time.monotonic(), total, n]
    start = time.monotonic()
    seen = []
    for event in store.events():
        seen.append(event.sequence)
        time.sleep(0.0005)
        if time.monotonic() - start > 3.0:
            break
    report["walk"] = [
        start,
        time.monotonic(),
        seen[:1],
        len(seen),
        seen == list(range(1, 1 + len(seen))),
    ]
    time.sleep(0.2)
    breaks = [i for i in range(1, len(heard)) if heard[i] != heard[i - 1] + 1]
    report["heard"] = [
        len(heard),
        not breaks,
        # Where the first break is, for the failure message.
        heard[max(0, breaks[0] - 3) : breaks[0] + 3] if breaks else [],
    ]
    report["events_after"] = len(store.events())
    # Whole or not at all: the parent reads it as soon as the name is there.
    (folder / "long.json.tmp").write_text(json.dumps(report))
    (folder / "long.json.tmp").replace(folder / "long.json")
    store.close()


# -- the parent ------------------------------------------------------------------------------


class Child:
    """A child process started ahead of need; ``start`` gives it its role."""

    def __init__(self, logs: Path, number: int) -> None:
        self.stderr = logs / f"child-{number}.err"
        with open(self.stderr, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(THIS)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=err,
                text=True,
            )
        self.role = ""
        self.killed = False

    def start(self, **command: Any) -> Child:
        assert self.proc.stdin is not None
        self.role = f"{command['role']} {command.get('name', command.get('run', ''))}"
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.close()
        return self

    def kill(self) -> None:
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def failure(self) -> str | None:
        """What went wrong, if the child ended on its own with an error."""
        rc = self.proc.poll()
        if rc is None or rc == 0 or self.killed:
            return None
        return f"{self.role} exited with {rc}:\n{self.stderr.read_text()[-6000:]}"


class Children:
    """Every child of a run, with one spare warming up."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.all: list[Child] = []
        self.spare = self._new()

    def _new(self) -> Child:
        child = Child(self.logs, len(self.all))
        self.all.append(child)
        return child

    def start(self, **command: Any) -> Child:
        child, self.spare = self.spare, self._new()
        return child.start(**command)

    def check(self) -> None:
        for child in self.all:
            problem = child.failure()
            if problem is not None:
                pytest.fail(problem)

    def close(self) -> None:
        for child in self.all:
            if child.proc.stdin is not None and not child.proc.stdin.closed:
                child.proc.stdin.close()  # the spare: end of input, it exits
            if child.proc.poll() is None:
                child.kill()


def wait_for(what: str, ready: Any, children: Children, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        children.check()
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def acked(folder: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in folder.glob("acks-*.log"))


def torture(tmp_path: Path, seconds: float, seed: int) -> None:
    """Run a writer and two readers for ``seconds``, killing both kinds at random."""
    import allsource_lab as asl

    rng = random.Random(seed)
    folder = tmp_path / "run"
    folder.mkdir()
    path = str(tmp_path / "s.events")
    children = Children(tmp_path)
    run = 0

    def writer(final: bool = False) -> Child:
        nonlocal run
        run += 1
        return children.start(
            role="writer", path=path, folder=str(folder), run=run, seed=seed, final=final
        )

    names = iter(f"reader-{i}" for i in range(1_000))

    def reader() -> Child:
        name = next(names)
        return children.start(
            role="reader", path=path, folder=str(folder), name=name, seed=rng.randrange(1 << 30)
        )

    try:
        current = writer()
        wait_for("the first acknowledgements", lambda: acked(folder) >= 10, children)
        readers = [reader(), reader()]
        writer_kills = reader_kills = 0
        end = time.monotonic() + seconds
        next_writer_kill = time.monotonic() + rng.uniform(2.0, 5.0)
        next_reader_kill = time.monotonic() + rng.uniform(3.0, 7.0)
        while time.monotonic() < end:
            children.check()
            now = time.monotonic()
            if now >= next_writer_kill:
                current.kill()
                writer_kills += 1
                current = writer()
                next_writer_kill = now + rng.uniform(2.0, 5.0)
            if now >= next_reader_kill:
                k = rng.randrange(len(readers))
                readers[k].kill()
                reader_kills += 1
                readers[k] = reader()
                next_reader_kill = now + rng.uniform(3.0, 7.0)
            time.sleep(0.02)
        current.kill()
        last = writer(final=True)  # it appends one batch and closes
        wait_for("the last writer", lambda: last.proc.poll() is not None, children)
        children.check()
        (folder / "stop").touch()
        wait_for(
            "the readers' last catch-up",
            lambda: all(r.proc.poll() is not None for r in readers),
            children,
            timeout=120.0,
        )
        children.check()
        acks = AckLog.every(folder)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", asl.RecoveryWarning)
            fresh = asl.open(path, read_only=True)
        try:
            final = fresh.events().to_arrow().sort_by("sequence")
        finally:
            fresh.close()
        ids = [u.int for u in final.column("event_id").to_pylist()]
        assert len(set(ids)) == len(ids), "an event is stored twice"
        position = {ident: i + 1 for i, ident in enumerate(ids)}
        lost = {uuid.UUID(int=i): s for i, s in acks.items() if position.get(i) != s}
        assert not lost, (
            f"{len(lost)} acknowledged events missing or moved, e.g. {list(lost.items())[:3]}"
        )
        rounds = 0
        for r in readers:
            name = r.role.split()[1]
            with pa.memory_map(str(folder / f"{name}.arrow")) as source:
                dumped = pa.ipc.open_file(source).read_all().sort_by("sequence")
            assert dumped.equals(final), f"{name} and a fresh open disagree"
        for progress in folder.glob("reader-*.progress"):  # killed readers' rounds too
            rounds += int(progress.read_text().split()[0])
        # The run did what it is meant to: kills of both kinds, rounds of checks, events.
        assert writer_kills >= 2 and reader_kills >= 2, (writer_kills, reader_kills)
        assert rounds >= 10 and len(acks) >= 1_000, (rounds, len(acks))
        assert (folder / "compactions.log").read_text().count("\n") >= 1, "no compaction"
    finally:
        children.close()


def test_readers_follow_a_writer_through_kills(tmp_path: Path) -> None:
    torture(tmp_path, seconds=25.0, seed=random.randrange(1 << 30))


@pytest.mark.slow
def test_readers_follow_a_writer_through_kills_long(tmp_path: Path) -> None:
    torture(tmp_path, seconds=240.0, seed=random.randrange(1 << 30))


def test_a_long_read_never_blocks_the_writer(tmp_path: Path) -> None:
    """A reader holding a slow SQL query, then a slow walk over ``events()``, while its
    store follows the writer: the writer's acknowledgements keep coming meanwhile (it
    checkpoints and compacts too), and both reads are whole."""
    folder = tmp_path / "run"
    folder.mkdir()
    path = str(tmp_path / "s.events")
    children = Children(tmp_path)
    try:
        children.start(role="writer", path=path, folder=str(folder), run=1, seed=1)
        wait_for("the first acknowledgements", lambda: acked(folder) >= 2_000, children)
        children.start(role="long", path=path, folder=str(folder))
        wait_for("the long reads", lambda: (folder / "long.json").exists(), children, 120.0)
        report = json.loads((folder / "long.json").read_text())
        log = AckLog(folder)
        log.load()
        times = [t for t, _, _ in log.pending]
        for what in ("sql", "walk"):
            start, end = report[what][:2]
            during = sum(start < t < end for t in times)
            assert during > 0, (
                f"no acknowledgement during the reader's {what} ({end - start:.2f} s)"
            )
        _, _, first, walked, gapless = report["walk"]
        assert first == [1] and walked > 100 and gapless, report["walk"]
        heard, in_order, _ = report["heard"]
        assert heard > 0 and in_order, report["heard"]
        assert report["events_after"] > report["sql"][3]
    finally:
        children.close()


def child() -> None:
    """A child process: import the package, then do what the JSON line on stdin says."""
    import allsource_lab  # noqa: F401  (the import is most of a child's start-up)

    line = sys.stdin.readline()
    if not line:
        return
    cmd = json.loads(line)
    folder = Path(cmd["folder"])
    if cmd["role"] == "writer":
        run_writer(cmd["path"], folder, cmd["run"], cmd["seed"], cmd.get("final", False))
    elif cmd["role"] == "reader":
        run_reader(cmd["path"], folder, cmd["name"], cmd["seed"])
    else:
        run_long_reader(cmd["path"], folder)


if __name__ == "__main__":
    child()
