"""Child process for the crash tests: appends until it is killed, reporting every ack.

Usage: ``python crash_writer.py FSYNC SEED``

1. Imports the package and warms every code path on a scratch folder store, then prints
   ``warm``: a cold start takes a second or two, and the parent starts the next writer
   while the current one is being killed, so that this cost overlaps the kill window.
2. Waits for ``go STORE`` on stdin (EOF means "not needed": exit quietly).
3. Opens STORE with the given fsync policy and prints ``ready``.
4. Appends forever — single events over a few entities and, depending on the writer's
   profile (see below), batches of 1–20 rows and checkpoints — and after each
   acknowledged write prints, flushed at once::

       <time.monotonic()> <first sequence> <last sequence> <op>

   ``op`` counts this writer's writes from 0. Every payload carries ``run`` (the SEED)
   and ``op`` (and, in a batch, the row ``i`` of ``n``), so the parent can tell exactly
   which write an event came from, whether a batch arrived whole, and that no write
   was lost while a later one survived.

Everything the writer does is drawn from SEED, so a failing run can be repeated.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import shutil
import sys
import tempfile
import time
import warnings

ENTITIES = [f"e{i}" for i in range(7)]


def warm_up(asl: object, fsync: str) -> None:
    """Run every path the loop uses once, so that a kill lands among appends."""
    scratch = tempfile.mkdtemp(prefix="asl-warm-")
    try:
        store = asl.open(scratch + "/s", fsync=fsync)  # type: ignore[attr-defined]
        store.append("warm", "w", {"run": -1, "op": 0})
        store.append_batch(
            [{"event_type": "warm", "entity_id": "w", "payload": {"i": i}} for i in range(3)]
        )
        store.checkpoint()
        store.append("warm", "w", {"run": -1, "op": 1})
        store.state("w", as_of=dt.datetime.now(dt.UTC))
        store.snapshot("w")
        store.checkpoint()
        store.compact()
        store.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    fsync, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    import allsource_lab as asl

    # Cutting a torn tail is expected here; the parent checks warnings on its own opens.
    warnings.simplefilter("ignore", asl.RecoveryWarning)
    warm_up(asl, fsync)
    out = sys.stdout
    out.write("warm\n")
    out.flush()
    command = sys.stdin.readline().split(maxsplit=1)
    if not command or command[0] != "go":
        return
    # The writer's profile follows from its run number, so that any five writers in a row
    # cover all five. "quiet": paced single appends, no checkpoints - nothing but the
    # fsync policy (per append, or the interval flusher) puts acknowledged events on disk.
    # "checkpoints": singles and batches with frequent checkpoints, so kills land in them.
    # "rotation": singles and batches over small WAL files, so kills land in rotations.
    # "compaction": frequent checkpoints and compactions, so kills land in compactions.
    # "background": large batches that fill the tail every few writes, so kills land while
    # an automatic checkpoint seals a tail on the sealing thread beside new appends.
    profile = ("quiet", "checkpoints", "rotation", "compaction", "background")[seed % 5]
    if seed % 10 >= 5:
        # Every write past the page cache (large ones are by default: _storage/direct.py),
        # so that kills land between a direct write and the cut that ends it.
        from allsource_lab._storage import direct

        direct.DIRECT_BYTES = 1
    quiet = profile == "quiet"
    store = asl.open(
        command[1].strip(),
        fsync=fsync,
        fsync_interval_s=0.1,
        checkpoint_every_events={
            "quiet": 10**9,
            "checkpoints": 300,
            "rotation": 3_000,
            "compaction": 150,
            "background": 20_000,
        }[profile],
        wal_segment_bytes=16 * 1024 if profile == "rotation" else 64 * 1024 * 1024,
        snapshot_every_versions=4,
    )
    batch_share = 0.0 if quiet else 0.35
    checkpoint_share = 0.0 if quiet or profile == "background" else 0.03
    batch_rows = (2_000, 12_000) if profile == "background" else (1, 20)
    compaction_share = 0.01 if profile == "compaction" else 0.0
    out.write("ready\n")
    out.flush()
    op = 0
    while True:
        if quiet:
            # Unpaced, the 1 MiB WAL buffer fills in ~0.1 s and gets written by the
            # appending thread itself, which would hide a flusher that never runs.
            time.sleep(0.0005)
        roll = rng.random()
        if roll < compaction_share:
            store.compact()
            continue
        if roll < checkpoint_share:
            store.checkpoint()
            continue
        if roll > 0.98:
            # Reads fold states (automatic snapshots every 4 versions, saved at the next
            # checkpoint) and explicit snapshots write the snapshot log: kills land there too.
            entity = rng.choice(ENTITIES)
            with contextlib.suppress(asl.NotFound):
                if roll > 0.99:
                    store.snapshot(entity)
                else:
                    store.state(
                        entity, as_of=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=rng.random())
                    )
            continue
        if roll >= batch_share:
            ev = store.append("tick", rng.choice(ENTITIES), {"run": seed, "op": op})
            first = last = ev.sequence
        else:
            n = rng.randint(*batch_rows)
            rows = [
                {
                    "event_type": "bulk",
                    "entity_id": rng.choice(ENTITIES),
                    "payload": {"run": seed, "op": op, "i": i, "n": n},
                }
                for i in range(n)
            ]
            res = store.append_batch(rows)
            first, last = res.first_sequence, res.last_sequence
        out.write(f"{time.monotonic():.6f} {first} {last} {op}\n")
        out.flush()
        op += 1


if __name__ == "__main__":
    main()
