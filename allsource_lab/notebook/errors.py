"""Library errors as the one line a magic shows: what went wrong, then what to do next.

IPython prints a ``UsageError`` as ``UsageError: <message>`` without a traceback, which
is right for a user's mistake or a refused write. Which errors those are is decided by
type, not by guessing: the store's own errors (``AllSourceError`` and its subclasses)
and DuckDB's errors about a user's SQL. A plain ``ValueError``, ``KeyError`` or
``OSError`` is a bug wherever it comes from and keeps its traceback, so code that sees a
user's mistake raises a typed error (``InvalidArgument``, ``NotFound``, ...) instead.
"""

from __future__ import annotations

from IPython.core.error import UsageError

from allsource_lab.errors import (
    AllSourceError,
    CorruptionError,
    IncompatibleSchema,
    InvalidEvent,
    NotFound,
    SchemaError,
    SchemaViolation,
    StorageError,
    StoreLocked,
)

__all__ = ["LIST_ENTITIES", "expected", "one_line", "usage_error"]

# What to do next. Looked up by the error's class and its bases in order, so the most
# specific wins. The store's messages often end in a next step already ("...; open with
# recovery='salvage'"): those in _IF_UNSAID are added only to a message that has none
# (no "; "), the others always — a refused batch must always say nothing was written.
# The SQL that lists some entity ids; the hints of a name not found point to it.
LIST_ENTITIES = "select distinct entity_id from events limit 20"
_ALWAYS: dict[type[BaseException], str] = {
    InvalidEvent: "nothing was written; fix the input and run again",
    SchemaViolation: (
        "nothing was written; fix the payload, or see the schema with %allsource schema show TYPE"
    ),
    IncompatibleSchema: (
        "see why with %allsource schema check SUBJECT, or change the subject's mode with "
        "%allsource schema compat SUBJECT MODE"
    ),
}
_IF_UNSAID: dict[type[BaseException], str] = {
    SchemaError: "fix the schema (JSON Schema draft 2020-12 or draft 7) and run again",
    StoreLocked: "close it in the other process, or open it here with --read-only",
    CorruptionError: (
        "see every problem with %allsource verify on a --read-only open; --recovery salvage "
        "opens the store skipping damaged records"
    ),
    StorageError: "check the disk (space, permissions), then open the store again",
    NotFound: (
        f"check the name; list entity ids with %allsource sql {LIST_ENTITIES}, "
        "event types with %allsource sql select distinct event_type from events, "
        "schemas with %allsource schema list"
    ),
}
# What only a write may say: a read that fails wrote nothing to begin with.
_WRITE_WORDS = "nothing was written; "
# The store speaks Python; in a magic the same advice is an option or a subcommand.
_NOTEBOOK_WORDS = (
    ("recovery='salvage'", "--recovery salvage"),
    ("recovery='truncate_tail'", "--recovery truncate_tail"),
    ("run store.verify() on a read-only open", "run %allsource verify on a --read-only open"),
    ("store.verify()", "%allsource verify"),
    ("open it for writing", "open it again without --read-only"),
    ("read_only=True", "--read-only"),
    ("asl.open(...)", "%allsource open PATH"),
    ("schemas.subjects()", "%allsource schema list"),
    # The store names a zone as Python would; ingest's own path may already have turned
    # the first half into an option.
    ("timezone 'UTC' or 'America/New_York'", "--timezone UTC or --timezone America/New_York"),
    ("--timezone UTC or 'America/New_York'", "--timezone UTC or --timezone America/New_York"),
    (
        "give an IANA name such as 'UTC' or 'Europe/Paris', or an offset such as '+01:00'",
        "give an IANA name or an offset, e.g. --timezone UTC, --timezone Europe/Paris or "
        "--timezone +01:00",
    ),
)


def expected(exc: BaseException) -> bool:
    """Whether ``exc`` is shown as one line: the store's own errors and DuckDB's errors
    (a user's SQL). Anything else, a plain ``ValueError``, ``KeyError`` or ``OSError``
    included, is a bug and keeps its traceback.

    >>> from allsource_lab.errors import InvalidArgument
    >>> expected(InvalidArgument("bad")), expected(NotFound("gone")), expected(InvalidEvent("x"))
    (True, True, True)
    >>> expected(ValueError("bad")), expected(KeyError("k")), expected(OSError("disk"))
    (False, False, False)
    """
    return isinstance(exc, AllSourceError) or _from_duckdb(exc)


def _from_duckdb(exc: BaseException) -> bool:
    # By module: importing duckdb here would slow %load_ext for nothing.
    return type(exc).__module__.startswith(("duckdb", "_duckdb"))


def one_line(text: str) -> str:
    """``text`` on one line: DuckDB's ``LINE 1: ...`` excerpt and caret are dropped.

    >>> one_line('Parser Error: syntax error at or near "form"\\n\\nLINE 1: select * form\\n  ^')
    'Parser Error: syntax error at or near "form"'
    """
    kept = []
    for line in text.splitlines():
        if line.startswith("LINE ") or not line.strip().strip("^"):
            continue
        kept.append(line.strip())
    return " ".join(kept)


def usage_error(exc: BaseException, writes: bool = True) -> UsageError:
    """The ``UsageError`` that shows ``exc`` in one line, with what to do next.

    ``writes``: the refused command was one that writes (``append``, ``ingest``, ...);
    only then does the line say that nothing was written — for a read it would suggest
    the read could have written something.

    >>> str(usage_error(NotFound("no entity 'order-9' in the store")))
    "NotFound: no entity 'order-9' in the store — check the name; list entity ids with %allsource sql select distinct entity_id from events limit 20, event types with %allsource sql select distinct event_type from events, schemas with %allsource schema list"
    >>> str(usage_error(StorageError("opened with read_only=True; open it for writing")))
    'StorageError: opened with --read-only; open it again without --read-only'
    >>> str(usage_error(InvalidEvent("as_of is not an ISO-8601 time: 'yesterday'"), writes=False))
    "InvalidEvent: as_of is not an ISO-8601 time: 'yesterday' — fix the input and run again"
    """  # noqa: E501
    message = one_line(str(exc))
    for python, magic in _NOTEBOOK_WORDS:
        message = message.replace(python, magic)
    from_duckdb = _from_duckdb(exc)
    if isinstance(exc, AllSourceError) or from_duckdb:
        message = f"{type(exc).__name__}: {message}"
    if from_duckdb:
        message += " — SQL runs in DuckDB over the view events (one row per event)"
    for cls in type(exc).__mro__:
        if cls in _ALWAYS or (cls in _IF_UNSAID and "; " not in message):
            advice = _ALWAYS.get(cls) or _IF_UNSAID[cls]
            if not writes:
                advice = advice.removeprefix(_WRITE_WORDS)
            message = f"{message} — {advice}"
            break
        if cls in _IF_UNSAID:
            break
    return UsageError(message)
