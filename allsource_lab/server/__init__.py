"""``allsource serve``: stores served over HTTP and WebSocket, with keys, roles and limits.

The API follows the paths of the AllSource Core reference server under ``/api/v1`` and
the names and meaning of the Python API (docs/openapi.json lists every operation). The
modules:

- ``app``: the ASGI application (Starlette) over open stores; ``run``: serving it with
  uvicorn, owning the stores.
- ``events_api``, ``operations_api``, ``analytics_api``: the operations; ``stream``: the
  WebSocket stream of live events.
- ``access``: tenants, keys, roles and rate limits; ``keys``: the keys files.
- ``routing``: what every request goes through; ``inputs``: parameters and bodies;
  ``render``: results as JSON; ``problems``: errors as RFC 9457 problem details.
- ``metrics``: ``/metrics`` for Prometheus; ``openapi``: the OpenAPI document.

Needs the ``serve`` extra (``pip install 'allsource-lab[serve]'``).
"""

from __future__ import annotations

__all__ = ["ServerConfig", "create_app", "serve"]

from allsource_lab.server.app import ServerConfig, create_app
from allsource_lab.server.run import serve
