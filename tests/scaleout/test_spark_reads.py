"""``allsource_lab.spark`` answers exactly as the store does: states, events with every
time filter, and every window kind, over the table ``store.export_delta`` wrote.

Spark is slow to start and to run a job, so one session serves every test (the ``spark``
fixture) and hypothesis tries few histories, each asked many questions.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import allsource_lab as asl
from allsource_lab import spark as aspark

pytest.importorskip("deltalake")

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
EPOCH = pd.Timestamp(0, tz="UTC")


def us(moment: Any) -> int:
    """Microseconds since the epoch of a datetime or pandas Timestamp."""
    return int((pd.Timestamp(moment) - EPOCH) // pd.Timedelta(microseconds=1))


def plain(value: Any) -> Any:
    """A cell as comparable Python: NaN and pandas NA are None, numbers are int or float."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def same_rows(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> None:
    """Equal row by row; floats (averages, deviations) to 1e-9 relative."""
    assert len(got) == len(want), (got, want)
    for g, w in zip(got, want, strict=True):
        assert len(g) == len(w)
        for a, b in zip(g, w, strict=True):
            if isinstance(a, float) or isinstance(b, float):
                assert a is not None and b is not None, (g, w)
                assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (g, w)
            else:
                assert a == b, (g, w)


# -- the two sides of each question ------------------------------------------------------


def store_states(store: asl.EventStore, **when: Any) -> list[tuple[Any, ...]]:
    frame = store.states(**when)
    return [
        (r.entity_id, int(r.version), us(r.timestamp), r.state)
        for r in frame.itertuples(index=False)
    ]


def spark_states(spark: Any, uri: Path, **when: Any) -> list[tuple[Any, ...]]:
    from pyspark.sql import functions as F

    frame = aspark.states(spark, uri, **when)
    rows = frame.select("entity_id", "version", F.unix_micros("timestamp"), "state").collect()
    return [(r[0], r[1], r[2], orjson.loads(r[3])) for r in rows]


def store_events(store: asl.EventStore, **filters: Any) -> list[tuple[int, str]]:
    return [(e.sequence, str(e.event_id)) for e in store.events(**filters)]


def spark_events(spark: Any, uri: Path, **filters: Any) -> list[tuple[int, str]]:
    rows = aspark.events(spark, uri, **filters).select("sequence", "event_id").collect()
    return [(r[0], r[1]) for r in rows]


def store_window(store: asl.EventStore, **query: Any) -> list[tuple[Any, ...]]:
    frame = store.window(**query)
    rows = []
    for values in frame.itertuples(index=False):
        start, end, *rest = values
        rows.append((us(start), us(end), *(plain(v) for v in rest)))
    return rows


def spark_window(spark: Any, uri: Path, **query: Any) -> list[tuple[Any, ...]]:
    from pyspark.sql import functions as F

    frame = aspark.window(spark, uri, **query)
    rest = [F.col(f"`{name}`") for name in frame.columns[2:]]
    rows = frame.select(F.unix_micros("window_start"), F.unix_micros("window_end"), *rest)
    return [tuple(plain(v) for v in r) for r in rows.collect()]


# -- a hand-written history with a known answer -------------------------------------------


def known_history(store: asl.EventStore) -> list[int]:
    """A cart whose address loses its zip through a nested null, a late event with an
    early event time, and a correction; returns each batch's recorded time (µs)."""
    batches = [
        [
            (
                "cart.opened",
                "cart-1",
                {"items": {"tea": 1}, "addr": {"zip": "1000", "city": "A"}},
                0,
            ),
            ("cart.opened", "cart-2", {"items": {"jam": 2}}, 5),
        ],
        [
            ("cart.changed", "cart-1", {"addr": {"zip": None}, "items": {"jam": 1}}, 30),
            ("cart.changed", "cart-2", {"items": None, "note": "empty"}, 40),
        ],
        [("cart.changed", "cart-1", {"items": {"tea": None}}, 10)],  # late: happened at 10
    ]
    recorded = []
    for batch in batches:
        store.append_batch(
            [
                {
                    "event_type": t,
                    "entity_id": e,
                    "payload": p,
                    "timestamp": T0 + dt.timedelta(minutes=m),
                }
                for t, e, p, m in batch
            ]
        )
        recorded.append(us(next(iter(store.events(reverse=True, limit=1))).recorded_at))
    return recorded


