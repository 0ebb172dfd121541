"""The schema registry behind ``store.schemas``: versioned JSON Schemas per event type.

A *subject* is an event type. Each registration that changes the schema adds a version
(1, 2, ...) after checking the subject's compatibility mode against the earlier versions;
the store validates every payload of a subject against its newest live version and
records that version in the event's ``schema_version``. Deleting a version is soft: it
stops being used for new events, while events written under it stay readable and
``get(subject, version)`` still returns it.

Every change is one checksummed record appended (and fsynced) to ``schemas/registry.log``
before the call returns, so the registry survives reopen and ``kill -9``; an in-memory
store keeps it in memory. Upcasters are code, not data: register them again after
opening a store.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import orjson
import pyarrow as pa

from allsource_lab._ingest import inputs
from allsource_lab.errors import IncompatibleSchema, InvalidEvent, NotFound, SchemaError
from allsource_lab.schemas import compat, dialect, ecma
from allsource_lab.schemas.fast import BatchValidator, slow_validator
from allsource_lab.settings import Settings

__all__ = [
    "CompatibilityReport",
    "Problem",
    "SchemaRegistry",
    "SchemaVersion",
]

DEFAULT_MODE = "BACKWARD"
# The draft -> its validator class in jsonschema (imported only when a schema is
# registered: it costs ~0.7 s when optional format packages are installed).
DRAFTS = {
    dialect.DRAFT_2020_12: "Draft202012Validator",
    dialect.DRAFT_7: "Draft7Validator",
}
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """One registered version of a subject's schema. ``id`` is unique across subjects."""

    subject: str
    version: int
    schema: dict[str, Any]
    id: int
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class CompatibilityReport:
    """Whether a schema may follow a subject's versions under ``mode``, and why (not).

    ``problems`` say what breaks; ``rules`` say which rule of the compatibility table
    proved a change harmless when that took more than seeing it unchanged (a branch
    added to ``anyOf``, a property moved into ``patternProperties``, ...), each with
    the path where it applied.
    """

    compatible: bool
    mode: str
    problems: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.compatible:
            why = (" by " + "; ".join(self.rules)) if self.rules else ""
            return f"compatible ({self.mode}){why}"
        return f"incompatible ({self.mode}): " + "; ".join(self.problems)


class Problem(NamedTuple):
    """One reason a payload fails its schema."""

    row: int
    path: str
    message: str


@dataclass(slots=True)
class _Subject:
    versions: list[SchemaVersion] = field(default_factory=list)
    mode: str | None = None  # None: the store-wide default
    validator: BatchValidator | None = None  # of the newest live version

    def live(self) -> list[SchemaVersion]:
        return [v for v in self.versions if not v.deleted]


def canonical(schema: Mapping[str, Any]) -> bytes:
    """The schema's identity: JSON with sorted keys (so key order does not matter)."""
    return orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)


