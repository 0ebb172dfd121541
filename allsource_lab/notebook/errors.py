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

__all__ = ["expected", "one_line", "usage_error"]

# What to do next. Looked up by the error's class and its bases in order, so the most
# specific wins. The store's messages often end in a next step already ("...; open with
# recovery='salvage'"): those in _IF_UNSAID are added only to a message that has none
# (no "; "), the others always — a refused batch must always say nothing was written.
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
    NotFound: "check the name; %allsource stats and %allsource schema list show what is stored",
}
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


def usage_error(exc: BaseException) -> UsageError:
    """The ``UsageError`` that shows ``exc`` in one line, with what to do next.

    >>> str(usage_error(NotFound("no entity 'order-9' in the store")))
    "NotFound: no entity 'order-9' in the store — check the name; %allsource stats and %allsource schema list show what is stored"
    >>> str(usage_error(StorageError("opened with read_only=True; open it for writing")))
    'StorageError: opened with --read-only; open it again without --read-only'
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
            message = f"{message} — {_ALWAYS.get(cls) or _IF_UNSAID[cls]}"
            break
        if cls in _IF_UNSAID:
            break
    return UsageError(message)
