"""The notebook widgets, driven headlessly through their traits and the handlers a click calls."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import allsource_lab as asl
from allsource_lab.notebook import widgets
from allsource_lab.notebook.jsondiff import Change
from allsource_lab.notebook.widgets.panel import json_block
from tests.features.test_replay import Gate


@pytest.fixture
def store() -> Iterator[asl.EventStore]:
    store = asl.open()
    yield store
    store.close()


def _shop(store: asl.EventStore, n: int = 45) -> None:
    """``n`` events, one a minute: every third a ``view``, the rest ``click``s, over 4 users."""
    for i in range(n):
        store.append(
            "view" if i % 3 == 0 else "click",
            f"u{i % 4}",
            {"n": i},
            timestamp=f"2026-01-01T{i // 60:02d}:{i % 60:02d}:00Z",
        )


def _eventually(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Whether ``condition`` became true within ``timeout_s`` (a guard, not a timing)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _listed(explorer: widgets.Explorer) -> list[int]:
    return [sequence for _, sequence in explorer._list.options]


# -- explorer ---------------------------------------------------------------------------------


def test_explorer_pages_through_the_filtered_events(store: asl.EventStore) -> None:
    _shop(store)
    explorer = widgets.explorer(store, page_size=20)
    assert (explorer.total, explorer.page) == (45, 0)
    assert _listed(explorer) == list(range(1, 21))
    assert explorer._prev.disabled and not explorer._next.disabled

    explorer._next.click()
    assert explorer.page == 1 and _listed(explorer) == list(range(21, 41))
    explorer.page = 99  # clamped to the last page
    assert explorer.page == 2 and _listed(explorer) == list(range(41, 46))
    assert explorer._next.disabled
    assert "events 41–45 of 45" in explorer._status.value
    explorer._prev.click()
    assert _listed(explorer) == list(range(21, 41))

    explorer.event_type = "view"  # a filter goes back to the first page
    assert (explorer.total, explorer.page) == (15, 0)
    assert _listed(explorer) == list(range(1, 46, 3))
    explorer.entity_id = "u0"
    assert _listed(explorer) == [1, 13, 25, 37]  # views of u0: i % 12 == 0
    explorer.event_type = ""
    explorer.entity_id = ""
    explorer.since = "2026-01-01T00:10:00Z"
    explorer.until = "2026-01-01T00:12:00Z"
    assert explorer.total == 2 and _listed(explorer) == [11, 12]

    explorer.since = explorer.until = ""
    explorer.page_size = 7
    explorer.page = 6
    assert _listed(explorer) == list(range(43, 46))
    _ = store.append("view", "u9", {}, timestamp="2026-01-02T00:00:00Z")
    assert explorer.total == 45  # until refreshed
    explorer._reload.click()
    assert explorer.total == 46 and _listed(explorer) == list(range(43, 47))
    assert explorer.error == ""


def test_explorer_selecting_an_event_shows_its_payload_and_the_state_after_it(
    store: asl.EventStore,
) -> None:
    store.append("cart.opened", "cart-1", {"items": {"tea": 1}, "note": "hi"})
    second = store.append("cart.changed", "cart-1", {"items": {"jam": 2}, "note": None})
    store.append("cart.changed", "cart-1", {"items": {"tea": None}})
    store.append("other", "cart-2", {"x": 1})
    explorer = widgets.explorer(store)
    assert "select an event" in explorer._detail.value

    explorer._list.value = second.sequence  # what a click in the list does
    assert explorer.selected_sequence == second.sequence
    detail = explorer._detail.value
    assert "state after v2" in detail
    assert json_block({"items": {"jam": 2}, "note": None}) in detail  # the payload
    assert json_block({"items": {"tea": 1, "jam": 2}}) in detail  # versions 1 and 2 folded

    explorer.event_type = "other"  # the selection is kept when it leaves the page
    assert explorer.selected_sequence == second.sequence and explorer._list.value is None
    explorer.selected_sequence = 3  # an event on no page shown is fetched
    assert json_block({"items": {"jam": 2}}) in explorer._detail.value
    assert "state after v3" in explorer._detail.value


def test_explorer_state_after_an_event_ignores_later_versions_with_earlier_times(
    store: asl.EventStore,
) -> None:
    store.append("set", "e", {"a": 1}, timestamp="2026-01-01T00:10:00Z")
    first_late = store.append("set", "e", {"b": 2}, timestamp="2026-01-01T00:20:00Z")
    store.append("set", "e", {"c": 3}, timestamp="2026-01-01T00:05:00Z")  # late
    explorer = widgets.explorer(store)
    explorer.selected_sequence = first_late.sequence
    assert json_block({"a": 1, "b": 2}) in explorer._detail.value


def test_explorer_shows_a_bad_filter_as_its_error_until_fixed(store: asl.EventStore) -> None:
    _shop(store, 5)
    explorer = widgets.explorer(store)
    assert _listed(explorer) == [1, 2, 3, 4, 5]
    explorer.since = "last tuesday"
    assert explorer.error.startswith("InvalidEvent") and "last tuesday" in explorer.error
    assert _listed(explorer) == [] and explorer.total == 0  # nothing stale left on screen
    assert "last tuesday" in explorer._error_box.value
    assert explorer._error_box.layout.display is None  # shown
    explorer.since = "2026-01-01T00:02:00Z"
    assert explorer.error == "" and explorer._error_box.layout.display == "none"
    assert explorer.total == 3


def test_a_handler_that_raises_shows_its_error_in_the_widget(
    store: asl.EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _shop(store, 3)
    explorer = widgets.explorer(store)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(store, "events", broken)
    explorer._reload.click()  # the button's own callback path
    assert explorer.error == "RuntimeError: the disk is on fire"
    assert "Traceback" in explorer._error_box.value and "on fire" in explorer._error_box.value
    monkeypatch.undo()
    explorer._reload.click()
    assert explorer.error == "" and explorer.total == 3


def test_selecting_a_sequence_that_does_not_exist_is_reported(store: asl.EventStore) -> None:
    _shop(store, 3)
    explorer = widgets.explorer(store)
    explorer.selected_sequence = 99
    assert explorer.error.startswith("NotFound") and "sequence 99" in explorer.error


# -- time travel ------------------------------------------------------------------------------


def test_timetravel_slides_through_versions_showing_what_changed(store: asl.EventStore) -> None:
    for t, payload in (
        ("00:01", {"a": 1, "b": {"c": 1}}),
        ("00:02", {"b": {"c": 2}, "d": [1]}),
        ("00:03", {"a": None}),
    ):
        store.append("set", "e", payload, timestamp=f"2026-01-01T{t}:00Z")
    store.append("set", "other", {"z": 0})
    travel = widgets.timetravel(store, "e")
    assert (travel.moments, travel.position, travel.version) == (3, 2, 3)  # the newest
    assert travel.state == {"b": {"c": 2}, "d": [1]}
    assert travel.changes == [Change(("a",), "removed", 1, None)]

    travel._slider.value = 1  # dragging the slider
    assert travel.version == 2 and travel.state == {"a": 1, "b": {"c": 2}, "d": [1]}
    assert travel.changes == [
        Change(("b", "c"), "changed", 1, 2),
        Change(("d",), "added", None, [1]),
    ]
    assert "b.c" in travel._diff.value and "changed" in travel._diff.value

    travel.version = 1
    assert travel.position == 0 and travel._back.disabled
    assert {c.kind for c in travel.changes} == {"added"}
    travel._forward.click()
    assert travel.version == 2
    travel.step(5)
    assert travel.position == 2 and travel._forward.disabled


def test_timetravel_event_time_places_a_late_event_where_it_happened(
    store: asl.EventStore,
) -> None:
    store.append("set", "e", {"a": 1}, timestamp="2026-01-01T00:10:00Z")
    store.append("set", "e", {"b": 2}, timestamp="2026-01-01T00:30:00Z")
    store.append("set", "e", {"a": 3}, timestamp="2026-01-01T00:20:00Z")  # late
    travel = widgets.timetravel(store, "e")
    order = []
    for position in range(travel.moments):
        travel.position = position
        order.append(travel.version)
    assert order == [1, 3, 2]  # event time
    travel.version = 3
    assert travel.state == {"a": 3} == store.state("e", as_of="2026-01-01T00:20:00Z")
    assert travel.changes == [Change(("a",), "changed", 1, 3)]

    travel._axis.value = True  # the toggle: recorded time, the order the store learned
    assert travel.use_recorded_time and travel.version == 3 and travel.position == 2
    assert travel.state == {"a": 3, "b": 2}
    assert travel.changes == [Change(("a",), "changed", 1, 3)]
    travel.position = 1
    assert travel.version == 2 and travel.state == {"a": 1, "b": 2}
    travel.use_recorded_time = False
    assert travel.version == 2 and travel.position == 2  # same version, its event-time place


def test_timetravel_shows_a_batch_as_one_recorded_moment(store: asl.EventStore) -> None:
    store.append_batch(
        [
            {"event_type": "set", "entity_id": "e", "payload": {"k": i}, "timestamp": t}
            for i, t in enumerate(["2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"])
        ]
    )
    travel = widgets.timetravel(store, "e")
    assert travel.moments == 2
    travel.use_recorded_time = True
    assert travel.moments == 1 and travel.version == 2 and travel.state == {"k": 1}
    assert "v1 set" in travel._where.value and "v2 set" in travel._where.value


def test_timetravel_reports_an_unknown_entity_or_version(store: asl.EventStore) -> None:
    store.append("set", "e", {"a": 1})
    assert widgets.timetravel(store, "nobody").error.startswith("NotFound")
    travel = widgets.timetravel(store, "e")
    travel.version = 7
    assert "no version 7" in travel.error
    travel.version = 1
    assert travel.error == ""


# -- replay progress --------------------------------------------------------------------------


def test_replay_progress_follows_the_job_and_cancel_stops_it(store: asl.EventStore) -> None:
    _shop(store, 20)
    gate = Gate()
    gate.seen = [-1]  # the state from before the replay, to come back to
    job = store.replay(gate, batch_size=5)
    bar = widgets.replay_progress(job)
    try:
        assert gate.entered.acquire(timeout=10)  # in the first batch
        gate.go.release()
        assert gate.entered.acquire(timeout=10)  # the first batch is done
        bar.refresh()
        assert (bar.status, bar.processed, bar.total, bar.percent) == ("running", 5, 20, 25.0)
        assert bar.events_per_sec > 0 and bar.eta_s is not None
        assert bar._bar.value == 25.0 and "5 of 20 events" in bar._numbers.value

        bar._cancel.click()
        assert bar._cancel.disabled
        gate.go.release()
        assert job.wait(10)
        bar.refresh()
        assert bar.status == "cancelled" and bar._bar.bar_style == "warning"
        assert gate.seen == [-1]  # rolled back
    finally:
        for _ in range(10):
            gate.go.release()
        job.cancel()
        job.wait(10)
        bar.close()
    assert bar._watcher is not None and not bar._watcher.is_alive()


def test_replay_progress_watcher_shows_the_end_by_itself(store: asl.EventStore) -> None:
    _shop(store, 12)
    gate = Gate()
    job = store.replay(gate, batch_size=5)
    bar = widgets.replay_progress(job, interval_s=0.05)
    assert bar._watcher is not None  # the job is still running: the first batch waits
    for _ in range(3):
        gate.go.release()
    assert job.wait(10)
    bar._watcher.join(10)
    assert not bar._watcher.is_alive()
    assert (bar.status, bar.processed, bar.percent) == ("done", 12, 100.0)
    assert bar._cancel.disabled and bar._bar.bar_style == "success"
    bar.close()


# -- schema panel -----------------------------------------------------------------------------


def test_schema_panel_lists_subjects_versions_and_diffs_them(store: asl.EventStore) -> None:
    v1 = {"type": "object", "properties": {"n": {"type": "number"}}}
    v2 = {"type": "object", "properties": {"n": {"type": "integer"}, "m": {}}}
    store.schemas.register("click", v1)
    store.schemas.register("click", v2, compatibility="NONE")
    store.schemas.register("view", {"type": "object"})
    panel = widgets.schema_panel(store)
    assert panel.subjects == ["click", "view"] and panel.subject == "click"
    assert (panel.versions, panel.version, panel.compare_to, panel.mode) == ([1, 2], 2, 1, "NONE")
    assert panel.changes == [
        Change(("properties", "m"), "added", None, {}),
        Change(("properties", "n", "type"), "changed", "number", "integer"),
    ]
    assert panel.backward == ["type narrowed: number -> integer at #/properties/n"]
    assert panel.forward == []
    assert "#/properties/n/type" in panel._diff.value

    panel._compare_pick.value = 0  # choosing "none" in the dropdown
    assert panel.compare_to == 0 and panel.changes == []
    panel._version_pick.value = 1
    assert panel.version == 1 and "&quot;number&quot;" in panel._schema.value

    panel._subject_list.value = "view"
    assert (panel.versions, panel.version, panel.compare_to) == ([1], 1, 0)
    assert panel.mode == "BACKWARD"
    assert panel.error == ""


def test_schema_panel_checks_a_candidate_against_the_mode(store: asl.EventStore) -> None:
    store.schemas.register("click", {"type": "object", "properties": {"n": {}}})
    panel = widgets.schema_panel(store)
    panel.candidate = '{"type": "object", "properties": {"n": {}}, "required": ["n"]}'
    panel._check.click()
    assert panel.report == "incompatible (BACKWARD): required property added: #/required/n"
    assert "#/required" in panel._report_line.value
    panel.candidate = "{not json"
    panel.check()
    assert panel.error.startswith("JSONDecodeError") and panel.report == ""


def test_schema_panel_without_schemas_says_how_to_register(store: asl.EventStore) -> None:
    panel = widgets.schema_panel(store)
    assert panel.subjects == [] and panel.subject == "" and panel.error == ""
    assert "store.schemas.register" in panel._diff.value
    store.schemas.register("click", {"type": "object"})
    panel._reload.click()
    assert panel.subject == "click" and panel.version == 1


# -- live tail --------------------------------------------------------------------------------


def test_live_tail_shows_appended_events_bounded_in_rows(store: asl.EventStore) -> None:
    _shop(store, 5)
    tail = widgets.live_tail(store, rows=3)
    try:
        assert tail.shown == [5, 4, 3] and tail.seen == 5 and tail.received == 0
        for i in range(4):
            store.append("click", "u1", {"i": i})
        store.append_batch([{"event_type": "view", "entity_id": "u2", "payload": {}}] * 2)
        assert _eventually(lambda: tail.seen == 11)
        assert tail.shown == [11, 10, 9] and tail.received == 6
        assert "11" in tail._table.value and "6 new since opened" in tail._status.value

        tail.rows = 2
        assert tail.shown == [11, 10]
        tail._filter.value = "click"  # only clicks, read again
        assert tail.shown == [9, 8] and tail.received == 0
        store.append("view", "u1", {})
        store.append("click", "u1", {})
        assert _eventually(lambda: tail.seen == 13)
        assert tail.shown == [13, 9] and tail.received == 1
    finally:
        tail.close()


def test_live_tail_paused_catches_up_when_resumed(store: asl.EventStore) -> None:
    tail = widgets.live_tail(store, rows=10)
    try:
        assert tail.shown == [] and "no events yet" in tail._table.value
        tail._pause.value = True
        store.append("click", "u1", {})
        tail.poll()  # nothing the thread would do while paused is needed to see it later
        tail.clear()
        assert tail.shown == []
        store.append("click", "u1", {})
        tail.paused = False
        assert _eventually(lambda: tail.seen == 2)
        assert tail.shown == [2] and tail.received == 2
    finally:
        tail.close()


def test_closing_the_live_tail_stops_its_thread_and_leaves_the_store(
    store: asl.EventStore,
) -> None:
    tail = widgets.live_tail(store)
    assert tail._on_append in store._log.listeners and tail._thread.is_alive()
    tail.close()
    assert not tail._thread.is_alive() and not tail.watching
    assert tail._on_append not in store._log.listeners
    store.append("click", "u1", {})
    tail.poll()  # a read by hand still works; only the watching stopped
    assert tail.shown == [1]


def test_closing_the_store_stops_the_live_tail(tmp_path: Path) -> None:
    store = asl.open(tmp_path / "tail.events")
    _shop(store, 2)
    tail = widgets.live_tail(store)
    store.close()
    tail._thread.join(10)
    assert not tail._thread.is_alive() and not tail.watching
    assert "the store was closed" in tail._status.value
    tail.poll()
    assert tail.error.startswith("StorageError")
    tail.close()
    with pytest.raises(asl.StorageError, match="closed"):
        widgets.live_tail(store)


def test_widget_threads_run_in_the_context_of_the_cell_that_made_them():
    # ipykernel keeps a message's parent header in a ContextVar; a widget's thread must see
    # the value of the cell that created the widget, not whatever the kernel does later.
    import contextvars

    from allsource_lab.notebook.widgets.panel import start_thread

    parent: contextvars.ContextVar[str] = contextvars.ContextVar("parent")
    parent.set("cell 7")
    seen: list[str] = []
    go = threading.Event()

    def run() -> None:
        go.wait(10)
        seen.append(parent.get("none"))

    thread = start_thread(run, "test-widget-thread")
    parent.set("cell 8")  # the kernel moves on to another request
    go.set()
    thread.join(10)
    assert seen == ["cell 7"] and thread.daemon
