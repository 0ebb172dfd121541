"""``allsource serve`` and ``allsource keys``: the mistakes they refuse before serving,
and how a server stops."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

import allsource_lab as asl
from allsource_lab.cli import main


def event(i: int) -> dict[str, object]:
    return {"event_type": "order.placed", "entity_id": f"order-{i}", "payload": {"n": i}}


def test_serve_needs_a_store(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve"]) == 2
    assert "give the store to serve" in capsys.readouterr().err


def test_serve_refuses_a_missing_store_and_duplicate_names(
    tmp_path: Path, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", str(tmp_path / "missing")]) == 1
    assert "no store at" in capsys.readouterr().err
    twice = ["serve", "--store", f"a={store_path}", "--store", f"a={store_path}"]
    assert main(twice) == 1
    assert "two stores are named 'a'" in capsys.readouterr().err
    assert main(["serve", "--store", "no-equals-sign"]) == 2


def test_keys_refuse_what_makes_no_sense(
    tmp_path: Path, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", str(tmp_path / "missing"), "list"]) == 1
    assert main(["keys", str(store_path), "revoke"]) == 2
    assert main(["keys", str(store_path), "create", "some-id"]) == 2
    assert main(["keys", str(store_path), "create", "--rate-limit", "0"]) == 1
    assert "rate_per_s must be > 0" in capsys.readouterr().err
    assert main(["keys", str(store_path), "list"]) == 0


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_server_closes_its_store(serve, store_path, stop) -> None:
    """SIGINT (Ctrl-C) and SIGTERM (a service manager) both stop the server cleanly:
    exit code 0, and the store closed — its tail sealed by the last checkpoint, the lock
    released — so nothing waits for a WAL replay."""
    server = serve(str(store_path))
    with server.client() as api:
        for i in range(5):
            assert api.post("/api/v1/events", json=event(i)).status_code == 201
    server.process.send_signal(stop)
    assert server.process.wait(30) == 0, server.log.read_text()
    with asl.open(store_path) as store:  # the lock was released
        stats = store.stats()
        assert stats["events"] == 5 and stats["segments"] == 1 and stats["tail_events"] == 0