def test_states_fold_nested_nulls_late_events_and_both_time_axes(
    spark: Any, tmp_path: Path
) -> None:
    store = asl.open()
    recorded = known_history(store)
    uri = tmp_path / "t.delta"
    store.export_delta(uri, checkpoint=True)
    now = spark_states(spark, uri)
    assert [(r[0], r[1], r[3]) for r in now] == [
        ("cart-1", 3, {"items": {"jam": 1}, "addr": {"city": "A"}}),
        ("cart-2", 2, {"note": "empty"}),
    ]
    assert now == store_states(store)
    at_20 = T0 + dt.timedelta(minutes=20)
    # As of minute 20, cart-1 shows versions 1 and 3 (the late one), not 2.
    assert spark_states(spark, uri, as_of=at_20)[0][1:] == (
        3,
        us(T0 + dt.timedelta(minutes=10)),
        {"items": {}, "addr": {"zip": "1000", "city": "A"}},
    )
    moments: list[dict[str, Any]] = [
        {"as_of": at_20},
        {"known_at": pd.Timestamp(recorded[1], unit="us", tz="UTC").to_pydatetime()},
        {"as_of": at_20, "known_at": pd.Timestamp(recorded[0], unit="us", tz="UTC")},
        {"event_type": "cart.opened", "as_of": T0 + dt.timedelta(minutes=1)},
        {"event_type": "no.such.type"},
    ]
    for when, rows in zip(moments, tagged(folded_states(spark, uri, moments)), strict=True):
        got = [(e, v, t, orjson.loads(state)) for e, v, t, state in rows]
        assert got == store_states(store, **when), when


def test_bad_arguments_are_refused_as_the_store_refuses_them(spark: Any, tmp_path: Path) -> None:
    store = asl.open()
    known_history(store)
    uri = tmp_path / "t.delta"
    store.export_delta(uri, checkpoint=True)
    with pytest.raises(asl.InvalidArgument, match="kind must be"):
        aspark.window(spark, uri, kind="sliding")
    with pytest.raises(asl.InvalidArgument, match="hop="):
        aspark.window(spark, uri, kind="hopping", every="1h")
    with pytest.raises(asl.InvalidArgument, match="unknown aggregate 'p101'"):
        aspark.window(spark, uri, agg={"payload.n": "p101"})
    with pytest.raises(asl.InvalidArgument, match="makes no sense"):
        aspark.window(spark, uri, agg={"entity_id": "sum"})
    with pytest.raises(asl.InvalidEvent, match="no timezone"):
        aspark.states(spark, uri, as_of="2026-03-01T00:00:00")
    with pytest.raises(asl.InvalidArgument, match="no Delta table"):
        aspark.events(spark, tmp_path / "missing")
    view = aspark.register(spark, uri, "carts")
    assert view.count() == 5
    assert spark.sql("select count(distinct entity_id) from carts").collect()[0][0] == 2


# -- generated histories -----------------------------------------------------------------

ENTITIES = ["a", "b", "c", "d-1", "Émile", "z z", "e10", "e9"]
TYPES = ["order.placed", "order.changed", "order.paid"]

leaf = st.one_of(st.none(), st.integers(-5, 5), st.sampled_from(["x", "y", ""]))
nested = st.dictionaries(st.sampled_from(["zip", "city", "n"]), leaf, max_size=3)
payloads = st.fixed_dictionaries(
    {},
    optional={
        "amount": st.one_of(st.integers(-100, 100).map(lambda n: n / 4), st.none()),
        "sku": st.one_of(st.sampled_from(["s1", "s2", "s3"]), st.integers(0, 3), st.none()),
        "addr": st.one_of(nested, st.none(), st.integers(0, 2)),
        "tags": st.lists(st.integers(0, 3), max_size=2),
        "flag": leaf,
    },
)
events = st.tuples(
    st.sampled_from(ENTITIES),
    st.sampled_from(TYPES),
    payloads,
    st.integers(0, 240),  # event time: minutes after T0, in any order (late events)
)
histories = st.lists(st.lists(events, min_size=1, max_size=12), min_size=1, max_size=5)


