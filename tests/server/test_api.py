"""Every operation of the HTTP API on a real server, and every way it refuses a request.

Answers are compared with what the Python API says about the same store (opened
read-only beside the server after it stops, or computed from the events the test sent).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import allsource_lab as asl

from .conftest import Server, make_store

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    path = make_store(tmp_path_factory.mktemp("api") / "shop.events")
    server = Server([str(path), "--max-body-bytes", "200000"])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def assert_problem(response: httpx.Response, status: int, title: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["title"] == title
    assert body["type"].endswith(title)
    assert body["status"] == status
    assert body["detail"]
    return body


def post_event(http: httpx.Client, entity: str, payload: dict, **more: object) -> dict:
    response = http.post(
        "/api/v1/events",
        json={"event_type": "order.placed", "entity_id": entity, "payload": payload, **more},
    )
    assert response.status_code == 201, response.text
    body: dict = response.json()
    return body


# -- health, ingest, query, state ------------------------------------------------------


def test_health_answers(http: httpx.Client) -> None:
    assert http.get("/health").json()["status"] == "ok"


def test_ingested_event_comes_back_as_stored(http: httpx.Client) -> None:
    entity = unique("order")
    event = post_event(http, entity, {"amount": 42.5}, metadata={"by": "test"})
    assert event["entity_id"] == entity and event["version"] == 1
    assert event["payload"] == {"amount": 42.5} and event["metadata"] == {"by": "test"}
    again = http.get(f"/api/v1/events/{event['event_id']}").json()
    assert again == event


def test_expected_version_conflict_is_409_and_writes_nothing(http: httpx.Client) -> None:
    entity = unique("order")
    post_event(http, entity, {"n": 1})
    response = http.post(
        "/api/v1/events",
        json={"event_type": "t", "entity_id": entity, "payload": {}, "expected_version": 5},
    )
    body = assert_problem(response, 409, "ConcurrencyError")
    assert body["expected"] == 5 and body["actual"] == 1
    page = http.get("/api/v1/events/query", params={"entity_id": entity}).json()
    assert page["count"] == 1


def test_retry_with_same_event_id_is_stored_once(http: httpx.Client) -> None:
    entity, event_id = unique("order"), str(uuid.uuid4())
    first = post_event(http, entity, {"n": 1}, event_id=event_id)
    second = post_event(http, entity, {"n": 1}, event_id=event_id)
    assert first["sequence"] == second["sequence"]


@pytest.mark.parametrize(
    ("body", "title"),
    [
        ({"event_type": "t", "entity_id": "x", "payload": [1]}, "InvalidEvent"),
        ({"event_type": "", "entity_id": "x", "payload": {}}, "InvalidEvent"),
        ({"event_type": "t", "payload": {}}, "InvalidEvent"),
        ({"event_type": "t", "entity_id": "x", "payload": {}, "colour": 1}, "InvalidEvent"),
        ({"event_type": "t", "entity_id": "x", "payload": {}, "timestamp": "noon"}, "InvalidEvent"),
        (
            {"event_type": "t", "entity_id": "x", "payload": {}, "expected_version": -1},
            "InvalidEvent",
        ),
    ],
)
def test_bad_events_are_400_problems(http: httpx.Client, body: dict, title: str) -> None:
    assert_problem(http.post("/api/v1/events", json=body), 400, title)


def test_body_that_is_not_json_is_400(http: httpx.Client) -> None:
    response = http.post("/api/v1/events", content=b"{not json")
    assert_problem(response, 400, "InvalidArgument")
    assert_problem(http.post("/api/v1/events", json=[1, 2]), 400, "InvalidArgument")


def test_payload_nested_past_the_library_limit_is_refused(http: httpx.Client) -> None:
    deep: dict = {}
    node = deep
    for _ in range(100):  # the library allows 64 levels
        node["a"] = {}
        node = node["a"]
    body = {"event_type": "t", "entity_id": unique("deep"), "payload": deep}
    assert_problem(http.post("/api/v1/events", json=body), 400, "InvalidEvent")


def test_body_over_the_limit_is_413(http: httpx.Client) -> None:
    body = {"event_type": "t", "entity_id": "x", "payload": {"s": "x" * 300_000}}
    assert_problem(http.post("/api/v1/events", json=body), 413, "PayloadTooLarge")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
        yield b'{"event_type": "t", "entity_id": "x", "payload": {"s": "'
        for _ in range(30):
            yield b"x" * 10_000
        yield b'"}}'

    assert_problem(http.post("/api/v1/events", content=chunks()), 413, "PayloadTooLarge")


def test_batch_is_atomic_and_pages_back_in_order(http: httpx.Client) -> None:
    entity = unique("cart")
    rows = [
        {"event_type": "item.added", "entity_id": entity, "payload": {"i": i}} for i in range(25)
    ]
    result = http.post("/api/v1/events/batch", json={"events": rows}).json()
    assert result["count"] == 25
    assert result["last_sequence"] - result["first_sequence"] == 24
    seen, cursor = [], None
    while True:
        params: dict = {"entity_id": entity, "limit": 10}
        if cursor is not None:
            params["cursor"] = cursor
        page = http.get("/api/v1/events/query", params=params).json()
        seen += [e["payload"]["i"] for e in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(range(25))
    bad = [*rows[:3], {"event_type": "x", "entity_id": entity, "payload": "nope"}]
    body = assert_problem(
        http.post("/api/v1/events/batch", json={"events": bad}), 400, "InvalidEvent"
    )
    assert body["row"] == 3
    assert http.get("/api/v1/events/query", params={"entity_id": entity}).json()["count"] == 25


def test_batch_as_an_arrow_stream(http: httpx.Client) -> None:
    import pyarrow as pa

    entity = unique("arrow")
    table = pa.table(
        {
            "event_type": ["t"] * 3,
            "entity_id": [entity] * 3,
            "payload": ['{"i": 0}', '{"i": 1}', '{"i": 2}'],
        }
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    arrow = {"Content-Type": "application/vnd.apache.arrow.stream"}
    made = http.post("/api/v1/events/batch", content=sink.getvalue().to_pybytes(), headers=arrow)
    assert made.status_code == 201 and made.json()["count"] == 3
    page = http.get("/api/v1/events/query", params={"entity_id": entity}).json()
    assert [e["payload"] for e in page["events"]] == [{"i": 0}, {"i": 1}, {"i": 2}]
    before = http.get("/api/v1/stats").json()["last_sequence"]
    garbage = sink.getvalue().to_pybytes()[:-40] + b"\xff" * 40
    for body in (b"not arrow", garbage):
        response = http.post("/api/v1/events/batch", content=body, headers=arrow)
        assert_problem(response, 400, "InvalidArgument")
    assert http.get("/api/v1/stats").json()["last_sequence"] == before


def test_batch_refuses_empty_and_malformed(http: httpx.Client) -> None:
    assert_problem(http.post("/api/v1/events/batch", json={"events": []}), 400, "InvalidEvent")
    assert_problem(http.post("/api/v1/events/batch", json={"events": [1]}), 400, "InvalidEvent")
    assert_problem(http.post("/api/v1/events/batch", json={"rows": []}), 400, "InvalidArgument")


def test_batch_with_content_idempotency_stores_once(http: httpx.Client) -> None:
    entity = unique("idem")
    rows = [{"event_type": "t", "entity_id": entity, "payload": {"i": 1}}]
    body = {"events": rows, "idempotency": "content"}
    assert http.post("/api/v1/events/batch", json=body).json()["count"] == 1
    again = http.post("/api/v1/events/batch", json=body).json()
    assert again["count"] == 0 and again["duplicates"] == 1


def test_query_filters_and_time_travel(http: httpx.Client) -> None:
    entity = unique("acct")
    post_event(http, entity, {"balance": 1}, timestamp="2026-01-01T00:00:00Z")
    post_event(http, entity, {"balance": 2}, timestamp="2026-01-02T00:00:00Z")
    http.post(
        "/api/v1/events",
        json={
            "event_type": "other",
            "entity_id": entity,
            "payload": {"x": 1},
            "timestamp": "2026-01-03T00:00:00Z",
        },
    )
    q = "/api/v1/events/query"
    assert http.get(q, params={"entity_id": entity}).json()["count"] == 3
    typed = http.get(q, params={"entity_id": entity, "event_type": "other"}).json()
    assert [e["event_type"] for e in typed["events"]] == ["other"]
    since = http.get(
        q,
        params={
            "entity_id": entity,
            "since": "2026-01-02T00:00:00Z",
            "until": "2026-01-03T00:00:00Z",
        },
    ).json()
    assert [e["payload"] for e in since["events"]] == [{"balance": 2}]
    as_of = http.get(q, params={"entity_id": entity, "as_of": "2026-01-01T12:00:00Z"}).json()
    assert as_of["count"] == 1
    newest = http.get(q, params={"entity_id": entity, "reverse": "true", "limit": 1}).json()
    assert newest["events"][0]["event_type"] == "other"
    state = f"/api/v1/entities/{entity}/state"
    assert http.get(state).json()["state"] == {"balance": 2, "x": 1}
    assert http.get(state, params={"as_of": "2026-01-01T12:00:00Z"}).json()["state"] == {
        "balance": 1
    }
    long_ago = http.get(state, params={"known_at": "2000-01-01T00:00:00Z"})
    assert_problem(long_ago, 404, "NotFound")


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "ten"},
        {"limit": "0"},
        {"limit": "1000001"},
        {"cursor": "-1"},
        {"reverse": "perhaps"},
    ],
)
def test_bad_query_parameters_are_400(http: httpx.Client, params: dict) -> None:
    assert_problem(http.get("/api/v1/events/query", params=params), 400, "InvalidArgument")


def test_bad_times_are_400(http: httpx.Client) -> None:
    response = http.get("/api/v1/events/query", params={"since": "yesterday"})
    assert_problem(response, 400, "InvalidEvent")


def test_unknown_things_are_404(http: httpx.Client) -> None:
    assert_problem(http.get(f"/api/v1/entities/{unique('none')}/state"), 404, "NotFound")
    assert_problem(http.get(f"/api/v1/events/{uuid.uuid4()}"), 404, "NotFound")
    assert_problem(http.get("/api/v1/nothing"), 404, "NotFound")
    assert_problem(http.delete("/api/v1/stats"), 405, "MethodNotAllowed")


def test_stats_count_what_was_sent(http: httpx.Client) -> None:
    before = http.get("/api/v1/stats").json()
    post_event(http, unique("s"), {"n": 1})
    after = http.get("/api/v1/stats").json()
    assert after["events"] == before["events"] + 1
    assert after["tenant"] == "default" and "path" not in after


# -- snapshots, checkpoints, compaction ---------------------------------------------


def test_snapshot_checkpoint_and_compaction(http: httpx.Client) -> None:
    entity = unique("snap")
    post_event(http, entity, {"n": 1})
    post_event(http, entity, {"n": 2})
    made = http.post("/api/v1/snapshots", json={"entity_id": entity})
    assert made.status_code == 201 and made.json() == {"entity_id": entity, "version": 2}
    assert_problem(
        http.post("/api/v1/snapshots", json={"entity_id": unique("no")}), 404, "NotFound"
    )
    assert_problem(http.post("/api/v1/snapshots", json={}), 400, "InvalidArgument")
    assert http.post("/api/v1/checkpoint").json()["sealed"]["events"] >= 2
    post_event(http, entity, {"n": 3})
    http.post("/api/v1/checkpoint")
    compacted = http.post("/api/v1/compaction/trigger").json()["compacted"]
    assert compacted["segments"] >= 2
    assert http.get(f"/api/v1/entities/{entity}/state").json()["state"] == {"n": 3}


# -- schemas ------------------------------------------------------------------------


def test_schema_registry(http: httpx.Client) -> None:
    subject = unique("user.created")
    schema = {"type": "object", "required": ["email"], "properties": {"email": {"type": "string"}}}
    made = http.post("/api/v1/schemas", json={"subject": subject, "schema": schema})
    assert made.status_code == 201 and made.json()["version"] == 1
    assert subject in http.get("/api/v1/schemas").json()["subjects"]
    assert http.get(f"/api/v1/schemas/{subject}").json()["schema"] == schema
    assert http.get(f"/api/v1/schemas/{subject}/versions").json()["versions"] == [1]
    ok = http.post(
        "/api/v1/schemas/validate", json={"subject": subject, "payload": {"email": "a@b"}}
    ).json()
    assert ok["valid"] is True
    bad = http.post("/api/v1/schemas/validate", json={"subject": subject, "payload": {}}).json()
    assert bad["valid"] is False and bad["problems"]
    rejected = http.post(
        "/api/v1/events", json={"event_type": subject, "entity_id": "u", "payload": {}}
    )
    assert_problem(rejected, 422, "SchemaViolation")
    breaking = {**schema, "required": ["email", "name"]}
    assert_problem(
        http.post("/api/v1/schemas", json={"subject": subject, "schema": breaking}),
        409,
        "IncompatibleSchema",
    )
    mode = http.put(f"/api/v1/schemas/{subject}/compatibility", json={"compatibility": "none"})
    assert mode.json()["compatibility"] == "NONE"
    assert (
        http.post("/api/v1/schemas", json={"subject": subject, "schema": breaking}).json()[
            "version"
        ]
        == 2
    )
    assert http.get(f"/api/v1/schemas/{subject}", params={"version": 1}).json()["schema"] == schema
    assert_problem(
        http.put(f"/api/v1/schemas/{subject}/compatibility", json={"compatibility": "SIDEWAYS"}),
        400,
        "SchemaError",
    )
    assert_problem(
        http.post("/api/v1/schemas", json={"subject": "x", "schema": {"type": 5}}),
        400,
        "SchemaError",
    )
    assert_problem(http.get(f"/api/v1/schemas/{unique('none')}"), 404, "NotFound")
    assert_problem(http.get(f"/api/v1/schemas/{unique('none')}/versions"), 404, "NotFound")
    assert_problem(
        http.post("/api/v1/schemas/validate", json={"subject": unique("none"), "payload": {}}),
        404,
        "NotFound",
    )


# -- pipelines and replays -------------------------------------------------------------


def test_pipelines_and_replays(http: httpx.Client) -> None:
    kind = unique("sale")
    name = unique("totals")
    spec = asl.Pipeline(name, [kind]).reduce({"payload.amount": "sum"}, by="payload.shop")
    for shop, amount in (("a", 1), ("b", 2), ("a", 3)):
        http.post(
            "/api/v1/events",
            json={
                "event_type": kind,
                "entity_id": unique("o"),
                "payload": {"shop": shop, "amount": amount},
            },
        )
    made = http.post("/api/v1/pipelines", params={"start": "beginning"}, content=spec.to_json())
    assert made.status_code == 201, made.text
    assert name in http.get("/api/v1/pipelines").json()["pipelines"]
    assert http.get(f"/api/v1/pipelines/{name}").json()["spec"] == spec.to_dict()
    stats = http.get(f"/api/v1/pipelines/{name}/stats").json()
    assert stats["name"] == name and stats["position"] > 0
    assert any(s["name"] == name for s in http.get("/api/v1/pipelines/stats").json()["pipelines"])
    rows = http.get(f"/api/v1/pipelines/{name}/results").json()["rows"]
    assert {r["payload.shop"]: r["payload.amount_sum"] for r in rows} == {"a": 4, "b": 2}
    assert_problem(http.post("/api/v1/pipelines", content=spec.to_json()), 400, "InvalidArgument")
    assert_problem(http.post("/api/v1/pipelines", json={"nope": 1}), 400, "InvalidArgument")

    started = http.post("/api/v1/replay", json={"projection": name})
    assert started.status_code == 202, started.text
    replay_id = started.json()["replay_id"]
    for _ in range(200):
        job = http.get(f"/api/v1/replay/{replay_id}").json()
        if job["status"] not in ("pending", "running"):
            break
        time.sleep(0.05)
    assert job["status"] == "done" and job["processed"] == job["total"] >= 3
    assert any(j["replay_id"] == replay_id for j in http.get("/api/v1/replay").json()["replays"])
    assert http.post(f"/api/v1/replay/{replay_id}/cancel").json()["status"] == "done"
    assert http.delete(f"/api/v1/replay/{replay_id}").status_code == 204
    assert_problem(http.get(f"/api/v1/replay/{replay_id}"), 404, "NotFound")
    assert_problem(
        http.post("/api/v1/replay", json={"projection": unique("none")}), 404, "NotFound"
    )

    reset = http.put(f"/api/v1/pipelines/{name}/reset")
    assert reset.status_code == 200
    assert http.get(f"/api/v1/pipelines/{name}/results").json()["rows"] == []
    assert http.delete(f"/api/v1/pipelines/{name}").status_code == 204
    assert_problem(http.get(f"/api/v1/pipelines/{name}"), 404, "NotFound")
    assert_problem(http.delete(f"/api/v1/pipelines/{name}"), 404, "NotFound")


# -- analytics and windows -------------------------------------------------------------


def test_analytics_and_windows(http: httpx.Client) -> None:
    a, b = unique("visit"), unique("buy")
    rows = []
    for i in range(3):
        user = unique("u")
        rows.append(
            {
                "event_type": a,
                "entity_id": user,
                "payload": {"n": i},
                "timestamp": f"2026-02-01T00:0{i}:00Z",
            }
        )
        if i < 2:
            rows.append(
                {
                    "event_type": b,
                    "entity_id": user,
                    "payload": {"amount": 10 * (i + 1)},
                    "timestamp": f"2026-02-01T00:0{i}:30Z",
                }
            )
    http.post("/api/v1/events/batch", json={"events": rows})
    freq = http.get("/api/v1/analytics/frequency", params={"event_type": a, "bucket": "1h"})
    assert sum(r["count"] for r in freq.json()["rows"]) == 3
    summary = {r["event_type"]: r for r in http.get("/api/v1/analytics/summary").json()["rows"]}
    assert summary[a]["count"] == 3 and summary[b]["entities"] == 2
    corr = http.get(
        "/api/v1/analytics/correlation", params={"event_a": a, "event_b": b, "within": "1m"}
    ).json()
    assert corr["a_events"] == 3 and corr["followed"] == 2
    windows = http.get(
        "/api/v1/windows",
        params={"event_type": b, "every": "1h", "agg": '{"payload.amount": "sum"}'},
    )
    assert [w["payload.amount_sum"] for w in windows.json()["rows"]] == [30], windows.text
    assert_problem(
        http.get("/api/v1/windows", params={"every": "fortnight"}), 400, "InvalidArgument"
    )
    assert_problem(http.get("/api/v1/windows", params={"agg": "[1]"}), 400, "InvalidArgument")
    assert_problem(
        http.get("/api/v1/analytics/correlation", params={"event_a": a}), 400, "InvalidArgument"
    )


# -- the documents -----------------------------------------------------------------------


def test_served_openapi_is_the_committed_one(http: httpx.Client) -> None:
    import orjson

    committed = orjson.loads((Path(__file__).parents[2] / "docs" / "openapi.json").read_bytes())
    # Write it again after changing the API with:
    # python -c "import orjson; from allsource_lab.server.app import OPERATIONS as o;
    #   from allsource_lab.server.openapi import openapi_document as d;
    #   print(orjson.dumps(d(o), option=orjson.OPT_INDENT_2).decode())" > docs/openapi.json
    assert http.get("/openapi.json").json() == committed


def test_every_operation_is_in_the_document(http: httpx.Client) -> None:
    from allsource_lab.server.app import OPERATIONS

    paths = http.get("/openapi.json").json()["paths"]
    for op in OPERATIONS:
        assert op.method.lower() in paths[op.path], op.operation_id


def test_metrics_in_prometheus_text(http: httpx.Client) -> None:
    post_event(http, unique("m"), {"n": 1})
    http.get(f"/api/v1/entities/{unique('none')}/state")
    text = http.get("/metrics").text
    for name in (
        "allsource_requests_total",
        "allsource_request_seconds_bucket",
        "allsource_ingested_events_total",
        "allsource_wal_bytes",
        "allsource_seal_lag_events",
        "allsource_subscriptions",
        "allsource_stream_clients",
    ):
        assert name in text, name
    assert 'allsource_errors_total{kind="NotFound"}' in text


def test_cors_is_off_by_default(http: httpx.Client) -> None:
    response = http.get("/api/v1/stats", headers={"Origin": "https://example.org"})
    assert "access-control-allow-origin" not in response.headers
