"""Single appends, seals, compaction and entity and type reads never import pandas.

Importing pandas costs 0.3-1.5 s, paid by whichever call first does it: a process that
appends events one by one must not pay it inside its first automatic checkpoint (the
seal runs on a background thread, but holds the GIL while it imports). pyarrow imports
pandas on its first conversion of a Python value (``pa.array``, ``pa.scalar``, a compute
function given a Python number, ``to_numpy``), so this path builds its Arrow data from
buffers. Batches are another matter: their inputs are Arrow or pandas data already. Run
in a fresh process: the test session imported pandas long ago.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import os, sys, traceback

    class Watch:
        # Say who imports pandas, with the stack, and stop the process at once (a seal
        # on the background thread could not stop it by raising).
        def find_spec(self, name, path=None, target=None):
            if name == "pandas":
                traceback.print_stack()
                sys.stderr.flush()
                os._exit(3)
            return None

    sys.meta_path.insert(0, Watch())
    import datetime as dt
    import allsource_lab as asl

    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    folder = sys.argv[1]
    store = asl.open(folder, checkpoint_every_events=400)
    for i in range(1000):
        store.append("t", f"e{i % 10}", {"n": i}, timestamp=start + dt.timedelta(seconds=i))
    store.checkpoint()
    store.events(entity_id="e1").to_arrow()
    store.state("e1")
    store.close()
    store = asl.open(folder)
    store.append("u", "e1", {"n": None})
    store.events(entity_id="e1").to_arrow()
    store.checkpoint()
    store.compact()
    store.close()
    store = asl.open(folder, read_only=True)
    store.state("e1", as_of=start + dt.timedelta(seconds=100))
    assert len(store.events(event_type="t").to_arrow()) == 1000
    store.close()
    """
)


def test_single_appends_seals_compaction_and_reads_never_import_pandas(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "s.events")],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
