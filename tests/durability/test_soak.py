"""The soak run (``python -m allsource_lab.bench.soak``) in a subprocess: a minute here, 10
minutes under ``-m slow``; it must pass and its report must account for what it did."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    "duration_s",
    [
        pytest.param(60, id="60s"),
        pytest.param(600, id="600s", marks=[pytest.mark.slow, pytest.mark.timeout(900)]),
    ],
)
def test_soak_keeps_every_event_verifies_clean_and_memory_stays_bounded(
    tmp_path: Path, duration_s: int
) -> None:
    report_path = tmp_path / "soak.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "allsource_lab.bench.soak",
            "--duration", str(duration_s),
            "--path", str(tmp_path / "soak.events"),
            "--report", str(report_path),
        ],
        capture_output=True, text=True, timeout=duration_s + 120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "soak passed" in done.stdout
    report = json.loads(report_path.read_text())
    assert report["ok"] and report["failures"] == []
    assert report["cycles"] >= 3 and report["reopens"] == report["cycles"]
    assert report["checkpoints"] >= report["cycles"] - 1
    assert report["compactions"] >= report["cycles"] // 3 - 1 > 0
    assert report["verifies"] == report["cycles"] + 1
    assert report["snapshots"] > 0 and report["appends"] > 0 and report["batches"] > 0
    assert report["events"] == report["samples"][-1][1] > 0
    assert report["growth_beyond_data_mib"] <= report["memory_bound_mib"]


def test_soak_fails_with_exit_1_when_memory_grows_past_the_bound(tmp_path: Path) -> None:
    # A bound no run can meet: the store's own growth is allowed, nothing else.
    done = subprocess.run(
        [
            sys.executable, "-m", "allsource_lab.bench.soak", "--duration", "4",
            "--memory-bound-mib", "-1", "--report", str(tmp_path / "r.json"),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "resident memory grew" in done.stdout
    assert json.loads((tmp_path / "r.json").read_text())["ok"] is False
