"""The benchmark runs end to end and reports a figure for every operation (no speed checks)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_quick_benchmark_reports_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    subprocess.run(
        [sys.executable, "-m", "allsource_lab.bench", "--quick", "--json", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    figures = json.loads(out.read_text())
    names = " ".join(f["name"] for f in figures)
    for expected in (
        "append,",
        "append_batch",
        "checkpoint",
        "reopen",
        "memory",
        "import",
        "eventsourcing",
        "DuckDB",
    ):
        assert expected in names
    assert all(f["value"] > 0 for f in figures)


def test_unknown_benchmark_name_is_a_usage_error():
    done = subprocess.run(
        [sys.executable, "-m", "allsource_lab.bench", "--only", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "unknown benchmark" in done.stderr
