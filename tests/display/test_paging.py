"""The "next page" of an events display: followed, it shows exactly the rows after the ones
shown, whether the display limit or the query's own limit cut them (issue 18, item 4)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import allsource_lab as asl
from allsource_lab.display import MIMETYPE, bundle
from allsource_lab.display.render import SEE_ALL


@pytest.fixture
def log() -> Iterator[asl.EventStore]:
    """23 events: types a and b in turn, over 5 entities."""
    with asl.open() as store:
        store.append_batch(
            [
                {"event_type": "ab"[i % 2], "entity_id": f"e{i % 5}", "payload": {"i": i}}
                for i in range(23)
            ]
        )
        yield store


def shown(doc: dict[str, Any]) -> list[int]:
    return [row[0] for row in doc["table"]["rows"]]


def follow(store: asl.EventStore, display_limit: int, **query: Any) -> list[int]:
    """Every row shown while following each page's cursor from the first page."""
    seen: list[int] = []
    cursor = None
    for _ in range(100):  # more pages than any test has: a cursor that loops fails
        doc = bundle(store.events(after=cursor, **query), limit=display_limit)[MIMETYPE]
        seen += shown(doc)
        cursor = doc["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError(f"the cursor never ran out; rows so far {seen}")


def everything(store: asl.EventStore, **query: Any) -> list[int]:
    return [e.sequence for e in store.events(**query)]


@pytest.mark.parametrize(
    ("display_limit", "query_limit"),
    [
        (5, 8),  # both cut; the display first (the issue's --limit 200 shown 50)
        (5, None),  # only the display cuts
        (8, 5),  # only the query's limit cuts
        (5, 5),  # both cut at the same row
        (7, 23),  # the query's limit is exactly the log: the last page is empty
    ],
)
def test_following_the_cursor_shows_every_row_once_in_order(log, display_limit, query_limit):
    assert follow(log, display_limit, limit=query_limit) == everything(log)


def test_the_cursor_keeps_to_the_filters(log):
    for query in ({"event_type": "b"}, {"entity_id": "e2"}, {"event_type": "a", "limit": 3}):
        plain = {k: v for k, v in query.items() if k != "limit"}
        assert follow(log, 2, **query) == everything(log, **plain), query


def test_a_display_cut_continues_after_the_last_row_shown_not_after_the_frame(log):
    doc = bundle(log.events(limit=20), limit=5)[MIMETYPE]
    assert shown(doc) == [1, 2, 3, 4, 5] and doc["next_cursor"] == 5


def test_a_query_limit_cut_continues_after_the_frame(log):
    doc = bundle(log.events(limit=4), limit=10)[MIMETYPE]
    assert shown(doc) == [1, 2, 3, 4] and doc["next_cursor"] == 4


def test_a_whole_result_shown_has_no_next_page(log):
    doc = bundle(log.events(), limit=0)[MIMETYPE]
    assert len(shown(doc)) == 23 and doc["next_cursor"] is None
    out = bundle(log.events(), limit=0)
    assert "next page" not in out["text/plain"] and SEE_ALL not in out["text/plain"]


def test_a_newest_first_read_offers_no_cursor_but_says_how_to_see_all(log):
    # `after` is a lower bound: no cursor continues a reverse read.
    out = bundle(log.events(reverse=True, limit=10), limit=3)
    assert out[MIMETYPE]["next_cursor"] is None
    assert "showing 3 of 10 events; " + SEE_ALL in out["text/plain"]


def test_text_and_html_give_the_documents_cursor_and_the_line_that_follows_it(log):
    out = bundle(log.events(event_type="b", limit=8), limit=3)
    cursor = out[MIMETYPE]["next_cursor"]
    assert cursor == 6
    line = f"%allsource events --type b --limit 8 --after {cursor}"
    assert f"next page  after={cursor}: {line}" in out["text/plain"]
    assert f'<td style="text-align:left">after={cursor}: {line}</td>' in out["text/html"]
    footer = "showing 3 of 8 events; " + SEE_ALL
    assert footer in out["text/plain"] and footer in out["text/html"]


def test_a_table_cut_by_the_display_says_how_to_see_every_row(log):
    frame = log.sql("select * from events").df()
    out = bundle("table", frame, limit=4)
    assert "showing 4 of 23 rows; " + SEE_ALL in out["text/plain"]
    assert "%config AllSourceMagics.displaylimit = 0" in SEE_ALL and "-o NAME" in SEE_ALL
    whole = bundle("table", frame, limit=0)
    assert "showing 23 of 23 rows" in whole["text/plain"] and SEE_ALL not in whole["text/plain"]
