"""The official JSON-Schema-Test-Suite, run through ``append_batch``'s enforcement.

Every test group of the vendored suite (``suite/``: draft 2020-12 and draft-07, the
required tests) registers its schema in a store and appends its documents as the
payloads of one batch with ``on_invalid="return"``; the rows the store rejects must be
exactly the ones the suite calls invalid. Each group runs twice (the ``path`` fixture):
as the store runs it (the compiled fast path where it covers the schema, jsonschema for
the rest) and with the fast path switched off, so both give the suite's verdicts.

A payload is a JSON object, so a document that is not one travels as ``{"v": doc}``
under ``{"type": "object", "required": ["v"], "properties": {"v": schema}}``, with the
schema's document-local ``$ref`` pointers moved along with it. A draft-07 schema gets
the draft-07 ``$schema`` (the suite leaves it out: its folder says the draft).

Skipped, each with its reason: groups that need a remote schema or meta-schema (the
registry fetches nothing and refuses a ``$ref`` it cannot resolve, at registration), and
the three "only an annotation" tests of the formats the store asserts (``format`` is an
annotation in the suite's required tests, and in the store too except for date-time,
email and uuid).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import allsource_lab as asl
from allsource_lab.schemas import dialect
from allsource_lab.schemas.fast import BatchValidator

SUITE = Path(__file__).parent / "suite"
DRAFTS = {"draft2020-12": dialect.DRAFT_2020_12, "draft7": dialect.DRAFT_7}
REMOTE = "localhost:1234"
ASSERTED = (
    "the store asserts format {!r} (a documented choice: date-time, email and uuid), so a "
    "string that is not one is refused"
)
# (draft, file, group, test) -> why it is skipped.
SKIPPED = {
    ("draft2020-12", "format", "email format",
     "invalid email string is only an annotation by default"): ASSERTED.format("email"),
    ("draft2020-12", "format", "date-time format",
     "invalid date-time string is only an annotation by default"): ASSERTED.format("date-time"),
    ("draft2020-12", "format", "uuid format",
     "invalid uuid string is only an annotation by default"): ASSERTED.format("uuid"),
}  # fmt: skip


def suite() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for draft in DRAFTS:
        for file in sorted((SUITE / draft).glob("*.json")):
            for group in json.loads(file.read_text()):
                yield draft, file.stem, group


def cases() -> Iterator[Any]:
    for number, (draft, file, group) in enumerate(suite()):
        name = f"{draft}/{file}/{number}-{group['description']}"
        yield pytest.param(draft, file, group, id=name)
        for test in group["tests"]:
            reason = SKIPPED.get((draft, file, group["description"], test["description"]))
            if reason:
                yield pytest.param(
                    draft, file, {**group, "tests": [test]}, id=f"{name}/{test['description']}",
                    marks=pytest.mark.skip(reason=reason),
                )  # fmt: skip


# Keywords whose value is a schema, a list of schemas, or a map of names to schemas.
ONE, MANY, MAP = dialect.SCHEMA_VALUED, dialect.SCHEMA_LISTS, dialect.SCHEMA_MAPS


def moved(schema: Any, draft: str, base: str, in_resource: bool = False) -> Any:
    """``schema`` with its document-local ``$ref`` pointers prefixed by ``base``.

    A ``$ref`` inside a subschema that has its own ``$id`` is relative to that resource
    and stays; in draft-07 an ``$id`` beside a ``$ref`` is ignored, as the draft says.
    """
    if not isinstance(schema, dict):
        return schema
    has_id = isinstance(schema.get("$id"), str) and not schema["$id"].startswith("#")
    if draft == "draft7" and "$ref" in schema:
        has_id = False
    in_resource = in_resource or has_id
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$ref" and isinstance(value, str) and not in_resource:
            if value == "#" or value.startswith("#/"):
                value = "#" + base + value[1:]
        elif key in MANY and isinstance(value, list):
            value = [moved(v, draft, base, in_resource) for v in value]
        elif key in ONE:
            value = moved(value, draft, base, in_resource)
        elif key in MAP and isinstance(value, dict):
            value = {k: moved(v, draft, base, in_resource) for k, v in value.items()}
        out[key] = value
    return out


def wrapped(schema: Any, draft: str) -> dict[str, Any]:
    inner = moved(schema, draft, "/properties/v")
    if isinstance(inner, dict):
        inner.pop("$schema", None)
    return {
        "$schema": DRAFTS[draft],
        "type": "object",
        "required": ["v"],
        "properties": {"v": inner},
    }


def runs(
    draft: str, file: str, group: dict[str, Any]
) -> list[tuple[dict[str, Any], list[Any], bool]]:
    """(schema to register, the tests it judges, whether their data is wrapped)."""
    schema, key = group["schema"], (draft, file, group["description"])
    tests = [t for t in group["tests"] if (*key, t["description"]) not in SKIPPED]
    objects = [t for t in tests if isinstance(t["data"], dict)]
    if not isinstance(schema, dict) or not objects:
        return [(wrapped(schema, draft), tests, True)]
    root = schema if "$schema" in schema else {"$schema": DRAFTS[draft], **schema}
    others = [t for t in tests if not isinstance(t["data"], dict)]
    return [(root, objects, False)] + ([(wrapped(schema, draft), others, True)] if others else [])


@pytest.fixture(scope="module")
def stores() -> Iterator[dict[str, asl.EventStore]]:
    opened = {"fast path": asl.open(), "fallback": asl.open()}
    for store in opened.values():
        store.schemas.set_compatibility(None, "NONE")
    yield opened
    for store in opened.values():
        store.close()


SUBJECTS = itertools.count()


@pytest.mark.parametrize(("draft", "file", "group"), list(cases()))
def test_the_store_gives_the_suites_verdicts(stores, path, draft, file, group):
    store = stores[path]
    for schema, tests, wrap in runs(draft, file, group):
        subject = f"suite.{next(SUBJECTS)}"
        try:
            store.schemas.register(subject, schema)
        except asl.SchemaError as exc:
            remote = REMOTE in json.dumps(group["schema"])
            if remote and ("cannot be resolved" in str(exc) or "$schema" in str(exc)):
                pytest.skip(f"needs a remote schema, and the registry fetches nothing: {exc}")
            raise
        payloads = [orjson.dumps({"v": t["data"]} if wrap else t["data"]) for t in tests]
        rows = [
            {"event_type": subject, "entity_id": f"e{i}", "payload": p}
            for i, p in enumerate(payloads)
        ]
        result = store.append_batch(rows, on_invalid="return")
        rejected = set() if result.rejected_rows is None else set(result.rejected_rows["row"])
        wrong = [
            f"{t['description']!r}: {t['data']!r} should be {'valid' if t['valid'] else 'invalid'}"
            for i, t in enumerate(tests)
            if (i in rejected) == t["valid"]
        ]
        assert not wrong, wrong


def test_the_fast_path_covers_a_good_part_of_the_suite():
    # Otherwise the "fast path" runs above would only test the fallback twice.
    covered = sum(
        BatchValidator(schema).covered
        for draft, file, group in suite()
        for schema, _, _ in runs(draft, file, group)
    )
    assert covered >= 200, covered  # 241 of the 746 registrations, December 2026


def test_every_skipped_test_exists_in_the_suite():
    present = {
        (draft, file, group["description"], test["description"])
        for draft, file, group in suite()
        for test in group["tests"]
    }
    assert set(SKIPPED) <= present
