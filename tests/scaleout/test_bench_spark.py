"""``make bench-spark`` runs end to end (how fast is the benchmark's business, never a test's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from allsource_lab.bench import spark as bench


# Several Spark jobs over a small store: ~1 min on a busy 2-core machine, so a slow test.
@pytest.mark.slow
def test_the_spark_benchmark_measures_every_figure(spark: Any, tmp_path: Path) -> None:
    figures = bench.measure(spark, 3_000, tmp_path, repeats=1)
    assert figures["export"]["commits"] == 1
    layout = figures["layout"]
    assert layout["table_files"] == 1 and layout["partitioned_files"] > layout["table_files"]
    assert set(figures["store"]) == set(figures["spark"]) == {"states_as_of_s", "window_s"}
    text = bench.table(figures)
    assert text.startswith("| 3,000 events") and "states(as_of=mid-history)" in text
