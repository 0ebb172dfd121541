"""Altair charts of window results and frequencies: their data, marks, stability, display,
and ``%allsource window --chart`` drawing every window whatever the display limit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import altair as alt
import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import allsource_lab as asl
from allsource_lab import display
from allsource_lab.notebook import charts, load_ipython_extension, unload_ipython_extension

MIMETYPE = "application/vnd.allsource.v1+json"
VEGA_LITE = "application/vnd.vegalite.v5+json"


@pytest.fixture
def store() -> Iterator[asl.EventStore]:
    store = asl.open()
    for i in range(12):
        store.append(
            "view" if i % 3 == 0 else "click",
            f"u{i % 2}",
            {"amount": i, "tier": "gold" if i % 4 == 0 else "silver"},
            timestamp=f"2026-01-01T00:{i * 5:02d}:30Z",
        )
    yield store
    store.close()


def _minute_windows(n: int, **columns: Any) -> pd.DataFrame:
    starts = pd.date_range("2026-01-01", periods=n, freq="min", tz="UTC")
    return pd.DataFrame(
        {"window_start": starts, "window_end": starts + pd.Timedelta("1min"), **columns}
    )


def test_a_window_chart_is_an_altair_chart_a_user_can_change(store: asl.EventStore) -> None:
    chart = charts.window_chart(store.window("click", every="15m"), title="clicks")
    assert isinstance(chart, alt.Chart)
    wide = chart.properties(width=900).interactive()
    spec = wide.to_dict()
    assert spec["width"] == 900 and spec["params"][0]["bind"] == "scales"
    layered = chart + chart.mark_rule()
    assert isinstance(layered, alt.LayerChart) and len(layered.to_dict()["layer"]) == 2
    assert charts.Chart(chart) is chart  # the old wrapper's name still works


def test_a_window_frame_without_keys_is_bars_spanning_each_window(store: asl.EventStore) -> None:
    spec = charts.window_chart(store.window("click", every="15m"), title="clicks").to_dict()
    assert spec["title"] == "clicks" and spec["mark"]["type"] == "bar"
    encoding = spec["encoding"]
    assert encoding["x"]["field"] == "window_start" and encoding["x"]["scale"] == {"type": "utc"}
    assert encoding["x2"] == {"field": "window_end"} and "color" not in encoding
    assert encoding["y"] == {"field": "value_end", "type": "quantitative", "title": "count"}
    assert encoding["y2"] == {"field": "value_start"}  # bars rise from zero
    assert spec["transform"][0]["stack"] == "value"
    assert spec["data"]["values"] == [
        {
            "window_start": f"2026-01-01T00:{m:02d}:00Z",
            "window_end": f"2026-01-01T00:{m + 15:02d}:00Z" if m < 45 else "2026-01-01T01:00:00Z",
            "measure": "count",
            "value": 2,
        }
        for m in (0, 15, 30, 45)
    ]
    assert spec["description"] == "bar chart of count over 4 windows"


def test_keys_become_colours_and_several_aggregates_stacked_charts(
    store: asl.EventStore,
) -> None:
    frame = store.window(
        every="30m", by=["event_type", "payload.tier"], agg={"payload.amount": ["sum", "avg"]}
    )
    chart = charts.window_chart(frame)
    assert isinstance(chart, alt.FacetChart)
    spec = chart.to_dict()
    assert spec["facet"]["row"]["field"] == "measure"
    assert spec["facet"]["row"]["sort"] == ["payload.amount_sum", "payload.amount_avg"]
    assert spec["resolve"] == {"scale": {"y": "independent"}}
    assert isinstance(charts.Chart(spec), alt.FacetChart)  # a spec becomes its chart again
    inner = spec["spec"]
    assert inner["mark"] == {"type": "line", "point": True}
    assert inner["encoding"]["color"]["field"] == "key"
    assert inner["encoding"]["color"]["title"] == "event_type · payload.tier"
    values = spec["data"]["values"]
    assert len(values) == 2 * len(frame)
    assert [(v["key"], v["measure"]) for v in values[:2]] == [
        ("click · gold", "payload.amount_sum"),
        ("click · gold", "payload.amount_avg"),
    ]
    assert values[0]["value"] == 4.0  # amounts 4 and 8 are gold; 4 is the click before 00:30
    starts = [v["window_start"] for v in values]
    assert starts == sorted(starts) and all(s.endswith("Z") for s in starts)


def test_overlapping_windows_are_drawn_as_a_line(store: asl.EventStore) -> None:
    spec = charts.window_chart(store.window(every="20m", kind="hopping", hop="10m")).to_dict()
    assert spec["mark"] == {"type": "line", "point": True} and "x2" not in spec["encoding"]


def test_a_frequency_frame_is_bars_stacked_by_event_type(store: asl.EventStore) -> None:
    spec = charts.frequency_chart(store.analytics.frequency(bucket="30m")).to_dict()
    assert spec["mark"]["type"] == "bar" and spec["encoding"]["x2"] == {"field": "window_end"}
    assert spec["transform"][0]["sort"] == [{"field": "key", "order": "ascending"}]
    assert spec["encoding"]["color"]["title"] == "event_type"
    assert [(v["window_start"], v["key"], v["value"]) for v in spec["data"]["values"]] == [
        ("2026-01-01T00:00:00Z", "click", 4),
        ("2026-01-01T00:00:00Z", "view", 2),
        ("2026-01-01T00:30:00Z", "click", 4),
        ("2026-01-01T00:30:00Z", "view", 2),
    ]
    single = charts.frequency_chart(store.analytics.frequency("view", bucket="30m")).to_dict()
    assert "color" not in single["encoding"] and "sort" not in single["transform"][0]


def test_the_same_frame_gives_the_same_json_whatever_its_row_order(
    store: asl.EventStore,
) -> None:
    frame = store.window(every="30m", by="event_type", agg={"payload.amount": "avg"})
    shuffled = frame.sample(frac=1.0, random_state=7).reset_index(drop=True)
    first = json.dumps(charts.window_chart(frame).to_dict(), sort_keys=True, allow_nan=False)
    again = json.dumps(charts.window_chart(shuffled).to_dict(), sort_keys=True, allow_nan=False)
    assert first == again


def test_missing_values_are_json_nulls_and_missing_keys_are_named() -> None:
    frame = pd.DataFrame(
        {
            "window_start": pd.to_datetime(["2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"]),
            "window_end": pd.to_datetime(["2026-01-01T01:00:00Z", "2026-01-01T01:00:00Z"]),
            "payload.tier": ["gold", None],
            "payload.amount_avg": [float("nan"), 2.5],
        }
    )
    spec = charts.window_chart(frame).to_dict()
    assert [(v["key"], v["value"]) for v in spec["data"]["values"]] == [
        ("(none)", 2.5),
        ("gold", None),
    ]
    json.dumps(spec, allow_nan=False)  # no NaN in the JSON


def test_frames_that_are_not_window_results_are_refused() -> None:
    with pytest.raises(ValueError, match="window_start"):
        charts.window_chart(pd.DataFrame({"count": [1]}))
    starts = pd.to_datetime(["2026-01-01T00:00:00Z"])
    with pytest.raises(ValueError, match="no numeric aggregate"):
        charts.window_chart(pd.DataFrame({"window_start": starts, "window_end": starts}))
    with pytest.raises(ValueError, match="count"):
        charts.frequency_chart(
            pd.DataFrame({"window_start": starts, "window_end": starts, "total": [1]})
        )
    with pytest.raises(ValueError, match="Altair chart or a Vega-Lite spec"):
        charts.Chart(42)  # type: ignore[arg-type]


def test_every_window_up_to_the_bound_is_a_mark_and_the_title_is_left_alone() -> None:
    chart = charts.window_chart(_minute_windows(charts.MAX_POINTS, count=1), title="clicks")
    assert len(chart.to_dict()["data"]["values"]) == charts.MAX_POINTS
    assert chart.to_dict()["title"] == "clicks"


def test_more_windows_than_the_bound_are_combined_into_buckets_and_the_title_says_so() -> None:
    frame = _minute_windows(charts.MAX_POINTS + 1, count=1, **{"payload.amount_max": 2.0})
    frame.loc[0, "payload.amount_max"] = 9.0
    spec = charts.window_chart(frame, title="clicks").to_dict()
    # Two aggregates: 10,002 points; 5-minute buckets are the finest that fit (2 × 1,001).
    assert spec["title"] == ("clicks per 5m: 5,001 windows combined into 1,001 to draw them all")
    values = spec["data"]["values"]
    counts = [v["value"] for v in values if v["measure"] == "count"]
    assert len(counts) == 1_001 and sum(counts) == charts.MAX_POINTS + 1  # nothing lost
    maxima = [v["value"] for v in values if v["measure"] == "payload.amount_max"]
    assert maxima[0] == 9.0 and set(maxima[1:]) == {2.0}  # a maximum stays a maximum
    assert values[0]["window_start"] == "2026-01-01T00:00:00Z"
    assert values[0]["window_end"] == "2026-01-01T00:05:00Z"


def test_a_charts_bundle_draws_vega_lite_in_jupyterlab_and_svg_for_nbconvert(
    store: asl.EventStore,
) -> None:
    chart = charts.window_chart(store.window(every="1m", fill=True))
    bundle = chart._repr_mimebundle_()
    # JupyterLab ranks text/html (50) above Vega-Lite (57), and drew a script instead of
    # the chart: neither may be in the bundle, or they would win.
    assert "text/html" not in bundle and "application/javascript" not in bundle
    assert set(bundle) == {VEGA_LITE, "image/svg+xml", "text/plain"}
    assert bundle[VEGA_LITE] == chart.to_dict()
    assert len(bundle[VEGA_LITE]["data"]["values"]) == 56
    assert bundle["text/plain"] == "<Chart: bar chart of count over 56 windows>"
    # The static picture nbconvert shows is the same chart: one bar per window.
    svg = bundle["image/svg+xml"]
    assert svg.startswith("<svg") and svg.count('aria-roledescription="bar"') == 56


def test_a_chart_shows_without_its_static_picture_when_it_cannot_be_drawn(
    store: asl.EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vl_convert

    def fails(spec: object) -> str:
        raise ValueError("cannot draw")

    monkeypatch.setattr(vl_convert, "vegalite_to_svg", fails)
    bundle = charts.window_chart(store.window(every="1m"))._repr_mimebundle_()
    assert set(bundle) == {VEGA_LITE, "text/plain"}


def test_a_renderer_the_user_chose_is_kept() -> None:
    assert alt.renderers.active == charts.RENDERER  # enabled on import over "default"
    with alt.renderers.enable("json"):
        import importlib

        importlib.reload(charts)
        assert alt.renderers.active == "json"
    importlib.reload(charts)


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    load_ipython_extension(ip)
    yield ip
    unload_ipython_extension(ip)
    ip.run_line_magic("reset", "-f")
    display.set_default_limit(display.DEFAULT_LIMIT)


def test_window_chart_magic_draws_every_window_while_the_table_is_cut(
    shell: InteractiveShell,
) -> None:
    shell.run_line_magic("allsource", "open --memory")
    for day, at in enumerate(pd.date_range("2026-01-01T12:00:00Z", periods=60, freq="D")):
        when = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        shell.run_line_magic("allsource", f"append order.placed o-{day} {{}} --time {when}")
    with capture_output() as shown:
        shell.run_cell("%allsource window order.placed --every 1d --chart -o daily")
    assert len(shell.user_ns["daily"]) == 60
    chart_output, table_output = shown.outputs
    assert set(chart_output.data) == {VEGA_LITE, "image/svg+xml", "text/plain"}
    values = chart_output.data[VEGA_LITE]["data"]["values"]
    assert len(values) == 60 and "chart" not in table_output.data[MIMETYPE]
    table = table_output.data[MIMETYPE]["table"]
    assert display.DEFAULT_LIMIT < 60 and len(table["rows"]) == display.DEFAULT_LIMIT
    assert f"showing {display.DEFAULT_LIMIT} of 60" in table_output.data["text/plain"]
