"""Window and reduce state of a pipeline: open windows, the watermark, closed windows.

Windows follow :mod:`allsource_lab._query.windows` exactly (event time in microseconds,
half-open ``[start, end)``; tumbling windows at multiples of the size since the epoch;
hopping windows of the size starting at multiples of the slide; sessions per key, a new
one after a silence longer than the gap, spanning ``[first event, last event + gap)``),
so a closed window here is the same row ``store.window`` computes over the same events.

**Watermark.** Each window operator tracks the greatest event time it has seen; its
watermark is that minus ``allowed_lateness``. A tumbling or hopping window is *closed*
once the watermark reaches its end; a session once the watermark passes its last event
plus the gap (an event exactly ``gap`` after the last still joins a session, as in SQL).
Closed windows are final: they move to the results and never change.

**Late events.** An event older than the watermark is still added to each of its windows
that is open; its share of a window that has closed is dropped. An event that reaches no
window (for sessions: one older than the watermark that joins no open session) is
dropped and counted as ``late``. Whether a window is closed is decided per event, in
sequence order, so the results do not depend on how events were batched (one ``append``
at a time, ``append_batch`` or a replay give the same windows).

**Flush.** :meth:`flush` closes every open window now and moves the watermark past them,
so events that would have fallen in them later are late.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from allsource_lab.pipelines.aggregates import Aggregate, aggregates_of
from allsource_lab.pipelines.paths import Record, getter, key_text

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BucketWindows", "Groups", "SessionWindows", "sort_key"]

Key = tuple[str | None, ...]


def sort_key(key: Key) -> tuple[tuple[int, str], ...]:
    """Orders keys as ``store.window`` sorts its rows: text in order, ``None`` (missing)
    last."""
    return tuple((1, "") if k is None else (0, k) for k in key)


class _Keyed:
    """What grouping stages share: key and aggregate reading, closed rows."""

    def __init__(self, keys: list[str], aggregates: dict[str, list[str]], keep: int) -> None:
        self.keys = keys
        self.aggs: list[Aggregate] = aggregates_of(aggregates)
        self.keep = keep
        self.closed: deque[tuple[int, int, Key, list[Any]]] = deque(maxlen=keep)
        self.closed_count = 0
        # Per-record work specialized once (measured: ~0.5 us/event less for a keyless
        # count than the general loops).
        self.key_of = _key_reader([getter(k) for k in keys])
        self.values_of = _value_reader(self.aggs)

    def fold(self, slot: list[Any], values: list[Any]) -> None:
        for i, agg in enumerate(self.aggs):
            slot[i] = agg.add(slot[i], values[i])

    def results(self, slot: list[Any]) -> list[Any]:
        return [agg.result(s) for agg, s in zip(self.aggs, slot, strict=True)]

    def window_frame(self, rows: list[tuple[int, int, Key, list[Any], bool]]) -> pd.DataFrame:
        """``window_start``, ``window_end``, the keys, the aggregates and ``closed``,
        sorted by window and key (the columns ``store.window`` gives, plus ``closed``)."""
        import numpy as np
        import pandas as pd

        rows.sort(key=lambda r: (r[0], sort_key(r[2])))
        out = pd.DataFrame(
            {
                "window_start": pd.to_datetime(
                    np.array([r[0] for r in rows], dtype=np.int64), unit="us", utc=True
                )
            }
        )
        out["window_end"] = pd.to_datetime(
            np.array([r[1] for r in rows], dtype=np.int64), unit="us", utc=True
        )
        for j, key in enumerate(self.keys):
            out[key] = pd.Series([r[2][j] for r in rows], dtype=object)
        _value_columns(out, self.aggs, [r[3] for r in rows])
        out["closed"] = np.array([r[4] for r in rows], dtype=bool)
        return out


def _key_reader(reads: list[Callable[[Record], Any]]) -> Callable[[Record], Key]:
    if not reads:
        return lambda record: ()
    if len(reads) == 1:
        read = reads[0]
        return lambda record: (key_text(read(record)),)
    return lambda record: tuple(key_text(read(record)) for read in reads)


def _value_reader(aggs: list[Aggregate]) -> Callable[[Record], list[Any]]:
    if all(a.read is None for a in aggs):  # counts of records only
        ones = [1] * len(aggs)
        return lambda record: ones
    return lambda record: [a.extract(record) for a in aggs]


def _value_columns(out: pd.DataFrame, aggs: list[Aggregate], values: list[list[Any]]) -> None:
    import numpy as np
    import pandas as pd

    for i, agg in enumerate(aggs):
        column = [v[i] for v in values]
        if agg.dtype == "float64":
            out[agg.column] = np.array([np.nan if x is None else x for x in column], np.float64)
        elif agg.dtype == "int64":
            out[agg.column] = np.array(column, dtype=np.int64)
        else:
            out[agg.column] = pd.Series(column, dtype=object)


class _Windows(_Keyed):
    """Window stages: event-time tracking and the watermark."""

    def __init__(
        self, keys: list[str], aggregates: dict[str, list[str]], lateness: int, keep: int
    ) -> None:
        super().__init__(keys, aggregates, keep)
        self.lateness = lateness
        self.reset()

    def reset(self) -> None:
        self.max_t: int | None = None
        self.floor: int | None = None  # set by flush(): the watermark never goes below it
        self.closed.clear()
        self.closed_count = 0
        self._ticket = itertools.count()  # heap tie-breaker: entries never compare further

    def watermark(self) -> int | None:
        if self.max_t is None:
            return self.floor
        mark = self.max_t - self.lateness
        return mark if self.floor is None else max(mark, self.floor)

    def _see(self, t: int) -> int:
        """Take in an event time; the watermark after it."""
        top = self.max_t
        if top is None or t > top:
            self.max_t = top = t
        mark = top - self.lateness
        floor = self.floor
        return mark if floor is None or floor < mark else floor

    def _dump_common(self) -> dict[str, Any]:
        return {
            "max_t": self.max_t,
            "floor": self.floor,
            "closed": [[s, e, list(k), v] for s, e, k, v in self.closed],
            "closed_count": self.closed_count,
        }

    def _load_common(self, data: dict[str, Any]) -> None:
        self.max_t = data["max_t"]
        self.floor = data["floor"]
        self.closed.clear()
        self.closed.extend((int(s), int(e), tuple(k), list(v)) for s, e, k, v in data["closed"])
        self.closed_count = int(data["closed_count"])


class BucketWindows(_Windows):
    """Tumbling (``slide == size``) and hopping windows, per key."""

    def __init__(
        self,
        size: int,
        slide: int,
        keys: list[str],
        aggregates: dict[str, list[str]],
        lateness: int,
        keep: int,
    ) -> None:
        self.size = size
        self.slide = slide
        super().__init__(keys, aggregates, lateness, keep)

    def reset(self) -> None:
        super().reset()
        self.open: dict[tuple[int, Key], list[Any]] = {}
        self._heap: list[tuple[int, int, Any, Key]] = []

    def push(self, record: Record) -> bool:
        """Fold ``record`` into its open windows; False if every one had closed (late)."""
        t = record["timestamp"]
        mark = self._see(t)
        size, slide = self.size, self.slide
        key = self.key_of(record)
        values = self.values_of(record)
        if slide == size:  # tumbling: one window
            starts: Iterable[int] = ((t // size) * size,)
        else:  # window starts k * slide with start <= t < start + size
            starts = range(((t - size) // slide + 1) * slide, (t // slide) * slide + 1, slide)
        added = False
        for start in starts:
            if start + size <= mark:
                continue  # that window is closed: this event's share of it is dropped
            slot = self.open.get((start, key))
            if slot is None:
                slot = self.open[(start, key)] = [a.new() for a in self.aggs]
                heapq.heappush(self._heap, (start + size, start, sort_key(key), key))
            self.fold(slot, values)
            added = True
        return added

    def settle(self) -> int:
        """Close the windows the watermark has reached; returns how many."""
        mark = self.watermark()
        count = 0
        heap = self._heap
        while heap and mark is not None and heap[0][0] <= mark:
            end, start, _, key = heapq.heappop(heap)
            slot = self.open.pop((start, key))
            self.closed.append((start, end, key, self.results(slot)))
            count += 1
        self.closed_count += count
        return count

    def flush(self) -> int:
        if self.open:
            end = max(start for start, _ in self.open) + self.size
            self.floor = end if self.floor is None else max(self.floor, end)
        return self.settle()

    @property
    def open_count(self) -> int:
        return len(self.open)

    def rows(self, include_open: bool) -> list[tuple[int, int, Key, list[Any], bool]]:
        rows = [(s, e, k, list(v), True) for s, e, k, v in self.closed]
        if include_open:
            rows += [
                (s, s + self.size, k, self.results(slot), False)
                for (s, k), slot in self.open.items()
            ]
        return rows

    def dump(self) -> dict[str, Any]:
        data = self._dump_common()
        data["open"] = [[s, list(k), slot] for (s, k), slot in self.open.items()]
        return data

    def load(self, data: dict[str, Any]) -> None:
        self.reset()
        self._load_common(data)
        for s, k, slot in data["open"]:
            key = tuple(k)
            self.open[(int(s), key)] = list(slot)
            self._heap.append((int(s) + self.size, int(s), sort_key(key), key))
        heapq.heapify(self._heap)


class _Session:
    __slots__ = ("alive", "first", "last", "slot")

    def __init__(self, first: int, last: int, slot: list[Any]) -> None:
        self.first = first
        self.last = last
        self.slot = slot
        self.alive = True


class SessionWindows(_Windows):
    """Session windows per key: ``[first, last + gap)``, merged when an event bridges."""

    def __init__(
        self, gap: int, keys: list[str], aggregates: dict[str, list[str]], lateness: int, keep: int
    ) -> None:
        self.gap = gap
        super().__init__(keys, aggregates, lateness, keep)

    def reset(self) -> None:
        super().reset()
        self.sessions: dict[Key, list[_Session]] = {}
        # (end, first, key order, ticket, key, session); entries of sessions that grew or
        # merged since are stale and skipped when popped.
        self._heap: list[tuple[int, int, Any, int, Key, _Session]] = []

    def _track(self, key: Key, session: _Session) -> None:
        entry = (session.last + self.gap, session.first, sort_key(key), next(self._ticket))
        heapq.heappush(self._heap, (*entry, key, session))

    def push(self, record: Record) -> bool:
        """Fold ``record`` into its key's session; False if it is late and joins none."""
        t = record["timestamp"]
        mark = self._see(t)
        gap = self.gap
        key = self.key_of(record)
        values = self.values_of(record)
        sessions = self.sessions.setdefault(key, [])
        # A session still open (the watermark has not passed last + gap) that the event
        # touches; one already closed is final, even if this (late) event falls within it.
        joined = [
            s for s in sessions if s.first - gap <= t <= s.last + gap and mark <= s.last + gap
        ]
        if not joined:
            if t < mark:
                if not sessions:
                    del self.sessions[key]
                return False
            session = _Session(t, t, [a.new() for a in self.aggs])
            sessions.append(session)
        else:
            session = joined[0]
            for other in joined[1:]:
                session.slot = [
                    a.merge(x, y)
                    for a, x, y in zip(self.aggs, session.slot, other.slot, strict=True)
                ]
                session.first = min(session.first, other.first)
                session.last = max(session.last, other.last)
                other.alive = False
                sessions.remove(other)
        before = session.last
        session.first = min(session.first, t)
        session.last = max(session.last, t)
        self.fold(session.slot, values)
        if len(joined) != 1 or session.last != before:
            self._track(key, session)
        return True

    def settle(self) -> int:
        """Close the sessions the watermark has passed; returns how many."""
        mark = self.watermark()
        heap = self._heap
        count = 0
        while heap and mark is not None and heap[0][0] < mark:
            end, _, _, _, key, session = heapq.heappop(heap)
            if not session.alive or session.last + self.gap != end:
                continue  # stale: the session grew or was merged into another
            session.alive = False
            sessions = self.sessions[key]
            sessions.remove(session)
            if not sessions:
                del self.sessions[key]
            self.closed.append((session.first, end, key, self.results(session.slot)))
            count += 1
        self.closed_count += count
        return count

    def flush(self) -> int:
        ends = [s.last + self.gap for group in self.sessions.values() for s in group]
        if ends:
            end = max(ends) + 1  # a session closes once the watermark is past last + gap
            self.floor = end if self.floor is None else max(self.floor, end)
        return self.settle()

    @property
    def open_count(self) -> int:
        return sum(len(group) for group in self.sessions.values())

    def rows(self, include_open: bool) -> list[tuple[int, int, Key, list[Any], bool]]:
        rows = [(s, e, k, list(v), True) for s, e, k, v in self.closed]
        if include_open:
            rows += [
                (s.first, s.last + self.gap, k, self.results(s.slot), False)
                for k, group in self.sessions.items()
                for s in group
            ]
        return rows

    def dump(self) -> dict[str, Any]:
        data = self._dump_common()
        data["open"] = [
            [list(k), s.first, s.last, s.slot] for k, group in self.sessions.items() for s in group
        ]
        return data

    def load(self, data: dict[str, Any]) -> None:
        self.reset()
        self._load_common(data)
        for k, first, last, slot in data["open"]:
            key = tuple(k)
            session = _Session(int(first), int(last), list(slot))
            self.sessions.setdefault(key, []).append(session)
            self._track(key, session)


