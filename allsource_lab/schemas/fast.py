"""Validating a column of JSON texts against one JSON Schema, with jsonschema's verdicts.

``BatchValidator`` compiles the schema into the node tables of
:mod:`allsource_lab._kernels.jsonschema_fast` and scans the whole batch in one numba
call without decoding it. The fast path handles ``type``, ``required``, ``properties``,
``additionalProperties`` (true/false), ``enum`` and ``const`` of scalars, the numeric
bounds, ``minLength``/``maxLength`` (code points), ``pattern``, ``format``, ``items``,
``minItems``/``maxItems``, nested to any depth, plus the annotations that validate
nothing (``title``, ``description``...). A schema with anything else (``oneOf``,
``$ref``, ``multipleOf``...) is not *covered*: every row is decoded with orjson and
judged by ``jsonschema``. A covered schema still sends the rows the kernel cannot judge
exactly (duplicate keys, escapes where bytes are compared, numbers past the exact fast
parse) to ``jsonschema``, and checks ``pattern`` on only the strings that need it, so
the verdicts are jsonschema's for every row.

Patterns are ECMA-262, as JSON Schema says (``\\p{Letter}``, ``$`` only at the end):
both paths match them through :mod:`allsource_lab.schemas.ecma`, which turns each into
the Python pattern that matches the same strings; jsonschema gets the schema with its
``patternProperties`` names translated and a ``pattern`` keyword that translates.

Both paths share :func:`format_checker`: ``date-time``, ``email`` and ``uuid`` are
defined here (the kernel implements the same definitions), and any other format is not
asserted, as jsonschema does for a format its checker does not know.
"""

from __future__ import annotations

import calendar
import contextlib
import functools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from allsource_lab._ingest.inputs import row_chunks
from allsource_lab._kernels import jsonschema_fast as k
from allsource_lab.errors import SchemaError, _Uncovered
from allsource_lab.schemas import dialect, ecma

if TYPE_CHECKING:  # jsonschema is imported when first needed: it is slow to import
    import jsonschema
    import jsonschema.protocols

__all__ = ["BatchValidator", "format_checker", "slow_validator"]

_DATE_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)
# re.ASCII: \s is the six ASCII spaces, so that the kernel can judge bytes (the other
# five cannot occur unescaped in JSON text, and escaped strings go to jsonschema).
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+", re.ASCII)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_FORMATS = {"date-time": k.FMT_DATE_TIME, "email": k.FMT_EMAIL, "uuid": k.FMT_UUID}

# Keywords that assert nothing: without a $ref, $defs and $id change no verdict.
_ANNOTATIONS = frozenset(
    {"title", "description", "$comment", "default", "examples", "$schema", "$id", "$defs"}
    | {"definitions", "deprecated", "readOnly", "writeOnly", "$anchor"}
)
_COVERED = _ANNOTATIONS | {
    "type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "pattern", "format", "properties", "required",
    "additionalProperties", "items", "minItems", "maxItems",
}  # fmt: skip
_TYPES = {
    "null": k.T_NULL,
    "boolean": k.T_BOOLEAN,
    "integer": k.T_INTEGER,
    "number": k.T_NUMBER,
    "string": k.T_STRING,
    "array": k.T_ARRAY,
    "object": k.T_OBJECT,
}
_NO_LIMIT = 2**62
_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    m = _DATE_TIME.fullmatch(value)
    if m is None:
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if not 1 <= month <= 12 or hour > 23 or minute > 59 or second > 60:
        return False
    if not 1 <= day <= _DAYS[month] + (month == 2 and calendar.isleap(year)):
        return False
    offset = 0
    if m[7] is not None:
        oh, om = int(m[8]), int(m[9])
        if oh > 23 or om > 59:
            return False
        offset = (oh * 60 + om) * (1 if m[7] == "+" else -1)
    # A leap second exists only at the end of a UTC day.
    return second < 60 or (hour * 60 + minute - offset) % 1440 == 1439


def _is_email(value: object) -> bool:
    return not isinstance(value, str) or _EMAIL.fullmatch(value) is not None


