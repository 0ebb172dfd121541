"""The server's load benchmark runs (small sizes); how fast is the benchmark's business."""

from __future__ import annotations

from allsource_lab.bench.serve import run


def test_the_serve_benchmark_runs_and_every_client_sees_every_event() -> None:
    figures = run(quick=True)
    assert figures["single_requests_per_s"] > 0
    assert figures["batch_events"] == figures["arrow_batch_events"] == 2000
    assert figures["fanout_all_in_order"] is True