class Groups(_Keyed):
    """A reduce without a window: running aggregates per group, over every record."""

    def __init__(self, keys: list[str], aggregates: dict[str, list[str]]) -> None:
        super().__init__(keys, aggregates, 0)
        self.reset()

    def reset(self) -> None:
        self.groups: dict[Key, list[Any]] = {}

    def push(self, record: Record) -> bool:
        key = self.key_of(record)
        slot = self.groups.get(key)
        if slot is None:
            slot = self.groups[key] = [a.new() for a in self.aggs]
        self.fold(slot, self.values_of(record))
        return True

    def row(self, key: Key) -> dict[str, Any]:
        """One group's aggregates by column name.

        Raises:
            KeyError: no record had that key.
        """
        slot = self.groups[key]
        return dict(zip([a.column for a in self.aggs], self.results(slot), strict=True))

    def frame(self) -> pd.DataFrame:
        """The keys and the aggregates, one row per group, sorted by key."""
        import pandas as pd

        keys = sorted(self.groups, key=sort_key)
        out = pd.DataFrame(index=range(len(keys)))
        for j, name in enumerate(self.keys):
            out[name] = pd.Series([k[j] for k in keys], dtype=object)
        _value_columns(out, self.aggs, [self.results(self.groups[k]) for k in keys])
        return out

    def dump(self) -> dict[str, Any]:
        return {"groups": [[list(k), slot] for k, slot in self.groups.items()]}

    def load(self, data: dict[str, Any]) -> None:
        self.groups = {tuple(k): list(slot) for k, slot in data["groups"]}
