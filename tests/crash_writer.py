"""Child process for the crash tests: appends forever and reports every acknowledgement.

Usage: python crash_writer.py STORE FSYNC SEED

Prints ``ready`` once open, then one line per acknowledged write:
``<monotonic seconds> <first sequence> <last sequence>``, flushed at once, so the parent
knows exactly what was acknowledged before it sends SIGKILL.
"""

from __future__ import annotations

import random
import sys
import time
import warnings


def main() -> None:
    path, fsync, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = random.Random(seed)
    warnings.simplefilter("ignore")  # a RecoveryWarning on reopen is the parent's concern
    import allsource_lab as asl

    # Compile every kernel before saying ready (a cold numba cache takes seconds), so the
    # parent's kill lands among appends, not in the compiler.
    scratch = asl.open()
    scratch.append("warm", "w", {"n": 1})
    scratch.append_batch([{"event_type": "warm", "entity_id": "w", "payload": {}}])
    scratch.checkpoint()
    scratch.close()
    store = asl.open(path, fsync=fsync, checkpoint_every_events=rng.choice([50, 200, 10_000]))
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    entities = [f"e{i}" for i in range(7)]
    while True:
        roll = rng.random()
        if roll < 0.6:
            ev = store.append("tick", rng.choice(entities), {"n": rng.random()})
            first = last = ev.sequence
        elif roll < 0.97:
            rows = [
                {"event_type": "bulk", "entity_id": rng.choice(entities), "payload": {"i": i}}
                for i in range(rng.randint(1, 20))
            ]
            res = store.append_batch(rows)
            first, last = res.first_sequence, res.last_sequence
        else:
            store.checkpoint()
            continue
        out.write(f"{time.monotonic()} {first} {last}\n")
        out.flush()


if __name__ == "__main__":
    main()
