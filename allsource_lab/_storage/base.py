"""The storage seam: the calls the store makes on its bytes, and what each one promises.

A store is written once against :class:`Storage`; :class:`~allsource_lab._storage.folder.
FolderStorage` keeps the bytes in a folder (durable) and :class:`~allsource_lab._storage.
memory.MemoryStorage` in memory (scratch), and the contract tests run on both. The seam
deals in bytes, Arrow tables and files: what a record means (a version, a schema, an
entity's state) is decided above it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from allsource_lab._storage.entity_index import EntityIndex
from allsource_lab._storage.index_file import SegmentIndex
from allsource_lab._storage.manifest import Manifest
from allsource_lab.settings import Settings

__all__ = ["Loaded", "Storage"]


@dataclass(slots=True)
class Loaded:
    """What opening found: sealed segments and the WAL's events beyond them.

    ``tail`` holds only events past ``manifest.sealed_through``, in sequence order;
    ``problems`` lists damage that recovery skipped (``recovery="salvage"``) or cut off.
    """

    manifest: Manifest
    segments: list[pa.Table]
    tail: list[pa.RecordBatch]
    problems: list[str] = field(default_factory=list)


class Storage:
    """The seam: the calls the store makes on its bytes.

    ``path`` is the store folder (``None`` in memory); ``durable`` says whether anything
    survives the process, so the store skips encoding WAL records when it does not.
    Methods with a body here are optional: their default is "nothing stored".
    """

    path: Path | None = None
    durable = False

    def load(self) -> Loaded:
        """Read what is stored, once, at open: the manifest, segments and WAL tail.

        A writable storage also repairs what recovery allows (a torn final WAL record is
        cut off) and gets its log ready for appends.

        Raises:
            CorruptionError: damage the recovery mode does not allow; names file and byte.
            StorageError: the store cannot be read.
        """
        raise NotImplementedError

    def write_log(self, *pieces: Any) -> None:
        """Append buffers, in order, at the end of the log (no fsync).

        All or nothing: a write that fails part way (a full disk) leaves the log as it
        was, so the next write follows whole records only.

        Raises:
            OSError: the write failed (as the operating system raised it).
        """
        raise NotImplementedError

    def sync_log(self) -> None:
        """Make everything written to the log so far durable (fsync).

        Raises:
            OSError: the fsync failed.
        """
        raise NotImplementedError

    def log_size(self) -> int:
        """Bytes in the current log file (the store rotates past a bound)."""
        raise NotImplementedError

    def rotate_log(self, next_sequence: int) -> None:
        """Sync and close the current log file and start one at ``next_sequence``.

        Raises:
            OSError: the new file cannot be started; the current one stays in use.
        """
        raise NotImplementedError

    def start_seal(self, through: int) -> int | None:
        """Before sealing the events through sequence ``through``: start a new log file
        for the events after them (under the store's locks, so that none of those is
        written to the old one). Returns the first sequence of that file, for
        :meth:`seal`'s ``trim_before``, or None if the log has no files.

        Raises:
            OSError: the new file cannot be started; the current one stays in use.
        """
        return None

    def seal(
        self,
        table: pa.Table,
        through: int,
        settings: Settings,
        trim_before: int | None = None,
        entities: np.ndarray | None = None,
    ) -> tuple[pa.Table, np.ndarray]:
        """Make ``table`` (the tail) a sealed segment; returns it sorted, and the order.

        Once this returns, every event up to sequence ``through`` is in a segment and the
        log no longer needs it: log files that start below ``trim_before`` are removed.
        Runs on the sealing thread, beside appends (which never touch segments or the
        manifest); never two at once. ``entities``: each row's entity number, if known
        (it saves the sort numbering the ids).
        """
        raise NotImplementedError

    def compact(self, table: pa.Table, settings: Settings) -> pa.Table:
        """Replace every sealed segment by one of ``table``'s rows (already every sealed
        event); returns the rows as stored (sorted for a segment)."""
        raise NotImplementedError

    def verify(self) -> tuple[list[str], int]:
        """Check every stored byte against its checksum: (problems, files checked).

        Damage is reported, never raised: a post-mortem must see all of it.
        """
        raise NotImplementedError

    def load_snapshots(self) -> tuple[list[bytes], list[str]]:
        """Snapshot record bodies stored so far, and problems met reading them.

        Damage is never fatal (snapshots are derived). A writable storage cuts a torn
        final record unless ``recovery="strict"``, and under ``"salvage"`` rewrites a
        damaged log without its damaged records; it changes nothing else.
        """
        return [], []

    def read_index(self, k: int, rows: int) -> SegmentIndex | None:
        """The index file of the ``k``-th live segment (of ``rows`` rows; -1: the newest),
        or None if it is missing, damaged or not this segment's (derived data: never
        raises)."""
        return None

    def write_index(self, k: int, index: SegmentIndex) -> None:
        """Keep the index of the ``k``-th live segment (-1: the newest) beside it (no
        fsync: it checks itself when read). Failures are ignored: the open rebuilds it
        from the rows."""

    def read_entities(self) -> EntityIndex:
        """What the entity index (``entity_index.py``) keeps that fits the live segments:
        the entity ids an earlier process numbered, and the entity of each run of the
        first live segments; nothing if there is none (derived data: never raises)."""
        return EntityIndex(np.empty(0, np.uint8), np.zeros(1, np.int64))

    def write_entities(
        self, start: int, keys: tuple[np.ndarray, np.ndarray], runs: list[np.ndarray]
    ) -> None:
        """Keep the entity of each run of the live segments from ``start`` on (-1: the
        newest), ``runs[i]`` for the ``i``-th, and every id numbered so far (``keys``, as
        :meth:`KeyTable.key_buffers`). No fsync; failures are ignored: the next open
        indexes the segments it does not cover from their rows and writes it again."""

    def wal_bytes(self) -> int:
        """Bytes in the WAL files on disk."""
        return 0

    def segment_files(self) -> list[Path]:
        """The live segment files (for querying them directly), oldest first."""
        return []

    def write_snapshots(self, bodies: list[bytes]) -> None:
        """Add snapshot records durably (after the events they fold are durable)."""

    def load_registry(self) -> tuple[list[bytes], list[str]]:
        """Schema registry record bodies, oldest first, and problems met reading them.

        Any problem refuses the open unless ``recovery="salvage"``, so a damaged log is
        left exactly as found (a torn final record too, and under ``"strict"`` that is a
        problem); with no damage a writable storage cuts a torn final record, and under
        ``"salvage"`` it rewrites a damaged log without its damaged records.
        """
        return [], []

    def write_registry(self, bodies: list[bytes]) -> None:
        """Add schema registry records durably (fsynced before returning).

        Raises:
            StorageError: the store was opened read-only.
        """

    def load_states(self, kind: str) -> tuple[dict[str, bytes], list[str]]:
        """Named state records of one kind (``"projections"``, ``"subscriptions"``).

        Returns ``{name: body}`` and problems met reading them (a damaged file is
        reported and left out, never fatal: the caller rebuilds what it held).
        """
        raise NotImplementedError

    def write_state(self, kind: str, name: str, body: bytes | None) -> None:
        """Replace (or with ``None`` remove) one named state record, atomically and durably.

        Raises:
            StorageError: the store was opened read-only.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Finish background work, sync and close the log, and release the store."""
        raise NotImplementedError