def build(
    batches: list[list[tuple[str, str, dict[str, Any], int]]],
) -> tuple[asl.EventStore, list[int]]:
    store = asl.open()
    recorded = []
    for batch in batches:
        store.append_batch(
            [
                {
                    "event_type": t,
                    "entity_id": e,
                    "payload": p,
                    "timestamp": T0 + dt.timedelta(minutes=m),
                }
                for e, t, p, m in batch
            ]
        )
        recorded.append(us(next(iter(store.events(reverse=True, limit=1))).recorded_at))
    return store, recorded


AGG = {
    "*": "count",
    "payload.amount": ["sum", "avg", "min", "max", "count", "median", "p90", "stddev"],
    "entity_id": ["count_distinct", "max"],
    "payload.sku": "count_distinct",
}
KEYS = [None, "entity_id", "payload.sku", ["event_type", "payload.sku"]]


def tagged(frames: list[Any]) -> list[list[tuple[Any, ...]]]:
    """Collect several DataFrames of one shape in one Spark job: each is tagged with its
    index, the union collected once, and its rows handed back per frame in their order
    (a union keeps each side's partitions, and so each side's order, in turn)."""
    from pyspark.sql import functions as F

    union = None
    for i, frame in enumerate(frames):
        part = frame.select(F.lit(i).alias("q"), *[F.col(f"`{c}`") for c in frame.columns])
        union = part if union is None else union.unionByName(part)
    assert union is not None
    out: list[list[tuple[Any, ...]]] = [[] for _ in frames]
    for row in union.collect():
        out[row[0]].append(tuple(row[1:]))
    return out


def folded_states(spark: Any, uri: Path, moments: list[dict[str, Any]]) -> list[Any]:
    """``aspark.states`` at each moment, times as microseconds, for :func:`tagged`."""
    from pyspark.sql import functions as F

    return [
        aspark.states(spark, uri, **when).select(
            "entity_id", "version", F.unix_micros("timestamp").alias("t"), "state"
        )
        for when in moments
    ]


def window_rows(frame: Any) -> Any:
    from pyspark.sql import functions as F

    rest = [F.col(f"`{name}`") for name in frame.columns[2:]]
    return frame.select(
        F.unix_micros("window_start").alias("ws"), F.unix_micros("window_end").alias("we"), *rest
    )


@settings(max_examples=4, deadline=None)
@given(
    batches=histories,
    moment=st.integers(-10, 250),
    cut=st.integers(0, 4),
    entity=st.sampled_from(ENTITIES),
    event_type=st.sampled_from([None, *TYPES]),
    bounds=st.tuples(st.integers(-10, 120), st.integers(0, 250)),
    by=st.sampled_from(KEYS),
)
def test_generated_histories_answer_as_the_store_does(
    spark: Any,
    tmp_path_factory: pytest.TempPathFactory,
    batches: list[list[tuple[str, str, dict[str, Any], int]]],
    moment: int,
    cut: int,
    entity: str,
    event_type: str | None,
    bounds: tuple[int, int],
    by: Any,
) -> None:

    store, recorded = build(batches)
    uri = tmp_path_factory.mktemp("generated") / "t.delta"
    store.export_delta(uri, checkpoint=True)
    as_of = T0 + dt.timedelta(minutes=moment)
    known_at = pd.Timestamp(recorded[min(cut, len(recorded) - 1)], unit="us", tz="UTC")
    since = T0 + dt.timedelta(minutes=bounds[0])
    until = since + dt.timedelta(minutes=bounds[1])

    moments: list[dict[str, Any]] = [
        {},
        {"as_of": as_of},
        {"known_at": known_at},
        {"as_of": as_of, "known_at": known_at, "event_type": event_type},
    ]
    for when, rows in zip(moments, tagged(folded_states(spark, uri, moments)), strict=True):
        got = [(e, v, t, orjson.loads(state)) for e, v, t, state in rows]
        assert got == store_states(store, **when), when

    filters: list[dict[str, Any]] = [
        {"since": since, "until": until, "as_of": as_of, "known_at": known_at},
        {"entity_id": entity, "event_type": event_type},
        {"event_type": event_type, "as_of": as_of},
    ]
    found = [aspark.events(spark, uri, **f).select("sequence", "event_id") for f in filters]
    for f, rows in zip(filters, tagged(found), strict=True):
        assert rows == store_events(store, **f), f

    queries: list[dict[str, Any]] = [
        {"every": "1m", "by": by, "agg": AGG, "as_of": as_of},
        {"every": "7m", "by": by, "agg": AGG, "since": since, "until": until},
        {"every": "1h", "by": by, "agg": AGG, "known_at": known_at},
        {"kind": "hopping", "every": "7m", "hop": "5m", "by": by, "agg": AGG},
        {"kind": "hopping", "every": "5m", "hop": "7m", "by": by, "agg": AGG, "as_of": as_of},
        {"kind": "hopping", "every": "1h", "hop": "20m", "by": by, "agg": AGG, "since": since},
        {"kind": "session", "gap": "1m", "by": by, "agg": AGG},
        {"kind": "session", "gap": "5m", "by": by, "agg": AGG, "known_at": known_at},
        {"kind": "session", "gap": "30m", "by": by, "agg": AGG, "until": until},
    ]
    windows = [window_rows(aspark.window(spark, uri, **q)) for q in queries]
    for q, rows in zip(queries, tagged(windows), strict=True):
        same_rows([tuple(plain(v) for v in r) for r in rows], store_window(store, **q))
    # A type filter on its own (no aggregate but the count), every kind once.
    for q in (
        {"every": "30m", "event_type": event_type or TYPES},
        {"kind": "session", "gap": "20m", "event_type": event_type or TYPES, "by": "entity_id"},
    ):
        same_rows(spark_window(spark, uri, **q), store_window(store, **q))


