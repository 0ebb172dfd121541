"""The fixtures the extension's jest tests render are what the Python side displays today."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from allsource_lab import display
from allsource_lab.display import MIMETYPE
from allsource_lab.display.render import render_html, render_text
from allsource_lab.notebook import fixtures as display_fixtures

COMMITTED = Path(__file__).parent.parent.parent / "extension" / "fixtures"
REGENERATE = "run `python -m allsource_lab.notebook.fixtures extension/fixtures`"
SCHEMA = json.loads(resources.files("allsource_lab.display").joinpath("schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
NOT_VERSION_1 = {"version-2", "unknown-kind"}  # fixtures a reader must show as the fallback


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fixtures")
    display_fixtures.main([str(folder)], out=lambda _: None)
    return folder


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def test_the_committed_fixtures_are_what_the_generator_writes(generated):
    made = sorted(p.name for p in generated.glob("*.json"))
    committed = sorted(p.name for p in COMMITTED.glob("*.json"))
    assert committed == made, f"the fixture files differ: {REGENERATE}"
    for name in made:
        fresh = (generated / name).read_bytes()
        assert (COMMITTED / name).read_bytes() == fresh, f"{name} is out of date: {REGENERATE}"


def test_the_generator_writes_the_same_bytes_every_time(generated, tmp_path):
    display_fixtures.write(tmp_path)
    for path in generated.glob("*.json"):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


def test_every_version_1_fixture_passes_the_schema_and_the_others_fail_it(generated):
    for path in sorted(generated.glob("*.json")):
        doc = load(path)[MIMETYPE]
        if path.stem in NOT_VERSION_1:
            assert not VALIDATOR.is_valid(doc), path.name
        else:
            VALIDATOR.validate(doc)


def test_every_kind_has_a_fixture_named_for_it(generated):
    by_kind: dict[str, list[str]] = {}
    for path in generated.glob("*.json"):
        if path.stem not in NOT_VERSION_1:
            by_kind.setdefault(load(path)[MIMETYPE]["kind"], []).append(path.stem)
    assert set(by_kind) == set(display.kinds())
    for kind, names in by_kind.items():
        assert kind in names, f"no {kind}.json"


def test_each_fixture_is_a_whole_bundle_whose_fallbacks_say_what_its_document_says(generated):
    for path in sorted(generated.glob("*.json")):
        if path.stem in NOT_VERSION_1:
            continue
        out = load(path)
        doc = out[MIMETYPE]
        assert out["text/html"] == render_html(doc), path.name
        assert out["text/plain"] == render_text(doc), path.name
        assert path.read_text(encoding="utf-8") == display_fixtures.dumps(out)


def test_fixture_events_carry_states_aligned_with_their_rows(generated):
    for path in sorted(generated.glob("events*.json")):
        doc = load(path)[MIMETYPE]
        rows = doc["table"]["rows"]
        if path.stem == "events-no-states":
            assert "states" not in doc  # as a producer from before the member was added
        elif path.stem == "events-single":
            assert doc["states"] == [None] * len(rows)  # shown without its store
        else:
            assert len(doc["states"]) == len(rows) > 0 and None not in doc["states"], path.name
    full = load(generated / "events.json")[MIMETYPE]
    assert full["table"]["total"] >= 30 and len({r[2] for r in full["table"]["rows"]}) >= 5
    assert len({r[3] for r in full["table"]["rows"]}) >= 8


def test_fixture_states_have_a_previous_state_except_at_the_first_version(generated):
    state = load(generated / "state.json")[MIMETYPE]
    assert state["previous_state"] is not None and state["previous_state"] != state["state"]
    first = load(generated / "state-first-version.json")[MIMETYPE]
    assert first["entity_version"] == 1 and first["previous_state"] is None


def test_fixture_windows_come_with_and_without_keys_and_charts(generated):
    plain = load(generated / "window.json")
    by_key = load(generated / "window-by-key.json")
    assert "by" not in plain[MIMETYPE]["spec"] and by_key[MIMETYPE]["spec"]["by"]
    assert plain[MIMETYPE]["chart"] == plain["application/vnd.vegalite.v5+json"]
    assert "chart" not in load(generated / "window-no-chart.json")[MIMETYPE]