def check_schema(schema: object) -> dict[str, Any]:
    """A schema as a dict, after checking that it is a Draft 2020-12 or Draft 7 schema.

    Without ``$schema`` it is read as :func:`dialect.draft` says (draft-07 when it uses
    draft-07-only keywords). Its ``pattern``s and ``patternProperties`` names must be
    ECMA-262 regular expressions (:mod:`allsource_lab.schemas.ecma`).

    Raises:
        SchemaError: not a JSON object, an unsupported ``$schema``, ambiguous between the
            drafts, or invalid.

    >>> check_schema({"items": [{"type": "string"}], "additionalItems": False})["items"]
    [{'type': 'string'}]
    >>> check_schema({"pattern": r"^\\p{Letter}+$"}) == {"pattern": r"^\\p{Letter}+$"}
    True
    """
    if isinstance(schema, str | bytes):
        try:
            schema = orjson.loads(schema)
        except orjson.JSONDecodeError as exc:
            raise SchemaError(f"the schema is not JSON: {exc}") from None
    if not isinstance(schema, Mapping):
        raise SchemaError(f"a schema is a JSON object (a dict), not {type(schema).__name__}")
    schema = dict(schema)
    declared = schema.get("$schema")
    draft = dialect.SPELLINGS.get(declared) if isinstance(declared, str) else None
    if declared is None:
        draft = dialect.draft(schema)
    if draft is None:
        raise SchemaError(
            f"unsupported $schema {declared!r}: use Draft 2020-12 "
            f"({dialect.DRAFT_2020_12!r}) or Draft 7 ({dialect.DRAFT_7!r})"
        )
    import jsonschema

    validator_class = getattr(jsonschema, DRAFTS[draft])
    try:
        validator_class.check_schema(schema, format_checker=_meta_format_checker(draft))
    except jsonschema.SchemaError as exc:
        path = "#" + "".join(f"/{p}" for p in exc.absolute_path)
        why = f" ({exc.cause})" if isinstance(exc.cause, SchemaError) else ""
        raise SchemaError(f"not a valid JSON Schema at {path}: {exc.message}{why}") from None
    try:
        canonical(schema)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise SchemaError(f"the schema cannot be stored as JSON: {exc}") from None
    for path, value in _walk(schema):
        # orjson would store NaN as null: the schema read back after a reopen would differ.
        if isinstance(value, float) and not math.isfinite(value):
            raise SchemaError(f"{value!r} at {path} is not JSON; use a finite number")
    _check_refs(schema, draft)
    try:
        # A $ref cycle that consumes nothing ({"$ref": "#"}) recurses for ever on any
        # payload: found here rather than on the first append.
        # Every error, not is_valid: that stops at the first keyword that fails.
        for _ in slow_validator(schema).iter_errors({}):
            pass
    except RecursionError:
        raise SchemaError(
            "the schema refers to itself without end (a $ref cycle that validates "
            "nothing in between); break the cycle"
        ) from None
    return schema


def _walk(value: Any, path: str = "#") -> Iterator[tuple[str, Any]]:
    """Every value inside a schema with its JSON pointer."""
    yield path, value
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, f"{path}/{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}/{i}")


@functools.cache
def _meta_format_checker(draft: str) -> Any:
    """The draft's own checker for the meta-schema, with ``regex`` read as ECMA-262."""
    import jsonschema

    base = getattr(jsonschema, DRAFTS[draft]).FORMAT_CHECKER
    checker = jsonschema.FormatChecker(formats=())
    checker.checkers = dict(base.checkers)
    checker.checks("regex", raises=SchemaError)(
        lambda value: not isinstance(value, str) or bool(ecma.translate(value))
    )
    return checker


def _check_refs(schema: dict[str, Any], draft: str) -> None:
    """SchemaError for a ``$ref`` that cannot be resolved.

    jsonschema resolves a ``$ref`` only when a payload reaches it, so an unresolvable one
    (a pointer to nowhere, or a remote URL: nothing is fetched) would make appends fail
    later with jsonschema's own error. Each ``$ref`` is resolved against the base its
    place in the schema has (a nested ``$id`` changes it); ``$ref``s inside ``enum``,
    ``const`` or under a property name are data, not references, and are left alone.
    """
    resolver = getattr(slow_validator(schema), "_resolver", None)
    if resolver is None:
        return
    import referencing.exceptions
    import referencing.jsonschema

    specification = (
        referencing.jsonschema.DRAFT7
        if draft == dialect.DRAFT_7
        else referencing.jsonschema.DRAFT202012
    )

    def visit(node: Any, path: str, resolver: Any) -> None:
        if not isinstance(node, dict):
            return
        resolver = resolver.in_subresource(specification.create_resource(node))
        ref = node.get("$ref")
        if isinstance(ref, str):
            try:
                resolver.lookup(ref)
            except referencing.exceptions.Unresolvable:
                raise SchemaError(
                    f"$ref {ref!r} at {path}/$ref cannot be resolved; refer to a part of the "
                    "schema itself (like '#/$defs/name'): nothing is fetched from elsewhere"
                ) from None
        for child_path, child in dialect.children(node, path):
            visit(child, child_path, resolver)

    visit(schema, "#", resolver)


