"""``allsource serve`` and ``allsource keys``: the mistakes they refuse before serving."""

from __future__ import annotations

from pathlib import Path

import pytest

from allsource_lab.cli import main


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