def _is_uuid(value: object) -> bool:
    return not isinstance(value, str) or _UUID.fullmatch(value) is not None


@functools.cache
def format_checker() -> jsonschema.FormatChecker:
    """The format checker both paths use: ``date-time``, ``email`` and ``uuid`` only.

    - date-time: RFC 3339 ``YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`` ('T', 'Z' in either
      case), a real calendar day, and second 60 only at 23:59 UTC;
    - email: ``local@domain.tld``: one '@', no whitespace, a dot inside the domain;
    - uuid: 8-4-4-4-12 hex digits, either case.

    Other formats are not asserted; non-strings pass, as JSON Schema says.

    Raises:
        Nothing.

    >>> checker = format_checker()
    >>> checker.conforms("2024-02-29T12:00:00.5+01:00", "date-time")
    True
    >>> checker.conforms("2023-02-29T12:00:00Z", "date-time"), checker.conforms(5, "uuid")
    (False, True)
    """
    import jsonschema

    checker = jsonschema.FormatChecker(formats=())
    checker.checks("date-time")(_is_date_time)
    checker.checks("email")(_is_email)
    checker.checks("uuid")(_is_uuid)
    return checker


def slow_validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    """jsonschema's validator for ``schema``, reading its patterns as ECMA-262.

    Draft 2020-12, or draft-07 when ``$schema`` says so or the schema has no
    ``$schema`` and uses draft-07-only keywords (:func:`dialect.draft`). Uses
    :func:`format_checker`. The schema itself is not checked here.

    Raises:
        Nothing (a malformed schema raises when it is used).

    >>> slow_validator({"type": "integer"}).is_valid(1.0)
    True
    >>> slow_validator({"patternProperties": {r"^\\p{Lu}$": {"type": "integer"}}}).is_valid(
    ...     {"É": "x"})
    False
    """
    cls = _validator_class(dialect.is_draft_7(schema))
    validator: jsonschema.protocols.Validator = cls(
        _with_python_patterns(schema), format_checker=format_checker()
    )
    return validator


@functools.cache
def _validator_class(draft_7: bool) -> Any:
    """The draft's jsonschema validator class with an ECMA-262 ``pattern`` keyword."""
    import jsonschema
    import jsonschema.validators

    base = jsonschema.Draft7Validator if draft_7 else jsonschema.Draft202012Validator

    def pattern(validator: Any, pattern: Any, instance: Any, schema: Any) -> Iterator[Any]:
        if (
            validator.is_type(instance, "string")
            and isinstance(pattern, str)
            and not ecma.search(pattern, instance)
        ):
            yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")

    return jsonschema.validators.extend(base, {"pattern": pattern})


def _with_python_patterns(schema: Any) -> Any:
    """``schema`` with every ``patternProperties`` name replaced by its Python pattern.

    jsonschema searches those names with ``re`` in three keywords (patternProperties,
    additionalProperties, unevaluatedProperties); given the translations, all three
    read them as ECMA-262. A name neither reading accepts is left as it is.
    """
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "patternProperties" and isinstance(value, dict):
            value = {_python_pattern(p): _with_python_patterns(v) for p, v in value.items()}
        elif key in dialect.SCHEMA_LISTS and isinstance(value, list):
            value = [_with_python_patterns(v) for v in value]
        elif key in dialect.SCHEMA_VALUED:
            value = _with_python_patterns(value)
        elif key in dialect.SCHEMA_MAPS and isinstance(value, dict):
            value = {name: _with_python_patterns(v) for name, v in value.items()}
        out[key] = value
    return out


def _python_pattern(pattern: str) -> str:
    try:
        return ecma.compile_lenient(pattern).pattern
    except SchemaError:
        return pattern


