"""Generated schemas and pipeline specs: the documented error or success, nothing
registered on failure, and what was registered still loads after a reopen."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import allsource_lab as asl
from tests.fuzzing.test_fuzz_inputs import (
    FUZZ,
    SLOW_FUZZ,
    assert_documented,
    fingerprint,
    identifiers,
    json_like,
    nasty_text,
    same,
)
from tests.fuzzing.test_fuzz_queries import good_or

# -- schemas ------------------------------------------------------------------------------------

numbers = st.one_of(
    st.integers(-5, 5), st.integers(), st.floats(), st.sampled_from([math.nan, math.inf, 10**30])
)
patterns = st.one_of(st.sampled_from(["^a", "(?<", "\\p{L}", "[", "a{2,1}", "\\d+$"]), nasty_text)
refs = st.one_of(
    st.sampled_from(["#/$defs/s", "#/$defs/missing", "#", "http://example.com/s.json", "#/nope/0"]),
    nasty_text,
)
type_names = st.sampled_from(["object", "string", "integer", "number", "boolean", "array", "null"])


def schemas(depth: int = 2) -> st.SearchStrategy[Any]:
    """Schemas: mostly of keywords the fast validator knows, with garbage values."""
    keyword_values: dict[str, st.SearchStrategy[Any]] = {
        "type": good_or(st.one_of(type_names, st.lists(type_names, max_size=2)), json_like),
        "minimum": numbers,
        "maximum": numbers,
        "exclusiveMinimum": numbers,
        "minLength": good_or(st.integers(0, 5), numbers),
        "maxLength": good_or(st.integers(0, 5), numbers),
        "pattern": patterns,
        "format": st.one_of(st.sampled_from(["date-time", "email", "uuid", "hostname"]), json_like),
        "enum": good_or(
            st.lists(st.one_of(st.integers(-2, 2), st.text(max_size=2)), min_size=1, max_size=3),
            json_like,
        ),
        "const": json_like,
        "required": good_or(st.lists(st.sampled_from("abc"), unique=True, max_size=3), json_like),
        "additionalProperties": st.one_of(st.booleans(), json_like),
        "$ref": refs,
        "oneOf": st.lists(st.just({"type": "object"}), max_size=2),
        "$defs": st.just({"s": {"type": "string"}}),
        "$schema": st.sampled_from(
            [
                "https://json-schema.org/draft/2020-12/schema",
                "http://json-schema.org/draft-07/schema#",
                "draft-99",
                5,
            ]
        ),
    }
    if depth > 0:
        keyword_values["properties"] = st.dictionaries(
            st.sampled_from(["a", "b", "c", "é", "\ud800"]), schemas(depth - 1), max_size=3
        )
        keyword_values["items"] = schemas(depth - 1)
    names = st.lists(st.sampled_from(sorted(keyword_values)), unique=True, max_size=5)
    structured = names.flatmap(lambda ks: st.fixed_dictionaries({k: keyword_values[k] for k in ks}))
    return good_or(structured, st.one_of(json_like, nasty_text, st.booleans()))


def registry_view(store: asl.EventStore) -> list[tuple[Any, ...]]:
    reg = store.schemas
    return [
        (s, reg.compatibility(s), [(v, reg.get(s, v).schema) for v in reg.versions(s)])
        for s in reg.subjects()
    ]


PAYLOADS = [
    {},
    {"a": 1},
    {"a": "x", "b": [1, 2]},
    {"c": None},
    {"a": 1.5e300},
    {"é": "2026-01-01T00:00:00Z"},
]


def check_register(store: asl.EventStore, subject: Any, schema: Any) -> None:
    before = registry_view(store)
    try:
        registered = store.schemas.register(subject, schema)
    except Exception as exc:
        assert_documented(exc, (asl.SchemaError,))
        assert registry_view(store) == before
        return
    assert registered.subject == subject
    # Every payload of the subject is now judged: valid, or a SchemaViolation.
    for payload in PAYLOADS:
        before_events = fingerprint(store)
        try:
            store.append(subject, "fuzz-1", payload)
        except Exception as exc:
            assert_documented(exc, (asl.SchemaError,))  # SchemaViolation, or a broken $ref
            assert same(before_events, fingerprint(store))
    rows = [{"event_type": subject, "entity_id": "fuzz-2", "payload": p} for p in PAYLOADS]
    for on_invalid in ("raise", "skip", "return"):
        before_events = fingerprint(store)
        try:
            store.append_batch(rows, on_invalid=on_invalid)
        except Exception as exc:
            assert_documented(exc, (asl.SchemaError,))  # SchemaViolation, or a broken $ref
            assert on_invalid == "raise" or not isinstance(exc, asl.SchemaViolation)
            assert same(before_events, fingerprint(store))


@pytest.fixture
def schema_store(tmp_path: Path) -> Any:
    path = tmp_path / "schemas.events"
    store = asl.open(path)
    store.schemas.set_compatibility(None, "NONE")  # let every valid schema through
    yield store
    view = registry_view(store)
    events = fingerprint(store)
    store.close()
    with asl.open(path) as again:
        assert registry_view(again) == view
        assert same(fingerprint(again), events)
        assert again.verify().ok


subjects = good_or(st.sampled_from(["order.placed", "user.joined"]), identifiers)


def test_registering_fuzzed_schemas_raises_only_schema_errors(schema_store):
    @FUZZ
    @given(subjects, schemas())
    def run(subject: Any, schema: Any) -> None:
        check_register(schema_store, subject, schema)

    run()


@pytest.mark.slow
def test_registering_fuzzed_schemas_raises_only_schema_errors_long(schema_store):
    @SLOW_FUZZ
    @given(subjects, schemas())
    def run(subject: Any, schema: Any) -> None:
        check_register(schema_store, subject, schema)

    run()


def test_fuzzed_compatibility_modes_and_checks_raise_only_schema_errors(schema_store):
    schema_store.schemas.register("order.placed", {"type": "object", "required": ["a"]})

    @FUZZ
    @given(
        st.one_of(st.none(), subjects),
        good_or(st.sampled_from(["NONE", "backward", "FULL_TRANSITIVE"]), identifiers),
        schemas(1),
    )
    def run(subject: Any, mode: Any, schema: Any) -> None:
        before = registry_view(schema_store)
        try:
            schema_store.schemas.set_compatibility(subject, mode)
        except Exception as exc:
            assert_documented(exc, (asl.SchemaError,))
            assert registry_view(schema_store) == before
        try:
            report = schema_store.schemas.check(subject or "order.placed", schema)
        except Exception as exc:
            assert_documented(exc, (asl.SchemaError,))
        else:
            assert isinstance(report.compatible, bool)
        schema_store.schemas.set_compatibility(None, "NONE")
        if subject is not None and isinstance(subject, str):
            with contextlib.suppress(asl.SchemaError):
                schema_store.schemas.set_compatibility(subject, "NONE")

    run()


# -- pipelines -----------------------------------------------------------------------------------

fields = good_or(
    st.sampled_from(
        ["payload.amount", "amount", "payload.region", "entity_id", "timestamp", "metadata.src"]
    ),
    st.one_of(identifiers, st.sampled_from(["payload.", "sequence", "payload.\ud800", ".x"])),
)
values = good_or(st.one_of(st.integers(-5, 200), st.sampled_from(["eu", "us"])), json_like)
seconds = good_or(st.sampled_from([1, 30, 60, 0.5]), numbers)
durations = good_or(
    st.sampled_from(["30s", "1m", "1h"]),
    st.one_of(nasty_text, st.sampled_from(["9" * 400 + "s", "0s", "1us"])),
)


@st.composite
def operators(draw: st.DrawFn) -> Any:
    kind = draw(
        good_or(
            st.sampled_from(["filter", "map", "reduce", "window", "enrich", "branch"]), json_like
        )
    )
    op: dict[Any, Any] = {"type": kind}
    if kind == "filter":
        op |= {
            "field": draw(fields),
            "op": draw(
                good_or(st.sampled_from(["eq", "gt", "in", "exists", "contains"]), json_like)
            ),
            "value": draw(values),
        }
    elif kind == "map":
        transform = draw(
            good_or(
                st.sampled_from(
                    [
                        "uppercase",
                        "set",
                        "rename",
                        "drop",
                        "compute",
                        "add:2",
                        "divide:0",
                        "multiply:1e400",
                    ]
                ),
                json_like,
            )
        )
        op |= {"field": draw(fields), "transform": transform}
        extra = {
            "set": ("value", values),
            "rename": ("to", fields),
            "compute": (
                "expr",
                good_or(
                    st.sampled_from(
                        ["payload.amount * 2", "1 +", "payload.amount / 0", "abs(payload.amount)"]
                    ),
                    json_like,
                ),
            ),
        }
        if isinstance(transform, str) and transform in extra:
            key, strategy = extra[transform]
            op[key] = draw(strategy)
    elif kind == "reduce":
        op |= {
            "aggregates": draw(
                good_or(st.just({"*": "count", "payload.amount": ["sum", "p95"]}), json_like)
            ),
            "group_by": draw(st.one_of(st.none(), fields, st.lists(fields, max_size=2))),
        }
    elif kind == "window":
        window_type = draw(
            good_or(st.sampled_from(["tumbling", "hopping", "session", "sliding"]), json_like)
        )
        config: dict[str, Any] = {"window_type": window_type}
        for key, strategy in (
            ("size_seconds", seconds),
            ("size", durations),
            ("slide_seconds", seconds),
            ("session_timeout_seconds", seconds),
            ("allowed_lateness_seconds", seconds),
            ("by", st.lists(fields, max_size=2)),
        ):
            if draw(st.booleans()):
                config[key] = draw(strategy)
        op |= {"config": config}
    elif kind == "enrich":
        op |= {
            "source": draw(
                good_or(
                    st.just({"eu": {"zone": "EU"}}),
                    st.one_of(json_like, st.dictionaries(nasty_text, json_like, max_size=2)),
                )
            ),
            "on": draw(fields),
        }
    elif kind == "branch":
        op |= {
            "field": draw(fields),
            "branches": draw(good_or(st.just({"eu": "europe"}), json_like)),
        }
    if draw(st.integers(0, 9)) == 0:
        op[draw(st.one_of(nasty_text, st.integers()))] = draw(json_like)
    return op


@st.composite
def pipeline_specs(draw: st.DrawFn) -> Any:
    def rarely_bad(good: st.SearchStrategy[Any], garbage: st.SearchStrategy[Any]) -> Any:
        return draw(garbage if draw(st.integers(0, 7)) == 0 else good)

    spec: dict[Any, Any] = {
        "name": rarely_bad(st.sampled_from(["p1", "p2"]), identifiers),
        "source_event_types": rarely_bad(
            st.sampled_from([["order.placed"], [], "order.placed"]), json_like
        ),
        "operators": rarely_bad(st.lists(operators(), max_size=3), json_like),
    }
    for key, strategy in (
        ("enabled", st.one_of(st.booleans(), st.booleans(), json_like)),
        ("max_results", st.one_of(st.integers(0, 50), st.integers(), json_like)),
    ):
        if draw(st.booleans()):
            spec[key] = draw(strategy)
    return draw(st.one_of(st.just(spec), st.just(spec), st.builds(lambda: spec).map(_as_text)))


def _as_text(spec: Any) -> Any:
    import orjson

    try:
        return orjson.dumps(spec).decode()
    except (TypeError, orjson.JSONEncodeError):
        return spec


ROWS = [
    {
        "event_type": "order.placed",
        "entity_id": f"o{i}",
        "payload": {"amount": i * 10, "region": "eu" if i % 2 else "us"},
    }
    for i in range(6)
]


def check_pipeline(store: asl.EventStore, spec: Any) -> None:
    names = list(store.projections)
    try:
        pipeline = asl.Pipeline.from_json(spec)
    except Exception as exc:
        assert_documented(exc, (ValueError,))
        return
    assert asl.Pipeline.from_json(pipeline.to_json()).to_dict() == pipeline.to_dict()
    try:
        store.pipelines.add(pipeline, start="beginning")
    except Exception as exc:
        assert_documented(exc, (ValueError, TypeError))
        assert list(store.projections) == names
        return
    try:
        # A pipeline that fails on an event counts an error; the append goes on.
        store.append_batch(ROWS)
        store.append("order.placed", "o9", {"amount": "not a number"})
        store.pipelines.results(pipeline.name)
        assert isinstance(store.pipelines.stats(pipeline.name), dict)
    finally:
        store.pipelines.remove(pipeline.name)
    assert list(store.projections) == names


def test_fuzzed_pipeline_specs_raise_only_value_errors(tmp_path):
    path = tmp_path / "pipelines.events"
    store = asl.open(path, checkpoint_every_events=50)
    store.append_batch(ROWS)

    @FUZZ
    @given(pipeline_specs())
    def run(spec: Any) -> None:
        check_pipeline(store, spec)

    run()
    events = fingerprint(store)
    store.close()
    with asl.open(path) as again:
        assert same(fingerprint(again), events)
        assert again.verify().ok


@pytest.mark.slow
def test_fuzzed_pipeline_specs_raise_only_value_errors_long(tmp_path):
    store = asl.open(tmp_path / "pipelines.events", checkpoint_every_events=50)
    store.append_batch(ROWS)

    @SLOW_FUZZ
    @given(pipeline_specs())
    def run(spec: Any) -> None:
        check_pipeline(store, spec)

    run()
    store.close()


def test_a_durable_pipeline_with_unusual_text_survives_reopen(tmp_path):
    path = tmp_path / "p.events"
    spec = {
        "name": "naïve 'quoted' \\ name",
        "source_event_types": ["order.placed"],
        "operators": [
            {
                "type": "filter",
                "field": "payload.region",
                "op": "in",
                "value": ["eu", "'; --", "\x00"],
            },
            {
                "type": "window",
                "config": {"window_type": "tumbling", "size_seconds": 60, "by": ["payload.region"]},
            },
        ],
    }
    with asl.open(path) as store:
        store.pipelines.add(asl.Pipeline.from_json(spec))
        store.append_batch(ROWS)
        before = store.pipelines.results(spec["name"], include_open=True)
    with asl.open(path) as store:
        store.pipelines.add(asl.Pipeline.from_json(spec))
        after = store.pipelines.results(spec["name"], include_open=True)
        assert after.equals(before)


# -- what the fuzzing found, one case each ------------------------------------------------------

FOUND_SCHEMAS = {
    "NaN (saved as null, read back as another schema)": {"maximum": math.nan},
    "Infinity": {"properties": {"a": {"minimum": -math.inf}}},
    "a $ref to nowhere": {"$ref": "#/nope"},
    "a remote $ref (nothing is fetched)": {"properties": {"a": {"$ref": "http://example.com/s"}}},
    "a $ref to itself": {"type": "object", "$ref": "#"},
    "an empty $ref": {"required": ["a"], "$ref": ""},
}


@pytest.mark.parametrize("case", FOUND_SCHEMAS)
def test_found_by_fuzzing_schemas_that_cannot_work_are_refused(case):
    store = asl.open()
    with pytest.raises(asl.SchemaError):
        store.schemas.register("t", FOUND_SCHEMAS[case])
    assert store.schemas.subjects() == []
    store.append("t", "e", {"a": 1})  # no schema applies


def test_found_by_fuzzing_a_subject_must_be_an_event_type():
    store = asl.open()
    for subject in ("\ud800", "tab\there", "x" * 256):
        with pytest.raises(asl.SchemaError):
            store.schemas.register(subject, {})
    assert store.schemas.subjects() == []


def test_a_ref_cycle_reached_by_one_payload_only_is_a_schema_error_not_a_crash():
    # A nested $id keeps the registry from checking the $ref; jsonschema recurses only
    # when a payload has "a".
    store = asl.open()
    store.schemas.register(
        "t", {"properties": {"a": {"$id": "http://x.test/a", "$ref": "http://x.test/a"}}}
    )
    store.append("t", "e", {"b": 1})
    with pytest.raises(asl.SchemaError):
        store.append("t", "e", {"a": 1})
    assert store.stats()["events"] == 1


def _window(config: dict[str, Any]) -> dict[str, Any]:
    return {"name": "p", "operators": [{"type": "window", "config": config}]}


FOUND_PIPELINES = {
    "a size of 1e308 seconds": _window({"window_type": "tumbling", "size_seconds": 1e308}),
    "a size of 10**30 seconds": _window({"window_type": "tumbling", "size_seconds": 10**30}),
    "a NaN lateness": _window(
        {"window_type": "tumbling", "size_seconds": 60, "allowed_lateness_seconds": math.nan}
    ),
    "3.6 billion hopping windows per event": _window(
        {"window_type": "hopping", "size_seconds": 3600, "slide_seconds": 1e-6}
    ),
    "a name with a lone surrogate": {"name": "\ud800", "operators": []},
    "a filter value past 64 bits": {
        "name": "p",
        "operators": [{"type": "filter", "field": "amount", "op": "gt", "value": 10**30}],
    },
    "a lookup key with a lone surrogate": {
        "name": "p",
        "operators": [{"type": "enrich", "source": {"\ud800": {"a": 1}}, "on": "amount"}],
    },
    "max_results past 64 bits": {"name": "p", "max_results": 10**30, "operators": []},
    "multiply by 1e400 (saved as 'inf', which does not read back)": {
        "name": "p",
        "operators": [{"type": "map", "field": "amount", "transform": "multiply:1e400"}],
    },
    "add a number of 500 digits": {
        "name": "p",
        "operators": [{"type": "map", "field": "amount", "transform": "add:" + "9" * 500}],
    },
}


@pytest.mark.parametrize("case", FOUND_PIPELINES)
def test_found_by_fuzzing_pipeline_specs_are_value_errors_naming_where(case):
    store = asl.open()
    with pytest.raises(ValueError, match=r"^(pipeline|operator \d)"):
        store.pipelines.add(FOUND_PIPELINES[case])
    assert list(store.projections) == []
