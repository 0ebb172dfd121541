"""Keys, roles, tenants and rate limits on a server bound off loopback (every request
needs a key), and the ``allsource keys`` command that manages them."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

import allsource_lab as asl
from allsource_lab.server.keys import KeyRing, keys_file

from .conftest import make_store


def keys_command(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "allsource_lab.cli", "keys", str(store), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def create_key(store: Path, role: str, *more: str) -> tuple[str, str]:
    """A new key of ``role`` made by the CLI: (key, id)."""
    done = keys_command(store, "create", "--role", role, "--json", *more)
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    return made["key"], made["id"]


EVENT = {"event_type": "t", "entity_id": "e", "payload": {"n": 1}}


def test_keys_command_creates_lists_and_revokes(store_path: Path) -> None:
    key, key_id = create_key(store_path, "write", "--name", "ingest")
    listed = json.loads(keys_command(store_path, "list", "--json").stdout)
    assert [(k["id"], k["role"], k["name"], k["revoked"]) for k in listed] == [
        (key_id, "write", "ingest", None)
    ]
    text = keys_file(store_path).read_text()
    assert key not in text and key.split("_")[2] not in text  # only the hash is stored
    assert keys_file(store_path).stat().st_mode & 0o077 == 0
    assert keys_command(store_path, "revoke", key_id).returncode == 0
    assert KeyRing(keys_file(store_path)).find(key) is None
    missing = keys_command(store_path, "revoke", "0123456789abcdef")
    assert missing.returncode == 1 and "no key" in missing.stderr
    assert keys_command(store_path, "create", "--role", "root").returncode == 2


def test_off_loopback_nothing_is_served_without_a_key(serve, store_path: Path) -> None:
    server = serve(str(store_path), host="0.0.0.0")
    with server.client() as http:
        assert http.get("/health").status_code == 200
        for method, path in (
            ("GET", "/api/v1/stats"),
            ("POST", "/api/v1/events"),
            ("GET", "/api/v1/events/query"),
            ("GET", "/metrics"),
            ("GET", "/api/v1/schemas"),
        ):
            response = http.request(method, path, json=EVENT)
            assert response.status_code == 401, (path, response.text)
            assert response.json()["title"] == "Unauthorized"
            assert "www-authenticate" in response.headers
    with server.client("asl_0000000000000000_forged") as http:
        assert http.get("/api/v1/stats").status_code == 401


def test_roles_limit_what_a_key_may_do(serve, store_path: Path) -> None:
    read, _ = create_key(store_path, "read")
    write, _ = create_key(store_path, "write")
    admin, _ = create_key(store_path, "admin")
    server = serve(str(store_path), host="0.0.0.0")
    with server.client(read) as http:
        refused = http.post("/api/v1/events", json=EVENT)
        assert refused.status_code == 403 and refused.json()["title"] == "Forbidden"
        assert http.get("/api/v1/stats").json()["events"] == 0
    with server.client(write) as http:
        assert http.post("/api/v1/events", json=EVENT).status_code == 201
        assert http.post("/api/v1/compaction/trigger").status_code == 403
        assert http.post("/api/v1/schemas", json={"subject": "t", "schema": {}}).status_code == 403
    headers = {"X-API-Key": admin}
    with httpx.Client(base_url=server.url, headers=headers) as http:
        assert http.post("/api/v1/checkpoint").status_code == 200
        assert http.get("/metrics").status_code == 200
    with server.client(read) as http:
        assert http.get("/api/v1/stats").json()["events"] == 1


def test_a_key_of_one_tenant_sees_nothing_of_another(serve, tmp_path: Path) -> None:
    a = make_store(tmp_path / "a.events")
    b = make_store(tmp_path / "b.events")
    key_a, _ = create_key(a, "write")
    key_b, _ = create_key(b, "write")
    server = serve("--store", f"a={a}", "--store", f"b={b}", host="0.0.0.0")
    with server.client(key_a) as http:
        http.post("/api/v1/events", json={**EVENT, "entity_id": "only-a"})
        assert http.get("/api/v1/stats").json()["tenant"] == "a"
    with server.client(key_b) as http:
        assert (
            http.get("/api/v1/stats").json() | {"tenant": "b"} == http.get("/api/v1/stats").json()
        )
        assert http.get("/api/v1/stats").json()["events"] == 0
        assert http.get("/api/v1/entities/only-a/state").status_code == 404
        assert http.get("/api/v1/events/query").json()["count"] == 0
    server.stop()
    with asl.open(a, read_only=True) as store_a, asl.open(b, read_only=True) as store_b:
        assert len(store_a.events()) == 1 and len(store_b.events()) == 0


def test_a_revoked_key_is_refused_at_once(serve, store_path: Path) -> None:
    key, key_id = create_key(store_path, "read")
    server = serve(str(store_path), "--require-keys")  # loopback, as behind a proxy
    with server.client() as http:
        assert http.get("/api/v1/stats").status_code == 401
    with server.client(key) as http:
        assert http.get("/api/v1/stats").status_code == 200
        assert keys_command(store_path, "revoke", key_id).returncode == 0
        assert http.get("/api/v1/stats").status_code == 401


def test_a_burst_past_the_limit_gets_429_and_the_store_stays_consistent(
    serve, store_path: Path
) -> None:
    key, _ = create_key(store_path, "write", "--rate-limit", "1", "--burst", "10")
    server = serve(str(store_path), host="0.0.0.0")
    http = server.client(key)

    def send(i: int) -> tuple[int, str | None, int | None]:
        r = http.post(
            "/api/v1/events", json={**EVENT, "entity_id": f"e{i % 7}", "payload": {"i": i}}
        )
        return r.status_code, r.headers.get("retry-after"), r.json().get("sequence")

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(40)))
    elapsed = time.monotonic() - started
    http.close()
    accepted = [a for a in answers if a[0] == 201]
    limited = [a for a in answers if a[0] == 429]
    assert len(accepted) + len(limited) == 40
    # The burst, and one more for each second the burst took.
    assert 10 <= len(accepted) <= 10 + math.ceil(elapsed) and limited
    assert all(retry is not None and int(retry) >= 1 for _, retry, _ in limited)
    assert all(sequence is None for _, _, sequence in limited)
    server.stop()
    with asl.open(store_path, read_only=True) as store:
        stored = sorted(e.sequence for e in store.events())
        assert stored == sorted(seq for _, _, seq in accepted) == list(range(1, len(accepted) + 1))
        assert store.verify().ok


def test_cors_allows_only_the_named_origins(serve, store_path: Path) -> None:
    server = serve(str(store_path), "--allow-origin", "https://notebook.example")
    with server.client() as http:
        ok = http.get("/api/v1/stats", headers={"Origin": "https://notebook.example"})
        assert ok.headers["access-control-allow-origin"] == "https://notebook.example"
        other = http.get("/api/v1/stats", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