# -- a generated store of many events ----------------------------------------------------


def many_events(n: int, entities: int) -> pa.Table:
    """``n`` events over ``entities`` orders: placed, then changed with nested patches
    (some removing a key), event times spread over a day and partly out of order."""
    rng = np.random.default_rng(7)
    i = np.arange(n)
    minutes = (i * 1440 // n + rng.integers(-30, 30, n)).clip(0, 1439)
    payload = [
        orjson.dumps(
            {
                "amount": int(k % 97),
                "sku": f"s{k % 5}",
                "addr": {"zip": None if k % 3 else f"z{k % 11}"},
            }
        ).decode()
        for k in range(n)
    ]
    return pa.table(
        {
            "event_type": pa.array(np.where(i < entities, "order.placed", "order.changed")),
            "entity_id": pa.array([f"order-{k % entities:07d}" for k in range(n)]),
            "payload": pa.array(payload),
            "timestamp": pa.array(
                (us(T0) + minutes * 60_000_000 + i % 60_000_000).astype(np.int64),
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )


def check_large(spark: Any, tmp_path: Path, n: int, entities: int) -> None:
    store = asl.open(tmp_path / "s.events")
    table = many_events(n, entities)
    half = n // 2
    store.append_batch(table.slice(0, half))
    known_at = next(iter(store.events(after=half - 1, limit=1))).recorded_at
    store.append_batch(table.slice(half))
    uri = tmp_path / "t.delta"
    assert store.export_delta(uri, checkpoint=True)["exported"] == n
    as_of = T0 + dt.timedelta(hours=13)
    for when in ({"as_of": as_of}, {"as_of": as_of, "known_at": known_at}):
        assert spark_states(spark, uri, **when) == store_states(store, **when)
    query = {"every": "1h", "by": "event_type", "agg": {"*": "count", "payload.amount": "sum"}}
    same_rows(spark_window(spark, uri, **query), store_window(store, **query))
    one = f"order-{entities // 2:07d}"
    assert spark_events(spark, uri, entity_id=one, as_of=as_of) == store_events(
        store, entity_id=one, as_of=as_of
    )
    store.close()


def test_a_generated_store_answers_as_the_store_does(spark: Any, tmp_path: Path) -> None:
    check_large(spark, tmp_path, 20_000, 2_000)


@pytest.mark.slow
def test_a_million_event_store_answers_as_the_store_does(spark: Any, tmp_path: Path) -> None:
    check_large(spark, tmp_path, 1_000_000, 50_000)


def test_event_ids_survive_as_text(spark: Any, tmp_path: Path) -> None:
    store = asl.open()
    given_id = uuid.UUID("0192f1c2-7a3b-7c4d-8e5f-0123456789ab")
    store.append("a", "x", {"n": 1}, event_id=given_id)
    uri = tmp_path / "t.delta"
    store.export_delta(uri, checkpoint=True)
    assert spark_events(spark, uri) == [(1, str(given_id))]
