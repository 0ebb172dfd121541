"""``Pipeline``: a chain of operators over live events, built in Python or read from JSON.

A pipeline is a :class:`~allsource_lab.projections.Projection`: the store feeds it like
any projection (live during ``append``/``append_batch``, from history with
``store.replay``), and its state is JSON, so it is durable. ``store.pipelines`` adds,
inspects and removes pipelines by name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from allsource_lab._query.windows import parse_duration
from allsource_lab.errors import InvalidArgument
from allsource_lab.events import Event
from allsource_lab.pipelines.paths import key_text
from allsource_lab.pipelines.runtime import Runtime
from allsource_lab.pipelines.spec import DEFAULT_MAX_RESULTS, normalize_pipeline
from allsource_lab.pipelines.windowspec import seconds
from allsource_lab.projections.base import EventBatch, Projection

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Pipeline"]


class Pipeline(Projection):
    """A named chain of operators over events of ``source_event_types`` (all if empty).

    Each builder method returns a new pipeline with one more operator (the pipeline it is
    called on is unchanged): ``filter``, ``map``, ``enrich``, then at most one of
    ``window`` (optionally followed by ``reduce``), ``reduce`` or ``branch``.
    ``to_json()``/``from_json()`` convert to and from the JSON form (the shape of the
    original AllSource service's pipelines); both forms give the same pipeline.

    ``results()`` is a DataFrame of what the pipeline produced: windows (closed, and open
    with ``closed=False``), groups, or emitted records; ``stats()`` counts events in and
    out, dropped, late and failed. See :mod:`allsource_lab.pipelines` for every operator.

    >>> import allsource_lab as asl
    >>> store = asl.open()
    >>> big = (Pipeline("big_orders", ["order.placed"])
    ...        .filter("payload.amount", "gt", 100)
    ...        .reduce({"*": "count", "payload.amount": "sum"}, by="payload.region"))
    >>> _ = store.projections.add(big)
    >>> _ = store.append_batch([
    ...     {"event_type": "order.placed", "entity_id": f"o{i}",
    ...      "payload": {"amount": amount, "region": region}}
    ...     for i, (amount, region) in enumerate([(150, "eu"), (50, "eu"), (300, "us")])])
    >>> big.results()
      payload.region  count  payload.amount_sum
    0             eu      1               150.0
    1             us      1               300.0
    >>> big.stats()["filtered"], Pipeline.from_json(big.to_json()).to_dict() == big.to_dict()
    (1, True)
    """

    def __init__(
        self,
        name: str,
        source_event_types: Sequence[str] | str | None = None,
        *,
        description: str | None = None,
        enabled: bool = True,
        max_results: int = DEFAULT_MAX_RESULTS,
    ) -> None:
        spec: dict[str, Any] = {
            "name": name,
            "source_event_types": source_event_types,
            "operators": [],
            "enabled": enabled,
            "max_results": max_results,
        }
        if description is not None:
            spec["description"] = description
        self._setup(normalize_pipeline(spec))

    def _setup(self, spec: dict[str, Any]) -> None:
        self._spec = spec
        self._window_awaits_reduce = False  # just built by window(): reduce() completes it
        self._runtime = Runtime(spec)
        super().__init__(spec["name"], spec["source_event_types"] or None)

    @classmethod
    def _from_spec(cls, spec: dict[str, Any]) -> Pipeline:
        pipeline = cls.__new__(cls)
        pipeline._setup(spec)
        return pipeline

    # -- the JSON form ---------------------------------------------------------------------

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> Pipeline:
        """A pipeline from its JSON form (text, or the parsed object).

        Raises:
            InvalidArgument: the JSON is not valid, or the spec is not (the message names the
                operator index, the key and what is accepted).
        """
        if isinstance(data, str | bytes):
            try:
                data = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise InvalidArgument(f"pipeline: the text is not valid JSON ({exc})") from None
        return cls._from_spec(normalize_pipeline(data))

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form, as Python objects (a fresh copy)."""
        result: dict[str, Any] = orjson.loads(orjson.dumps(self._spec))
        return result

    def to_json(self, indent: bool = False) -> str:
        """The canonical JSON form as text; ``Pipeline.from_json`` reads it back."""
        option = orjson.OPT_INDENT_2 if indent else 0
        return orjson.dumps(self._spec, option=option).decode()

    # -- building --------------------------------------------------------------------------

    def _with(self, op: dict[str, Any]) -> Pipeline:
        ops = list(self._spec["operators"])
        if op["type"] == "reduce" and self._window_awaits_reduce:
            # The window's default count gives way to this reduce's aggregates.
            ops[-1] = {**ops[-1], "aggregation": None}
        spec = {**self._spec, "operators": [*ops, op]}
        pipeline = Pipeline._from_spec(normalize_pipeline(spec))
        pipeline._window_awaits_reduce = op["type"] == "window"
        return pipeline

    def filter(self, field: str, op: str = "eq", value: Any = None) -> Pipeline:
        """Keep the records where ``field`` ``op`` ``value`` holds.

        ``op``: eq, ne, gt, ge, lt, le, contains, in (``value`` a list), exists (``value``
        True by default, False for "missing or null"). Datetimes are accepted as values.

        Raises:
            InvalidArgument: an unknown op, a missing value, a bad field path.
        """
        spec: dict[str, Any] = {"type": "filter", "field": field, "op": op}
        if value is not None or op not in ("exists",):
            spec["value"] = _plain_value(value)
        return self._with(spec)

    def map(
        self,
        field: str,
        transform: str,
        *,
        value: Any = None,
        to: str | None = None,
        expr: str | None = None,
    ) -> Pipeline:
        """Change ``field`` of each record.

        ``transform``: ``uppercase``, ``lowercase``, ``trim`` (text); ``add:N``,
        ``subtract:N``, ``multiply:N``, ``divide:N`` (a number); ``set`` (to ``value``);
        ``rename`` (``to`` another path); ``drop``; ``compute`` (``expr``, arithmetic over
        fields like ``"payload.price * payload.qty"``).

        Raises:
            InvalidArgument: an unknown transform, or its argument missing.
        """
        spec: dict[str, Any] = {"type": "map", "field": field, "transform": transform}
        if transform == "set":
            spec["value"] = _plain_value(value)
        elif value is not None:
            spec["value"] = value
        if to is not None:
            spec["to"] = to
        if expr is not None:
            spec["expr"] = expr
        return self._with(spec)

    def enrich(
        self,
        source: Any,
        on: str = "entity_id",
        fields: Sequence[str] | None = None,
        *,
        key: str | None = None,
        into: str | None = None,
    ) -> Pipeline:
        """Add fields looked up by the value of ``on``.

        ``source``: a dict (key -> object of fields), a pandas DataFrame (looked up by its
        ``key`` column, or its index), or the name of a projection in the store
        (``projection.state(value)``). ``fields`` picks some of the found fields (all by
        default); they go into the payload, or as one object at the path ``into``. A key
        with nothing found leaves the record as it is.

        Raises:
            InvalidArgument: a bad source, field or path.
        """
        if hasattr(source, "to_dict") and hasattr(source, "columns"):
            source = _table_from_frame(source, key)
        elif key is not None:
            raise InvalidArgument(
                "key= names a DataFrame's lookup column; give it with a DataFrame"
            )
        spec: dict[str, Any] = {"type": "enrich", "source": source, "on": on, "into": into}
        spec["fields"] = None if fields is None else list(fields)
        return self._with(spec)

    def window(
        self,
        kind: str = "tumbling",
        every: Any = None,
        *,
        hop: Any = None,
        gap: Any = None,
        by: str | Sequence[str] | None = None,
        allowed_lateness: Any = 0,
    ) -> Pipeline:
        """Group records into event-time windows (the semantics of ``store.window``).

        ``kind``: ``tumbling`` (``every``), ``hopping`` (``every`` long, one starting every
        ``hop``) or ``session`` (``gap``), each per ``by`` key. Durations are text like
        ``"5m"`` or timedeltas. ``allowed_lateness`` delays closing windows for events out
        of order. Follow it with ``reduce`` for the aggregates (default a count).

        Raises:
            InvalidArgument: a bad kind, duration or key.
        """
        config: dict[str, Any] = {"window_type": kind}
        for name, value, arg in (
            ("size", every, "every"),
            ("slide", hop, "hop"),
            ("gap", gap, "gap"),
        ):
            if value is not None:
                config[f"{name}_seconds" if name != "gap" else "session_timeout_seconds"] = seconds(
                    parse_duration(value, arg)
                )
        if allowed_lateness not in (0, None):
            config["allowed_lateness"] = allowed_lateness
        if by is not None:
            config["by"] = by
        return self._with({"type": "window", "config": config})

    def reduce(
        self, agg: Mapping[str, Any] | None = None, by: str | Sequence[str] | None = None
    ) -> Pipeline:
        """Aggregate records: per window after a ``window``, else running totals.

        ``agg`` maps a field (or ``"*"``) to aggregates, as ``store.window`` takes them:
        ``{"*": "count", "payload.amount": ["sum", "avg", "min", "max", "p95"]}`` (default a
        count); ``by`` groups by fields. Output columns are named like ``store.window``'s:
        ``count``, ``payload.amount_sum``.

        Raises:
            InvalidArgument: an unknown aggregate or field.
        """
        spec: dict[str, Any] = {"type": "reduce", "group_by": by}
        if agg is not None:
            spec["aggregates"] = agg
        return self._with(spec)

    def branch(
        self, outputs: Mapping[str, Any] | Sequence[Any], default: str | None = "default"
    ) -> Pipeline:
        """Route each record to the first named output whose condition holds.

        ``outputs``: ``{"big": ("payload.amount", "gt", 100), ...}`` (a condition is a
        ``(field, op, value)`` tuple or a ``{"field", "op", "value"}`` dict). Records
        matching none go to ``default`` (``None``: dropped). ``results(output=...)``
        shows one output.

        Raises:
            InvalidArgument: a bad condition, or no outputs.
        """
        items = outputs.items() if isinstance(outputs, Mapping) else outputs
        listed = []
        for item in items:
            name, condition = item if isinstance(item, tuple | list) else (None, item)
            if isinstance(condition, tuple | list):
                condition = dict(zip(("field", "op", "value"), condition, strict=False))
            if isinstance(condition, Mapping) and "value" in condition:
                condition = {**condition, "value": _plain_value(condition["value"])}
            listed.append({"name": name, **condition} if isinstance(condition, Mapping) else item)
        return self._with({"type": "branch", "outputs": listed, "default": default})

    # -- running (Projection) --------------------------------------------------------------

    @property
    def host(self) -> Any:
        """The store feeding this pipeline (or its feed), or None before it first runs:
        where ``enrich`` finds projections, and how ``store.pipelines.add`` tells that a
        pipeline object already runs in another store."""
        return self._runtime.store

    @host.setter
    def host(self, store: Any) -> None:
        self._runtime.store = store

    @property
    def enabled(self) -> bool:
        """A disabled pipeline ignores the events it is fed (they are not counted)."""
        return self._runtime.enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self._runtime.enabled = bool(value)
        self._spec["enabled"] = bool(value)

    def reset(self) -> None:
        self._runtime.reset()

    def apply(self, event: Event) -> None:
        self._runtime.feed_events([event])

    def apply_batch(self, batch: EventBatch) -> None:
        self._runtime.feed_batch(batch)

    def state(self, key: Any = None) -> Any:
        """``results()``; with ``key``, the aggregates of one group of a pipeline ending in
        a reduce (a value, or a tuple for several keys) — so a pipeline can be an
        ``enrich`` source of another.

        Raises:
            KeyError: no such group.
        """
        if key is None:
            return self.results()
        return self._runtime.group(key)

    def dump_state(self) -> Any:
        return self._runtime.dump()

    def load_state(self, data: Any) -> None:
        self._runtime.load(data)

    def flush(self) -> int:
        """Close every open window now (e.g. at the end of a back-fill) and move the
        watermark past them; returns how many closed. Events that would have fallen in
        them later count as late. No effect on pipelines without a window."""
        return self._runtime.flush()

    def results(self, output: str | None = None, include_open: bool = True) -> pd.DataFrame:
        """What the pipeline produced, as a DataFrame.

        - a ``window``: ``window_start``, ``window_end``, the keys, the aggregates (the
          columns of ``store.window``) and ``closed``; closed windows are final, open
          ones (``include_open``) are the state so far;
        - a ``reduce``: the keys and the aggregates, one row per group;
        - otherwise: the newest ``max_results`` emitted records, one per row: the event
          columns and payload/metadata fields by path (``payload.a``), with ``output``
          first after a ``branch`` (``output=`` keeps one).

        Raises:
            InvalidArgument: ``output`` on a pipeline without a branch, or an unknown output.
        """
        return self._runtime.results(output, include_open)

    def stats(self) -> dict[str, Any]:
        """Counts and times: ``events_in``, ``events_out``, ``filtered``, ``late``,
        ``dropped`` (filtered + late), ``errors`` and ``last_error``, ``last_sequence``,
        ``last_event_time``, ``watermark``, ``windows_open``/``windows_closed``,
        ``emitted`` (records), ``throughput_eps`` (events per second of processing)."""
        return self._runtime.stats_dict()

    def __repr__(self) -> str:
        ops = " -> ".join(op["type"] for op in self._spec["operators"]) or "no operators"
        types = self._spec["source_event_types"] or "every type"
        return f"Pipeline({self.name!r}, {types}: {ops})"


def _plain_value(value: Any) -> Any:
    """Datetimes as ISO-8601 text and tuples as lists, the way they go into JSON."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain_value(v) for v in value]
    return value


def _table_from_frame(frame: pd.DataFrame, key: str | None) -> dict[str, Any]:
    """A DataFrame as a lookup table: key text -> the row's other columns."""
    import math

    if key is not None and key not in frame.columns:
        raise InvalidArgument(f"key={key!r} is not a column; the columns are {list(frame.columns)}")
    keys = frame[key].tolist() if key is not None else frame.index.tolist()
    body = frame.drop(columns=[key]) if key is not None else frame
    rows = orjson.loads(
        orjson.dumps(
            body.to_dict("records"),
            default=str,
            option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS,
        )
    )
    table: dict[str, Any] = {}
    for k, row in zip(keys, rows, strict=True):
        text = key_text(k.item() if hasattr(k, "item") else k)
        if text is None or (isinstance(k, float) and math.isnan(k)):
            continue
        table[text] = {c: v for c, v in row.items()}
    return table
