"""Example mime bundles of every display kind, for the JupyterLab extension's tests.

``python -m allsource_lab.notebook.fixtures OUTDIR`` writes one file per fixture
(``events.json``, ``state.json``, ..., and variants such as ``events-by-type.json`` or
``integrity-bad.json``), each the whole mime bundle ``display.bundle`` returns — the
``application/vnd.allsource.v1+json`` document, ``text/html`` and ``text/plain`` (and a
window's Vega-Lite chart) — as JSON with sorted keys and an indent of 1. The extension's
jest tests render these files, and a Python test regenerates them and compares, so a
change to a document on either side shows up as a failing test on both.

The documents come from a real store (a small shop: customers, orders, a few dozen
events) through the same views the magics use, so they are what a notebook shows. The
output is byte-for-byte the same on every run: events are appended with fixed event ids
and event times, and the one thing the store decides itself, when it recorded each event
(``recorded_at``), is swapped afterwards for a fixed moment per event — everywhere it
appears, including the ``known_at`` a query asked for. A few results whose figures depend
on the machine (replay speed, memory, integrity checks of damaged files) are written as
the plain objects their views take.

Two fixtures are not version-1 documents on purpose: ``version-2.json`` (a document from
a future format, which a reader must show with the HTML fallback) and
``unknown-kind.json``; they fail ``display/schema.json``, every other one passes it.

>>> bundles = fixtures()
>>> sorted(bundles["events"])
['application/vnd.allsource.v1+json', 'text/html', 'text/plain']
>>> bundles["events"][MIMETYPE]["table"]["rows"][0][6]
'2026-03-02T09:00:00.351000Z'
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from allsource_lab.display import MIMETYPE, StoreInfo, View, bundle
from allsource_lab.display.render import render_html, render_text
from allsource_lab.display.views import (
    CheckpointView,
    CompactionView,
    CompatibilityView,
    EventsView,
    IngestView,
    IntegrityView,
    PipelinesView,
    ProgressView,
    ProjectionsView,
    ReplayView,
    SchemaListView,
    SchemaReportView,
    SchemaView,
    StateView,
    StatsView,
    StoreView,
    TableView,
    WindowView,
)
from allsource_lab.events import _iso
from allsource_lab.integrity import IntegrityReport
from allsource_lab.projections.runner import ProjectionInfo
from allsource_lab.store import open as open_store

__all__ = ["dumps", "fixtures", "main", "render", "write"]

_START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # the shop opens
# Each event is recorded this long after its event time, plus a few milliseconds more for
# later sequences, so recorded_at rises with sequence as the store's clock would.
_RECORDED_AFTER_US = 350_000


_REGIONS = {"customer-ada": "north", "customer-bo": "south", "customer-cy": "north"}


def _placed(amount: float, customer: str, items: dict[str, int]) -> dict[str, Any]:
    # Amounts are multiples of 1/4, so sums are exact in binary floating point and a
    # window's figures do not depend on the order DuckDB adds them in.
    assert amount * 4 == int(amount * 4), amount
    return {
        "amount": amount,
        "currency": "EUR",
        "customer": customer,
        "items": items,
        "region": _REGIONS[customer],
    }


def _cancelled(reason: str) -> dict[str, Any]:
    # items: null removes the order's items from its state (JSON Merge Patch).
    return {"items": None, "reason": reason, "status": "cancelled"}


def _shipped(carrier: str, tracking: str) -> dict[str, Any]:
    return {"shipment": {"carrier": carrier, "tracking": tracking}, "status": "shipped"}


_DELIVERED = {"shipment": {"delivered": True}, "status": "delivered"}


def _paid(method: str) -> dict[str, Any]:
    return {"method": method, "paid": True}


def _customer(name: str, region: str, tier: str) -> dict[str, Any]:
    return {"name": name, "region": region, "tier": tier}


# (minutes after opening, event type, entity, payload): a morning of a small shop, with
# nested payloads and removals (null) so the states fold JSON Merge Patch for real.
# fmt: off
_SHOP: list[tuple[int, str, str, dict[str, Any]]] = [
    (0, "customer.registered", "customer-ada", _customer("Ada", "north", "gold")),
    (4, "customer.registered", "customer-bo", _customer("Bo", "south", "basic")),
    (7, "order.placed", "order-1001", _placed(42.5, "customer-ada", {"tea": 2, "jam": 1})),
    (9, "order.paid", "order-1001", _paid("card")),
    (12, "customer.registered", "customer-cy", _customer("Cy", "north", "basic")),
    (15, "order.placed", "order-1002", _placed(18.0, "customer-bo", {"coffee": 1})),
    (21, "order.placed", "order-1003", _placed(73.25, "customer-cy", {"tea": 5, "mugs": 2})),
    (24, "order.paid", "order-1002", _paid("cash")),
    (30, "order.shipped", "order-1001", _shipped("PostNord", "PN-58213")),
    (33, "customer.moved", "customer-ada", {"address": {"city": "Oslo", "street": "Storgata 1"}}),
    (38, "order.paid", "order-1003", _paid("card")),
    (41, "order.placed", "order-1004", _placed(9.75, "customer-ada", {"jam": 3})),
    (47, "order.cancelled", "order-1004", _cancelled("out of stock")),
    (52, "order.placed", "order-1005", _placed(120.0, "customer-bo", {"coffee": 4, "grinder": 1})),
    (58, "order.shipped", "order-1002", _shipped("DHL", "DHL-77120")),
    (61, "customer.tier_changed", "customer-bo", {"tier": "gold"}),
    (66, "order.paid", "order-1005", _paid("card")),
    (70, "order.placed", "order-1006", _placed(31.0, "customer-cy", {"tea": 1, "honey": 2})),
    (74, "order.shipped", "order-1003", _shipped("PostNord", "PN-58377")),
    (79, "order.item_returned", "order-1001", {"items": {"jam": None}, "refund": 6.5}),
    (83, "customer.moved", "customer-cy", {"address": {"city": "Bergen", "street": "Bryggen 4"}}),
    (88, "order.paid", "order-1006", _paid("voucher")),
    (92, "order.placed", "order-1007", _placed(56.5, "customer-ada", {"coffee": 2, "mugs": 4})),
    (97, "order.shipped", "order-1005", _shipped("DHL", "DHL-77404")),
    (103, "order.paid", "order-1007", _paid("card")),
    (108, "order.delivered", "order-1001", _DELIVERED),
    (114, "order.placed", "order-1008", _placed(14.75, "customer-bo", {"honey": 1})),
    (119, "order.shipped", "order-1006", _shipped("PostNord", "PN-58502")),
    (125, "customer.moved", "customer-ada", {"address": {"street": "Karl Johans gate 7"}}),
    (131, "order.delivered", "order-1002", _DELIVERED),
    (136, "order.paid", "order-1008", _paid("cash")),
    (142, "order.shipped", "order-1007", _shipped("DHL", "DHL-77561")),
    (150, "order.delivered", "order-1003", _DELIVERED),
    (157, "order.placed", "order-1009", _placed(88.25, "customer-cy", {"grinder": 1, "tea": 3})),
    (163, "order.delivered", "order-1005", _DELIVERED),
    (170, "order.cancelled", "order-1009", _cancelled("customer request")),
]
# fmt: on


def _event_id(sequence: int, timestamp: dt.datetime) -> uuid.UUID:
    """A fixed, time-ordered (version 7 layout) id: the event time's milliseconds, then
    the sequence where a generator would put its random counter."""
    ms = int(timestamp.timestamp() * 1000)
    value = (ms << 80) | (0x7 << 76) | (0b10 << 62) | (0xA5 << 40) | sequence
    return uuid.UUID(int=value)


def _shop() -> tuple[Any, dict[str, str]]:
    """The shop store (in memory) and what to replace each real ``recorded_at`` with."""
    store = open_store()
    for sequence, (minutes, event_type, entity_id, payload) in enumerate(_SHOP, start=1):
        when = _START + dt.timedelta(minutes=minutes)
        store.append(
            event_type,
            entity_id,
            payload,
            metadata={"source": "pos"} if event_type == "order.placed" else None,
            timestamp=when,
            event_id=_event_id(sequence, when),
        )
    fixed = {}
    for event in store.events():
        moment = event.timestamp_us + _RECORDED_AFTER_US + 1_000 * event.sequence
        fixed[_iso(event.recorded_at_us)] = _iso(moment)
    return store, fixed


def _recorded(store: Any, sequence: int) -> str:
    """The real ``recorded_at`` of one event (a ``known_at`` to ask with)."""
    (event,) = store.events(after=sequence - 1, limit=1)
    return _iso(event.recorded_at_us)


def _swap(value: Any, fixed: dict[str, str]) -> Any:
    """``value`` with every text that is a real recording time replaced by its fixed one."""
    if isinstance(value, str):
        return fixed.get(value, value)
    if isinstance(value, dict):
        return {k: _swap(v, fixed) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap(v, fixed) for v in value]
    return value


def render(
    view: View | Any, fixed: dict[str, str] | None = None, limit: int = 50
) -> dict[str, Any]:
    """The bundle of ``view`` with recording times fixed, its HTML and text redrawn."""
    out = bundle(view, limit=limit)
    doc = _swap(out[MIMETYPE], fixed or {})
    out[MIMETYPE] = doc
    out["text/html"] = render_html(doc)
    out["text/plain"] = render_text(doc)
    return out


def _without(out: dict[str, Any], member: str) -> dict[str, Any]:
    """A bundle whose document lacks an optional ``member`` (as an older producer's)."""
    doc = {k: v for k, v in out[MIMETYPE].items() if k != member}
    return {**out, MIMETYPE: doc}


def _chart(frame: Any) -> Any:
    # A window document may carry a chart (the extension still renders one): the Altair
    # chart the magic draws, whose spec the view offers under the Vega-Lite v5 mimetype.
    from allsource_lab.notebook.charts import window_chart

    return window_chart(frame)


def fixtures() -> dict[str, dict[str, Any]]:
    """Every fixture by name (its file is ``<name>.json``): each a whole mime bundle."""
    store, fixed = _shop()
    info = StoreInfo.of(store)
    out: dict[str, dict[str, Any]] = {}
    try:
        # The schema group changes the shop (it registers two subjects), so it comes
        # after every group that shows the shop as it was filled.
        for group in (_events_and_states, _tables_and_windows, _store_reports, _schemas):
            out.update(group(store, info, fixed))
        out.update(_live_features(info, fixed))
        out.update(_not_version_1(out["events-single"], info))
    finally:
        store.close()
    return out


def _events_and_states(store: Any, info: StoreInfo, fixed: dict[str, str]) -> dict[str, Any]:
    """Frames of every kind of query, a lone event, and states now and in the past."""
    moment = _recorded(store, 30)
    by_entity = store.events(entity_id="order-1001", as_of="2026-03-02T10:30:00Z", known_at=moment)
    # An appended event shown without its store: its state is not known.
    (single,) = store.events(after=35, limit=1)
    state = StateView.of(store, "order-1001")
    at = StateView.of(store, "customer-ada", as_of="2026-03-02T10:00:00Z", known_at=moment)
    first = StateView.of(store, "order-1002", as_of="2026-03-02T09:20:00Z")
    for view in (state, at, first):
        view.store = info
    ada = EventsView(store.events(entity_id="customer-ada"), store=info)
    return {
        "events": render(EventsView(store.events(), store=info), fixed),
        "events-by-type": render(
            EventsView(store.events(event_type="order.placed"), store=info), fixed, 5
        ),
        "events-entity": render(EventsView(by_entity, store=info), fixed),
        "events-page": render(EventsView(store.events(after=10, limit=8), store=info), fixed),
        "events-single": render(EventsView([single], store=info), fixed),
        "events-no-states": _without(render(ada, fixed), "states"),
        "state": render(state, fixed),
        "state-as-of": render(at, fixed),
        "state-first-version": render(first, fixed),
    }


def _tables_and_windows(store: Any, info: StoreInfo, fixed: dict[str, str]) -> dict[str, Any]:
    """A SQL result, and windows with and without a chart, keyed and not."""
    query = (
        "select event_type, count(*) as events, round(sum((payload->>'amount')::double), 2)"
        " as amount from events group by 1 order by 1"
    )
    spec = {"event_type": "order.placed", "every": "1h", "agg": {"payload.amount": "sum"}}
    frame = store.window(**spec)
    by_spec = {"event_type": "order.placed", "every": "1h", "by": "payload.region"}
    by_agg = {"payload.amount": ["sum", "avg"]}
    by_frame = store.window(**by_spec, agg=by_agg)
    return {
        "table": render(TableView(store.sql(query).df(), query=query, store=info), fixed),
        "window": render(
            WindowView(frame, {**spec, "kind": "tumbling"}, chart=_chart(frame), store=info),
            fixed,
        ),
        "window-by-key": render(
            WindowView(by_frame, {**by_spec, "agg": by_agg}, chart=_chart(by_frame), store=info),
            fixed,
        ),
        "window-no-chart": render(WindowView(frame, spec, store=info), fixed),
    }


def _store_reports(store: Any, info: StoreInfo, fixed: dict[str, str]) -> dict[str, Any]:
    """What the store reports of itself: stats, integrity, open, ingest, checkpoint, ...

    Figures that depend on the machine (memory) or on damaged files are fixed here."""
    stats = {**store.stats(), "memory_bytes": 131_072, "wal_bytes_buffered": 9_216}
    damage = [
        "wal/00000002.wal at byte 4096: checksum mismatch",
        "segments/00000001.parquet: sha256 does not match the manifest",
    ]
    ingest = IngestView("orders.csv", rows=120, appended=117, first_sequence=37, last_sequence=153)
    views: dict[str, View] = {
        "stats": StatsView(stats, store=info),
        "integrity": IntegrityView(IntegrityReport(False, damage, 9), store=info),
        "integrity-bad": IntegrityView(IntegrityReport(False, damage[:1], 4), store=info),
        "integrity-ok": IntegrityView(IntegrityReport(True, [], 9), store=info),
        "store": StoreView.of(store, note="replaced the store at demo.events"),
        "ingest": ingest,
        "checkpoint": CheckpointView({"events": 36, "through_sequence": 36}, store=info),
        "compaction": CompactionView({"events": 3000, "segments": 3}, store=info),
        "progress": ProgressView(done=750, total=3000, label="ingesting", unit="events"),
    }
    return {name: render(view, fixed) for name, view in views.items()}


def _schemas(store: Any, info: StoreInfo, fixed: dict[str, str]) -> dict[str, Any]:
    """Two subjects registered on the shop: one version, a failed check, the list, a mode."""
    registry = store.schemas
    placed = {
        "type": "object",
        "required": ["amount", "currency"],
        "properties": {"amount": {"type": "number", "minimum": 0}, "currency": {"type": "string"}},
    }
    registry.register("order.placed", placed)
    registry.register("customer.registered", {"type": "object", "required": ["name"]}, "FULL")
    version = SchemaView(
        registry.get("order.placed"),
        versions=registry.versions("order.placed"),
        compatibility=registry.compatibility("order.placed"),
        store=info,
    )
    stricter = {**placed, "required": ["amount", "currency", "coupon"]}
    report = registry.check("order.placed", stricter)
    listed = {s: (registry.versions(s), registry.compatibility(s)) for s in registry.subjects()}
    views: dict[str, View] = {
        "schema": version,
        "schema_report": SchemaReportView(report, subject="order.placed", store=info),
        "schema_list": SchemaListView(listed, registry.compatibility(), store=info),
        "compatibility": CompatibilityView("order.placed", "FULL", store=info),
    }
    return {name: render(view, fixed) for name, view in views.items()}


def _live_features(info: StoreInfo, fixed: dict[str, str]) -> dict[str, Any]:
    """Projections, a pipeline and replays, as the plain objects their views take: their
    figures (lag, speed, an error's moment) would differ on every run of a real one."""
    infos = [
        ProjectionInfo("event_counter", "running", 36, 0, True, None, None),
        ProjectionInfo("entity_snapshots", "replaying", 20, 16, False, None, None),
        ProjectionInfo(
            "revenue", "stopped", 12, 24, True, 13, "KeyError: 'amount' (order.paid at 13)"
        ),
    ]
    pipeline = {
        "name": "hourly_revenue",
        "status": "running",
        "position": 36,
        "lag": 0,
        "events_in": 9,
        "events_out": 3,
        "filtered": 27,
        "late": 0,
        "dropped": 27,
        "errors": 0,
        "last_error": None,
        "windows_open": 1,
        "windows_closed": 2,
    }
    job = SimpleNamespace(
        id=3,
        projection=SimpleNamespace(name="event_counter"),
        status="running",
        progress=SimpleNamespace(
            processed=24_000, total=36_000, percent=66.667, events_per_sec=1_250_000.0, eta_s=0.01
        ),
        error=None,
    )
    failed = SimpleNamespace(
        id=4,
        projection=SimpleNamespace(name="revenue"),
        status="failed",
        progress=SimpleNamespace(
            processed=12, total=36, percent=33.333, events_per_sec=0.0, eta_s=None
        ),
        error=KeyError("amount"),
    )
    views: dict[str, View] = {
        "projections": ProjectionsView(infos, store=info),
        "pipelines": PipelinesView([pipeline], store=info),
        "replay": ReplayView(job, store=info),
        "replay-failed": ReplayView(failed, store=info),
    }
    return {name: render(view, fixed) for name, view in views.items()}


def _not_version_1(events: dict[str, Any], info: StoreInfo) -> dict[str, Any]:
    """What a version-1 reader must not render itself: a future version of an events
    bundle, and a kind it does not know."""
    future = {**events[MIMETYPE], "version": 2}
    return {
        "version-2": {**events, MIMETYPE: future},
        "unknown-kind": {
            MIMETYPE: {"kind": "hologram", "version": 1, "store": info.document()},
            "text/html": '<div class="allsource"><strong>a hologram</strong></div>',
            "text/plain": "a hologram",
        },
    }


def write(outdir: Path | str, names: Sequence[str] | None = None) -> list[Path]:
    """Write every fixture (or those ``names``) as ``<name>.json`` into ``outdir``
    (created if missing); other ``.json`` files there are removed when all are written.

    Returns the files written, sorted.
    """
    folder = Path(outdir)
    folder.mkdir(parents=True, exist_ok=True)
    made = fixtures()
    wanted = sorted(made) if names is None else sorted(names)
    written = []
    for name in wanted:
        path = folder / f"{name}.json"
        path.write_text(dumps(made[name]), encoding="utf-8")
        written.append(path)
    if names is None:
        for stale in set(folder.glob("*.json")) - set(written):
            stale.unlink()
    return written


def dumps(value: Any) -> str:
    """The file text of one fixture: sorted keys, indent 1, UTF-8 text, a final newline.

    >>> print(dumps({"b": [1], "a": "é"}))
    {
     "a": "é",
     "b": [
      1
     ]
    }
    <BLANKLINE>
    """
    return json.dumps(value, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None, out: Callable[[str], Any] = print) -> int:
    """``python -m allsource_lab.notebook.fixtures OUTDIR``."""
    parser = argparse.ArgumentParser(
        prog="python -m allsource_lab.notebook.fixtures",
        description="Write an example mime bundle of every AllSource display kind.",
    )
    parser.add_argument("outdir", help="folder to write <name>.json into (e.g. extension/fixtures)")
    args = parser.parse_args(argv)
    written = write(args.outdir)
    out(f"wrote {len(written)} fixtures to {args.outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
