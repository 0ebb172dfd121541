"""Property-based fuzzing of the OpenAPI document (schemathesis): whatever a client sends
to any operation, the server never answers 5xx, and a refused request changes nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Server, make_store

EXAMPLES = int(os.environ.get("ALLSOURCE_SERVE_FUZZ_EXAMPLES", "8"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    path = make_store(tmp_path_factory.mktemp("fuzz") / "fuzz.events")
    server = Server([str(path), "--max-body-bytes", "100000"])
    with server.client() as http:  # something to find
        http.post(
            "/api/v1/events/batch",
            json={
                "events": [
                    {"event_type": "seed", "entity_id": f"e{i}", "payload": {"i": i}}
                    for i in range(5)
                ]
            },
        )
        http.post("/api/v1/schemas", json={"subject": "seed", "schema": {"type": "object"}})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_schema(served: Server) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(served.url + "/openapi.json")


DOCUMENT = orjson.loads((Path(__file__).parents[2] / "docs" / "openapi.json").read_bytes())
OPERATIONS = [
    (method.upper(), path) for path, methods in DOCUMENT["paths"].items() for method in methods
]


def facts(http: httpx.Client) -> tuple[object, ...]:
    """What a refused request must leave as it was."""
    stats = http.get("/api/v1/stats").json()
    return (
        stats["last_sequence"],
        stats["snapshots"],
        stats["segments"],
        http.get("/api/v1/schemas").json()["subjects"],
        http.get("/api/v1/pipelines").json()["pipelines"],
        len(http.get("/api/v1/replay").json()["replays"]),
    )


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_request_gets_a_5xx_or_changes_the_store_when_refused(
    method: str, path: str, served: Server, api_schema: schemathesis.BaseSchema
) -> None:
    operation = api_schema[path][method]

    # Valid requests (which must succeed or be refused cleanly) and invalid ones.
    cases = st.one_of(
        operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(schemathesis.GenerationMode.NEGATIVE),
    )

    @given(case=cases)
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        with served.client() as http:
            before = facts(http)
            response = case.call(base_url=served.url, timeout=30)
            assert response.status_code < 500, (case.method, case.path, response.text)
            if response.status_code >= 400:
                assert response.headers["content-type"][0].startswith("application/problem+json")
                assert facts(http) == before, (case.method, case.formatted_path, response.text)

    check()
