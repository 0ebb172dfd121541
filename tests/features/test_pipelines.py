"""Live pipelines: each operator, the JSON form, windows equal to ``store.window``,
back-fill, durability and stats."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import allsource_lab as asl
from allsource_lab.errors import NotFound
from allsource_lab.pipelines import Pipeline, Pipelines

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds
SECOND = 1_000_000


def at(seconds: float) -> str:
    """ISO time ``seconds`` after T0."""
    moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)
    return moment.isoformat()


def pipelines_of(store: asl.EventStore) -> Pipelines:
    # store.pipelines once the store is wired; a view over store.projections until then.
    found = getattr(store, "pipelines", None)
    return found if isinstance(found, Pipelines) else Pipelines(store)


@pytest.fixture
def mem() -> Iterator[asl.EventStore]:
    store = asl.open()
    yield store
    store.close()


def rows(*events: tuple[str, str, dict[str, Any], float]) -> list[dict[str, Any]]:
    return [
        {"event_type": t, "entity_id": e, "payload": p, "timestamp": at(s)} for t, e, p, s in events
    ]


def run(store: asl.EventStore, pipeline: Pipeline, events: list[dict[str, Any]]) -> Pipeline:
    """Add ``pipeline`` live, append ``events`` one batch, return the pipeline."""
    added = pipelines_of(store).add(pipeline)
    if events:
        store.append_batch(events)
    return added


# -- filter ---------------------------------------------------------------------------------

FILTER_EVENTS = rows(
    ("item", "e1", {"n": 5, "s": "Hello World", "tags": ["a", "b"], "flag": True}, 1),
    ("item", "e2", {"n": 10, "s": "bye", "meta": {"k": "v"}}, 2),
    ("item", "e3", {"n": "7", "s": "  pad  "}, 3),
    ("other", "e4", {"flag": False, "n": None}, 4),
)


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        ("payload.n", "eq", 5, ["e1"]),
        ("n", "eq", 5.0, ["e1"]),  # a bare field is a payload field; 5 == 5.0
        ("payload.flag", "eq", 1, []),  # true is not 1
        ("payload.flag", "eq", True, ["e1"]),
        ("payload.n", "eq", "7", ["e3"]),
        ("payload.n", "eq", None, ["e4"]),  # null and missing read the same
        ("payload.n", "ne", 5, ["e2", "e3", "e4"]),
        ("payload.n", "gt", 5, ["e2"]),  # "7" is text: no order with a number
        ("payload.n", "ge", 5, ["e1", "e2"]),
        ("payload.n", "lt", 10, ["e1"]),
        ("payload.n", "le", 10, ["e1", "e2"]),
        ("payload.s", "gt", "Hz", ["e2"]),  # text with text
        ("payload.s", "contains", "World", ["e1"]),
        ("payload.tags", "contains", "b", ["e1"]),
        ("payload.meta", "contains", "k", ["e2"]),
        ("payload.n", "in", [5, 10], ["e1", "e2"]),
        ("entity_id", "in", ["e3", "e4"], ["e3", "e4"]),
        ("payload.n", "exists", True, ["e1", "e2", "e3"]),
        ("payload.n", "exists", False, ["e4"]),
        ("event_type", "eq", "other", ["e4"]),
        ("timestamp", "gt", at(2), ["e3", "e4"]),
        ("timestamp", "le", T0 + 2 * SECOND, ["e1", "e2"]),
    ],
)
def test_filter_keeps_the_records_its_condition_holds_for(
    mem: asl.EventStore, field: str, op: str, value: Any, expected: list[str]
) -> None:
    p = run(mem, Pipeline("f").filter(field, op, value), FILTER_EVENTS)
    assert p.results()["entity_id"].tolist() == expected
    stats = p.stats()
    assert (stats["events_out"], stats["filtered"]) == (len(expected), 4 - len(expected))


def test_metadata_fields_are_read_and_shown_by_path(mem: asl.EventStore) -> None:
    p = pipelines_of(mem).add(Pipeline("m").filter("metadata.source", "eq", "web"))
    mem.append("x", "a", {"n": 1}, metadata={"source": "web", "ip": {"v": 4}})
    mem.append("x", "b", {"n": 2}, metadata={"source": "app"})
    frame = p.results()
    assert frame[
        ["entity_id", "payload.n", "metadata.source", "metadata.ip.v"]
    ].values.tolist() == [["a", 1, "web", 4]]


def test_events_applied_one_at_a_time_give_what_batches_give(mem: asl.EventStore) -> None:
    mem.append_batch(FILTER_EVENTS)
    batched, single = (
        Pipeline("f").filter("payload.n", "ge", 5).map("payload.s", "uppercase") for _ in range(2)
    )
    mem.replay(batched, background=False)
    for event in mem.events():
        single.apply(event)
    pd.testing.assert_frame_equal(single.results(), batched.results())
    assert single.stats()["filtered"] == batched.stats()["filtered"] == 2


def test_source_event_types_limit_what_a_pipeline_sees(mem: asl.EventStore) -> None:
    p = run(mem, Pipeline("f", ["other"]), FILTER_EVENTS)
    assert p.results()["entity_id"].tolist() == ["e4"]
    assert p.stats()["events_in"] == 1


# -- map ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "transform", "args", "before", "after"),
    [
        ("payload.s", "uppercase", {}, {"s": "Ab c"}, {"s": "AB C"}),
        ("payload.s", "lowercase", {}, {"s": "Ab C"}, {"s": "ab c"}),
        ("s", "trim", {}, {"s": "  x y "}, {"s": "x y"}),
        ("payload.n", "multiply:2", {}, {"n": 2.5}, {"n": 5.0}),
        ("payload.n", "add:1", {}, {"n": 2}, {"n": 3}),
        ("payload.n", "subtract:0.5", {}, {"n": 2}, {"n": 1.5}),
        ("payload.n", "divide:4", {}, {"n": 2}, {"n": 0.5}),
        ("payload.n", "multiply:2", {}, {"m": 1}, {"m": 1}),  # missing stays missing
        (
            "payload.a.b",
            "set",
            {"value": {"x": [1]}},
            {"a": {"c": 1}},
            {"a": {"c": 1, "b": {"x": [1]}}},
        ),
        ("payload.a", "rename", {"to": "payload.z.a"}, {"a": 1, "b": 2}, {"b": 2, "z": {"a": 1}}),
        ("payload.a", "drop", {}, {"a": 1, "b": 2}, {"b": 2}),
        (
            "payload.total",
            "compute",
            {"expr": "price * qty - payload.off"},
            {"price": 2.5, "qty": 4, "off": 1},
            {"price": 2.5, "qty": 4, "off": 1, "total": 9.0},
        ),
        (
            "payload.total",
            "compute",
            {"expr": "round(price / 3, 2)"},
            {"price": 10},
            {"price": 10, "total": 3.33},
        ),
        (
            "payload.total",
            "compute",
            {"expr": "price * qty"},
            {"price": 1},
            {"price": 1, "total": None},
        ),
    ],
)
def test_map_changes_one_field(
    mem: asl.EventStore,
    field: str,
    transform: str,
    args: dict[str, Any],
    before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    p = run(mem, Pipeline("m").map(field, transform, **args), rows(("x", "e", before, 1)))
    payload = {
        str(k)[len("payload.") :]: v
        for k, v in p.results().iloc[0].items()
        if str(k).startswith("payload.")
    }
    assert _unflatten(payload) == after
    assert p.stats()["errors"] == 0


def _unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, value in flat.items():
        if isinstance(value, float) and math.isnan(value):
            continue
        *parents, last = path.split(".")
        target = out
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return out


def test_map_can_change_entity_id_and_event_type(mem: asl.EventStore) -> None:
    p = run(
        mem,
        Pipeline("m").map("entity_id", "uppercase").map("event_type", "set", value="renamed"),
        rows(("x", "abc", {}, 1)),
    )
    assert p.results()[["entity_id", "event_type"]].values.tolist() == [["ABC", "renamed"]]


def test_a_failing_operator_counts_an_error_and_ingest_goes_on(mem: asl.EventStore) -> None:
    p = run(
        mem,
        Pipeline("m").filter("payload.n", "exists").map("payload.n", "multiply:2"),
        rows(
            ("x", "a", {"n": 1}, 1),
            ("x", "b", {"n": "text"}, 2),
            ("x", "c", {"n": 3}, 3),
            ("x", "d", {}, 4),
        ),
    )
    mem.append("x", "e", {"n": "more text"})
    mem.append("x", "f", {"n": 5})
    assert p.results()["payload.n"].tolist() == [2, 6, 10]
    stats = pipelines_of(mem).stats("m")
    assert stats["status"] == "running"
    assert (stats["events_in"], stats["events_out"], stats["filtered"], stats["errors"]) == (
        6,
        3,
        1,
        2,
    )
    assert stats["last_error"].startswith("sequence 5: operator 1 (map): TypeError: multiply")
    assert mem.stats()["events"] == 6


# -- reduce ---------------------------------------------------------------------------------

ORDERS = rows(
    ("order", "o1", {"region": "eu", "amount": 10, "sku": "a"}, 1),
    ("order", "o2", {"region": "us", "amount": 5.5, "sku": "a"}, 2),
    ("order", "o3", {"region": "eu", "amount": "30", "sku": "b"}, 3),
    ("order", "o4", {"region": "eu", "amount": "n/a", "sku": "b"}, 4),
    ("order", "o5", {"amount": 1}, 5),
)


def test_reduce_aggregates_per_group(mem: asl.EventStore) -> None:
    agg = {"*": "count", "payload.amount": ["sum", "avg", "min", "max", "count"]}
    p = run(mem, Pipeline("r").reduce(agg, by="payload.region"), ORDERS)
    frame = p.results()
    assert frame["payload.region"].tolist() == ["eu", "us", None]
    assert frame["count"].tolist() == [3, 1, 1]
    assert frame["payload.amount_sum"].tolist() == [40.0, 5.5, 1.0]  # "30" reads as 30
    assert frame["payload.amount_avg"].tolist() == [20.0, 5.5, 1.0]
    assert frame["payload.amount_min"].tolist() == [10.0, 5.5, 1.0]
    assert frame["payload.amount_max"].tolist() == [30.0, 5.5, 1.0]
    assert frame["payload.amount_count"].tolist() == [3, 1, 1]  # present, even if not a number
    assert p.state("eu")["count"] == 3
    with pytest.raises(KeyError):
        p.state("asia")


def test_reduce_by_two_keys_and_distinct_counts(mem: asl.EventStore) -> None:
    p = run(
        mem,
        Pipeline("r").reduce({"entity_id": "count_distinct"}, by=["payload.region", "payload.sku"]),
        ORDERS,
    )
    frame = p.results()
    assert frame.values.tolist() == [
        ["eu", "a", 1],
        ["eu", "b", 2],
        ["us", "a", 1],
        [None, None, 1],
    ]
    assert p.state(("eu", "b")) == {"entity_id_count_distinct": 2}


def test_reduce_reads_the_original_field_function_form(mem: asl.EventStore) -> None:
    p = Pipeline.from_json(
        {
            "name": "r",
            "source_event_types": ["order"],
            "operators": [
                {"type": "reduce", "field": "amount", "function": "sum", "group_by": "region"}
            ],
            "enabled": True,
        }
    )
    run(mem, p, ORDERS)
    assert p.results()["payload.amount_sum"].tolist() == [40.0, 5.5, 1.0]


# -- windows --------------------------------------------------------------------------------


def test_tumbling_windows_close_when_the_watermark_reaches_their_end(mem: asl.EventStore) -> None:
    p = run(
        mem,
        Pipeline("w").window("tumbling", "10s").reduce({"*": "count", "payload.v": "sum"}),
        rows(("t", "a", {"v": 1}, 1), ("t", "a", {"v": 2}, 9.5), ("t", "b", {"v": 4}, 12)),
    )
    frame = p.results()
    assert frame["window_start"].tolist() == [pd.Timestamp(at(0)), pd.Timestamp(at(10))]
    assert frame["window_end"].tolist() == [pd.Timestamp(at(10)), pd.Timestamp(at(20))]
    assert frame[["count", "payload.v_sum", "closed"]].values.tolist() == [
        [2, 3.0, True],
        [1, 4.0, False],
    ]
    assert len(p.results(include_open=False)) == 1
    mem.append("t", "a", {"v": 8}, timestamp=at(20))  # exactly the end of [10, 20)
    assert p.results()["closed"].tolist() == [True, True, False]


def test_hopping_windows_count_an_event_in_every_window_covering_it(mem: asl.EventStore) -> None:
    p = run(mem, Pipeline("w").window("hopping", "10s", hop="5s"), rows(("t", "a", {}, 7)))
    frame = p.results()
    assert [w.second for w in frame["window_start"]] == [0, 5]
    assert frame["count"].tolist() == [1, 1]


def test_session_windows_per_key_merge_when_an_event_bridges_them(mem: asl.EventStore) -> None:
    p = run(
        mem,
        Pipeline("s").window("session", gap="3s", by="entity_id", allowed_lateness="10s"),
        rows(
            ("t", "a", {}, 0),
            ("t", "a", {}, 5),  # 5 s after: a second session of a
            ("t", "b", {}, 1),
            ("t", "a", {}, 2.5),  # out of order: bridges a's two sessions
        ),
    )
    frame = p.results()
    assert frame[["entity_id", "count"]].values.tolist() == [["a", 3], ["b", 1]]
    assert frame["window_end"].tolist() == [pd.Timestamp(at(8)), pd.Timestamp(at(4))]
    assert not frame["closed"].any()
    mem.append("t", "z", {}, timestamp=at(18.5))  # watermark 8.5: both sessions close
    assert p.results()["closed"].tolist() == [True, True, False]


def test_an_event_exactly_gap_after_the_last_still_joins_its_session(mem: asl.EventStore) -> None:
    p = run(
        mem,
        Pipeline("s").window("session", gap="3s", by="entity_id"),
        rows(("t", "a", {}, 0), ("t", "b", {}, 3)),  # b moves the watermark to a's last + gap
    )
    mem.append("t", "a", {}, timestamp=at(3))  # as in SQL: a silence of exactly gap joins
    frame = p.results()
    assert frame[["entity_id", "count", "closed"]].values.tolist() == [
        ["a", 2, False],
        ["b", 1, False],
    ]
    assert frame["window_end"].tolist() == [pd.Timestamp(at(6)), pd.Timestamp(at(6))]


def test_a_late_event_is_dropped_when_its_window_has_closed(mem: asl.EventStore) -> None:
    p = run(
        mem,
        Pipeline("w").window("tumbling", "10s", allowed_lateness="5s"),
        rows(("t", "a", {}, 1), ("t", "a", {}, 16), ("t", "a", {}, 8), ("t", "a", {}, 12)),
    )
    # 8 arrives at watermark 11: [0, 10) has closed, so it is late; 12 is late but its
    # window [10, 20) is still open, so it is counted.
    assert p.results()[["count", "closed"]].values.tolist() == [[1, True], [2, False]]
    stats = p.stats()
    assert (stats["late"], stats["dropped"], stats["events_out"]) == (1, 1, 3)
    assert stats["watermark"] == dt.datetime.fromisoformat(at(11))


def test_flush_closes_open_windows_and_later_events_for_them_are_late(mem: asl.EventStore) -> None:
    p = run(
        mem, Pipeline("w").window("tumbling", "10s"), rows(("t", "a", {}, 1), ("t", "a", {}, 3))
    )
    assert pipelines_of(mem).flush("w") == 1
    assert p.results()[["count", "closed"]].values.tolist() == [[2, True]]
    mem.append("t", "a", {}, timestamp=at(4))
    mem.append("t", "a", {}, timestamp=at(11))
    assert p.results()[["count", "closed"]].values.tolist() == [[2, True], [1, False]]
    assert p.stats()["late"] == 1


# -- enrich ---------------------------------------------------------------------------------

SALES = rows(
    ("sale", "c1", {"sku": "a", "n": 1}, 1),
    ("sale", "c2", {"sku": "b", "n": 2}, 2),
    ("sale", "c1", {"sku": "zz", "n": 3}, 3),
)
CATALOG = {"a": {"name": "Apple", "price": 1.5}, "b": {"name": "Bean", "price": 0.25}}


def test_enrich_from_a_dict(mem: asl.EventStore) -> None:
    p = run(mem, Pipeline("e").enrich(CATALOG, on="payload.sku"), SALES)
    frame = p.results()
    assert frame["payload.name"].tolist()[:2] == ["Apple", "Bean"]
    assert math.isnan(frame["payload.price"].tolist()[2])  # no such sku: left as it was


def test_enrich_from_a_dataframe_into_a_field(mem: asl.EventStore) -> None:
    catalog = pd.DataFrame({"sku": ["a", "b"], "name": ["Apple", "Bean"], "price": [1.5, 0.25]})
    p = run(
        mem,
        Pipeline("e").enrich(catalog, on="sku", key="sku", fields=["price"], into="payload.item"),
        SALES,
    )
    assert p.results()["payload.item.price"].tolist()[:2] == [1.5, 0.25]
    assert "payload.item.name" not in p.results()


def test_enrich_from_another_projection(mem: asl.EventStore) -> None:
    mem.append("customer", "c1", {"tier": "gold", "since": 2020})
    mem.projections.add(asl.EntitySnapshots("customers", event_types=["customer"]))
    p = run(mem, Pipeline("e", ["sale"]).enrich("customers", fields=["tier"]), SALES)
    assert p.results()["payload.tier"].fillna("-").tolist() == ["gold", "-", "gold"]
    assert "payload.since" not in p.results()


def test_enrich_from_a_pipeline_ending_in_a_reduce(mem: asl.EventStore) -> None:
    totals = pipelines_of(mem).add(
        Pipeline("totals", ["sale"]).reduce({"payload.n": "sum"}, by="entity_id")
    )
    p = pipelines_of(mem).add(Pipeline("e", ["sale"]).enrich("totals", into="payload.totals"))
    for event in SALES:  # one append each: a projection is fed a whole batch at a time
        mem.append(event["event_type"], event["entity_id"], event["payload"])
    assert totals.state("c1") == {"payload.n_sum": 4.0}
    assert p.results()["payload.totals.payload.n_sum"].tolist() == [1.0, 2.0, 4.0]


def test_enrich_from_a_missing_projection_counts_errors(mem: asl.EventStore) -> None:
    p = run(mem, Pipeline("e").enrich("nowhere"), SALES)
    assert p.stats()["errors"] == 3
    assert "no projection named 'nowhere'" in p.stats()["last_error"]


# -- branch ---------------------------------------------------------------------------------


def test_branch_routes_each_record_to_the_first_output_that_matches(mem: asl.EventStore) -> None:
    p = run(
        mem,
        Pipeline("b").branch(
            {"big": ("payload.n", "ge", 2), "apples": {"field": "payload.sku", "value": "a"}},
            default="rest",
        ),
        [*SALES, *rows(("sale", "c3", {"sku": "q"}, 4))],
    )
    assert p.results()[["output", "entity_id"]].values.tolist() == [
        ["apples", "c1"],
        ["big", "c2"],
        ["big", "c1"],
        ["rest", "c3"],
    ]
    assert p.results(output="big")["payload.n"].tolist() == [2, 3]
    with pytest.raises(ValueError, match="no output 'small'"):
        p.results(output="small")


def test_branch_without_default_drops_the_rest_and_reads_the_original_form(
    mem: asl.EventStore,
) -> None:
    p = Pipeline.from_json(
        {
            "name": "b",
            "source_event_types": ["sale"],
            "operators": [
                {"type": "branch", "field": "sku", "branches": {"a": "apples"}, "default": None}
            ],
        }
    )
    run(mem, p, SALES)
    assert p.results()["entity_id"].tolist() == ["c1"]
    assert p.stats()["filtered"] == 2


# -- the JSON form --------------------------------------------------------------------------


def every_operator() -> Pipeline:
    return (
        Pipeline("all", ["sale", "refund"], description="every operator")
        .filter("payload.n", "ge", 1)
        .map("payload.sku", "uppercase")
        .map("payload.n", "multiply:2.5")
        .map("payload.total", "compute", expr="n * 2")
        .map("payload.tag", "set", value={"k": [1, "x"]})
        .map("payload.tag", "rename", to="metadata.tag")
        .map("payload.total", "drop")
        .enrich({"A": {"name": "Apple"}}, on="payload.sku")
        .window("hopping", "10s", hop="2.5s", by="entity_id", allowed_lateness="1s")
        .reduce({"*": "count", "payload.n": ["sum", "p95"]}, by="payload.sku")
    )


def test_python_and_json_forms_give_the_same_pipeline(mem: asl.EventStore) -> None:
    python = every_operator()
    text = """{
      "name": "all", "description": "every operator",
      "source_event_types": ["sale", "refund"],
      "operators": [
        {"type": "filter", "field": "n", "op": "ge", "value": 1},
        {"type": "map", "field": "sku", "transform": "uppercase"},
        {"type": "map", "field": "n", "transform": "multiply:2.5"},
        {"type": "map", "field": "total", "transform": "compute", "expr": "n * 2"},
        {"type": "map", "field": "tag", "transform": "set", "value": {"k": [1, "x"]}},
        {"type": "map", "field": "tag", "transform": "rename", "to": "metadata.tag"},
        {"type": "map", "field": "total", "transform": "drop"},
        {"type": "enrich", "source": {"A": {"name": "Apple"}}, "on": "sku"},
        {"type": "window", "config": {"window_type": "sliding", "size_seconds": 10,
          "slide": "2500ms", "allowed_lateness_seconds": 1, "by": "entity_id"}},
        {"type": "reduce", "aggregates": {"*": "count", "n": ["sum", "p95"]}, "group_by": "sku"}
      ],
      "enabled": true
    }"""
    from_json = Pipeline.from_json(text)
    assert from_json.to_dict() == python.to_dict()
    assert Pipeline.from_json(python.to_json()).to_dict() == python.to_dict()
    pipelines = pipelines_of(mem)
    pipelines.add(python)
    pipelines.add(Pipeline.from_json({**from_json.to_dict(), "name": "all2"}))
    mem.append_batch(SALES)
    pd.testing.assert_frame_equal(python.results(), pipelines.results("all2"))
    frame = python.results()
    assert set(frame["payload.sku"]) == {"A", "B", "ZZ"}  # uppercased before grouping
    assert frame["count"].sum() == 3 * 4  # each sale in every_size / hop = 4 windows


@pytest.mark.parametrize(
    "pipeline",
    [
        every_operator(),
        Pipeline("s", max_results=5).window("session", gap="90s").reduce({"payload.x": "stddev"}),
        Pipeline("b")
        .filter("timestamp", "gt", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        .branch([("x", ("entity_id", "in", ["a", "b"]))], default=None),
        Pipeline("t", enabled=False).window("tumbling", dt.timedelta(milliseconds=1500)),
        Pipeline("r").enrich("customers", fields="tier").reduce(),
    ],
)
def test_to_json_and_from_json_round_trip(pipeline: Pipeline) -> None:
    again = Pipeline.from_json(pipeline.to_json())
    assert again.to_dict() == pipeline.to_dict()
    assert again.to_json(indent=True) == pipeline.to_json(indent=True)
    assert again.enabled == pipeline.enabled


def test_the_canonical_json_follows_the_original_field_names() -> None:
    spec = Pipeline("w", "t").filter("amount", "gt", 1).window("tumbling", "1m").to_dict()
    assert spec == {
        "name": "w",
        "source_event_types": ["t"],
        "operators": [
            {"type": "filter", "field": "payload.amount", "op": "gt", "value": 1},
            {
                "type": "window",
                "config": {
                    "window_type": "tumbling",
                    "size_seconds": 60,
                    "allowed_lateness_seconds": 0,
                    "by": [],
                },
                "aggregation": {"type": "reduce", "aggregates": {"*": ["count"]}, "group_by": []},
            },
        ],
        "enabled": True,
        "max_results": 10_000,
    }


def _spec(*operators: Any, **top: Any) -> dict[str, Any]:
    return {"name": "p", "source_event_types": [], "operators": list(operators), **top}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([], r"pipeline: a spec must be an object"),
        ({"operators": []}, r"pipeline: 'name' is required"),
        (_spec(colour="red"), r"pipeline: unknown key 'colour'; accepted keys: name, "),
        (_spec(enabled="yes"), r"'enabled' must be true or false"),
        (_spec(source_event_types=[""]), r"'source_event_types' must be a list of event types"),
        (_spec("filter"), r"operator 0: must be an object like"),
        (_spec({"type": "join"}), r"operator 0: unknown type 'join'; accepted types: filter, map"),
        (
            _spec({"type": "filter", "field": "a", "op": "like", "value": 1}),
            r"operator 0 \(filter\): 'op' must be one of eq, ne, gt, ge, lt, le, contains, in, "
            r"exists, not 'like'",
        ),
        (_spec({"type": "filter", "field": "a", "op": "gt"}), r"'value' is required for op 'gt'"),
        (
            _spec({"type": "filter", "field": "a", "op": "in", "value": 3}),
            r"op 'in' takes a list in 'value'",
        ),
        (
            _spec({"type": "filter", "field": "a", "value": 1, "fields": 2}),
            r"operator 0 \(filter\): unknown key 'fields'; accepted keys: type, field, op, value",
        ),
        (_spec({"type": "filter", "field": "a..b", "value": 1}), r"'field' 'a..b' has an empty"),
        (
            _spec({"type": "filter", "field": "timestamp", "op": "gt", "value": "yesterday"}),
            r"a 'value' for timestamp must be microseconds since the epoch or ISO-8601",
        ),
        (
            _spec({"type": "map", "field": "a", "transform": "reverse"}),
            r"operator 0 \(map\): 'transform' must be one of uppercase, lowercase, trim, set, "
            r"rename, drop, compute, add:N",
        ),
        (_spec({"type": "map", "field": "a", "transform": "multiply:x"}), r"needs a number after"),
        (_spec({"type": "map", "field": "a", "transform": "divide:0"}), r"divides by zero"),
        (_spec({"type": "map", "field": "a", "transform": "rename"}), r"'to' must be"),
        (_spec({"type": "map", "field": "a", "transform": "set"}), r"'set' needs 'value'"),
        (_spec({"type": "map", "field": "timestamp", "transform": "add:1"}), r"cannot be changed"),
        (
            _spec(
                {"type": "map", "field": "t", "transform": "compute", "expr": "__import__('os')"}
            ),
            r"unknown function __import__\(\); use abs, round, min, max",
        ),
        (
            _spec({"type": "map", "field": "a", "transform": "uppercase", "to": "b"}),
            r"key 'to' goes with transform 'rename' only",
        ),
        (
            _spec({"type": "reduce", "aggregates": {"a": "mode"}}),
            r"operator 0 \(reduce\): unknown aggregate 'mode' for 'payload.a'; use one of count,",
        ),
        (_spec({"type": "reduce", "aggregates": {"*": "sum"}}), r"'\*' takes only 'count'"),
        (_spec({"type": "reduce", "aggregates": {"entity_id": "avg"}}), r"avg of entity_id makes"),
        (
            _spec({"type": "window", "config": {"window_type": "tumbling"}}),
            r"operator 0 \(window\): config: a tumbling window needs 'size_seconds'",
        ),
        (
            _spec({"type": "window", "config": {"window_type": "rolling", "size_seconds": 1}}),
            r"'window_type' must be tumbling, hopping \(or sliding\) or session, not 'rolling'",
        ),
        (
            _spec({"type": "window", "config": {"window_type": "hopping", "size_seconds": 9}}),
            r"a hopping window needs 'slide_seconds'",
        ),
        (
            _spec({"type": "window", "config": {"window_type": "session", "size_seconds": 1}}),
            r"a session window needs 'session_timeout_seconds'",
        ),
        (
            _spec({"type": "window", "config": {"window_type": "tumbling", "size_seconds": -1}}),
            r"'size_seconds' must be a positive number of seconds, not -1",
        ),
        (
            _spec({"type": "window", "config": {"window_type": "tumbling", "size": "5 parsecs"}}),
            r"'size' must be a duration like '30s'",
        ),
        (
            _spec(
                {"type": "window", "config": {"window_type": "tumbling", "size_seconds": 1}},
                {"type": "filter", "field": "a", "value": 1},
            ),
            r"operator 1 \(filter\): comes after a window \(operator 0\), which ends the pipeline",
        ),
        (
            _spec({"type": "reduce"}, {"type": "reduce"}),
            r"operator 1 \(reduce\): comes after a reduce \(operator 0\)",
        ),
        (_spec({"type": "enrich", "source": 5}), r"'source' must be a projection's name"),
        (
            _spec({"type": "enrich", "source": {"a": 1}}),
            r"a lookup table maps each key to an object of fields",
        ),
        (_spec({"type": "branch"}), r"operator 0 \(branch\): needs 'outputs'"),
        (
            _spec({"type": "branch", "outputs": [{"name": "x", "field": "a", "op": "near"}]}),
            r"operator 0 \(branch\): output 0: 'op' must be one of",
        ),
    ],
)
def test_bad_json_specs_are_refused_with_what_is_accepted(spec: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Pipeline.from_json(spec)


def test_bad_json_text_and_python_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        Pipeline.from_json("{name: 1")
    with pytest.raises(ValueError, match=r"operator 1 \(window\): config: a session window"):
        Pipeline("p").filter("a", "eq", 1).window("session")
    with pytest.raises(ValueError, match="every must be a duration"):
        Pipeline("p").window("tumbling", "soon")
    with pytest.raises(ValueError, match="key= names a DataFrame's lookup column"):
        Pipeline("p").enrich({"a": {}}, key="sku")


# -- equivalence with store.window ----------------------------------------------------------

AGG = {"*": "count", "payload.v": ["sum", "avg", "min", "max", "count"]}
KINDS: dict[str, dict[str, Any]] = {
    "tumbling": {"every": "10s"},
    "hopping": {"every": "10s", "hop": "4s"},
    "session": {"gap": "3s"},
}


@st.composite
def histories(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(KINDS)))
    by = draw(st.sampled_from([None, "entity_id", ["entity_id", "payload.k"]]))
    lateness = draw(st.sampled_from([0, 2, 7])) * SECOND
    n = draw(st.integers(1, 40))
    steps = draw(
        st.lists(st.sampled_from([0, 1, 500_000, 3, 2, 3.000001, 4, 10]), min_size=n, max_size=n)
    )
    times, t = [], T0 + draw(st.integers(0, 20)) * SECOND
    for s in steps:
        t += round(s * SECOND) if s != 500_000 else 500_000
        times.append(t)
    if lateness and draw(st.booleans()):  # disorder, each event at most `lateness` early
        delays = draw(st.lists(st.integers(0, lateness), min_size=n, max_size=n))
        times = [a - d for a, d in zip(times, delays, strict=True)]
    events = [
        {
            "event_type": "tick",
            "entity_id": draw(st.sampled_from(["a", "b", "c"])),
            "payload": draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "v": st.one_of(st.integers(-5, 5), st.sampled_from([1.5, "2", "x", None])),
                        "k": st.sampled_from([1, "1", "z"]),
                    },
                )
            ),
            "t": moment,
        }
        for moment in times
    ]
    cuts = sorted(draw(st.lists(st.integers(1, max(1, n - 1)), max_size=4)))
    return {"kind": kind, "by": by, "lateness": lateness, "events": events, "cuts": cuts}


def _append(store: asl.EventStore, events: list[dict[str, Any]], cuts: list[int]) -> None:
    bounds = [0, *cuts, len(events)]
    for lo, hi in itertools.pairwise(bounds):
        if hi > lo:
            part = events[lo:hi]
            table = pa.table(
                {
                    "event_type": [e["event_type"] for e in part],
                    "entity_id": [e["entity_id"] for e in part],
                    "payload": [asl_json(e["payload"]) for e in part],
                    "timestamp": pa.array([e["t"] for e in part], pa.timestamp("us", tz="UTC")),
                }
            )
            store.append_batch(table)


def asl_json(payload: dict[str, Any]) -> str:
    return orjson.dumps(payload).decode()


def _same_frames(live: pd.DataFrame, batch: pd.DataFrame) -> None:
    live = live.drop(columns="closed").reset_index(drop=True)
    pd.testing.assert_frame_equal(live, batch.reset_index(drop=True), check_dtype=False, rtol=1e-9)


@settings(max_examples=120)
@given(histories())
def test_closed_windows_of_a_live_pipeline_equal_store_window(history: dict[str, Any]) -> None:
    kind, by, lateness = history["kind"], history["by"], history["lateness"]
    with asl.open() as store:
        pipeline = Pipeline("w", "tick").window(
            kind, **KINDS[kind], by=by, allowed_lateness=dt.timedelta(microseconds=lateness)
        )
        pipeline = pipelines_of(store).add(pipeline.reduce(AGG))
        _append(store, history["events"], history["cuts"])
        batch = store.window("tick", kind=kind, **KINDS[kind], by=by, agg=AGG)
        mark = max(e["t"] for e in history["events"]) - lateness
        ends = (batch["window_end"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, "us")
        closed = batch[ends < mark] if kind == "session" else batch[ends <= mark]
        _same_frames(pipeline.results(include_open=False), closed)
        assert pipeline.stats()["late"] == 0
        pipeline.flush()
        _same_frames(pipeline.results(), batch)


# -- back-fill, durability ------------------------------------------------------------------


def _late_history(store: asl.EventStore) -> None:
    events = rows(
        *[("tick", "ab"[i % 2], {"v": i}, (i * 7) % 31 + i) for i in range(60)],
        ("other", "x", {"v": 1}, 5),
    )
    for lo in range(0, len(events), 7):
        store.append_batch(events[lo : lo + 7])
    store.append("tick", "a", {"v": "late"}, timestamp=at(1))


def _definitions() -> list[Pipeline]:
    return [
        Pipeline("tumbling", "tick")
        .window("tumbling", "5s", by="entity_id", allowed_lateness="3s")
        .reduce({"*": "count", "payload.v": ["sum", "max"]}),
        Pipeline("session", "tick").window("session", gap="2s", allowed_lateness="4s"),
        Pipeline("records", "tick").map("payload.v", "add:1").filter("payload.v", "gt", 50),
        Pipeline("groups")
        .map("payload.v", "multiply:2")
        .reduce({"payload.v": "sum"}, by="event_type"),
    ]


def _snapshot(p: Pipeline) -> tuple[pd.DataFrame, dict[str, Any]]:
    stats = p.stats()
    for volatile in ("throughput_eps", "busy_s"):
        del stats[volatile]
    return p.results(), stats


def test_backfill_by_replay_gives_the_same_results_as_live(mem: asl.EventStore) -> None:
    live = [pipelines_of(mem).add(p) for p in _definitions()]
    _late_history(mem)
    assert live[0].stats()["late"] > 0 and live[2].stats()["errors"] == 1
    for p, fresh in zip(live, _definitions(), strict=True):
        mem.replay(fresh, background=False)
        results, stats = _snapshot(fresh)
        pd.testing.assert_frame_equal(results, _snapshot(p)[0])
        assert stats == _snapshot(p)[1]
    added = pipelines_of(mem).add(
        Pipeline.from_json({**live[1].to_dict(), "name": "again"}), start="beginning"
    )
    pd.testing.assert_frame_equal(added.results(), live[1].results())


def test_replay_through_the_pipelines_rebuilds_from_history(mem: asl.EventStore) -> None:
    _late_history(mem)
    pipelines = pipelines_of(mem)
    p = pipelines.add(_definitions()[0])
    assert p.stats()["events_in"] == 0
    job = pipelines.replay("tumbling", background=False)
    assert job.status == "done"
    assert p.stats()["events_in"] == 61
    mem.append("tick", "a", {"v": 1}, timestamp=at(100))
    assert pipelines.stats("tumbling")["events_in"] == 62


def test_a_reopened_store_resumes_its_pipelines_where_they_were(tmp_path: Path) -> None:
    path = tmp_path / "store.events"
    with asl.open(path) as store:
        for p in _definitions():
            pipelines_of(store).add(p)
        _late_history(store)
        before = {p.name: _snapshot(p) for p in pipelines_of(store)}
        assert set(before["tumbling"][0]["closed"]) == {True, False}  # open windows too
    with asl.open(path) as store, asl.open() as control:
        for p, twin in zip(_definitions(), _definitions(), strict=True):
            pipelines_of(store).add(p, start="now")
            pipelines_of(control).add(twin)
        for name, (results, stats) in before.items():
            again = _snapshot(pipelines_of(store)[name])
            pd.testing.assert_frame_equal(again[0], results)
            assert again[1] == stats
        _late_history(control)
        for s in (store, control):
            s.append_batch(rows(("tick", "b", {"v": 99}, 40), ("tick", "a", {"v": 7}, 60)))
        for name in before:
            mine, theirs = (
                _snapshot(pipelines_of(store)[name]),
                _snapshot(pipelines_of(control)[name]),
            )
            pd.testing.assert_frame_equal(mine[0], theirs[0])
            assert mine[1] == theirs[1]


def test_a_changed_definition_does_not_resume_old_state(tmp_path: Path) -> None:
    path = tmp_path / "store.events"
    with asl.open(path) as store:
        pipelines_of(store).add(Pipeline("p", "tick").window("tumbling", "5s"))
        _late_history(store)
    with asl.open(path) as store:
        p = pipelines_of(store).add(Pipeline("p", "tick").window("tumbling", "6s"))
        assert p.stats()["events_in"] == 0
        assert any("another definition" in problem for problem in store.recovery_problems)


# -- the collection -------------------------------------------------------------------------


def test_pipelines_are_added_listed_reset_and_removed_by_name(mem: asl.EventStore) -> None:
    pipelines = pipelines_of(mem)
    p = pipelines.add(every_operator().to_json())
    pipelines.add({"name": "count", "operators": [{"type": "reduce"}]})
    assert pipelines.list() == ["all", "count"] and "count" in pipelines and len(pipelines) == 2
    assert pipelines.get("all") is p and pipelines["all"] is p
    with pytest.raises(ValueError, match="a pipeline named 'all' is already added"):
        pipelines.add(every_operator())
    mem.projections.add(asl.EventCounter())
    with pytest.raises(ValueError, match="a projection named 'event_counter' is already added"):
        pipelines.add(Pipeline("event_counter"))
    with pytest.raises(NotFound):
        pipelines.get("event_counter")
    with pytest.raises(TypeError, match=r"add\(\) takes an asl\.Pipeline"):
        pipelines.add(asl.EventCounter("other"))
    mem.append_batch(SALES)
    assert pipelines.stats("count")["events_in"] == 3
    pipelines.reset("count")
    assert pipelines.stats("count")["events_in"] == 0
    mem.append("sale", "c9", {})
    assert pipelines.results("count")["count"].tolist() == [1]
    assert pipelines.remove("count").name == "count"
    assert pipelines.list() == ["all"]
    for verb in (pipelines.get, pipelines.remove, pipelines.stats, pipelines.results):
        with pytest.raises(NotFound, match="no pipeline named 'count'"):
            verb("count")


def test_one_pipeline_object_runs_in_one_open_store_at_a_time(tmp_path: Path) -> None:
    p = Pipeline("p").reduce()
    with asl.open(tmp_path / "a") as first, asl.open() as second:
        pipelines_of(first).add(p)
        with pytest.raises(ValueError, match="already runs in another open store"):
            pipelines_of(second).add(p)
        pipelines_of(second).add(Pipeline.from_json(p.to_json()))
    with asl.open(tmp_path / "a") as reopened:
        assert pipelines_of(reopened).add(p) is p  # the first store is closed


def test_stats_count_every_event_once(mem: asl.EventStore) -> None:
    p = pipelines_of(mem).add(
        Pipeline("s", "tick")
        .filter("payload.v", "exists")
        .map("payload.v", "add:1")
        .window("tumbling", "5s", allowed_lateness="3s")
    )
    _late_history(mem)
    stats = pipelines_of(mem).stats("s")
    assert stats["events_in"] == 61
    assert (
        stats["events_in"]
        == stats["events_out"] + stats["filtered"] + stats["late"] + stats["errors"]
    )
    assert (stats["errors"], stats["late"] > 0, stats["lag"], stats["position"]) == (1, True, 0, 62)
    assert stats["dropped"] == stats["filtered"] + stats["late"]
    assert stats["last_sequence"] == 62 and stats["last_event_time"] == dt.datetime.fromisoformat(
        at(1)
    )
    assert stats["windows_closed"] + stats["windows_open"] == len(p.results())
    assert stats["throughput_eps"] > 0


def test_a_disabled_pipeline_ignores_events(mem: asl.EventStore) -> None:
    p = run(mem, Pipeline("d", enabled=False), SALES)
    assert p.stats()["events_in"] == 0 and p.results().empty
    p.enabled = True
    mem.append("sale", "c1", {})
    assert p.stats()["events_in"] == 1
    assert p.to_dict()["enabled"] is True
