"""The server's load benchmark runs (small sizes); how fast is the benchmark's business.

Run as a user runs it, in a process of its own: its load generators are spawned
processes, which need a ``__main__`` a fresh interpreter can import (a test session that
has started an IPython shell has replaced it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_the_serve_benchmark_runs_and_every_client_sees_every_event(tmp_path: Path) -> None:
    out = tmp_path / "serve.json"
    done = subprocess.run(
        [sys.executable, "-m", "allsource_lab.bench.serve", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    assert figures["single_requests_per_s"] > 0
    assert figures["batch_events"] == figures["arrow_batch_events"] == 2000
    assert figures["fanout_all_in_order"] is True
