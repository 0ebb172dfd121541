"""``%allsource ingest`` run again, as notebook cells are: each source row is stored once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import allsource_lab as asl
from allsource_lab import display
from allsource_lab.display import MIMETYPE, bundle
from allsource_lab.notebook import AllSourceMagics, load_ipython_extension, unload_ipython_extension


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    """A shell with the extension loaded and a fresh memory store open."""
    ip = InteractiveShell.instance()
    load_ipython_extension(ip)
    ip.run_line_magic("allsource", "open --memory")
    yield ip
    unload_ipython_extension(ip)
    ip.run_line_magic("reset", "-f")
    display.set_default_limit(display.DEFAULT_LIMIT)


def ingest(ip: InteractiveShell, line: str) -> dict[str, Any]:
    """The display document of ``%allsource ingest LINE``."""
    view = ip.run_line_magic("allsource", f"ingest {line} --quiet")
    document: dict[str, Any] = bundle(view)[MIMETYPE]
    return document


def card(ip: InteractiveShell, line: str) -> str:
    return str(bundle(ip.run_line_magic("allsource", f"ingest {line} --quiet"))["text/plain"])


def store_of(ip: InteractiveShell) -> asl.EventStore:
    found = ip.magics_manager.registry["AllSourceMagics"]
    assert isinstance(found, AllSourceMagics)
    return found.session.current()


CLICKS = " --type-col kind --entity-col user --time-col at"  # how clicks_csv maps to events


def clicks_csv(path: Path, rows: int, start: int = 0) -> Path:
    lines = ["user,kind,page,at"]
    for i in range(start, start + rows):
        lines.append(f"u{i % 50},click,/p/{i % 7},2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_csv_ingested_twice_is_stored_once_and_the_second_card_says_so(shell, tmp_path):
    csv = clicks_csv(tmp_path / "clicks.csv", 2000)
    first = ingest(shell, f"{csv}{CLICKS}")
    assert (first["appended"], first["duplicates"]) == (2000, 0)
    again = ingest(shell, f"{csv}{CLICKS}")
    assert (again["rows"], again["appended"], again["duplicates"]) == (2000, 0, 2000)
    assert "2,000 already present, 0 new" in card(shell, f"{csv}{CLICKS}")
    assert store_of(shell).stats()["events"] == 2000


def test_identical_rows_of_one_file_are_distinct_events_stored_once(shell, tmp_path):
    csv = tmp_path / "same.csv"
    csv.write_text("entity_id,event_type,n\na,t,1\na,t,1\na,t,1\n")
    assert ingest(shell, str(csv))["appended"] == 3
    assert ingest(shell, str(csv))["appended"] == 0
    assert store_of(shell).stats()["events"] == 3


def test_a_grown_or_edited_file_writes_only_its_new_rows(shell, tmp_path):
    csv = clicks_csv(tmp_path / "clicks.csv", 100)
    ingest(shell, f"{csv}{CLICKS}")
    clicks_csv(csv, 130)  # the same 100 rows and 30 more
    grown = ingest(shell, f"{csv}{CLICKS}")
    assert (grown["appended"], grown["duplicates"]) == (30, 100)
    text = csv.read_text().replace("/p/3,", "/p/three,", 1)  # one row edited
    csv.write_text(text)
    edited = ingest(shell, f"{csv}{CLICKS}")
    assert (edited["appended"], edited["duplicates"]) == (1, 129)
    assert store_of(shell).stats()["events"] == 131


def test_rows_without_event_times_are_recognised_on_a_rerun(shell, tmp_path):
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text('{"entity_id": "a", "event_type": "t", "payload": {"x": 1}}\n\n' * 3)
    assert ingest(shell, str(jsonl))["appended"] == 3
    assert ingest(shell, str(jsonl))["appended"] == 0


def test_a_dataframe_ingested_twice_is_stored_once(shell):
    shell.user_ns["df"] = pd.DataFrame(
        {"entity_id": ["a", "b", "a"], "event_type": ["t"] * 3, "n": [1, 2, 1]}
    )
    assert ingest(shell, "df")["appended"] == 3
    again = ingest(shell, "df --batch-size 2")  # cut into batches differently
    assert (again["appended"], again["duplicates"]) == (0, 3)


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_id_col_takes_the_event_ids_from_a_column_and_keeps_it_out_of_the_payload(
    shell, tmp_path, suffix
):
    ids = [str(uuid.uuid4()) for _ in range(3)]
    frame = pd.DataFrame({"key": ids, "entity_id": ["a", "b", "c"], "event_type": ["t"] * 3})
    frame["n"] = [1, 2, 3]
    path = tmp_path / f"rows.{suffix}"
    if suffix == "csv":
        frame.to_csv(path, index=False)
    elif suffix == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        pq.write_table(pa.Table.from_pandas(frame), path)
    assert ingest(shell, f"{path} --id-col key")["appended"] == 3
    store = store_of(shell)
    assert [str(e.event_id) for e in store.events()] == ids
    assert store.state("b") == {"n": 2}
    assert ingest(shell, f"{path} --id-col key")["duplicates"] == 3


def test_id_col_of_a_dataframe_takes_uuids_text_or_bytes(shell):
    ids = [uuid.uuid4() for _ in range(3)]
    shell.user_ns["df"] = pd.DataFrame(
        {
            "key": [ids[0], str(ids[1]), ids[2].bytes],
            "entity_id": ["a", "b", "c"],
            "event_type": ["t"] * 3,
        }
    )
    assert ingest(shell, "df --id-col key")["appended"] == 3
    assert [e.event_id for e in store_of(shell).events()] == ids


def test_a_bad_id_is_refused_naming_the_row_and_nothing_is_written(shell, tmp_path):
    csv = tmp_path / "rows.csv"
    good = [str(uuid.uuid4()) for _ in range(3)]
    csv.write_text(f"key,entity_id,event_type\n{good[0]},a,t\n{good[1]},b,t\nnot-an-id,c,t\n")
    with pytest.raises(UsageError, match=r"row 2, field 'key': 'not-an-id' is not a UUID"):
        ingest(shell, f"{csv} --id-col key --batch-size 1")
    csv.write_text(f"key,entity_id,event_type\n{good[0]},a,t\n,b,t\n")
    with pytest.raises(UsageError, match=r"row 1, field 'key': has no event id"):
        ingest(shell, f"{csv} --id-col key --batch-size 1")
    with pytest.raises(UsageError, match=r"no column 'nope' for --id-col"):
        ingest(shell, f"{csv} --id-col nope")
    assert store_of(shell).stats()["events"] == 0


def test_a_bad_row_late_in_a_file_leaves_the_store_unchanged(shell, tmp_path):
    csv = tmp_path / "rows.csv"
    csv.write_text("entity_id,event_type,n\na,t,1\nb,t,2\n,t,3\n")
    with pytest.raises(UsageError, match="row 2"):
        ingest(shell, f"{csv} --batch-size 1")
    assert store_of(shell).stats()["events"] == 0


def test_a_source_id_stored_with_other_content_is_refused_and_nothing_written(shell, tmp_path):
    key = str(uuid.uuid4())
    csv = tmp_path / "rows.csv"
    csv.write_text(f"key,entity_id,event_type,n\n{key},a,t,1\n")
    ingest(shell, f"{csv} --id-col key")
    other = str(uuid.uuid4())
    csv.write_text(f"key,entity_id,event_type,n\n{other},b,t,5\n{key},a,t,2\n")
    with pytest.raises(UsageError, match=f"event_id {key} is already stored"):
        ingest(shell, f"{csv} --id-col key")
    assert store_of(shell).stats()["events"] == 1
