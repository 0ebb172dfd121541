"""``/metrics``: the server's figures in the Prometheus text format (prometheus_client).

Counted as requests are served: requests by tenant, route, method and status; their
latency (a histogram per route); events ingested per tenant; errors by kind (the problem
title: the library's error name, or the server's own). Read from each store when scraped:
stored events, WAL bytes on disk, seal lag (events not yet sealed into a segment: the tail
and any tail being sealed), open subscriptions and WebSocket stream clients.

Each server has its own registry, so two servers in one process (tests) never mix.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from allsource_lab.server.access import Tenant

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Request latency buckets in seconds: the targets are about a millisecond, so finer there.
_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class _StoreFacts(Collector):
    """Figures read from each tenant's store at scrape time."""

    def __init__(self, tenants: Callable[[], list[Tenant]]) -> None:
        self._tenants = tenants

    def collect(self) -> Iterator[GaugeMetricFamily]:
        names = (
            ("allsource_events", "Events stored"),
            ("allsource_wal_bytes", "Bytes of write-ahead log on disk"),
            ("allsource_seal_lag_events", "Events not yet sealed into a Parquet segment"),
            ("allsource_subscriptions", "Open subscriptions"),
            ("allsource_stream_clients", "Connected WebSocket stream clients"),
        )
        families = {name: GaugeMetricFamily(name, text, labels=["tenant"]) for name, text in names}
        for tenant in self._tenants():
            store = tenant.store
            if store.closed:
                continue
            facts = store.stats()
            values = {
                "allsource_events": facts["events"],
                "allsource_wal_bytes": facts["wal_bytes"],
                "allsource_seal_lag_events": facts["tail_events"] + facts["sealing_events"],
                "allsource_subscriptions": len(store.feed.subscriptions),
                "allsource_stream_clients": 0 if tenant.hub is None else tenant.hub.clients,
            }
            for name, value in values.items():
                families[name].add_metric([tenant.name], value)
        yield from families.values()


class Metrics:
    """The server's Prometheus registry and the counters its requests update."""

    def __init__(self, tenants: Callable[[], list[Tenant]]) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "allsource_requests",
            "HTTP requests served",
            ["tenant", "route", "method", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "allsource_request_seconds",
            "Time to answer a request, by route",
            ["route", "method"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self._ingested = Counter(
            "allsource_ingested_events",
            "Events appended through the API",
            ["tenant"],
            registry=self.registry,
        )
        self._errors = Counter(
            "allsource_errors",
            "Refused or failed requests, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.registry.register(_StoreFacts(tenants))
        # Label children cached: .labels() costs ~2 us a call, a dict lookup ~0.05 us.
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: Any) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def request(self, tenant: str, route: str, method: str, status: int, started: float) -> None:
        self._child(self._requests, tenant, route, method, status).inc()
        self._child(self._latency, route, method).observe(time.perf_counter() - started)

    def ingested(self, tenant: str, count: int) -> None:
        self._child(self._ingested, tenant).inc(count)

    def error(self, kind: str) -> None:
        self._child(self._errors, kind).inc()

    def text(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)
