"""kill -9 at random moments: every acknowledged event survives, exactly once, in order.

A real writer process (``crash_writer.py``) appends and reports each acknowledgement on
stdout; the test SIGKILLs it at a random moment, reopens the folder and holds the store
to what the writer was told. Kills are repeated on the same folder (recovery over
recovered stores, sometimes by the next writer rather than by the checker) and on fresh
folders. The next writer is started while the current one runs, so its import and
warm-up overlap the kill window.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import allsource_lab as asl

WRITER = Path(__file__).with_name("crash_writer.py")
# Writers warming up while one runs: their start-up (~1.5 s) is most of a kill's cost.
SPARE_WRITERS = 2
FSYNC_INTERVAL_S = 0.1  # what crash_writer.py opens the store with
# Slack on top of the interval for a flusher thread that is late under load.
INTERVAL_MARGIN_S = 0.5


@dataclass(frozen=True, slots=True)
class Ack:
    """One acknowledged write, as the writer reported it."""

    at: float  # time.monotonic() in the writer when the write returned
    first: int
    last: int
    op: int


class Writer:
    """One ``crash_writer.py`` child: warmed up on spawn, started on a store, killed."""

    def __init__(self, fsync: str, run: int, logs: Path) -> None:
        self.run = run
        self.stderr = logs / f"writer-{run}.err"
        with open(self.stderr, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(WRITER), fsync, str(run)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        self.lines: list[str] = []
        self.seen: set[str] = set()
        self._changed = threading.Condition()
        self._eof = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                if line in ("warm\n", "ready\n"):
                    self.seen.add(line.strip())
                    self._changed.notify_all()
                else:
                    self.lines.append(line)
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def _await(self, word: str) -> None:
        with self._changed:
            self._changed.wait_for(lambda: word in self.seen or self._eof, timeout=120)
            seen = word in self.seen
        if not seen:
            self.discard()
            raise AssertionError(
                f"writer {self.run} never reported {word!r}:\n{self.stderr.read_text()}"
            )

    def start(self, store: Path) -> None:
        """Tell the (warm) writer to open ``store``; returns once it is appending."""
        self._await("warm")
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"go {store}\n")
        self.proc.stdin.flush()
        self._await("ready")

    def kill(self) -> float:
        """SIGKILL the writer; returns the monotonic time just before the signal."""
        killed_at = time.monotonic()
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._reader.join(30)
        # Anything but death by our signal means the writer failed on its own, and its
        # acknowledgements would prove nothing about a kill.
        assert self.proc.returncode == -signal.SIGKILL, self.stderr.read_text()
        self._close_pipes()
        return killed_at

    def acks(self) -> list[Ack]:
        out = []
        for line in self.lines:
            parts = line.split()
            # A line cut short by the kill never reached the parent whole: not an ack.
            if line.endswith("\n") and len(parts) == 4:
                out.append(Ack(float(parts[0]), int(parts[1]), int(parts[2]), int(parts[3])))
        return out

    def discard(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(30)
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                # Closing the stdin of a dead child may fail: nothing had anywhere to go.
                with contextlib.suppress(OSError):
                    pipe.close()


@dataclass
class Ledger:
    """Every acknowledgement given for one store, and what it obliges the store to hold."""

    acks: dict[tuple[int, int], Ack] = field(default_factory=dict)  # (run, op) -> ack
    promised: set[tuple[int, int]] = field(default_factory=set)
    last_op: dict[int, int] = field(default_factory=dict)  # run -> last acked op, or -1

    def record(self, run: int, acks: list[Ack], promised_before: float) -> None:
        self.last_op[run] = max((a.op for a in acks), default=-1)
        for ack in acks:
            self.acks[run, ack.op] = ack
            if ack.at < promised_before:
                self.promised.add((run, ack.op))

    def promised_events(self) -> int:
        return sum(self.acks[k].last - self.acks[k].first + 1 for k in self.promised)

    def check(self, table: pa.Table) -> None:
        """The recovered events are exactly a prefix of each writer's writes, whole."""
        seqs = table.column("sequence").to_pylist()
        assert seqs == list(range(1, len(seqs) + 1)), "sequences must be gapless from 1"
        ids = table.column("event_id").to_pylist()
        assert len(set(ids)) == len(ids), "an event was stored twice"
        versions: dict[str, int] = defaultdict(int)
        for seq, entity, version in zip(
            seqs,
            table.column("entity_id").to_pylist(),
            table.column("version").to_pylist(),
            strict=True,
        ):
            versions[entity] += 1
            assert version == versions[entity], f"seq {seq}: version gap for {entity}"
        writes: dict[tuple[int, int], list[tuple[int, dict]]] = defaultdict(list)
        for seq, text in zip(seqs, table.column("payload").to_pylist(), strict=True):
            payload = json.loads(text)
            writes[payload["run"], payload["op"]].append((seq, payload))
        for (run, op), rows in writes.items():
            where = f"run {run} op {op}"
            assert run in self.last_op, f"{where}: events from a writer never started"
            got = [seq for seq, _ in rows]
            assert got == list(range(got[0], got[0] + len(got))), f"{where}: not contiguous"
            if "n" in rows[0][1]:
                n = rows[0][1]["n"]
                assert [p["i"] for _, p in rows] == list(range(n)), f"{where}: partial batch"
            else:
                assert len(rows) == 1, f"{where}: a single append stored {len(rows)} times"
            ack = self.acks.get((run, op))
            if ack is not None:
                assert got == list(range(ack.first, ack.last + 1)), (
                    f"{where}: stored at {got[0]}..{got[-1]}, acknowledged as "
                    f"{ack.first}..{ack.last}"
                )
            else:
                # Only the write in flight when the kill came may be there unacknowledged.
                assert op == self.last_op[run] + 1, f"{where}: never acknowledged"
        for run in self.last_op:
            ops = sorted(op for r, op in writes if r == run)
            assert ops == list(range(len(ops))), f"run {run}: a write survived a lost one"
        missing = sorted(self.promised - writes.keys())
        assert not missing, f"acknowledged writes lost (run, op): {missing[:10]}"


