"""Rich display: every kind's JSON document, HTML and text, limits, times, stability."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import pytest

import allsource_lab as asl
from allsource_lab import display
from allsource_lab.display import MIMETYPE, StoreInfo, bundle
from allsource_lab.display.views import (
    VIEWS,
    CheckpointView,
    CompactionView,
    CompatibilityView,
    EventsView,
    IngestView,
    IntegrityView,
    PipelinesView,
    ProgressView,
    ProjectionsView,
    ReplayView,
    SchemaListView,
    SchemaReportView,
    SchemaView,
    StateView,
    StatsView,
    StoreView,
    TableView,
    WindowView,
    previous_state,
    states_after,
)

SCHEMA = json.loads(resources.files("allsource_lab.display").joinpath("schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
UTC_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def valid(out: dict[str, Any]) -> dict[str, Any]:
    """The bundle's document, checked against the JSON Schema and for its invariants."""
    doc = out[MIMETYPE]
    VALIDATOR.validate(doc)
    assert doc["version"] == 1
    assert json.loads(json.dumps(doc)) == doc  # plain JSON data, nothing else
    assert isinstance(out["text/html"], str) and isinstance(out["text/plain"], str)
    assert "datetime.datetime(" not in out["text/plain"] + out["text/html"]
    assert "Timestamp(" not in out["text/plain"] + out["text/html"]
    _assert_sorted(doc)
    return doc


def _assert_sorted(value: Any) -> None:
    if isinstance(value, dict):
        assert list(value) == sorted(value), list(value)
        for v in value.values():
            _assert_sorted(v)
    elif isinstance(value, list):
        for v in value:
            _assert_sorted(v)


@pytest.fixture
def shop() -> Any:
    store = asl.open()
    for i in range(7):
        store.append(
            "order.placed",
            f"order-{i % 3}",
            {"amount": 10.0 + i, "sku": f"sku-{i}", "note": "x" * (30 * i)},
            timestamp=f"2026-01-01T12:0{i}:00Z",
        )
    store.append("order.paid", "order-1", {"paid": True}, timestamp="2026-01-01T13:00:00+01:00")
    yield store
    store.close()


# -- events ---------------------------------------------------------------------------------


def test_events_show_a_table_of_the_first_rows_with_a_showing_n_of_m_footer(shop):
    out = bundle(shop.events(), limit=3)
    doc = valid(out)
    table = doc["table"]
    assert [c["name"] for c in table["columns"]] == [
        "sequence",
        "event_id",
        "event_type",
        "entity_id",
        "version",
        "timestamp",
        "recorded_at",
        "payload",
        "metadata",
        "schema_version",
    ]
    assert len(table["rows"]) == 3 and table["total"] == 8 and table["truncated"]
    assert table["rows"][0][7] == {"amount": 10.0, "note": "", "sku": "sku-0"}  # an object
    assert "showing 3 of 8 events" in out["text/plain"]
    assert "showing 3 of 8 events" in out["text/html"]
    assert out["text/plain"].splitlines()[0] == "8 events"


def test_event_times_are_iso_utc_with_z_in_every_representation(shop):
    out = bundle(shop.events(event_type="order.paid"))
    doc = valid(out)
    row = doc["table"]["rows"][0]
    assert row[5] == "2026-01-01T12:00:00Z"  # written at 13:00+01:00
    assert UTC_TIME.match(row[6])
    assert "2026-01-01T12:00:00Z" in out["text/plain"]
    assert "2026-01-01T12:00:00Z" in out["text/html"]


def test_the_query_and_the_next_page_cursor_are_part_of_the_document(shop):
    frame = shop.events(entity_id="order-1", as_of="2026-01-01T12:30:00Z", limit=1)
    doc = valid(bundle(frame))
    assert doc["query"] == {"as_of": "2026-01-01T12:30:00Z", "entity_id": "order-1", "limit": 1}
    assert doc["next_cursor"] == 2
    text = bundle(frame)["text/plain"]
    assert "as_of=2026-01-01T12:30:00Z" in text and "after=2" in text


