"""``kill -9`` of a server under load (``fsync="always"``): every event whose request got
a 2xx is stored exactly once after the restart, and a WebSocket client that followed the
server resumes from its last event without a gap."""

from __future__ import annotations

import collections
import json
import os
import random
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

import allsource_lab as asl

from .conftest import Server, make_store

ROUNDS = int(os.environ.get("ALLSOURCE_SERVE_KILLS", "2"))


def load(server: Server, stop: threading.Event, acked: list[str], worker: int) -> None:
    """Post single events and small batches until stopped; remember the acknowledged ids."""
    rng = random.Random(worker)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        while not stop.is_set():
            ids = [str(uuid.uuid4()) for _ in range(rng.choice((1, 1, 1, 20)))]
            rows = [
                {
                    "event_type": "load",
                    "entity_id": f"w{worker}-{rng.randrange(50)}",
                    "payload": {"worker": worker},
                    "event_id": i,
                }
                for i in ids
            ]
            try:
                if len(rows) == 1:
                    r = http.post("/api/v1/events", json=rows[0])
                else:
                    r = http.post("/api/v1/events/batch", json={"events": rows})
            except httpx.HTTPError:
                continue  # not acknowledged (a timeout on a busy machine, or the kill)
            if r.status_code == 201:
                acked.extend(ids)


def follow(server: Server, seen: list[tuple[int, str]], ready: threading.Event) -> None:
    try:
        with connect(server.ws_url + "/api/v1/events/stream?after=0") as ws:
            ready.set()
            while True:
                event = json.loads(ws.recv(timeout=30))
                seen.append((event["sequence"], event["event_id"]))
    except Exception:  # the server was killed
        ready.set()


def one_round(path: Path, rng: random.Random) -> None:
    server = Server([str(path), "--fsync", "always"])
    stop = threading.Event()
    acked: list[str] = []
    seen: list[tuple[int, str]] = []
    ready = threading.Event()
    follower = threading.Thread(target=follow, args=(server, seen, ready))
    follower.start()
    ready.wait(30)
    workers = [threading.Thread(target=load, args=(server, stop, acked, w)) for w in range(4)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 60  # a busy machine: wait for the load to be going
    while not acked and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(rng.uniform(0.2, 1.5))
    server.kill()
    stop.set()
    for w in workers:
        w.join()
    follower.join()
    assert acked, "no request was acknowledged before the kill"

    with asl.open(path, read_only=True) as store:
        stored = [(e.sequence, str(e.event_id)) for e in store.events()]
    counts = collections.Counter(event_id for _, event_id in stored)
    missing = [i for i in acked if counts[i] != 1]
    assert not missing, f"{len(missing)} acknowledged events not stored exactly once"
    assert max(counts.values()) == 1
    assert [s for s, _ in stored] == list(range(1, len(stored) + 1))
    # What the stream showed was durable: the same events at the same places.
    assert set(seen) <= set(stored)
    assert [s for s, _ in seen] == list(range(1, len(seen) + 1))

    restarted = Server([str(path), "--fsync", "always"])
    try:
        last = seen[-1][0] if seen else 0
        with connect(f"{restarted.ws_url}/api/v1/events/stream?after={last}") as ws:
            with restarted.client() as http:
                made = http.post(
                    "/api/v1/events", json={"event_type": "after", "entity_id": "x", "payload": {}}
                ).json()
            resumed = [
                json.loads(ws.recv(timeout=30))["sequence"] for _ in range(made["sequence"] - last)
            ]
        assert resumed == list(range(last + 1, made["sequence"] + 1))
    finally:
        restarted.stop()


def test_acknowledged_events_survive_kill_of_the_server(tmp_path: Path) -> None:
    path = make_store(tmp_path / "load.events")
    rng = random.Random(7)
    for _ in range(ROUNDS):
        one_round(path, rng)


@pytest.mark.slow
def test_acknowledged_events_survive_many_kills(tmp_path: Path) -> None:
    path = make_store(tmp_path / "load.events")
    rng = random.Random(11)
    for _ in range(15):
        one_round(path, rng)
