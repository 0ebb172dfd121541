"""``WS /api/v1/events/stream``: live events in order, filtered, resumable without a gap
or a duplicate across a reconnect."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from .conftest import Server


def send_batch(server: Server, rows: list[dict]) -> None:
    with server.client() as http:
        assert http.post("/api/v1/events/batch", json={"events": rows}).status_code == 201


def receive(ws, n: int) -> list[dict]:
    return [json.loads(ws.recv(timeout=30)) for _ in range(n)]


def rows(n: int, start: int = 0, kind: str = "t", entity: str | None = None) -> list[dict]:
    return [
        {"event_type": kind, "entity_id": entity or f"e{i % 5}", "payload": {"i": i}}
        for i in range(start, start + n)
    ]


def test_a_client_resumes_without_gap_or_duplicate(serve, store_path: Path) -> None:
    server = serve(str(store_path))
    send_batch(server, rows(50))
    url = server.ws_url + "/api/v1/events/stream"
    with connect(url + "?after=0") as ws:
        first = receive(ws, 20)
    send_batch(server, rows(30, 50))
    last = first[-1]["sequence"]
    with connect(f"{url}?after={last}") as ws:
        rest = receive(ws, 60)
        send_batch(server, rows(5, 80))  # live, while connected
        live = receive(ws, 5)
    sequences = [e["sequence"] for e in first + rest + live]
    assert sequences == list(range(1, 86))
    assert [e["payload"]["i"] for e in first + rest + live] == list(range(85))


def test_the_stream_filters_by_type_and_entity(serve, store_path: Path) -> None:
    server = serve(str(store_path))
    send_batch(server, rows(10, kind="a") + rows(10, kind="b") + rows(3, kind="c", entity="z"))
    url = server.ws_url + "/api/v1/events/stream"
    with connect(url + "?event_type=b") as ws:
        got = receive(ws, 10)
    assert {e["event_type"] for e in got} == {"b"}
    assert [e["payload"]["i"] for e in got] == list(range(10))
    with connect(url + "?event_type=a,c&entity_id=z") as ws:
        got = receive(ws, 3)
    assert [(e["event_type"], e["entity_id"]) for e in got] == [("c", "z")] * 3


def test_every_client_sees_every_event_in_order(serve, store_path: Path) -> None:
    server = serve(str(store_path))
    url = server.ws_url + "/api/v1/events/stream"
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connect(url)) for _ in range(4)]
        for k in range(5):
            send_batch(server, rows(40, 40 * k))
        for ws in clients:
            assert [e["sequence"] for e in receive(ws, 200)] == list(range(1, 201))


def test_bad_stream_options_are_refused(serve, store_path: Path) -> None:
    server = serve(str(store_path))
    with pytest.raises(InvalidStatus):
        connect(server.ws_url + "/api/v1/events/stream?after=minus-one")


def test_off_loopback_the_stream_needs_a_read_key(serve, store_path: Path) -> None:
    from allsource_lab.server.keys import KeyRing, keys_file

    key, _ = KeyRing(keys_file(store_path)).create("read")
    server = serve(str(store_path), host="0.0.0.0")
    url = server.ws_url + "/api/v1/events/stream"
    with pytest.raises(InvalidStatus):
        connect(url)
    with connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        ws.ping()
