"""The scale benchmark (``python -m allsource_lab.bench.scale``) runs end to end at a tiny
size and reports every row in its table and its JSON; a size that cannot fit is skipped
with its reason, never built. No speed is checked."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys

import pyarrow as pa
import pytest

from allsource_lab.bench.scale import ROWS, Footprint, estimate, parse_sizes, refusal
from allsource_lab.bench.scale_history import History, entity_count

MB = 1_000_000


def test_tiny_run_reports_every_row_in_table_and_json_and_skips_a_size_that_cannot_fit(tmp_path):
    stores, out = tmp_path / "stores", tmp_path / "scale.json"
    command = [sys.executable, "-m", "allsource_lab.bench.scale", "--sizes", "1G,20K"]
    done = subprocess.run(
        [*command, "--folder", str(stores), "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert [row["key"] for row in report["rows"]] == list(ROWS)
    assert {
        r["key"]: r["values"]["20K"] for r in report["rows"] if not r["values"]["20K"] > 0
    } == {}
    assert {r["key"] for r in report["rows"] if r["values"]["1G"] is not None} == set()
    assert report["sizes"]["20K"]["status"] == "measured"
    assert report["sizes"]["20K"]["queries"]["segments"] >= 1
    assert report["sizes"]["1G"]["status"] == "skipped"
    assert "needs ~" in report["sizes"]["1G"]["reason"]
    assert f"1G skipped: {report['sizes']['1G']['reason']}" in done.stdout
    # The Markdown table: sizes in ascending order, one line per row, figures with units.
    lines = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert lines[0] == "| operation | 20K | 1G |"
    cells = [line[2:-2].split(" | ") for line in lines[1:]]
    assert [c[0] for c in cells] == [name for name, _ in ROWS.values()]
    for (name, unit), (_, tiny, huge) in zip(ROWS.values(), cells, strict=True):
        assert tiny.split(" ")[1] == unit, name
        assert huge == "skipped", name
    assert list(stores.iterdir()) == []  # every store it built is deleted


def test_history_gives_every_entity_one_event_per_round_and_one_percent_late():
    n = 60_000
    history = History(n)
    table = pa.concat_tables(history.batches())
    entities = entity_count(n)
    ids = table.column("entity_id").to_pylist()
    assert len(ids) == n
    for r in range(n // entities):
        assert len(set(ids[r * entities : (r + 1) * entities])) == entities
    times = table.column("timestamp").cast(pa.int64()).to_numpy()
    late = int((times[1:] < times[:-1]).sum())
    assert 0.005 * n < late < 0.015 * n
    assert min(len(p) for p in table.column("payload").to_pylist()) >= 100


def test_history_is_the_same_on_every_run():
    first, again = History(30_000), History(30_000)
    assert pa.concat_tables(first.batches()).equals(pa.concat_tables(again.batches()))


def test_a_size_whose_memory_estimate_does_not_fit_is_refused_unless_forced(tmp_path):
    measured = Footprint(1_000_000, 100 * MB, 600 * MB, 200 * MB)  # 500 B/event of memory
    assert refusal(2_000_000, measured, tmp_path, force=False) is None
    huge = 10**13 // 500  # ~10 TB of memory, ~4 TB of disk
    if estimate(measured, huge)[1] * 1.25 < shutil.disk_usage(tmp_path).free:
        pytest.skip("this disk is large enough to hold the huge size")
    assert "of disk" in (refusal(huge, measured, tmp_path, force=True) or "")
    small_disk = Footprint(1_000_000, 100 * MB, 600 * MB, 1)
    why = refusal(huge, small_disk, tmp_path, force=False)
    assert why is not None and "of memory" in why and "--force" in why
    assert refusal(huge, small_disk, tmp_path, force=True) is None


def test_sizes_parse_with_suffixes_and_bad_ones_are_refused():
    assert parse_sizes("20K, 1M,1.5M,100m,2000") == [20_000, 1_000_000, 1_500_000, 10**8, 2000]
    for bad in ("abc", "1", "10X", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="size"):
            parse_sizes(bad)
