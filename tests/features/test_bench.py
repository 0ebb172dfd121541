"""The benchmark runs end to end and reports a figure for every operation (no speed checks)."""

from __future__ import annotations

import json
import subprocess
import sys

from allsource_lab.bench.eventsourcing_module import ES_FIGURES
from allsource_lab.bench.follow import FOLLOW_FIGURES
from allsource_lab.bench.projections import PROJECTION_FIGURES
from allsource_lab.bench.windows import WINDOW_FIGURES

READ_FIGURES = {
    "read_entity",
    "read_entity_positions",
    "read_type",
    "state",
    "state_fold",
    "state_as_of",
    "state_as_of_cold",
    "states_as_of",
    "sql_count_by_type",
    "eventsourcing_rebuild_100",
}
OPERATIONS = {
    "append_default",
    "append_batch_default",
    "open_query_fresh_process",
    "open_query_cold_cache",
    "append",
    "append_default_checkpoint",
    "append_batch",
    "append_batch_default_checkpoint",
    "checkpoint",
    "checkpoint_singles",
    "reopen",
    "reopen_first_in_process",
    "memory",
    "memory_ingest",
    "memory_after_warmup",
    "memory_arrow",
    "memory_1m",
    "import_open",
    "import_open_append",
    "load_ext_open",
    "eventsourcing_popo",
    "eventsourcing_sqlite",
    "duckdb_insert",
    "pyarrow_ipc_write",
    "pyarrow_write_1000",
    "pyarrow_read_parquet",
    *READ_FIGURES,
    "append_batch_schema",
    "append_batch_no_schema",
    "jsonschema_validate",
    *PROJECTION_FIGURES,
    *WINDOW_FIGURES,
    *ES_FIGURES,
    *FOLLOW_FIGURES,
}


def test_quick_benchmark_reports_a_positive_figure_for_every_operation(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "allsource_lab.bench", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    figures = {f["key"]: f["value"] for f in report["figures"]}
    assert set(figures) == OPERATIONS
    # Sealed events live in mapped files: the store may hold no Arrow heap buffers at all.
    assert {k: v for k, v in figures.items() if not v > 0 and k != "memory_arrow"} == {}
    assert figures["memory_arrow"] >= 0
    assert report["machine"]["cpu_count"] >= 1
    # Every figure is also in the printed table.
    assert all(f["name"] in done.stdout for f in report["figures"])


def test_quick_read_benchmark_reports_every_read_figure_positive_for_each_run(tmp_path):
    from allsource_lab.bench.common import QUICK
    from allsource_lab.bench.reads import bench_reads

    figures = bench_reads(QUICK, tmp_path)
    assert sorted(f.key for f in figures) == sorted(READ_FIGURES)
    assert {f.key: f.runs for f in figures if len(f.runs) != QUICK.repeats} == {}
    assert {f.key: f.runs for f in figures if not min(f.runs) > 0} == {}
