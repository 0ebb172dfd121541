"""Running a server: open the stores, serve them with uvicorn, close them on the way out.

The server process owns its stores: each is opened for writing (taking its folder's
write lock) before the first request and closed (checkpointed, fsynced, unlocked) after
the last, when uvicorn stops on SIGINT or SIGTERM. A ``kill -9`` loses nothing a 2xx
acknowledged under ``fsync="always"`` (RELIABILITY.md, "What a 2xx promises").
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from allsource_lab.errors import InvalidArgument
from allsource_lab.server.access import LOOPBACK_HOSTS, Tenant
from allsource_lab.server.app import ServerConfig, create_app
from allsource_lab.server.keys import KeyRing, keys_file

__all__ = ["DEFAULT_PORT", "serve"]

DEFAULT_PORT = 3900  # the reference server's port


def serve(
    stores: Mapping[str, str | os.PathLike[str]],
    *,
    default: str | None = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    require_keys: bool = False,
    config: ServerConfig | None = None,
    store_settings: Mapping[str, Any] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve the stores (tenant name -> folder) until interrupted.

    ``default`` is the tenant that keyless requests reach on a loopback ``host`` (the
    first one if None). ``store_settings`` are ``asl.open`` settings for every store
    (e.g. ``fsync="always"``). Bound to an address other than loopback, or with
    ``require_keys``, every request but ``/health`` needs a key.

    Raises:
        InvalidArgument: no store, or an unknown default tenant.
        StoreLocked: another process has a store open for writing.
    """
    import uvicorn

    from allsource_lab.store import open as open_store

    if not stores:
        raise InvalidArgument("serve needs at least one store (PATH, or --store NAME=PATH)")
    default = default or next(iter(stores))
    if default not in stores:
        raise InvalidArgument(f"no store named {default!r} to serve as the default")
    keyless = host in LOOPBACK_HOSTS and not require_keys
    base = config or ServerConfig()
    config = ServerConfig(
        keyless=keyless,
        max_body_bytes=base.max_body_bytes,
        rate_per_s=base.rate_per_s,
        burst=base.burst,
        allow_origins=base.allow_origins,
    )
    tenants: dict[str, Tenant] = {}
    undo = contextlib.ExitStack()
    try:
        for name, path in stores.items():
            store = open_store(Path(path), **dict(store_settings or {}))
            tenants[name] = Tenant(name, store, KeyRing(keys_file(path)))
        app = create_app(tenants, default, config)
        _stop_on_sigterm(undo)
        # What exists now (modules, the stores' indexes) lives as long as the server:
        # frozen, the collector's full passes no longer walk it. A JSON batch of 10,000
        # events makes ~30,000 objects, enough to set off such passes; the server's CPU
        # per batch fell from ~46 to ~29 ms with this (alternating runs, measured).
        gc.freeze()
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
            # Connections past this are refused, not queued without bound.
            limit_concurrency=4096,
            ws_max_size=1024 * 1024,
            **_http_protocol(),
        )
    except _Terminated:
        pass  # a clean stop: the stores are closed below, the process exits with 0
    finally:
        for tenant in tenants.values():
            with contextlib.suppress(Exception):
                tenant.store.close()
        undo.close()


class _Terminated(Exception):
    """SIGTERM arrived (and uvicorn has finished its graceful shutdown)."""


def _stop_on_sigterm(undo: contextlib.ExitStack) -> None:
    """Make SIGTERM stop the server as SIGINT does, stores closed (``undo`` puts the
    handler before back).

    uvicorn shuts down gracefully on either signal, then raises the signal again for the
    handler it found. SIGTERM's default handler ends the process at once: the stores were
    never closed (no last checkpoint, the lock left to the kernel). This handler raises
    instead, so ``serve`` returns after closing them. Only the main thread may set one.
    """
    if threading.current_thread() is threading.main_thread():

        def handler(signum: int, frame: object) -> None:
            raise _Terminated()

        previous = signal.signal(signal.SIGTERM, handler)
        undo.callback(signal.signal, signal.SIGTERM, previous)


def _http_protocol() -> dict[str, Any]:
    """uvicorn's ``http`` option: httptools with joined writes (server/protocol.py) when
    httptools is installed (the ``serve`` extra installs it), else uvicorn's choice."""
    try:
        from allsource_lab.server.protocol import CoalescingHttpToolsProtocol
    except ImportError:
        return {}
    return {"http": CoalescingHttpToolsProtocol}
