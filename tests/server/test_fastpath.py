"""The server's fast paths answer exactly as the general ones.

- ``POST /api/v1/events`` answered from the ASGI scope (server/fastpath.py) against the
  same request through Starlette (the application with its fast path turned off), byte
  for byte but for the event's id and times: good events, every refusal, keys, roles and
  rate limits, a body past the limit with and without Content-Length.
- JSON batches turned into Arrow columns by the server against the same events given to
  ``append_batch`` as dicts: the same events stored, or the same error.
- The text helpers against the standard library; the protocol that joins writes against
  pipelined requests, large answers and closing connections on a real server.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import re
import socket
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import allsource_lab as asl
from allsource_lab.errors import AllSourceError
from allsource_lab.events import us_to_datetime
from allsource_lab.server.access import Tenant
from allsource_lab.server.app import ServerConfig, create_app
from allsource_lab.server.events_api import _append_json_batch
from allsource_lab.server.keys import KeyRing
from allsource_lab.server.render import iso, rows_of, uuid_text

from .conftest import Server

# -- in-process ASGI calls ----------------------------------------------------------------


class App:
    """An application over a new store; ``fast`` False answers through Starlette only."""

    def __init__(self, folder: Path, fast: bool, config: ServerConfig | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "s.events"
        self.store = asl.open(self.path)
        self.keys = KeyRing(str(self.path) + ".keys.json")
        tenant = Tenant("default", self.store, self.keys)
        self.app: Any = create_app({"default": tenant}, "default", config)
        self.state = self.app.state.server
        if not fast:
            self.app.fast_ingest = None

    def post(
        self, body: bytes | list[bytes], headers: dict[str, str] | None = None, length: bool = True
    ) -> tuple[int, dict[str, str], bytes]:
        chunks = [body] if isinstance(body, bytes) else body
        raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        if length:
            raw.append((b"content-length", str(sum(map(len, chunks))).encode()))
        return asyncio.run(_call(self.app, "POST", "/api/v1/events", raw, chunks))


async def _call(
    app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
) -> tuple[int, dict[str, str], bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 3900),
    }
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    assert start["type"] == "http.response.start"
    body = b"".join(m.get("body", b"") for m in sent[1:])
    head = {k.decode(): v.decode() for k, v in start["headers"]}
    assert int(head["content-length"]) == len(body)
    return start["status"], head, body


_VARYING = ("event_id", "timestamp", "recorded_at")


def _masked(body: bytes, sent: dict[str, Any]) -> Any:
    """An answer's JSON with what differs between two stores (ids, times) taken out, unless
    the request gave it."""
    value = json.loads(body)
    if isinstance(value, dict) and "sequence" in value:
        for name in _VARYING:
            if name not in sent:
                value.pop(name)
    return value


def _assert_same(fast: App, slow: App, body: bytes, **kw: Any) -> tuple[int, Any]:
    a_status, a_head, a_body = fast.post(body, **kw)
    b_status, b_head, b_body = slow.post(body, **kw)
    try:
        sent = json.loads(body) if isinstance(body, bytes) else {}
    except ValueError:
        sent = {}
    sent = sent if isinstance(sent, dict) else {}
    assert a_status == b_status, (a_body, b_body)
    for name in ("content-type", "www-authenticate", "retry-after"):
        assert a_head.get(name) == b_head.get(name), name
    assert _masked(a_body, sent) == _masked(b_body, sent)
    return a_status, json.loads(a_body)


@pytest.fixture
def pair(tmp_path: Path):
    fast, slow = App(tmp_path / "fast", True), App(tmp_path / "slow", False)
    yield fast, slow
    fast.store.close()
    slow.store.close()


def _event(**more: Any) -> bytes:
    return orjson.dumps({"event_type": "t", "entity_id": "e", "payload": {"n": 1}, **more})


def test_single_posts_answer_as_through_starlette(pair) -> None:
    fast, slow = pair
    deep: dict = {}
    node = deep
    for _ in range(100):
        node["a"] = {}
        node = node["a"]
    when = "2026-01-02T03:04:05.123456Z"
    cases = [
        (_event(), 201),
        (_event(metadata={"by": "me"}, timestamp=when), 201),
        (_event(event_id=str(uuid.UUID(int=7))), 201),
        (_event(event_id=str(uuid.UUID(int=7))), 201),  # a retry: the stored event
        (_event(expected_version=1), 409),
        (_event(expected_version=-1), 400),
        (_event(colour=1), 400),
        (b'{"event_type": "t", "payload": {}}', 400),
        (_event(payload=[1]), 400),
        (_event(event_type=""), 400),
        (_event(event_type=7), 400),
        (_event(timestamp="noon"), 400),
        (_event(payload=deep), 400),
        (b"{not json", 400),
        (b"[1, 2]", 400),
        (b"", 400),
    ]
    for body, status in cases:
        got, answer = _assert_same(fast, slow, body)
        assert got == status, answer
        if status != 201:
            assert answer["instance"] == "/api/v1/events"
    assert fast.store.stats()["events"] == slow.store.stats()["events"] == 3
    assert fast.state.failures == slow.state.failures == []


def test_bodies_past_the_limit_are_413_with_or_without_a_length(tmp_path: Path) -> None:
    config = ServerConfig(max_body_bytes=1000)
    fast = App(tmp_path / "fast", True, config)
    slow = App(tmp_path / "slow", False, config)
    big = _event(payload={"s": "x" * 2000})
    status, answer = _assert_same(fast, slow, big)
    assert (status, answer["title"]) == (413, "PayloadTooLarge")
    pieces = [big[i : i + 300] for i in range(0, len(big), 300)]
    status, answer = _assert_same(fast, slow, pieces, length=False)  # type: ignore[arg-type]
    assert (status, answer["title"]) == (413, "PayloadTooLarge")
    status, _ = _assert_same(
        fast, slow, [b'{"event_type": "t", ', b'"entity_id": "e", "payload": {}}']
    )  # type: ignore[arg-type]
    assert status == 201
    status, answer = _assert_same(
        fast, slow, _event(), headers={"content-length": "x"}, length=False
    )
    assert status == 400
    assert fast.store.stats()["events"] == 1


def test_keys_roles_and_rate_limits_answer_as_through_starlette(tmp_path: Path) -> None:
    config = ServerConfig(keyless=False, rate_per_s=0.001, burst=3)
    fast = App(tmp_path / "fast", True, config)
    slow = App(tmp_path / "slow", False, config)
    keys = {}
    for app in (fast, slow):
        write, _ = app.keys.create("write")
        read, _ = app.keys.create("read")
        revoked, record = app.keys.create("admin")
        app.keys.revoke(record.id)
        keys[id(app)] = (write, read, revoked)

    def post(app: App, key: str | None, header: str = "authorization") -> Any:
        headers = (
            {} if key is None else {header: f"Bearer {key}" if header == "authorization" else key}
        )
        return app.post(_event(), headers=headers)

    def both(pick: int | None, header: str = "authorization") -> int:
        answers = [
            post(a, None if pick is None else keys[id(a)][pick], header) for a in (fast, slow)
        ]
        (a_status, a_head, a_body), (b_status, b_head, b_body) = answers
        assert a_status == b_status
        assert a_head.get("www-authenticate") == b_head.get("www-authenticate")
        assert a_head.get("retry-after") == b_head.get("retry-after")
        # The wait in a 429's detail counts down between the two calls.
        a_text, b_text = (re.sub(rb"after [\d.]+ s", b"after N s", t) for t in (a_body, b_body))
        assert _masked(a_text, {}) == _masked(b_text, {})
        return a_status

    assert both(None) == 401
    assert both(2) == 401  # revoked
    assert both(1) == 403  # read
    assert [both(0), both(0, "x-api-key"), both(0)] == [201, 201, 201]
    assert both(0) == 429  # past the burst
    assert fast.store.stats()["events"] == slow.store.stats()["events"] == 3


def test_a_client_gone_mid_body_gets_no_answer_and_no_failure(tmp_path: Path) -> None:
    fast = App(tmp_path / "fast", True)
    sent: list[Any] = []
    messages = [
        {"type": "http.request", "body": b'{"event_type": ', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/v1/events", "headers": []}
    asyncio.run(fast.app(scope, receive, send))
    assert sent == [] and fast.state.failures == []
    assert fast.store.stats()["events"] == 0


# -- JSON batches as columns --------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
_objects = st.dictionaries(st.text(max_size=4), _json_values, max_size=3)
_rows = st.fixed_dictionaries(
    {
        "event_type": st.sampled_from(["a", "b.c", "é"]) | st.sampled_from(["", "x\x01", 5]),
        "entity_id": st.sampled_from(["e1", "e2", "ü"]) | st.sampled_from(["", 3, None]),
        "payload": _objects | st.sampled_from(['{"a": 1}', [1], None]),
    },
    optional={
        "metadata": st.none() | _objects | st.sampled_from(['{"m": 1}', 4]),
        "timestamp": st.sampled_from(["2026-01-01T00:00:00Z", "noon"]),
        "colour": st.just(1),
    },
)
# Mostly plain rows (the columnar path), sometimes anything (the fallback).
_plain = st.fixed_dictionaries(
    {
        "event_type": st.sampled_from(["a", "b.c", "é"]),
        "entity_id": st.sampled_from(["e1", "e2", "ü"]),
        "payload": _objects,
    },
    optional={"metadata": st.none() | _objects},
)


def _stored(store: asl.EventStore, content_ids: bool) -> list[tuple]:
    out = []
    for e in store.events():
        row = (e.sequence, e.event_type, e.entity_id, e.version, e.partition)
        row += (
            bytes(e.payload_json, "utf-8")
            if isinstance(e.payload_json, str)
            else bytes(e.payload_json),
        )
        row += (
            bytes(e.metadata_json, "utf-8")
            if isinstance(e.metadata_json, str)
            else bytes(e.metadata_json),
        )
        if content_ids:
            row += (e.event_id_bytes,)
        out.append(row)
    return out


def _outcome(fn: Any) -> Any:
    try:
        result = fn()
    except AllSourceError as exc:
        return (
            type(exc).__name__,
            str(exc),
            getattr(exc, "row", None),
            getattr(exc, "field", None),
        )
    return (result.first_sequence, result.last_sequence, result.count, result.duplicates)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batches=st.lists(
        st.lists(_plain, min_size=1, max_size=6) | st.lists(_rows, min_size=1, max_size=4),
        min_size=1,
        max_size=3,
    ),
    content_ids=st.booleans(),
)
def test_json_batches_store_what_append_batch_stores_from_dicts(batches, content_ids) -> None:
    columnar, reference = asl.open(), asl.open()
    idempotency = "content" if content_ids else None
    for rows in batches:
        body = orjson.dumps({"events": rows, "idempotency": idempotency})
        got = _outcome(functools.partial(_append_json_batch, columnar, body))
        want = _outcome(functools.partial(reference.append_batch, rows, idempotency=idempotency))
        assert got == want
    assert _stored(columnar, content_ids) == _stored(reference, content_ids)


@pytest.mark.parametrize("on_invalid", ["raise", "skip", "return"])
def test_json_batches_meet_schemas_as_dicts_do(on_invalid: str) -> None:
    schema = {"type": "object", "required": ["email"], "properties": {"email": {"type": "string"}}}
    rows = [
        {"event_type": "user.created", "entity_id": f"u{i}", "payload": payload}
        for i, payload in enumerate([{"email": "a@b"}, {}, {"email": 3}, {"email": "c@d"}])
    ]
    body = orjson.dumps({"events": rows, "on_invalid": on_invalid})
    answers = []
    for columnar in (True, False):
        store = asl.open()
        store.schemas.register("user.created", schema)
        try:
            if columnar:
                result = _append_json_batch(store, body)
            else:
                result = store.append_batch(rows, on_invalid=on_invalid)
        except AllSourceError as exc:
            answers.append((type(exc).__name__, str(exc), getattr(exc, "row", None)))
            continue
        rejected = None if result.rejected_rows is None else rows_of(result.rejected_rows)
        answers.append((result.count, result.rejected, rejected, _stored(store, False)))
    assert answers[0] == answers[1]


# -- text helpers ---------------------------------------------------------------------------


@settings(max_examples=500)
@given(
    st.integers(-(10**17), 253_402_300_799_999_999)
    | st.integers(0, 4_102_444_800).map(lambda s: s * 1_000_000)
)
def test_iso_writes_what_datetime_writes(us: int) -> None:
    try:
        want = us_to_datetime(us).isoformat().replace("+00:00", "Z")
    except OverflowError:
        with pytest.raises(OverflowError):
            iso(us)
        return
    assert iso(us) == want


def test_iso_of_neighbouring_times_is_not_taken_from_the_last_second() -> None:
    base = int(dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC).timestamp()) * 1_000_000
    for us in (base, base + 1, base + 999_999, base + 1_000_000, base - 1, base):
        assert iso(us) == us_to_datetime(us).isoformat().replace("+00:00", "Z")


@given(st.binary(min_size=16, max_size=16))
def test_uuid_text_is_the_standard_form(raw: bytes) -> None:
    assert uuid_text(raw) == str(uuid.UUID(bytes=raw))


# -- the protocol that joins writes, on a real server -------------------------------------


def _read_answer(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, str], bytes]:
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed before an answer"
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed inside an answer"
        rest += chunk
    buffer[:] = rest[length:]
    return status, headers, rest[:length]


def _request(method: str, path: str, body: bytes = b"", close: bool = False) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
    head += "Content-Type: application/json\r\n"
    if close:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


def test_pipelined_large_and_closing_answers_on_a_real_server(serve, store_path: Path) -> None:
    server: Server = serve(str(store_path))
    rows = [
        {"event_type": "t", "entity_id": "big", "payload": {"i": i, "s": "x" * 50}}
        for i in range(500)
    ]
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        buffer = bytearray()
        # Three requests in one write: three answers, in order.
        sock.sendall(
            _request("POST", "/api/v1/events", _event())
            + _request("POST", "/api/v1/events/batch", orjson.dumps({"events": rows}))
            + _request("GET", "/api/v1/events/query?entity_id=big&limit=500")
        )
        status, _, body = _read_answer(sock, buffer)
        assert status == 201 and json.loads(body)["sequence"] == 1
        status, _, body = _read_answer(sock, buffer)
        assert status == 201 and json.loads(body)["count"] == 500
        status, _, body = _read_answer(sock, buffer)  # ~60 KB: written at once
        assert status == 200 and len(body) > 16 * 1024
        assert [e["payload"]["i"] for e in json.loads(body)["events"]] == list(range(500))
        sock.sendall(_request("POST", "/api/v1/events", _event(), close=True))
        status, headers, _ = _read_answer(sock, buffer)
        assert status == 201 and headers.get("connection") == "close"
        assert sock.recv(1) == b""  # closed after the answer was written


def test_cors_servers_answer_single_posts_through_the_middleware(serve, store_path: Path) -> None:
    server: Server = serve(str(store_path), "--allow-origin", "https://app.example")
    with server.client() as http:
        response = http.post(
            "/api/v1/events",
            content=_event(),
            headers={"Origin": "https://app.example"},
        )
    assert response.status_code == 201
    assert response.headers["access-control-allow-origin"] == "https://app.example"


def test_single_posts_reach_every_stream_client_in_order(serve, store_path: Path) -> None:
    """Appends made on the event loop (the fast path) wake the stream as the thread pool's
    do: ten clients each get every event, once, in order."""
    from websockets.sync.client import connect

    server: Server = serve(str(store_path))
    url = server.ws_url + "/api/v1/events/stream?after=0"
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connect(url)) for _ in range(10)]
        with server.client() as http:
            for i in range(300):
                body = {"event_type": "t", "entity_id": f"e{i % 7}", "payload": {"i": i}}
                assert http.post("/api/v1/events", json=body).status_code == 201
        for ws in clients:
            got = [json.loads(ws.recv(timeout=30)) for _ in range(300)]
            assert [e["sequence"] for e in got] == list(range(1, 301))
            assert [e["payload"]["i"] for e in got] == list(range(300))