class SchemaRegistry:
    """Versioned schemas by subject (event type), with compatibility rules and upcasters.

    >>> import allsource_lab as asl
    >>> store = asl.open()
    >>> v1 = store.schemas.register("user.joined", {
    ...     "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]})
    >>> (v1.subject, v1.version)
    ('user.joined', 1)
    >>> report = store.schemas.check("user.joined", {"required": ["name", "email"]})
    >>> (report.compatible, report.problems)
    (False, ['required property added: #/required/email'])
    >>> report = store.schemas.check("user.joined", {
    ...     "type": "object", "required": ["name"],
    ...     "properties": {"name": {"anyOf": [{"type": "string"}, {"type": "null"}]}}})
    >>> report.compatible, report.rules[0].split(",")[0]
    (True, 'anyOf where there was none: the earlier schema lies within a branch')
    """

    def __init__(self, write: Callable[[list[bytes]], None]) -> None:
        self._write = write  # appends records durably before returning
        self._lock = threading.Lock()
        self._subjects: dict[str, _Subject] = {}
        self._default_mode = DEFAULT_MODE
        self._next_id = 1
        self.upcasters: dict[tuple[str, int], Upcaster] = {}
        # Called after a change that alters what reads or writes see (the store drops
        # cached states and refreshes its validators).
        self.on_change: Callable[[], None] = lambda: None

    # -- loading -------------------------------------------------------------------------

    def load(self, bodies: Iterable[bytes]) -> list[str]:
        """Replay stored records; returns problems with records that could not be applied."""
        problems = []
        for body in bodies:
            try:
                self._apply(orjson.loads(body))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                problems.append(f"a schema registry record could not be applied ({exc})")
        for subject in self._subjects.values():
            self._refresh(subject)
        return problems

    def _apply(self, record: dict[str, Any]) -> None:
        op = record["op"]
        if op == "register":
            subject = self._subjects.setdefault(record["subject"], _Subject())
            version = SchemaVersion(
                record["subject"], int(record["version"]), record["schema"], int(record["id"])
            )
            subject.versions.append(version)
            self._next_id = max(self._next_id, version.id + 1)
        elif op == "delete":
            subject = self._subjects[record["subject"]]
            subject.versions = [
                SchemaVersion(v.subject, v.version, v.schema, v.id, True)
                if v.version == record["version"]
                else v
                for v in subject.versions
            ]
        elif op == "compatibility":
            mode = record["mode"]
            if record["subject"] is None:
                self._default_mode = mode
            else:
                self._subjects.setdefault(record["subject"], _Subject()).mode = mode
        else:
            raise ValueError(f"unknown operation {op!r}")

    def _commit(self, record: dict[str, Any]) -> None:
        """Write ``record`` durably, then apply it (so memory never runs ahead of disk)."""
        self._write([orjson.dumps(record)])
        self._apply(record)

    def _refresh(self, subject: _Subject) -> None:
        live = subject.live()
        subject.validator = BatchValidator(live[-1].schema) if live else None

    # -- versions ------------------------------------------------------------------------

    def register(
        self, subject: str, schema: Any, compatibility: str | None = None
    ) -> SchemaVersion:
        """Add ``schema`` as the subject's next version (or return the identical one).

        ``compatibility``, if given, becomes the subject's mode first (see
        :meth:`set_compatibility`).

        Raises:
            SchemaError: not a valid Draft 2020-12 / Draft 7 schema.
            IncompatibleSchema: the subject's mode forbids the change (``.report``).
        """
        subject = _subject_name(subject)
        schema = check_schema(schema)
        if compatibility is not None:
            self.set_compatibility(subject, compatibility)
        with self._lock:
            entry = self._subjects.get(subject)
            key = canonical(schema)
            if entry is not None:
                for existing in reversed(entry.live()):
                    if canonical(existing.schema) == key:
                        return existing
            report = self._check(subject, schema)
            if not report.compatible:
                raise IncompatibleSchema(
                    f"schema for {subject!r} breaks {report.mode} compatibility: "
                    + "; ".join(report.problems),
                    report,
                )
            number = 1 + max((v.version for v in entry.versions), default=0) if entry else 1
            record = {
                "op": "register",
                "subject": subject,
                "version": number,
                "id": self._next_id,
                "schema": schema,
            }
            self._commit(record)
            entry = self._subjects[subject]
            self._refresh(entry)
            registered = entry.versions[-1]
        self.on_change()
        return registered

    def get(self, subject: str, version: int | None = None) -> SchemaVersion:
        """The newest live version, or ``version`` (deleted ones too: history stays readable).

        Raises:
            NotFound: no such subject or version.
        """
        with self._lock:
            entry = self._subjects.get(subject)
            if entry is not None:
                if version is None:
                    live = entry.live()
                    if live:
                        return live[-1]
                else:
                    for v in entry.versions:
                        if v.version == version:
                            return v
        what = f"version {version} of " if version is not None else "live schema for "
        raise NotFound(f"no {what}subject {subject!r}; see schemas.subjects()")

    def versions(self, subject: str) -> list[int]:
        """Live version numbers of ``subject``, ascending (empty if none)."""
        with self._lock:
            entry = self._subjects.get(subject)
            return [v.version for v in entry.live()] if entry else []

    def subjects(self) -> list[str]:
        """Subjects with at least one live version, sorted."""
        with self._lock:
            return sorted(s for s, e in self._subjects.items() if e.live())

    def delete(self, subject: str, version: int) -> SchemaVersion:
        """Soft-delete a version: new events no longer use it; stored events keep theirs.

        Raises:
            NotFound: no such live version.
        """
        with self._lock:
            entry = self._subjects.get(subject)
            if entry is None or version not in [v.version for v in entry.live()]:
                raise NotFound(f"subject {subject!r} has no live version {version}")
            self._commit({"op": "delete", "subject": subject, "version": version})
            self._refresh(entry)
            deleted = next(v for v in entry.versions if v.version == version)
        self.on_change()
        return deleted

    # -- compatibility -------------------------------------------------------------------

    def set_compatibility(self, subject: str | None, mode: str) -> None:
        """Set ``subject``'s mode, or the store-wide default when ``subject`` is None.

        Modes: NONE, BACKWARD (default), BACKWARD_TRANSITIVE, FORWARD,
        FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE.
        """
        if not isinstance(mode, str) or mode.upper() not in compat.MODES:
            raise SchemaError(
                f"unknown compatibility mode {mode!r}; use one of {', '.join(compat.MODES)}"
            )
        if subject is not None:
            subject = _subject_name(subject)
        with self._lock:
            self._commit({"op": "compatibility", "subject": subject, "mode": mode.upper()})

    def compatibility(self, subject: str | None = None) -> str:
        """The mode that applies to ``subject`` (or the store-wide default)."""
        with self._lock:
            entry = self._subjects.get(subject) if subject is not None else None
            if entry is not None and entry.mode is not None:
                return entry.mode
            return self._default_mode

    def check(self, subject: str, schema: Any) -> CompatibilityReport:
        """Whether ``schema`` may be registered next for ``subject``, and if not, why."""
        subject = _subject_name(subject)
        schema = check_schema(schema)
        with self._lock:
            return self._check(subject, schema)

    def _check(self, subject: str, schema: dict[str, Any]) -> CompatibilityReport:
        entry = self._subjects.get(subject)
        mode = entry.mode if entry is not None and entry.mode is not None else None
        mode = mode or self._default_mode
        earlier = [v.schema for v in entry.live()] if entry is not None else []
        verdict = compat.judge(mode, schema, earlier)
        return CompatibilityReport(not verdict.problems, mode, verdict.problems, verdict.rules)

    # -- validation ----------------------------------------------------------------------

    def validator(self, subject: str) -> tuple[int, BatchValidator] | None:
        """(version, validator) of the subject's newest live schema, or None."""
        entry = self._subjects.get(subject)
        if entry is None or entry.validator is None:
            return None
        return entry.live()[-1].version, entry.validator

    def validate(self, subject: str, payloads: Any) -> list[Problem]:
        """Problems of payloads against the subject's newest live schema (empty: valid).

        ``payloads``: one payload (dict or JSON text), a list of them, a pandas DataFrame
        with a ``payload`` column, or an Arrow table/array of them. Rows count from 0.

        Raises:
            NotFound: the subject has no live schema.
        """
        found = self.validator(subject)
        if found is None:
            raise NotFound(f"subject {subject!r} has no live schema; see schemas.subjects()")
        _, validator = found
        texts = _payload_texts(payloads)
        problems = []
        for row, text in enumerate(texts):
            for path, message in validator.problems(text):
                problems.append(Problem(row, path, message))
        return problems

    # -- upcasting -----------------------------------------------------------------------

    def upcaster(self, subject: str, from_version: int, fn: Upcaster | None = None) -> Any:
        """Register ``fn`` to turn a payload of ``from_version`` into ``from_version + 1``.

        Reads (``events``, ``state``, ``states``) see payloads upcast through every
        consecutive upcaster from the version they were written under; stored bytes never
        change. Use as a call or as a decorator::

            @store.schemas.upcaster("user.joined", 1)
            def split_name(p): ...
        """
        subject = _subject_name(subject)
        if type(from_version) is not int or from_version < 1:
            raise SchemaError(f"from_version must be an int >= 1, not {from_version!r}")

        def register(function: Upcaster) -> Upcaster:
            if not callable(function):
                raise SchemaError("an upcaster is a function taking and returning a dict")
            self.upcasters[subject, from_version] = function
            self.on_change()
            return function

        return register if fn is None else register(fn)

    def upcast(self, subject: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
        """``payload`` (written under ``version``) through every upcaster that follows."""
        step = self.upcasters.get((subject, version))
        while step is not None:
            payload = step(payload)
            if not isinstance(payload, dict):
                raise SchemaError(
                    f"the upcaster for {subject!r} version {version} returned "
                    f"{type(payload).__name__}, not a dict"
                )
            version += 1
            step = self.upcasters.get((subject, version))
        return payload


def _subject_name(subject: object) -> str:
    if not isinstance(subject, str) or not subject:
        raise SchemaError(f"a subject is a non-empty event type string, not {subject!r}")
    try:
        inputs.check_event_type(subject, _DEFAULT_SETTINGS)
    except InvalidEvent as exc:
        raise SchemaError(f"a subject is an event type: {str(exc).split(': ', 1)[-1]}") from None
    return subject


_DEFAULT_SETTINGS = Settings()


def _payload_texts(payloads: Any) -> list[bytes]:
    """Payloads in any accepted shape, as JSON texts."""
    if isinstance(payloads, Mapping | str | bytes):
        payloads = [payloads]
    elif isinstance(payloads, pa.Table):
        payloads = payloads.column("payload").to_pylist()
    elif isinstance(payloads, pa.Array | pa.ChunkedArray):
        payloads = payloads.to_pylist()
    elif hasattr(payloads, "columns") and "payload" in payloads.columns:
        payloads = payloads["payload"].tolist()
    texts = []
    for row, p in enumerate(payloads):
        if isinstance(p, bytes):
            texts.append(p)
        elif isinstance(p, str):
            texts.append(p.encode())
        else:
            try:
                texts.append(orjson.dumps(p))
            except (TypeError, orjson.JSONEncodeError) as exc:
                raise SchemaError(f"row {row}: the payload is not JSON ({exc})") from None
    return texts


def texts_buffers(texts: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """(data, offsets) of texts, the layout validators take."""
    offsets = np.zeros(len(texts) + 1, np.int64)
    np.cumsum([len(t) for t in texts], out=offsets[1:])
    return np.frombuffer(b"".join(texts), np.uint8), offsets