@contextlib.contextmanager
def _schema_failures(schema: dict[str, Any]) -> Iterator[None]:
    """jsonschema's failures of the schema itself, met only when a payload reaches the part
    at fault (a ``$ref`` that cannot be resolved, or that recurses for ever), as
    SchemaError: the registry refuses the ones it can see, this catches the rest."""
    import referencing.exceptions

    try:
        yield
    except (RecursionError, referencing.exceptions.Unresolvable) as exc:
        what = "recurses without end" if isinstance(exc, RecursionError) else f"fails: {exc}"
        raise SchemaError(
            f"the registered schema cannot judge this payload (its $ref {what}); register "
            "a corrected version"
        ) from None


def _exact_number(value: object) -> float:
    """A bound or constant as a double, if it is one exactly (else _Uncovered)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Uncovered
    number = float(value)
    if not math.isfinite(number) or (isinstance(value, int) and int(number) != value):
        raise _Uncovered
    return number


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Uncovered
    return min(value, _NO_LIMIT)


@dataclass
class _Tables:
    """The schema as the kernel's arrays, built node by node (node 0: the root)."""

    nodes: list[list[int]] = field(default_factory=list)
    bounds: list[list[float]] = field(default_factory=list)
    props: list[tuple[bytes, int, int]] = field(default_factory=list)  # name, node, flags
    consts: list[tuple[int, float, bytes]] = field(default_factory=list)  # kind, number, str
    patterns: list[str] = field(default_factory=list)

    def node(self, schema: object) -> int:
        n = len(self.nodes)
        row = [0] * k.NODE_COLUMNS
        row[k.TYPES] = k.T_ANY
        row[k.MAX_LENGTH] = row[k.MAX_ITEMS] = _NO_LIMIT
        row[k.PATTERN] = row[k.ITEMS] = -1
        bounds = [-math.inf, math.inf, -math.inf, math.inf]
        self.nodes.append(row)
        self.bounds.append(bounds)
        if isinstance(schema, bool):
            row[k.TYPES] = k.T_ANY if schema else 0
            return n
        if not isinstance(schema, dict) or not set(schema) <= _COVERED:
            raise _Uncovered
        if "type" in schema:
            names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            if not all(isinstance(t, str) and t in _TYPES for t in names):
                raise _Uncovered
            row[k.TYPES] = functools.reduce(lambda a, t: a | _TYPES[t], names, 0)
        for column, word in enumerate(
            ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]
        ):
            if word in schema:
                bounds[column] = _exact_number(schema[word])
                row[k.FLAGS] |= k.F_RANGE
        if "minLength" in schema:
            row[k.MIN_LENGTH] = _count(schema["minLength"])
        if "maxLength" in schema:
            row[k.MAX_LENGTH] = _count(schema["maxLength"])
        if "pattern" in schema:
            pattern = schema["pattern"]
            try:
                ecma.compile_lenient(pattern)
            except (SchemaError, TypeError):
                raise _Uncovered from None
            row[k.PATTERN] = len(self.patterns)
            self.patterns.append(pattern)
        if "format" in schema:
            if not isinstance(schema["format"], str):
                raise _Uncovered
            row[k.FORMAT] = _FORMATS.get(schema["format"], k.FMT_NONE)
        if "enum" in schema:
            if not isinstance(schema["enum"], list):
                raise _Uncovered
            row[k.ENUM_LO], row[k.ENUM_HI] = self._constants(schema["enum"])
            row[k.FLAGS] |= k.F_ENUM
        if "const" in schema:
            row[k.CONST_LO], row[k.CONST_HI] = self._constants([schema["const"]])
            row[k.FLAGS] |= k.F_CONST
        if {"items", "minItems", "maxItems"} & set(schema):
            row[k.FLAGS] |= k.F_ARRAY
            if "items" in schema:
                row[k.ITEMS] = self.node(schema["items"])
            row[k.MIN_ITEMS] = _count(schema.get("minItems", 0))
            row[k.MAX_ITEMS] = _count(schema.get("maxItems", _NO_LIMIT))
        if {"properties", "required", "additionalProperties"} & set(schema):
            row[k.FLAGS] |= k.F_OBJECT
            self._object(schema, row)
        return n

    def _object(self, schema: dict[str, Any], row: list[int]) -> None:
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        additional = schema.get("additionalProperties", True)
        if not isinstance(properties, dict) or not isinstance(required, list):
            raise _Uncovered
        if not all(isinstance(name, str) for name in required):
            raise _Uncovered
        if additional is False:
            row[k.FLAGS] |= k.F_CLOSED
        elif additional is not True and additional != {}:
            raise _Uncovered
        # Children first: this node's properties must be one contiguous slice.
        mine: dict[str, tuple[int, int]] = {}
        for name, sub in properties.items():
            mine[name] = (self.node(sub), k.P_LISTED)
        for name in required:
            node, flags = mine.get(name, (-1, 0))
            mine[name] = (node, flags | k.P_REQUIRED)
        row[k.PROP_LO] = len(self.props)
        self.props.extend((name.encode(), node, flags) for name, (node, flags) in mine.items())
        row[k.PROP_HI] = len(self.props)

    def _constants(self, members: list[Any]) -> tuple[int, int]:
        lo = len(self.consts)
        for member in members:
            if member is None:
                self.consts.append((k.K_NULL, 0.0, b""))
            elif isinstance(member, bool):
                self.consts.append((k.K_TRUE if member else k.K_FALSE, 0.0, b""))
            elif isinstance(member, str):
                self.consts.append((k.K_STRING, 0.0, member.encode()))
            else:
                self.consts.append((k.K_NUMBER, _exact_number(member), b""))
        return lo, len(self.consts)

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The kernel's schema arguments, in ``scan_rows`` order."""
        names = [name for name, _, _ in self.props]
        strings = [text for _, _, text in self.consts]
        return (
            np.array(self.nodes, np.int64).reshape(-1, k.NODE_COLUMNS),
            np.array(self.bounds, np.float64).reshape(-1, 4),
            np.array([node for _, node, _ in self.props], np.int64),
            np.array([flags for _, _, flags in self.props], np.int64),
            np.cumsum([0] + [len(n) for n in names], dtype=np.int64),
            np.frombuffer(b"".join(names), np.uint8),
            np.array([kind for kind, _, _ in self.consts], np.int64),
            np.array([number for _, number, _ in self.consts], np.float64),
            np.cumsum([0] + [len(s) for s in strings], dtype=np.int64),
            np.frombuffer(b"".join(strings), np.uint8),
        )