def test_long_payloads_are_collapsed_in_html_and_cut_in_text(shop):
    out = bundle(shop.events(entity_id="order-0"), limit=0)
    html = out["text/html"]
    assert html.count("<details>") == 2  # order-0's events 4 and 7 have long notes
    long_line = next(line for line in out["text/plain"].splitlines() if '"amount":16.0' in line)
    assert long_line.endswith("…")


def test_html_escapes_what_the_events_hold():
    with asl.open() as store:
        store.append("<b>type</b>", "<script>", {"x": "<img src=x onerror=alert(1)>"})
        html = bundle(store.events())["text/html"]
    assert "<script>" not in html and "<img" not in html and "<b>type" not in html
    assert "&lt;script&gt;" in html


def test_an_event_frame_displays_itself_through_repr_mimebundle(shop):
    frame = shop.events()
    out = frame._repr_mimebundle_()
    assert valid(out)["kind"] == "events"
    assert frame._repr_html_() == out["text/html"]
    assert list(frame._repr_mimebundle_(include=["text/plain"])) == ["text/plain"]
    assert MIMETYPE not in frame._repr_mimebundle_(exclude=[MIMETYPE])
    assert repr(frame).startswith("EventFrame: 8 events")


def test_the_default_limit_is_what_a_bare_display_shows(shop):
    try:
        display.set_default_limit(2)
        assert "showing 2 of 8 events" in shop.events()._repr_mimebundle_()["text/plain"]
        display.set_default_limit(0)  # 0: every row
        assert "showing 8 of 8 events" in shop.events()._repr_mimebundle_()["text/plain"]
    finally:
        display.set_default_limit(display.DEFAULT_LIMIT)
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="int >= 0"):
            display.set_default_limit(bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="int >= 0"):
            bundle(shop.events(), limit=bad)  # type: ignore[arg-type]


def test_a_frame_displays_without_gathering_every_row():
    with asl.open() as store:
        store.append_batch(
            [{"event_type": "a", "entity_id": f"e{i}", "payload": {"i": i}} for i in range(500)]
        )
        frame = store.events()
        doc = bundle(frame, limit=5)[MIMETYPE]
        assert frame._table is None  # only the five shown rows were read
        assert [r[0] for r in doc["table"]["rows"]] == [1, 2, 3, 4, 5]
        newest_frame = store.events(reverse=True, limit=3)
        newest = bundle(newest_frame, limit=2)[MIMETYPE]
        assert [r[0] for r in newest["table"]["rows"]] == [500, 499]
        assert newest_frame._table is None
        page = store.events(limit=100)
        # The display cut the page at 2 rows: the next page starts after the second.
        assert bundle(page, limit=2)[MIMETYPE]["next_cursor"] == 2 and page._table is None
        assert page.to_arrow().num_rows == 100 and page.next_cursor == 100


def test_a_single_event_or_a_list_of_them_displays_as_events(shop):
    (event,) = shop.events(limit=1)
    assert valid(bundle(event))["table"]["total"] == 1
    assert valid(bundle("events", [event, event]))["table"]["total"] == 2


