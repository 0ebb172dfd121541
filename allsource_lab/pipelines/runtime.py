"""A pipeline's running state: records through the operators into the final stage.

Each event becomes a record (see :mod:`allsource_lab.pipelines.paths`) holding only the
columns some operator reads (all of them when the pipeline emits records); the record
goes through the ``filter``/``map``/``enrich`` steps, then into the final stage: the
windows (a ``window``), the groups (a ``reduce``), or the emitted records (a ``branch``
labels each with its output; without either, every record that passes is emitted).

An operator that raises on a record (``multiply`` of a text, say) costs that record only:
it is counted in ``errors`` (with the last message in ``last_error``) and the pipeline goes
on with the next, so one bad event never stops a live pipeline. Every event fed is
counted exactly once: ``events_in == events_out + filtered + late + errors``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa

from allsource_lab.errors import InvalidArgument
from allsource_lab.events import Event, us_to_datetime
from allsource_lab.pipelines.expressions import expression_fields
from allsource_lab.pipelines.operators import Step, compile_step, router, value_test
from allsource_lab.pipelines.paths import COLUMNS, Record, inner_getter, key_text, root
from allsource_lab.pipelines.windowing import BucketWindows, Groups, SessionWindows
from allsource_lab.projections.base import EventBatch

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Runtime"]

_ALL_ROOTS = frozenset((*COLUMNS, "payload", "metadata"))


@dataclass(slots=True)
class _Stats:
    events_in: int = 0
    events_out: int = 0
    filtered: int = 0
    late: int = 0
    errors: int = 0
    last_error: str | None = None
    last_sequence: int | None = None
    last_event_us: int | None = None
    busy_s: float = 0.0


class RecordSink:
    """Emitted records, the newest ``keep`` of them, each with its branch output."""

    def __init__(self, keep: int, branch: dict[str, Any] | None) -> None:
        self.route = router(branch) if branch is not None else None
        self.outputs: list[str] = []
        if branch is not None:
            names = [o["name"] for o in branch["outputs"]] + [branch["default"]]
            self.outputs = [n for n in dict.fromkeys(names) if n is not None]
        self.records: deque[tuple[str | None, Record]] = deque(maxlen=keep)
        self.count = 0

    def reset(self) -> None:
        self.records.clear()
        self.count = 0

    def push(self, record: Record) -> bool | None:
        output = None
        if self.route is not None:
            output = self.route(record)
            if output is None:
                return None
        self.records.append((output, record))
        self.count += 1
        return True

    def dump(self) -> dict[str, Any]:
        return {"records": _plain([[o, r] for o, r in self.records]), "count": self.count}

    def load(self, data: dict[str, Any]) -> None:
        self.records.clear()
        self.records.extend((o, r) for o, r in data["records"])
        self.count = int(data["count"])

    def frame(self, output: str | None) -> pd.DataFrame:
        """One row per record: ``output`` (after a branch), the event columns, then the
        payload and metadata fields flattened to their paths (``payload.a.b``)."""
        import pandas as pd

        rows = []
        for name, record in self.records:
            if output is not None and name != output:
                continue
            row: dict[str, Any] = {} if self.route is None else {"output": name}
            for column in COLUMNS:
                if column in record:
                    row[column] = record[column]
            for container in ("payload", "metadata"):
                _flatten(record.get(container), container, row)
            rows.append(row)
        head = ([] if self.route is None else ["output"]) + list(COLUMNS)
        frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=head)
        if "timestamp" in frame:
            frame["timestamp"] = pd.to_datetime(
                frame["timestamp"].astype("int64"), unit="us", utc=True
            )
        return frame


def _flatten(value: Any, prefix: str, row: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}", row)
    elif value is not None or prefix.count("."):
        row[prefix] = value


def _plain(value: Any) -> Any:
    """``value`` as JSON orjson can write: what an enrichment put in a record may be a
    NumPy number, a set or an int past 64 bits (text, then)."""
    try:
        return orjson.loads(
            orjson.dumps(value, default=_fallback, option=orjson.OPT_SERIALIZE_NUMPY)
        )
    except orjson.JSONEncodeError:
        if isinstance(value, dict):
            return {str(k): _plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [_plain(v) for v in value]
        return str(value)


def _fallback(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def _referenced(spec: dict[str, Any]) -> set[str]:
    """The record keys some operator reads or writes."""
    roots = {"sequence", "timestamp"}
    paths: list[str] = []
    for op in spec["operators"]:
        kind = op["type"]
        if kind == "filter":
            paths.append(op["field"])
        elif kind == "map":
            paths.append(op["field"])
            paths.extend([op["to"]] if "to" in op else [])
            paths.extend(expression_fields(op["expr"]) if "expr" in op else [])
        elif kind == "enrich":
            paths += [op["on"], op["into"] or "payload"]
        elif kind == "branch":
            return set(_ALL_ROOTS)
        else:
            reduce = op["aggregation"] if kind == "window" else op
            paths += op["config"]["by"] if kind == "window" else []
            paths += reduce["group_by"] + [f for f in reduce["aggregates"] if f != "*"]
            roots |= {root(p) for p in paths}
            return roots
    return set(_ALL_ROOTS)  # records are emitted: all of each event


class Runtime:
    """Compiled operators and the state they fold into, behind one lock."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.store: Any = None
        self.enabled: bool = spec["enabled"]
        self.lock = threading.RLock()
        ops = spec["operators"]
        last = ops[-1] if ops and ops[-1]["type"] in ("window", "reduce", "branch") else None
        body = ops[:-1] if last is not None else ops
        self.steps: list[tuple[int, str, Step]] = [
            (i, op["type"], compile_step(op, self)) for i, op in enumerate(body)
        ]
        self.end = (len(ops) - 1, last["type"]) if last is not None else (len(ops), "output")
        self.sink = _sink(last, spec["max_results"])
        self.roots = _referenced(spec)
        # Leading filters run on the columns they read, before records are built: the
        # records (and the columns only later operators read) are made for survivors only.
        self.lead: list[tuple[str, Any, Any]] = []
        for op in body:
            if op["type"] != "filter":
                break
            self.lead.append((root(op["field"]), inner_getter(op["field"]), value_test(op)))
        self.lead_roots = {r for r, _, _ in self.lead} | {"sequence", "timestamp"}
        self.definition = orjson.loads(
            orjson.dumps({k: spec[k] for k in ("source_event_types", "operators")})
        )
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.stats = _Stats()
            self.sink.reset()

    # -- feeding -------------------------------------------------------------------------

    def feed_batch(self, batch: EventBatch) -> None:
        if not self.enabled or not len(batch):
            return
        source = batch.source
        if hasattr(source, "projections"):
            self.store = source
        with self.lock:
            if self.lead:
                started = time.perf_counter()
                try:
                    records, dropped, last = self._filter_first(batch)
                except Exception:  # a leading filter cannot raise; if one did, go record
                    pass  # by record below, where errors are counted per event
                else:
                    self.stats.busy_s += time.perf_counter() - started
                    self._run(records, len(self.lead), dropped, last)
                    return
            columns = self._columns(batch, self.roots)
            self._run(_rows(columns), 0, 0, _last(columns))

    def _filter_first(self, batch: EventBatch) -> tuple[list[Record], int, tuple[int, int]]:
        """The records that pass the leading filters, how many did not, and the batch's
        last (sequence, event time)."""
        first = self._columns(batch, self.lead_roots)
        keep: list[int] = list(range(len(batch)))
        for name, dig, test in self.lead:
            values = first[name]
            keep = [i for i in keep if test(dig(values[i]))]
        columns = {name: [values[i] for i in keep] for name, values in first.items()}
        rest = self.roots - self.lead_roots
        if keep and rest:
            survivors = np.asarray(keep, dtype=np.int64)
            subset = batch.take(survivors)
            columns.update(self._columns(subset, rest))
        return _rows(columns), len(batch) - len(keep), _last(first)

    def feed_events(self, events: Iterable[Event]) -> None:
        if not self.enabled:
            return
        types = self.spec["source_event_types"]
        records = [
            {
                "sequence": e.sequence,
                "event_type": e.event_type,
                "entity_id": e.entity_id,
                "version": e.version,
                "timestamp": e.timestamp_us,
                "payload": orjson.loads(e.payload_json),
                "metadata": orjson.loads(e.metadata_json),
            }
            for e in events
            if not types or e.event_type in types
        ]
        if records:
            self._run(records, 0, 0, (records[-1]["sequence"], records[-1]["timestamp"]))

    @staticmethod
    def _columns(batch: EventBatch, roots: set[str]) -> dict[str, list[Any]]:
        """The batch's columns among ``roots`` (sequence and timestamp always), as lists."""
        columns: dict[str, list[Any]] = {
            "sequence": batch.sequences.tolist(),
            "timestamp": batch.column("timestamp").cast(pa.int64()).to_numpy().tolist(),
        }
        if "event_type" in roots:
            columns["event_type"] = batch.event_types()
        if "entity_id" in roots:
            columns["entity_id"] = batch.entity_ids()
        if "version" in roots:
            columns["version"] = batch.column("version").to_numpy().tolist()
        if "payload" in roots:
            columns["payload"] = batch.payloads()
        if "metadata" in roots:
            texts = batch.column("metadata").combine_chunks()
            if isinstance(texts, pa.ExtensionArray):
                texts = texts.storage
            columns["metadata"] = [orjson.loads(t) for t in texts.to_pylist()]
        return columns

    def _run(self, records: list[Record], skip: int, filtered: int, last: tuple[int, int]) -> None:
        """Feed ``records`` from step ``skip`` on; ``filtered`` events were already dropped
        by the leading filters; ``last``: the batch's last (sequence, event time)."""
        with self.lock:
            started = time.perf_counter()
            stats = self.stats
            stats.events_in += filtered
            stats.filtered += filtered
            steps = self.steps[skip:]
            push = self.sink.push
            end_index, end_kind = self.end
            for record in records:
                stats.events_in += 1
                index, kind = end_index, end_kind
                try:
                    current: Record | None = record
                    for index, kind, step in steps:  # noqa: B007 (the failing one is reported)
                        current = step(current)  # type: ignore[arg-type]
                        if current is None:
                            break
                    if current is None:
                        stats.filtered += 1
                        continue
                    index, kind = end_index, end_kind
                    outcome = push(current)
                except Exception as exc:
                    stats.errors += 1
                    stats.last_error = (
                        f"sequence {record['sequence']}: operator {index} ({kind}): "
                        f"{type(exc).__name__}: {exc}"
                    )
                    continue
                if outcome is None:
                    stats.filtered += 1
                elif outcome:
                    stats.events_out += 1
                else:
                    stats.late += 1
            stats.last_sequence, stats.last_event_us = last
            settle = getattr(self.sink, "settle", None)
            if settle is not None:
                settle()
            stats.busy_s += time.perf_counter() - started

    def flush(self) -> int:
        with self.lock:
            flush = getattr(self.sink, "flush", None)
            return int(flush()) if flush is not None else 0

    # -- reading -------------------------------------------------------------------------

    def stats_dict(self) -> dict[str, Any]:
        with self.lock:
            s = self.stats
            sink = self.sink
            windowed = isinstance(sink, BucketWindows | SessionWindows)
            mark = sink.watermark() if windowed else None
            return {
                "events_in": s.events_in,
                "events_out": s.events_out,
                "filtered": s.filtered,
                "late": s.late,
                "dropped": s.filtered + s.late,
                "errors": s.errors,
                "last_error": s.last_error,
                "last_sequence": s.last_sequence,
                "last_event_time": None
                if s.last_event_us is None
                else us_to_datetime(s.last_event_us),
                "watermark": None if mark is None else us_to_datetime(mark),
                "windows_open": sink.open_count if windowed else 0,
                "windows_closed": sink.closed_count if windowed else 0,
                "emitted": sink.count if isinstance(sink, RecordSink) else 0,
                "throughput_eps": s.events_in / s.busy_s if s.busy_s > 0 else 0.0,
                "busy_s": s.busy_s,
            }

    def results(self, output: str | None, include_open: bool) -> pd.DataFrame:
        with self.lock:
            sink = self.sink
            if output is not None:
                if not isinstance(sink, RecordSink) or sink.route is None:
                    raise InvalidArgument(
                        "output= picks a branch's output; this pipeline has no branch"
                    )
                if output not in sink.outputs:
                    raise InvalidArgument(f"no output {output!r}; the outputs are {sink.outputs}")
            if isinstance(sink, BucketWindows | SessionWindows):
                return sink.window_frame(sink.rows(include_open))
            if isinstance(sink, Groups):
                return sink.frame()
            frame: pd.DataFrame = sink.frame(output)
            return frame

    def group(self, key: Any) -> dict[str, Any]:
        """One group's aggregates (a pipeline ending in a reduce).

        Raises:
            KeyError: no such group, or the pipeline does not end in a reduce.
        """
        with self.lock:
            sink = self.sink
            if not isinstance(sink, Groups):
                raise KeyError(
                    "state(key) looks up a group of a pipeline ending in a reduce; use "
                    "results() for this one"
                )
            parts = key if isinstance(key, tuple) else (key,)
            return sink.row(tuple(key_text(k) for k in parts))

    def dump(self) -> dict[str, Any]:
        with self.lock:
            return {
                "definition": self.definition,
                "stats": asdict(self.stats),
                "sink": self.sink.dump(),
            }

    def load(self, data: dict[str, Any]) -> None:
        """Take back :meth:`dump`'s data.

        Raises:
            InvalidArgument: it was saved by a pipeline of another definition.
        """
        if data.get("definition") != self.definition:
            raise InvalidArgument(
                f"the saved state of {self.spec['name']!r} is of another definition (its "
                "source_event_types or operators differ); it cannot be resumed"
            )
        with self.lock:
            self.stats = _Stats(**data["stats"])
            self.sink.load(data["sink"])


def _rows(columns: dict[str, list[Any]]) -> list[Record]:
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _last(columns: dict[str, list[Any]]) -> tuple[int, int]:
    return columns["sequence"][-1], columns["timestamp"][-1]


def _sink(last: dict[str, Any] | None, keep: int) -> Any:
    if last is None or last["type"] == "branch":
        return RecordSink(keep, last)
    if last["type"] == "reduce":
        return Groups(last["group_by"], last["aggregates"])
    config, reduce = last["config"], last["aggregation"]
    keys = config["by"] + reduce["group_by"]
    lateness = round(config["allowed_lateness_seconds"] * 1_000_000)
    if config["window_type"] == "session":
        gap = round(config["session_timeout_seconds"] * 1_000_000)
        return SessionWindows(gap, keys, reduce["aggregates"], lateness, keep)
    size = round(config["size_seconds"] * 1_000_000)
    slide = round(config["slide_seconds"] * 1_000_000) if "slide_seconds" in config else size
    return BucketWindows(size, slide, keys, reduce["aggregates"], lateness, keep)