class BatchValidator:
    """Validates many payloads against one schema, with jsonschema's verdicts.

    ``covered`` says whether the fast path judges the schema (see the module docstring);
    when it does not, every row is decoded and judged by jsonschema, which is ~50x
    slower but gives the same answers.

    >>> v = BatchValidator({"type": "object", "required": ["n"],
    ...                     "properties": {"n": {"type": "integer", "maximum": 9}}})
    >>> rows = [b'{"n": 1.0}', b'{"n": 10}', b'{"m": 1}']
    >>> data = np.frombuffer(b"".join(rows), np.uint8)
    >>> v.covered, v.invalid_rows(data, np.cumsum([0] + [len(r) for r in rows])).tolist()
    (True, [1, 2])
    """

    covered: bool

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        tables = _Tables()
        try:
            tables.node(schema)
            self.covered = True
        except _Uncovered:
            self.covered = False
        self._arrays = tables.arrays() if self.covered else ()
        self._patterns = [ecma.compile_lenient(p) for p in tables.patterns] if self.covered else []
        # The rows are objects: a root that refuses objects (or wants a scalar) refuses all.
        root = tables.nodes[0] if self.covered else [k.T_ANY, 0]
        self._refuses_objects = not root[k.TYPES] & k.T_OBJECT or bool(
            root[k.FLAGS] & (k.F_ENUM | k.F_CONST)
        )

    @functools.cached_property
    def _slow(self) -> jsonschema.protocols.Validator:
        """jsonschema's validator, built the first time a row needs it."""
        return slow_validator(self.schema)

    def invalid_rows(self, data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Indexes (int64, ascending) of the rows that are NOT valid under the schema.

        Row i is ``data[offsets[i]:offsets[i + 1]]`` (uint8 data, offsets as from
        :func:`allsource_lab._storage.arrowbuf.string_buffers`), already known to be a JSON
        object. The verdicts are jsonschema's with :func:`format_checker`.

        Raises:
            orjson.JSONDecodeError: if a row the fast path cannot judge is not JSON.
            SchemaError: the schema itself fails on a row (a ``$ref`` that cannot be
                resolved or recurses for ever).

        >>> v = BatchValidator({"properties": {"at": {"format": "date-time"}}})
        >>> rows = b'{"at": "2024-01-01T00:00:00Z"}{"at": "yesterday"}'
        >>> v.invalid_rows(np.frombuffer(rows, np.uint8), np.array([0, 30, 49])).tolist()
        [1]
        """
        data = np.ascontiguousarray(data, np.uint8)
        offsets = np.ascontiguousarray(offsets, np.int64)
        n = len(offsets) - 1
        if n <= 0:
            return np.zeros(0, np.int64)
        if not self.covered:
            verdicts = np.full(n, k.UNSURE, np.uint8)
        elif self._refuses_objects:
            return np.arange(n, dtype=np.int64)
        else:
            verdicts, tasks = self._scan(data, offsets)
            self._match_patterns(data, verdicts, tasks)
        for row in np.flatnonzero(verdicts == k.UNSURE).tolist():
            text = data[offsets[row] : offsets[row + 1]].tobytes()
            with _schema_failures(self.schema):
                valid = self._slow.is_valid(orjson.loads(text))
            verdicts[row] = k.VALID if valid else k.INVALID
        return np.flatnonzero(verdicts == k.INVALID).astype(np.int64)

    def _scan(self, data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``k.scan_rows`` over every core for big batches; task rows are batch rows."""
        parts = row_chunks(k.scan_rows, data, offsets, *self._arrays)
        if len(parts) == 1:
            return parts[0][1]
        verdicts = np.concatenate([v for _, (v, _) in parts])
        tasks = [t + np.array([lo, 0, 0, 0], np.int64) for lo, (_, t) in parts if len(t)]
        return verdicts, np.concatenate(tasks) if tasks else np.zeros((0, 4), np.int64)

    def _match_patterns(self, data: np.ndarray, verdicts: np.ndarray, tasks: np.ndarray) -> None:
        """Mark INVALID the still-valid rows with a string that ``re.search`` rejects."""
        if not len(tasks):
            return
        tasks = tasks[verdicts[tasks[:, 0]] == k.VALID]
        view = data.data
        # Values repeat (codes, currencies, hosts): one search per distinct value.
        known: dict[tuple[int, bytes], bool] = {}
        for row, pattern, start, end in tasks.tolist():
            if verdicts[row] != k.VALID:
                continue
            text = view[start:end].tobytes()
            ok = known.get((pattern, text))
            if ok is None:
                ok = self._patterns[pattern].search(text.decode()) is not None
                known[(pattern, text)] = ok
            if not ok:
                verdicts[row] = k.INVALID

    def problems(self, text: bytes | str) -> list[tuple[str, str]]:
        """Why one payload fails: ``[(instance path, message)]``, jsonschema's best first.

        The path is the instance's JSON path as jsonschema spells it (``$``,
        ``$.age``, ``$.tags[2]``); empty when the payload is valid.

        Raises:
            orjson.JSONDecodeError: if ``text`` is not JSON.
            SchemaError: the schema itself fails on it (see :meth:`invalid_rows`).

        >>> v = BatchValidator({"properties": {"age": {"type": "integer"}}})
        >>> v.problems('{"age": "thirty"}')
        [('$.age', "'thirty' is not of type 'integer'")]
        >>> v.problems(b'{"age": 30}')
        []
        """
        with _schema_failures(self.schema):
            errors = list(self._slow.iter_errors(orjson.loads(text)))
        if not errors:
            return []
        import jsonschema.exceptions

        best = jsonschema.exceptions.best_match(errors)
        ordered = [best, *(e for e in errors if e is not best)]
        return [(e.json_path, e.message) for e in ordered]
