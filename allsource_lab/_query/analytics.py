"""``store.analytics``: frequency, summary, correlation and funnels, in DuckDB SQL.

All of them read the ``events`` view (every event, sealed and unsealed) with bound
parameters, over event time (``timestamp``), and return pandas DataFrames.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from allsource_lab._query.windows import parse_duration, utf8_text, window
from allsource_lab.errors import InvalidArgument

if TYPE_CHECKING:
    import pandas as pd

    from allsource_lab._feed import SqlSource

__all__ = ["Analytics"]


def _type_name(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{name} must be an event type (a non-empty str), not {value!r}")
    return utf8_text(value, name)


class Analytics:
    """Analytics helpers over a store's history (``store.analytics``).

    >>> import allsource_lab as asl
    >>> store = asl.open()
    >>> for i, kind in enumerate(["visit", "cart", "visit", "buy"]):
    ...     _ = store.append(kind, "u1" if i < 2 else "u2", {},
    ...                      timestamp=f"2026-01-01T00:0{i}:00Z")
    >>> store.analytics.funnel(["visit", "cart"], within="10m")["entities"].tolist()
    [2, 1]
    """

    def __init__(self, store: SqlSource) -> None:
        self._store = store

    def frequency(self, event_type: str | None = None, bucket: Any = "1h") -> pd.DataFrame:
        """Events per ``bucket`` (tumbling, empty buckets as 0), per type when
        ``event_type`` is None.

        Raises:
            InvalidArgument: a bad event type or bucket (see ``store.window``).
        """
        if event_type is not None:
            _type_name(event_type, "event_type")
        frame: pd.DataFrame = window(
            self._store,
            event_type,
            every=bucket,
            by=None if event_type is not None else "event_type",
            fill=True,
        )
        return frame

    def summary(self, entity_id: str | None = None) -> pd.DataFrame:
        """Per event type: ``count``, ``entities``, ``first_seen``, ``last_seen`` and
        ``per_hour`` (count over the span from first to last, or the count when they are
        the same moment); of one entity if ``entity_id`` is given.

        Raises:
            InvalidArgument: ``entity_id`` is not text.
        """
        where, params = "", {}
        if entity_id is not None:
            if not isinstance(entity_id, str):
                raise InvalidArgument(f"entity_id must be a str, not {entity_id!r}")
            utf8_text(entity_id, "entity_id")
            where, params = " WHERE entity_id = $entity", {"entity": entity_id}
        frame: pd.DataFrame = self._store.sql(
            "SELECT event_type, count(*) AS count, count(DISTINCT entity_id) AS entities, "
            "min(timestamp) AS first_seen, max(timestamp) AS last_seen, "
            "count(*) / greatest(epoch_us(max(timestamp)) - epoch_us(min(timestamp)), 0) "
            "* 3600e6 AS per_hour "
            f"FROM events{where} GROUP BY event_type ORDER BY event_type",
            params,
        ).df()
        same = frame["first_seen"] == frame["last_seen"]
        frame.loc[same, "per_hour"] = frame.loc[same, "count"].astype(float)
        return frame

    def correlation(self, event_a: str, event_b: str, within: Any) -> pd.DataFrame:
        """How often and how fast ``event_b`` follows ``event_a`` for the same entity.

        For each ``event_a``, the first ``event_b`` of its entity strictly after it counts
        if it comes within ``within``. One row: ``a_events``, ``followed``, ``rate``,
        ``median_delay_s``, ``mean_delay_s``, ``p95_delay_s``.

        Raises:
            InvalidArgument: an event type that is not text, or a bad duration.
        """
        a = _type_name(event_a, "event_a")
        b = _type_name(event_b, "event_b")
        limit = parse_duration(within, "within")
        frame: pd.DataFrame = self._store.sql(
            "WITH a AS (SELECT entity_id, epoch_us(timestamp) AS t FROM events "
            "WHERE event_type = $a), "
            "b AS (SELECT entity_id, epoch_us(timestamp) AS t FROM events WHERE event_type = $b), "
            "pairs AS (SELECT a.t AS ta, b.t AS tb FROM a ASOF LEFT JOIN b "
            "ON a.entity_id = b.entity_id AND b.t > a.t), "
            "hits AS (SELECT (tb - ta) / 1e6 AS delay FROM pairs WHERE tb - ta <= $limit) "
            "SELECT (SELECT count(*) FROM a) AS a_events, count(*) AS followed, "
            "CASE WHEN (SELECT count(*) FROM a) = 0 THEN NULL "
            "ELSE count(*) / (SELECT count(*) FROM a) END AS rate, "
            "median(delay) AS median_delay_s, avg(delay) AS mean_delay_s, "
            "quantile_cont(delay, 0.95) AS p95_delay_s FROM hits",
            {"a": a, "b": b, "limit": limit},
        ).df()
        return frame

    def funnel(self, steps: Sequence[str], within: Any) -> pd.DataFrame:
        """Per-step conversion through ``steps`` (event types, in order) for each entity.

        An entity enters at its first ``steps[0]`` event; it reaches step k when it has a
        ``steps[k]`` event after the one that reached step k-1 and within ``within`` of
        entering. One row per step: ``step``, ``event_type``, ``entities``,
        ``conversion`` (of those who entered) and ``step_conversion`` (of the step before).

        Raises:
            InvalidArgument: ``steps`` is not a non-empty list of event types, or a bad duration.
        """
        if not isinstance(steps, list | tuple) or len(steps) < 1:
            raise InvalidArgument(f"steps must be a list of event types, not {steps!r}")
        names = [_type_name(s, "each step") for s in steps]
        limit = parse_duration(within, "within")
        # $limit only appears from the second step on; DuckDB refuses an unused parameter.
        params: dict[str, Any] = {"limit": limit} if len(names) > 1 else {}
        ctes = ["s0 AS (SELECT entity_id, min(epoch_us(timestamp)) AS t, "
                "min(epoch_us(timestamp)) AS t0 FROM events WHERE event_type = $e0 "
                "GROUP BY entity_id)"]  # fmt: skip
        params["e0"] = names[0]
        for k in range(1, len(names)):
            params[f"e{k}"] = names[k]
            ctes.append(
                f"s{k} AS (SELECT p.entity_id, min(epoch_us(e.timestamp)) AS t, p.t0 "
                f"FROM s{k - 1} p JOIN events e ON e.entity_id = p.entity_id "
                f"AND e.event_type = $e{k} AND epoch_us(e.timestamp) > p.t "
                f"AND epoch_us(e.timestamp) <= p.t0 + $limit GROUP BY p.entity_id, p.t0)"
            )
        counts = " UNION ALL ".join(
            f"SELECT {k} AS step, count(*) AS entities FROM s{k}" for k in range(len(names))
        )
        frame: pd.DataFrame = self._store.sql(
            f"WITH {', '.join(ctes)} {counts} ORDER BY step", params
        ).df()
        frame.insert(1, "event_type", names)
        entered = frame["entities"].iloc[0]
        frame["conversion"] = frame["entities"] / entered if entered else float("nan")
        before = frame["entities"].shift(1).fillna(frame["entities"].iloc[0])
        frame["step_conversion"] = (frame["entities"] / before.where(before > 0)).fillna(0.0)
        if not entered:
            frame["step_conversion"] = float("nan")
        return frame
