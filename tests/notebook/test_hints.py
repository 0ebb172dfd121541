"""Hints that point somewhere (issue 18, items 4 and 11): the "next page" line runs and
continues where the display stopped, ``displaylimit`` is a real setting, a name not found
gets near names and a way to list them, a read's error never says "nothing was written",
options are named as options, and ``--help`` says what ``open`` opens."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import allsource_lab as asl
from allsource_lab import display
from allsource_lab.display import MIMETYPE, bundle
from allsource_lab.display.render import SEE_ALL
from allsource_lab.notebook import load_ipython_extension, unload_ipython_extension
from allsource_lab.notebook.magics import overview
from allsource_lab.notebook.registry import SUBCOMMANDS

LIST_ENTITIES_LINE = "sql select distinct entity_id from events limit 20"


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    """A shell with the extension and a memory store of 12 events over 3 orders."""
    ip = InteractiveShell.instance()
    load_ipython_extension(ip)
    ip.run_line_magic("allsource", "open --memory")
    for i in range(12):
        kind = "order.placed" if i < 3 else "order.paid"
        ip.run_line_magic("allsource", f'append {kind} order-{i % 3 + 1} {{"i": {i}}}')
    yield ip
    unload_ipython_extension(ip)
    ip.run_line_magic("reset", "-f")
    display.set_default_limit(display.DEFAULT_LIMIT)


def run(ip: InteractiveShell, line: str) -> Any:
    return ip.run_line_magic("allsource", line)


def refusal(ip: InteractiveShell, line: str) -> str:
    """The one-line ``UsageError`` message of ``line``."""
    with pytest.raises(UsageError) as info:
        run(ip, line)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def next_line(view: Any) -> str | None:
    """The magic line the text's "next page" gives, without ``%allsource``."""
    found = re.search(r"next page  after=\d+: %allsource (.*)", bundle(view)["text/plain"])
    return None if found is None else found.group(1)


def sequences(view: Any) -> list[int]:
    return [row[0] for row in bundle(view)[MIMETYPE]["table"]["rows"]]


@pytest.mark.parametrize("first", ["events --limit 8", "events", "events --type order.paid"])
def test_running_each_next_page_line_shows_every_event_once(shell, first):
    shell.run_line_magic("config", "AllSourceMagics.displaylimit = 5")
    seen: list[int] = []
    line: str | None = first
    while line is not None:
        view = run(shell, line)
        seen += sequences(view)
        line = next_line(view)
        assert len(seen) <= 12, seen
    everything = run(shell, first.replace("--limit 8", "") + " -o whole")
    assert seen == [e.sequence for e in shell.user_ns["whole"]]
    assert len(bundle(everything)[MIMETYPE]["table"]["rows"]) == 5


def test_the_issues_case_continues_at_the_row_after_the_last_shown(shell):
    shell.run_line_magic("config", "AllSourceMagics.displaylimit = 5")
    view = run(shell, "events --limit 10")
    assert sequences(view) == [1, 2, 3, 4, 5]
    assert next_line(view) == "events --limit 10 --after 5"
    assert sequences(run(shell, "events --limit 10 --after 5")) == [6, 7, 8, 9, 10]


def test_config_displaylimit_changes_what_is_shown_and_o_binds_every_row(shell):
    shell.run_line_magic("config", "AllSourceMagics.displaylimit = 5")
    view = run(shell, "events -o frame")
    assert len(sequences(view)) == 5 and len(shell.user_ns["frame"]) == 12
    assert f"showing 5 of 12 events; {SEE_ALL}" in bundle(view)["text/plain"]
    shell.run_line_magic("config", "AllSourceMagics.displaylimit = 0")
    view = run(shell, "events")
    assert len(sequences(view)) == 12 and SEE_ALL not in bundle(view)["text/plain"]
    shell.run_line_magic("config", "AllSourceMagics.displaylimit = 3")
    assert len(bundle(run(shell, LIST_ENTITIES_LINE))[MIMETYPE]["table"]["rows"]) == 3


def test_an_unknown_entity_gets_near_names_and_a_line_that_lists_them(shell):
    message = refusal(shell, "state ordr-2")
    assert message.startswith("NotFound: no entity 'ordr-2' in the store; did you mean 'order-2'")
    assert f"list entity ids with %allsource {LIST_ENTITIES_LINE}" in message
    assert "%allsource stats" not in message
    listed = run(shell, LIST_ENTITIES_LINE)
    names = {row[0] for row in bundle(listed)[MIMETYPE]["table"]["rows"]}
    assert names == {"order-1", "order-2", "order-3"}


def test_an_entity_far_from_every_name_gets_no_guess_but_the_listing(shell):
    message = refusal(shell, "state zzzzzz")
    assert "did you mean" not in message and LIST_ENTITIES_LINE in message


def test_an_entity_before_its_first_event_is_not_called_a_misspelling(shell):
    message = refusal(shell, "state order-1 --as-of 2000-01-01T00:00:00Z")
    assert "has no event at that moment" in message and "did you mean" not in message


@pytest.mark.parametrize(
    "line",
    [
        "state order-1 --as-of yesterday",
        "events --as-of yesterday",
        "events --since yesterday",
        "window --every 1h --as-of yesterday",
    ],
)
def test_a_refused_read_never_says_nothing_was_written(shell, line):
    message = refusal(shell, line)
    assert message.startswith("InvalidEvent: ") and "ISO-8601" in message
    assert "written" not in message


def test_a_refused_write_still_says_nothing_was_written(shell):
    message = refusal(shell, "append order.paid order-1 {} --time yesterday")
    assert "nothing was written" in message


def test_a_time_without_a_zone_names_the_timezone_option(shell):
    shell.user_ns["df"] = pd.DataFrame({"entity_id": ["a"], "at": ["2026-01-01 00:00:00"]})
    message = refusal(shell, "ingest df --event-type t --time-col at")
    assert "e.g. --timezone UTC or --timezone America/New_York" in message
    assert "'UTC'" not in message and "'America/New_York'" not in message


def test_ingest_names_its_column_options_apart_from_events_values(shell):
    help_text = SUBCOMMANDS["ingest"].parser().format_help()
    flat = " ".join(help_text.split())
    assert "--type-col COL, --type COL" in flat
    assert "--type is a deprecated alias of --type-col" in flat
    assert "--entity-col COL, --entity COL" in flat and "--time-col COL, --time COL" in flat
    parser = SUBCOMMANDS["ingest"].parser()
    for spelling in ("--type-col", "--type"):
        assert parser.parse_args(["df", spelling, "kind"]).type_col == "kind"
    assert "--type TYPE" in " ".join(SUBCOMMANDS["events"].parser().format_help().split())


def test_the_overview_says_what_open_without_a_path_opens(monkeypatch):
    monkeypatch.delenv("ALLSOURCE_DEFAULT_STORE", raising=False)
    assert "open with no PATH opens the folder $ALLSOURCE_DEFAULT_STORE names" in overview()
    monkeypatch.setenv("ALLSOURCE_DEFAULT_STORE", "/data/demo.events")
    text = overview()
    assert "open with no PATH opens /data/demo.events" in text
    assert "start with: %allsource open, which opens /data/demo.events" in text
    with asl.open() as store:
        assert "open with no PATH opens /data/demo.events" in overview(store)
