"""Who may do what: tenants, API keys, roles and per-key rate limits.

A request names its key in ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. The
key decides the tenant (the store whose keys file holds it) and the role. A server bound
to a loopback address also answers requests without a key, as the default tenant with
the admin role: only processes of the same machine can reach it (unless a reverse proxy
forwards to it: then ``--require-keys``). Bound to any other address it answers nothing
but ``/health`` without a valid key (401), and a key whose role is below what the
operation needs gets 403.

Rate limits are token buckets per key: ``rate_per_s`` tokens a second up to ``burst``;
a request finding no token gets 429 with ``Retry-After`` (whole seconds until one is
back) and changes nothing.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from allsource_lab.server.keys import ROLES, ApiKey, KeyRing
from allsource_lab.server.problems import HttpProblem

if TYPE_CHECKING:
    from allsource_lab.server.stream import StreamHub
    from allsource_lab.store import EventStore

__all__ = ["LOOPBACK_HOSTS", "Caller", "Gate", "Tenant"]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(eq=False)
class Tenant:
    """One served store: its name (``--store NAME=PATH``), the open store, its keys."""

    name: str
    store: EventStore
    keys: KeyRing
    hub: StreamHub | None = None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request comes from: its tenant, role, and key id (None without a key)."""

    tenant: Tenant
    role: str
    key_id: str | None


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class Gate:
    """Authenticates requests, checks roles and applies rate limits."""

    tenants: dict[str, Tenant]
    default: Tenant
    keyless: bool  # a loopback server: requests without a key are the default tenant's
    rate_per_s: float = 100.0
    burst: int = 200
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def caller(self, headers: Any) -> Caller:
        """The caller of a request with these headers.

        Raises:
            HttpProblem: 401 without a key where one is needed, or with an unknown or
                revoked key.
        """
        key = _key_of(headers)
        if key is None:
            if self.keyless:
                return Caller(self.default, "admin", None)
            raise HttpProblem(
                401,
                "Unauthorized",
                "this server needs an API key: send 'Authorization: Bearer <key>' or "
                "'X-API-Key: <key>' (make one with 'allsource keys PATH create')",
                {"WWW-Authenticate": 'Bearer realm="allsource"'},
            )
        for tenant in self.tenants.values():
            record = tenant.keys.find(key)
            if record is not None:
                self._admit(record)
                return Caller(tenant, record.role, record.id)
        raise HttpProblem(
            401,
            "Unauthorized",
            "the API key is unknown or revoked; ask for a new one ('allsource keys PATH create')",
            {"WWW-Authenticate": 'Bearer realm="allsource", error="invalid_token"'},
        )

    def _admit(self, record: ApiKey) -> None:
        """Take one token from the key's bucket, or refuse with 429."""
        rate = record.rate_per_s if record.rate_per_s is not None else self.rate_per_s
        burst = record.burst if record.burst is not None else self.burst
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(record.id)
            if bucket is None:
                bucket = self._buckets[record.id] = _Bucket(float(burst), now)
            bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.stamp) * rate)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait = (1.0 - bucket.tokens) / rate
        raise HttpProblem(
            429,
            "RateLimited",
            f"this key may make {rate:g} requests a second (bursts of {burst}); retry after "
            f"{wait:.2f} s",
            {"Retry-After": str(max(1, math.ceil(wait)))},
        )


def require(caller: Caller, role: str) -> None:
    """Refuse (403) a caller whose role is below ``role``."""
    if ROLES.index(caller.role) < ROLES.index(role):
        raise HttpProblem(
            403,
            "Forbidden",
            f"this operation needs a key with the {role!r} role; this key has {caller.role!r}",
        )


def _key_of(headers: Any) -> str | None:
    auth = headers.get("authorization")
    if auth is not None:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return str(value.strip())
    key = headers.get("x-api-key")
    return str(key.strip()) if key else None