def rfc7386(target: Any, patch: Any) -> Any:
    """JSON Merge Patch as RFC 7386 §2 writes it (the brute-force reference)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = rfc7386(result.get(key), value)
    return result


def brute_fold(events: list[Any]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for event in sorted(events, key=lambda e: e.version):
        state = rfc7386(state, json.loads(event.payload_json))
    return state


@pytest.fixture
def history(tmp_path) -> Any:
    """Three entities with nested payloads, removals (null), event times out of order and
    part of the history sealed in a segment; recorded in three rounds."""
    store = asl.open(tmp_path / "history.events")
    rounds = []
    for r in range(3):
        for i in range(12):
            entity = f"cart-{i % 3}"
            payload: dict[str, Any] = {"round": r, "items": {f"sku-{i}": i, f"sku-{i - 3}": None}}
            if i % 4 == 0:
                payload["note"] = None if r else f"note {i}"
            # Event times run backwards within a round, so an as_of cut skips versions.
            minute = 10 + 12 * r + (11 - i)
            store.append(
                "cart.changed", entity, payload, timestamp=f"2026-01-01T12:{minute:02d}:00Z"
            )
        rounds.append(store.events(reverse=True, limit=1).first(1)[0].recorded_at)
        if r == 0:
            store.checkpoint()
    yield store, rounds
    store.close()


def test_each_event_row_carries_its_entitys_state_right_after_it(history):
    store, rounds = history
    everything = list(store.events())
    frames = [
        store.events(),
        store.events(entity_id="cart-1"),
        store.events(reverse=True, limit=7),
        store.events(as_of="2026-01-01T12:30:00Z"),
        store.events(known_at=rounds[1]),
        store.events(as_of="2026-01-01T12:40:00Z", known_at=rounds[0], event_type="cart.changed"),
    ]
    for frame in frames:
        doc = valid(bundle(frame, limit=0))
        rows, states = doc["table"]["rows"], doc["states"]
        assert len(states) == len(rows) == len(frame)
        for row, state in zip(rows, states, strict=True):
            entity, version = row[3], row[4]
            upto = [e for e in everything if e.entity_id == entity and e.version <= version]
            assert state == brute_fold(upto), (entity, version)
    # The state after an entity's newest event is its current state.
    last = valid(bundle(store.events(entity_id="cart-2", reverse=True, limit=1)))
    assert last["states"] == [store.state("cart-2")]
    # Only the rows shown carry a state.
    assert len(valid(bundle(store.events(), limit=5))["states"]) == 5


def test_row_states_fold_upcast_payloads_as_the_state_does(store_with_upcaster):
    doc = valid(bundle(store_with_upcaster.events(entity_id="u1")))
    assert doc["states"] == [
        {"first": "Ann", "last": "Lee"},
        {"first": "Ann", "last": "Lee", "vip": True},
    ]
    assert doc["states"][-1] == store_with_upcaster.state("u1")


@pytest.fixture
def store_with_upcaster() -> Any:
    store = asl.open()
    store.schemas.register("user.joined", {"type": "object", "required": ["name"]})
    store.append("user.joined", "u1", {"name": "Ann Lee"})
    store.schemas.register("user.joined", {"type": "object"}, compatibility="NONE")
    store.append("user.joined", "u1", {"vip": True})

    @store.schemas.upcaster("user.joined", 1)
    def split_name(payload: dict[str, Any]) -> dict[str, Any]:
        first, _, last = payload.pop("name").partition(" ")
        return {**payload, "first": first, "last": last}

    yield store
    store.close()


def test_events_without_a_store_have_null_states_and_a_list_may_name_its_store(shop):
    events = list(shop.events(entity_id="order-1"))
    assert valid(bundle(events[-1]))["states"] == [None]
    assert valid(bundle("events", events))["states"] == [None, None, None]
    with_store = valid(bundle(EventsView(events, source=shop)))["states"]
    assert with_store[-1] == shop.state("order-1") and with_store[0] == events[0].payload


def test_row_states_are_left_null_past_the_version_limit(shop):
    events = list(shop.events(entity_id="order-1"))
    assert states_after(shop, events, max_versions=2) == [
        brute_fold(events[:1]),
        brute_fold(events[:2]),
        None,
    ]
    assert states_after(asl.open(), events) == [None, None, None]  # not in that store


def test_a_state_carries_the_state_before_its_last_version(history):
    store, rounds = history
    moments = [
        (None, None),
        ("2026-01-01T12:30:00Z", None),  # cart-0: versions 1-4 and 6-8 (5 comes later)
        ("2026-01-01T12:40:00Z", rounds[0]),
        (None, rounds[1]),
        ("2026-01-01T12:25:00Z", rounds[2]),
        ("2026-01-01T12:12:00Z", None),  # a single version of each
    ]
    for entity in ("cart-0", "cart-1", "cart-2"):
        for as_of, known_at in moments:
            visible = list(store.events(entity_id=entity, as_of=as_of, known_at=known_at))
            view = StateView.of(store, entity, as_of=as_of, known_at=known_at)
            doc = valid(bundle(view))
            assert doc["state"] == brute_fold(visible) == store.state(entity, as_of, known_at)
            top = max(e.version for e in visible)
            assert doc["entity_version"] == top
            before = [e for e in visible if e.version != top]
            assert doc["previous_state"] == (brute_fold(before) if before else None)
    gappy = store.events(entity_id="cart-0", as_of="2026-01-01T12:30:00Z")
    assert [e.version for e in gappy] == [1, 2, 3, 4, 6, 7, 8]
    single = StateView.of(store, "cart-0", as_of="2026-01-01T12:12:00Z")
    assert single.version == 4 and single.previous_state is None


def test_the_first_version_has_no_previous_state(shop):
    doc = valid(bundle(StateView.of(shop, "order-0", as_of="2026-01-01T12:00:00Z")))
    assert doc["entity_version"] == 1 and doc["previous_state"] is None
    assert previous_state(shop, "order-0", max_versions=2) is None  # 3 versions: past it
    assert valid(bundle("state", {"entity_id": "x", "state": {}}))["previous_state"] is None


# -- the other kinds ------------------------------------------------------------------------


def test_state_shows_the_entity_its_version_and_the_moments_asked(shop):
    state = shop.state("order-1", as_of="2026-01-01T12:30:00Z")
    view = StateView(
        "order-1", state, as_of="2026-01-01T13:30:00+01:00", version=2, store=StoreInfo.of(shop)
    )
    out = bundle(view)
    doc = valid(out)
    assert doc["state"] == {"amount": 14.0, "note": "x" * 120, "paid": True, "sku": "sku-4"}
    assert doc["as_of"] == "2026-01-01T12:30:00Z" and doc["known_at"] is None
    assert doc["entity_version"] == 2 and doc["store"] == {"path": None, "events": 8}
    assert out["text/plain"].startswith(
        "state of order-1 at version 2 (as of 2026-01-01T12:30:00Z)\n  store  memory (8 events)"
    )
    assert '"sku": "sku-4"' in out["text/plain"]
    assert "<details>" in out["text/html"]  # the long note
    assert valid(bundle("state", {"entity_id": "x", "state": {}}))["entity_version"] is None


def test_windows_show_their_spec_types_and_times(shop):
    frame = shop.window("order.placed", every="2m", agg={"payload.amount": ["sum", "avg"]})
    spec = {"event_type": "order.placed", "every": "2m", "kind": "tumbling", "hop": None}
    out = bundle(WindowView(frame, spec), limit=2)
    doc = valid(out)
    assert doc["spec"] == {"event_type": "order.placed", "every": "2m", "kind": "tumbling"}
    assert [c["type"] for c in doc["table"]["columns"]] == [
        "timestamp",
        "timestamp",
        "number",
        "number",
    ]
    assert doc["table"]["rows"][0][:3] == ["2026-01-01T12:00:00Z", "2026-01-01T12:02:00Z", 21.0]
    assert "showing 2 of 4 windows" in out["text/plain"]
    assert "<small>timestamp</small>" in out["text/html"]
    assert out["text/plain"].splitlines()[0] == (
        "4 windows (event_type=order.placed, every=2m, kind=tumbling)"
    )


def test_a_window_chart_travels_in_the_document_and_as_vega_lite(shop):
    frame = shop.window("order.placed", every="2m")
    chart = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "mark": "bar"}
    out = bundle(WindowView(frame, {"every": "2m"}, chart=chart))
    assert valid(out)["chart"] == chart
    assert out["application/vnd.vegalite.v5+json"] == chart
    assert "application/vnd.vegalite.v5+json" not in bundle(WindowView(frame))


def test_tables_type_their_columns_and_show_missing_values_as_null():
    frame = pd.DataFrame(
        {
            "n": [1, 2],
            "x": [1.5, float("nan")],
            "ok": [True, False],
            "when": pd.to_datetime(["2026-01-01T00:00:00Z", None], utc=True),
            "naive": pd.to_datetime(["2026-01-01 01:02:03", "2026-01-02 00:00:00"]),
            "took": pd.to_timedelta(["90s", "1h"]),
            "obj": [{"b": 1, "a": [1]}, None],
            "day": [dt.date(2026, 1, 1), dt.date(2026, 1, 2)],
            "raw": [b"\x00\xff", b""],
        }
    )
    doc = valid(bundle(TableView(frame, query="select 1")))
    types = {c["name"]: c["type"] for c in doc["table"]["columns"]}
    assert types == {
        "n": "integer",
        "x": "number",
        "ok": "boolean",
        "when": "timestamp",
        "naive": "timestamp",
        "took": "duration",
        "obj": "json",
        "day": "date",
        "raw": "binary",
    }
    first, second = doc["table"]["rows"]
    assert first == [
        1,
        1.5,
        True,
        "2026-01-01T00:00:00Z",
        "2026-01-01T01:02:03",
        "P0DT0H1M30S",
        {"a": [1], "b": 1},
        "2026-01-01",
        "00ff",
    ]
    assert second[1] is None and second[3] is None and second[6] is None
    assert doc["query"] == "select 1"


def test_stats_integrity_and_schema_kinds_read_as_one_line_each(shop):
    stats = valid(bundle(StatsView(shop.stats())))
    assert stats["stats"]["events"] == 8
    ok = bundle(IntegrityView(asl.IntegrityReport(True, [], 3)))
    assert valid(ok)["ok"] and ok["text/plain"] == "integrity ok: 3 files checked, no problems"
    bad = bundle(asl.IntegrityReport(False, ["wal/1.wal at byte 8: bad checksum"], 3))
    assert valid(bad)["problems"] == ["wal/1.wal at byte 8: bad checksum"]
    assert "<li>wal/1.wal at byte 8: bad checksum</li>" in bad["text/html"]
    version = shop.schemas.register("order.paid", {"type": "object", "required": ["paid"]})
    report = shop.schemas.check("order.paid", {"type": "object", "required": ["paid", "at"]})
    checked = bundle(SchemaReportView(report, subject="order.paid"))
    assert valid(checked)["problems"] == ["required property added: #/required/at"]
    assert checked["text/plain"].startswith("order.paid: incompatible (BACKWARD)")
    shown = bundle(SchemaView(version, versions=[1], compatibility="BACKWARD"))
    doc = valid(shown)
    assert doc["schema_version"] == 1 and doc["schema"]["required"] == ["paid"]
    assert shown["text/plain"].startswith("schema order.paid v1 (id 1)")
    assert valid(bundle(version))["subject"] == "order.paid"  # a SchemaVersion as it is
    listed = bundle(SchemaListView({"order.paid": ([1], "FULL")}, "BACKWARD"))
    assert valid(listed)["table"]["rows"] == [["order.paid", [1], 1, "FULL"]]
    mode = bundle(CompatibilityView(None, "NONE"))
    assert valid(mode) and mode["text/plain"] == "compatibility of the store (default): NONE"


def test_projections_pipelines_and_replays_show_where_they_stand(shop):
    shop.projections.add(asl.EventCounter())
    shop.pipelines.add(asl.Pipeline("paid", ["order.paid"]).filter("payload.paid", "eq", True))
    infos = bundle(ProjectionsView(shop.projections.info()))
    assert valid(infos)["table"]["rows"][0][:4] == ["event_counter", "running", 8, 0]
    stats = [shop.pipelines.stats(name) for name in shop.pipelines.list()]
    piped = valid(bundle(PipelinesView(stats)))
    assert piped["table"]["columns"][0] == {"name": "name", "type": "string"}
    assert valid(bundle(PipelinesView([])))["table"]["total"] == 0
    assert bundle(PipelinesView([]))["text/plain"] == "0 pipelines\nshowing 0 of 0 pipelines"
    job = shop.replay(asl.EventCounter(), background=False)
    replayed = bundle(ReplayView(job))
    doc = valid(replayed)
    assert doc["status"] == "done" and doc["progress"]["processed"] == 8
    assert replayed["text/plain"].startswith(f"replay {job.id} of event_counter: done")


def test_store_ingest_checkpoint_compaction_and_progress_documents(shop, tmp_path):
    with asl.open(tmp_path / "s.events") as folder:
        folder.append("a", "x", {})
        opened = bundle(StoreView.of(folder, note="closed the previous store (memory store)"))
        assert valid(opened)["path"] == str(tmp_path / "s.events")
        assert opened["text/plain"].startswith(f"store {tmp_path / 's.events'}: 1 event (open)")
    closed = bundle(StoreView.of(shop, status="closed"))
    assert "memory (scratch: nothing is saved): 8 events (closed)" in closed["text/plain"]
    ingested = bundle(IngestView("df", rows=5, appended=3, first_sequence=9, last_sequence=11))
    assert valid(ingested)["duplicates"] == 2
    assert "appended 3 events (sequences 9-11)" in ingested["text/plain"]
    sealed = bundle(CheckpointView({"events": 8, "through_sequence": 8, "seconds": 0.01}))
    assert "seconds" not in valid(sealed) and sealed["text/plain"] == (
        "sealed 8 events through sequence 8"
    )
    assert "nothing to checkpoint" in bundle(CheckpointView(None))["text/plain"]
    merged = bundle(CompactionView({"segments": 3, "events": 30, "seconds": 0.2}))
    assert valid(merged)["result"] == {"events": 30, "segments": 3}
    assert merged["text/plain"] == "compacted 3 segments (30 events) into one"
    assert "nothing to compact" in bundle(CompactionView(None))["text/plain"]
    progress = bundle(ProgressView(50, 200))
    assert valid(progress) and progress["text/plain"] == "ingesting: 25% (50 of 200 events)"


def test_every_kind_has_a_view_and_a_schema(shop):
    assert set(VIEWS) == set(display.kinds()) == set(SCHEMA["properties"]["kind"]["enum"])
    with pytest.raises(ValueError, match="unknown display kind 'nope'"):
        bundle("nope", {})
    with pytest.raises(TypeError, match="no AllSource display for a object"):
        bundle(object())


def test_a_document_is_the_same_on_every_display(shop):
    frame = shop.events()
    first = bundle(frame)
    assert bundle(frame) == first
    assert bundle(shop.events()) == first  # a new frame over the same events
    state = StateView("order-1", shop.state("order-1"))
    assert bundle(state) == bundle(state)


def test_display_imports_no_notebook_machinery():
    script = (
        "import sys, allsource_lab, allsource_lab.display, allsource_lab.display.views\n"
        "import allsource_lab.display.render\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('IPython', 'ipywidgets', 'jupyterlab', 'traitlets'))\n"
        "print(bad or 'ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stdout + done.stderr


def test_the_documented_kinds_match_the_schema():
    text = (Path(__file__).parent.parent.parent / "docs" / "mimetype.md").read_text()
    for kind in SCHEMA["properties"]["kind"]["enum"]:
        assert f"| `{kind}` |" in text, kind


def test_a_subclass_of_a_result_displays_as_its_base(shop):
    class Checked(asl.IntegrityReport):
        pass

    report = Checked(True, [], 3)
    assert bundle(report) == bundle(asl.IntegrityReport(True, [], 3))
    assert valid(bundle(report))["kind"] == "integrity"
