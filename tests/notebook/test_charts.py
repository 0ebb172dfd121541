"""Vega-Lite charts of window results and frequencies: their specs, stability and display."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pandas as pd
import pytest

import allsource_lab as asl
from allsource_lab.notebook import charts


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


def _canonical(spec: dict[str, object]) -> str:
    return json.dumps(spec, sort_keys=True, allow_nan=False)


def test_a_window_frame_without_keys_is_bars_spanning_each_window(store: asl.EventStore) -> None:
    frame = store.window("click", every="15m")
    spec = charts.window_chart(frame, title="clicks")
    assert spec["$schema"] == "https://vega.github.io/schema/vega-lite/v5.json"
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
    spec = charts.window_chart(frame)
    assert spec["facet"]["row"]["field"] == "measure"
    assert spec["facet"]["row"]["sort"] == ["payload.amount_sum", "payload.amount_avg"]
    assert spec["resolve"] == {"scale": {"y": "independent"}}
    inner = spec["spec"]
    assert inner["mark"] == {"type": "line", "point": True}
    assert inner["encoding"]["color"]["field"] == "key"
    assert inner["encoding"]["color"]["title"] == "event_type · payload.tier"
    values = spec["data"]["values"]
    assert len(values) == 2 * len(frame)
    first = values[:2]
    assert [(v["key"], v["measure"]) for v in first] == [
        ("click · gold", "payload.amount_sum"),
        ("click · gold", "payload.amount_avg"),
    ]
    assert first[0]["value"] == 4.0  # amounts 4 and 8 are gold; 4 is the click before 00:30
    starts = [v["window_start"] for v in values]
    assert starts == sorted(starts) and all(s.endswith("Z") for s in starts)


def test_overlapping_windows_are_drawn_as_a_line(store: asl.EventStore) -> None:
    spec = charts.window_chart(store.window(every="20m", kind="hopping", hop="10m"))
    assert spec["mark"] == {"type": "line", "point": True} and "x2" not in spec["encoding"]


def test_a_frequency_frame_is_bars_stacked_by_event_type(store: asl.EventStore) -> None:
    spec = charts.frequency_chart(store.analytics.frequency(bucket="30m"))
    assert spec["mark"]["type"] == "bar" and spec["encoding"]["x2"] == {"field": "window_end"}
    assert spec["transform"] == [
        {
            "stack": "value",
            "groupby": ["window_start", "measure"],
            "as": ["value_start", "value_end"],
            "offset": "zero",
            "sort": [{"field": "key", "order": "ascending"}],
        }
    ]
    assert spec["encoding"]["color"]["title"] == "event_type"
    assert [(v["window_start"], v["key"], v["value"]) for v in spec["data"]["values"]] == [
        ("2026-01-01T00:00:00Z", "click", 4),
        ("2026-01-01T00:00:00Z", "view", 2),
        ("2026-01-01T00:30:00Z", "click", 4),
        ("2026-01-01T00:30:00Z", "view", 2),
    ]
    single = charts.frequency_chart(store.analytics.frequency("view", bucket="30m"))
    assert "color" not in single["encoding"] and "sort" not in single["transform"][0]


def test_the_same_frame_gives_the_same_json_whatever_its_row_order(
    store: asl.EventStore,
) -> None:
    frame = store.window(every="30m", by="event_type", agg={"payload.amount": "avg"})
    shuffled = frame.sample(frac=1.0, random_state=7).reset_index(drop=True)
    assert _canonical(charts.window_chart(frame)) == _canonical(charts.window_chart(shuffled))
    assert json.dumps(charts.window_chart(frame)) == json.dumps(charts.window_chart(frame))


def test_missing_values_are_json_nulls_and_missing_keys_are_named() -> None:
    frame = pd.DataFrame(
        {
            "window_start": pd.to_datetime(["2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"]),
            "window_end": pd.to_datetime(["2026-01-01T01:00:00Z", "2026-01-01T01:00:00Z"]),
            "payload.tier": ["gold", None],
            "payload.amount_avg": [float("nan"), 2.5],
        }
    )
    spec = charts.window_chart(frame)
    assert [(v["key"], v["value"]) for v in spec["data"]["values"]] == [
        ("(none)", 2.5),
        ("gold", None),
    ]
    _canonical(spec)  # no NaN in the JSON


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


def test_a_frame_too_big_to_chart_says_what_to_do() -> None:
    starts = pd.date_range("2026-01-01", periods=charts.MAX_POINTS + 1, freq="min", tz="UTC")
    frame = pd.DataFrame({"window_start": starts, "window_end": starts, "count": 1})
    with pytest.raises(ValueError, match="longer window"):
        charts.window_chart(frame)


def test_a_chart_displays_as_vega_lite_with_html_and_text_fallbacks(
    store: asl.EventStore,
) -> None:
    spec = charts.window_chart(store.window(every="1m", fill=True))
    chart = charts.Chart(spec)
    bundle = chart._repr_mimebundle_()
    assert set(bundle) == {"application/vnd.vegalite.v5+json", "text/html", "text/plain"}
    assert bundle["application/vnd.vegalite.v5+json"] == spec
    assert bundle["text/plain"] == "<Chart: bar chart of count over 56 windows>"
    page = bundle["text/html"]
    assert "Vega-Lite" in page and page.count("<tr>") == 1 + charts.HTML_ROWS
    assert "36 more rows" in page
    assert "2026-01-01T00:00:00Z" in page
    only = chart._repr_mimebundle_(include=["text/plain"])
    assert list(only) == ["text/plain"]
    assert "text/html" not in chart._repr_mimebundle_(exclude=["text/html"])
    assert "(no data)" in charts.Chart({"description": "empty"})._repr_html_()