def check_index(store: asl.EventStore, table: pa.Table) -> None:
    """The recovered index answers like a scan of every event: by entity, type and state."""
    by_entity: dict[str, list[tuple[int, object, dict]]] = defaultdict(list)
    by_type: dict[str, list[int]] = defaultdict(list)
    for seq, entity, type_, recorded, text in zip(
        table.column("sequence").to_pylist(),
        table.column("entity_id").to_pylist(),
        table.column("event_type").to_pylist(),
        table.column("recorded_at").to_pylist(),
        table.column("payload").to_pylist(),
        strict=True,
    ):
        by_entity[entity].append((seq, recorded, json.loads(text)))
        by_type[type_].append(seq)

    def fold(rows: list[tuple[int, object, dict]]) -> dict:
        state: dict = {}
        for _, _, payload in rows:
            state.update(payload)  # flat payloads without nulls: a merge patch is update
        return state

    for entity, rows in by_entity.items():
        got = store.events(entity_id=entity).to_arrow().column("sequence").to_pylist()
        assert got == [seq for seq, _, _ in rows]
        assert store.state(entity) == fold(rows), entity
        cut = rows[len(rows) // 2][1]
        before = [r for r in rows if r[1] <= cut]
        assert store.state(entity, known_at=cut) == fold(before), entity
    for type_, seqs in by_type.items():
        assert store.events(event_type=type_).to_arrow().column("sequence").to_pylist() == seqs
    frame = store.states()
    want = {entity: fold(rows) for entity, rows in by_entity.items()}
    assert dict(zip(frame["entity_id"], frame["state"], strict=True)) == want


def check_recovered(path: Path, ledger: Ledger) -> int:
    """Reopen after a kill and hold the store to the ledger; returns its event count."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = asl.open(path)
    try:
        messages = [f"{w.category.__name__}: {w.message}" for w in caught]
        assert all(issubclass(w.category, asl.RecoveryWarning) for w in caught), messages
        assert len(caught) <= 1, messages
        table = store.events().to_arrow()
        ledger.check(table)
        check_index(store, table)
        assert store.stats()["events"] == table.num_rows
        # SQL sees the same events as the index: counts by type and the last sequence.
        counts = dict(store.sql("SELECT event_type, count(*) FROM events GROUP BY 1").fetchall())
        want = pc.value_counts(table.column("event_type")).to_pylist() if table.num_rows else []
        assert counts == {row["values"]: row["counts"] for row in want}
        report = store.verify()
        assert report.ok, report.problems
        return table.num_rows
    finally:
        store.close()


@dataclass
class Torture:
    """Kill writers over and over on a few stores, checking each store after kills."""

    logs: Path
    fsync: str
    seed: int
    delay_s: tuple[float, float]  # from "ready" to SIGKILL
    promise_lag_s: float | None  # acks older than this at the kill must survive; None: all
    kills: int = 0
    promised_events: int = 0
    _spares: deque[Writer] = field(default_factory=deque)
    _runs: int = 0

    def _spawn(self) -> None:
        self._runs += 1
        self._spares.append(Writer(self.fsync, self.seed * 10_000 + self._runs, self.logs))

    def run(self, stores: int, kills_per_store: int) -> None:
        rng = random.Random(self.seed)
        try:
            for s in range(stores):
                path = self.logs / f"store-{s}.events"
                ledger = Ledger()
                for k in range(kills_per_store):
                    if not self._spares:
                        self._spawn()
                    writer = self._spares.popleft()
                    writer.start(path)
                    while len(self._spares) < SPARE_WRITERS:
                        self._spawn()
                    time.sleep(rng.uniform(*self.delay_s))
                    killed_at = writer.kill()
                    self.kills += 1
                    lag = self.promise_lag_s
                    ledger.record(
                        writer.run, writer.acks(), float("inf") if lag is None else killed_at - lag
                    )
                    # Now and then the next writer, not the checker, recovers the store,
                    # so recovery also runs over a WAL that earlier crashes left behind.
                    if k == kills_per_store - 1 or rng.random() < 0.7:
                        check_recovered(path, ledger)
                self.promised_events += ledger.promised_events()
        finally:
            while self._spares:
                self._spares.popleft().discard()


def test_acknowledged_events_survive_kill_with_fsync_always(tmp_path):
    torture = Torture(tmp_path, "always", seed=1, delay_s=(0.02, 0.3), promise_lag_s=None)
    torture.run(stores=6, kills_per_store=8)
    assert torture.kills == 48
    assert torture.promised_events > 0


def test_events_older_than_the_interval_survive_kill_with_fsync_interval(tmp_path):
    # Only events acknowledged more than fsync_interval_s plus a margin before the kill are
    # promised; the rest may be lost, but only as a suffix, never half a batch or twice.
    # Kills come late enough that many events are past the promise, so this can fail.
    torture = Torture(
        tmp_path,
        "interval",
        seed=2,
        delay_s=(0.8, 1.4),
        promise_lag_s=FSYNC_INTERVAL_S + INTERVAL_MARGIN_S,
    )
    torture.run(stores=1, kills_per_store=6)
    assert torture.promised_events > 0


@pytest.fixture
def slow_run(request: pytest.FixtureRequest) -> None:
    """Torture runs take minutes: only when asked for with ``-m slow`` (make test-slow)."""
    if "slow" not in request.config.getoption("markexpr", "").replace("not slow", ""):
        pytest.skip("a torture run; select it with -m slow")


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_acknowledged_events_survive_hundreds_of_kills(tmp_path, slow_run):
    torture = Torture(tmp_path, "always", seed=3, delay_s=(0.0, 0.5), promise_lag_s=None)
    torture.run(stores=20, kills_per_store=12)
    assert torture.kills == 240
    assert torture.promised_events > 0


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_interval_promise_holds_over_many_kills(tmp_path, slow_run):
    torture = Torture(
        tmp_path,
        "interval",
        seed=4,
        delay_s=(0.7, 2.0),
        promise_lag_s=FSYNC_INTERVAL_S + INTERVAL_MARGIN_S,
    )
    torture.run(stores=5, kills_per_store=10)
    assert torture.promised_events > 0


# A writer that fills the tail with one large batch, so that an automatic checkpoint seals
# it on the sealing thread, and keeps appending singles beside it; it says "sealing" while
# the seal runs (the parent kills it then) and "acked N" after each acknowledged write.
_SEALING_WRITER = """
import sys, allsource_lab as asl
store = asl.open(sys.argv[1], fsync="always", checkpoint_every_events=200_000)
rows = [{"event_type": "t", "entity_id": f"e{i % 501}", "payload": {}} for i in range(200_000)]
res = store.append_batch(rows)
print("acked", res.last_sequence, flush=True)
told = False
for i in range(1_000_000):
    ev = store.append("t", "single", {"i": i})
    print("acked", ev.sequence, flush=True)
    if not told and store.stats()["sealing_events"]:
        print("sealing", flush=True)
        told = True
"""


def _ack(line: str) -> int:
    """The sequence an "acked N" line reports, or 0 for any other line and for a line
    the kill cut short (the kill can land while the writer prints)."""
    parts = line.split()
    if line.endswith("\n") and len(parts) == 2 and parts[0] == "acked" and parts[1].isdigit():
        return int(parts[1])
    return 0


@pytest.mark.parametrize("delay_s", [0.0, 0.01, 0.04])
def test_a_kill_during_a_background_seal_loses_no_acknowledged_event(tmp_path, delay_s):
    path = tmp_path / "s"
    acked = 0
    with subprocess.Popen(
        [sys.executable, "-c", _SEALING_WRITER, str(path)], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:
            if _ack(line):
                acked = _ack(line)
            elif line.startswith("sealing"):
                time.sleep(delay_s)
                child.send_signal(signal.SIGKILL)
                break
        else:
            pytest.fail("the writer never saw its checkpoint running in the background")
        for line in child.stdout:  # acks printed before the kill landed
            if _ack(line):
                acked = _ack(line)
    assert acked > 200_000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", asl.RecoveryWarning)  # a torn final record is fine
        store = asl.open(path)
    try:
        stats = store.stats()
        assert stats["events"] >= acked
        assert len(store.events(entity_id="e7")) == len(range(7, 200_000, 501))
        singles = store.events(entity_id="single").to_arrow().column("sequence").to_pylist()
        assert singles == list(range(200_001, stats["events"] + 1))
        assert store.verify().ok
    finally:
        store.close()
