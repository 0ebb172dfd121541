"""The one error hierarchy of AllSource Lab.

::

    AllSourceError
    ├── InvalidEvent(ValueError)        bad input to append/append_batch; names the row and field
    ├── InvalidArgument(ValueError)     any other bad argument (a duration, a mode, a query option)
    ├── ConcurrencyError                expected_version did not match; says expected vs actual
    ├── NotFound(KeyError)
    ├── SchemaError
    │   ├── SchemaViolation(ValueError) payload fails its registered schema; JSON path + reason
    │   └── IncompatibleSchema          new version breaks the subject's compatibility mode
    └── StorageError(OSError)
        ├── CorruptionError             a checksum failed; names the file and byte offset
        └── StoreLocked                 another process holds the store's write lock

Private errors that never leave the package (raised and caught inside it) live here too,
so that every error the code defines is in one place.

Every message says what went wrong and what to do next, in one line, so the notebook
magics can show it without a traceback.
"""

from __future__ import annotations

__all__ = [
    "AllSourceError",
    "ConcurrencyError",
    "CorruptionError",
    "IncompatibleSchema",
    "InvalidArgument",
    "InvalidEvent",
    "NotFound",
    "RecoveryWarning",
    "SchemaError",
    "SchemaViolation",
    "StorageError",
    "StoreLocked",
]


class AllSourceError(Exception):
    """Base of every error the store raises on purpose."""


class InvalidEvent(AllSourceError, ValueError):
    """Bad input to ``append``/``append_batch``; nothing was written.

    ``row`` is the 0-based row of the batch (``None`` for a single append) and ``field``
    the offending column.
    """

    def __init__(self, message: str, *, row: int | None = None, field: str | None = None):
        where = []
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(prefix + message)
        self.row = row
        self.field = field


class InvalidArgument(AllSourceError, ValueError):
    """A bad argument other than an event's own fields: a duration, a mode, an option.

    A ``ValueError`` too, so code that catches ``ValueError`` keeps working. Nothing was
    written or changed.

    >>> import allsource_lab as asl
    >>> issubclass(asl.InvalidArgument, ValueError)
    True
    """


class ConcurrencyError(AllSourceError):
    """An ``expected_version`` did not match the entity's current version; nothing was written."""

    def __init__(self, entity_id: str, expected: int, actual: int, *, row: int | None = None):
        at = f" (row {row})" if row is not None else ""
        super().__init__(
            f"entity {entity_id!r}{at} is at version {actual}, expected {expected}; "
            "re-read the entity and retry with expected_version="
            f"{actual}"
        )
        self.entity_id = entity_id
        self.expected = expected
        self.actual = actual
        self.row = row


class NotFound(AllSourceError, KeyError):
    """The asked-for event, entity or object does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SchemaError(AllSourceError):
    """Base of schema registry errors."""


class SchemaViolation(SchemaError, ValueError):
    """A payload fails its registered schema: names the row, the JSON path and why."""

    def __init__(
        self,
        message: str,
        *,
        row: int | None = None,
        path: str | None = None,
        reason: str | None = None,
    ):
        where = [] if row is None else [f"row {row}"]
        if path is not None:
            where.append(f"at {path}")
        super().__init__(f"{' '.join(where)}: {message}" if where else message)
        self.row = row
        self.path = path
        self.reason = reason if reason is not None else message


class IncompatibleSchema(SchemaError):
    """A new schema version breaks the subject's compatibility mode; ``report`` says how."""

    def __init__(self, message: str, report: object = None):
        super().__init__(message)
        self.report = report


class StorageError(AllSourceError, OSError):
    """The store's files cannot be read or written as needed."""

    def __str__(self) -> str:  # OSError's str() would show the args tuple
        return str(self.args[0]) if self.args else ""


class CorruptionError(StorageError):
    """A checksum failed or a file is malformed; names the file and byte offset."""

    def __init__(self, message: str, *, path: str | None = None, offset: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}" + (f" at byte {offset}" if offset is not None else "") + ": "
        super().__init__(where + message)
        self.path = path
        self.offset = offset


class StoreLocked(StorageError):
    """Another process holds the store's write lock."""


class RecoveryWarning(UserWarning):
    """Opening the store repaired something (a torn final WAL record was cut off)."""


# -- private: raised and caught inside the package, never seen by a caller ---------------


class _Uncovered(Exception):
    """A schema uses something the fast validator does not judge, so every row is judged
    by ``jsonschema`` instead (raised and caught in ``schemas.fast``)."""


class _DiskFull(StorageError):
    """No room on the disk (ENOSPC, EDQUOT): writes resume once there is.

    Private: raised by the write path and caught inside the store, except where it
    reaches the caller as the StorageError it is.
    """

    def __init__(self, cause: OSError) -> None:
        super().__init__(
            f"the disk is full ({cause}); the store takes no writes until there is room. "
            "Acknowledged events are safe: those not yet on disk are kept in memory and "
            "written first once space is freed (the next write or store.flush() tries again)"
        )


# -- signals of the faces (the CLI, the magics), raised and caught there ------------------


class CommandError(Exception):
    """A user mistake the ``allsource`` CLI reports in one line; ``code`` is the exit code
    (1 by default; 2 for a usage mistake)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class HelpShown(Exception):
    """A magic's ``--help`` was asked for and printed; the magic returns nothing."""
