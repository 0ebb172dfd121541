"""Fixtures of the schema tests."""

from __future__ import annotations

from typing import Any

import pytest

from allsource_lab.errors import _Uncovered
from allsource_lab.schemas import fast


@pytest.fixture(params=["fast path", "fallback"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which validator judges schemas registered in the test: the store's own choice (the
    compiled fast path where it covers the schema), or jsonschema for every schema."""
    if request.param == "fallback":

        def uncovered(self: Any, schema: object) -> int:
            raise _Uncovered

        monkeypatch.setattr(fast._Tables, "node", uncovered)
    return str(request.param)
