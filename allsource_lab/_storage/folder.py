"""The durable storage: a store folder of WAL files, Parquet segments and a manifest.

The layout (``wal/``, ``segments/``, ``manifest.json``, ``LOCK``, the snapshot and
registry logs, the ``projections/`` and ``subscriptions/`` state files) is described in
``docs/format.md``. This module decides the order of writes that makes a crash at any
point safe (segment, then manifest, then WAL trim) and reads it all back on open; the
byte layouts themselves live in ``wal.py``, ``records.py``, ``segments.py``,
``manifest.py`` and ``record_log.py``.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from allsource_lab._storage.arena import Arena
from allsource_lab._storage.base import Loaded, Storage
from allsource_lab._storage.columns import (
    check_columns,
    column_file_name,
    open_columns,
    require_segment,
    rewrite_columns,
    write_columns,
)
from allsource_lab._storage.direct import write_new
from allsource_lab._storage.entity_index import ENTITY_INDEX_FILE, EntityIndex, EntityIndexFile
from allsource_lab._storage.index_file import (
    SegmentIndex,
    encode_index,
    index_file_name,
    read_index_file,
)
from allsource_lab._storage.lock import StoreLock
from allsource_lab._storage.manifest import (
    Manifest,
    SegmentInfo,
    fsync_folder,
    make_folder,
    replace_file,
    write_whole,
)
from allsource_lab._storage.record_log import (
    STATE_KINDS,
    frame_record,
    read_records,
    state_file_name,
)
from allsource_lab._storage.records import decode_log
from allsource_lab._storage.segments import (
    check_segment_bytes,
    encode_segment,
    read_segment,
    segment_info,
    segment_name,
    sequence_range,
    sort_for_segment,
)
from allsource_lab._storage.wal import (
    SETTLED_NS,
    LogFollower,
    LogScan,
    WriteAheadLog,
    check_wal_file,
)
from allsource_lab.errors import CorruptionError, RecoveryWarning, StorageError
from allsource_lab.settings import Settings

__all__ = ["FolderStorage"]


class FolderStorage(Storage):
    """A store folder: ``wal/``, ``segments/``, ``manifest.json`` and ``LOCK``."""

    durable = True

    def __init__(self, path: Path, settings: Settings, *, read_only: bool) -> None:
        self.path = path
        self.settings = settings
        self.read_only = read_only
        self.wal_dir = path / "wal"
        self.segment_dir = path / "segments"
        self.snapshot_log = path / "snapshots" / "snapshots.log"
        self.registry_log = path / "schemas" / "registry.log"
        if read_only:
            if not (path / "manifest.json").exists():
                raise StorageError(
                    f"{path} is not a store (no manifest.json); open it without "
                    "read_only=True to create one"
                )
        else:
            try:
                for folder in (path, self.wal_dir, self.segment_dir):
                    make_folder(folder)
            except OSError as exc:
                raise StorageError(f"cannot create the store folder {path}: {exc}") from exc
        self.lock = StoreLock(path)
        if not read_only:
            self.lock.acquire()
        self.wal = WriteAheadLog(self.wal_dir)
        # A snapshot log whose torn final record a strict open left in place: appending
        # after it would bury the new records behind the torn one, so none are written.
        self._snapshots_held = False
        self._housekeeping: Future[None] | None = None  # what the last checkpoint left
        self._arena = Arena()  # where each seal sorts its rows
        self.manifest: Manifest | None = None
        self.entity_index = EntityIndexFile(path / ENTITY_INDEX_FILE, read_only=read_only)
        # A read-only open follows the writer (see ``_store/following.py``): where it has
        # read the WAL to, and manifest.json's (inode, time, size) when it was last read.
        self.log_follower = LogFollower(self.wal_dir)
        self._manifest_seen: tuple[int, int, int] | None = None
        self._manifest_file = os.fspath(path / "manifest.json")  # stat() of a str: ~2 us

    # -- open --------------------------------------------------------------------------

    def load(self) -> Loaded:
        manifest_path = self.path / "manifest.json"  # type: ignore[operator]
        if manifest_path.exists():
            manifest = Manifest.from_bytes(manifest_path.read_bytes(), str(manifest_path))
        else:
            sealed = sorted(self.segment_dir.glob("*.parquet"))
            if sealed:
                # Segments without a manifest: a new manifest would call them orphans and
                # delete the only copy of their events. Refuse and keep every byte.
                raise CorruptionError(
                    f"manifest.json is missing but {len(sealed)} segment file(s) exist; "
                    "restore manifest.json from a backup (nothing was changed)",
                    path=str(manifest_path),
                )
            manifest = Manifest(store_id=str(uuid.uuid4()), partitions=self.settings.partitions)
            manifest.write(self.path)  # type: ignore[arg-type]
        if self.read_only:
            manifest, segments, problems, scan, batches = self._read_consistent(manifest_path)
            self.log_follower.start_after(scan)
        else:
            manifest, segments, problems = self._open_segments(manifest)
            self._remove_orphans(manifest)
            scan = self.wal.scan(self.settings.recovery, repair=True)
            batches = decode_log(scan, manifest.sealed_through)
        self.manifest = manifest
        if scan.truncated and not self.read_only:
            warnings.warn(
                f"{self.path}: cut off a torn final WAL record "
                f"({'; '.join(f'{f} at byte {o}' for f, o in scan.truncated)}); it was "
                "never fully written, so it was not acknowledged under fsync='always'",
                RecoveryWarning,
                stacklevel=4,
            )
        if not self.read_only:
            self.wal.open_for_append(
                self._next_sequence(manifest, batches), fresh=scan.damaged_last_file
            )
        return Loaded(manifest, segments, batches, [*problems, *scan.problems])

    def _open_segments(self, manifest: Manifest) -> tuple[Manifest, list[pa.Table], list[str]]:
        """Every live segment as a table: its column file mapped, or else its Parquet read.

        A segment's Parquet must be there at its recorded size (``require_segment``), but
        is read only when its column file cannot be mapped (``open_columns``): then its
        SHA-256 is checked as it is read, and a writable open writes the column file again
        from it and maps that, so the heap copy goes. Returns the manifest (rewritten, if
        column files were written, to record them: a crash before that only means they
        are written again next time), the tables, and what was damaged, for
        ``recovery_problems`` (a store from before column files has none, and is not
        damaged). A read-only open reads such a segment's Parquet into memory.

        Raises:
            CorruptionError: a segment is missing, resized, or (when its Parquet is read)
                damaged: its events exist nowhere else.
        """
        tables: list[pa.Table] = []
        infos: list[SegmentInfo] = []
        problems: list[str] = []
        written = False
        for info in manifest.segments:
            require_segment(self.segment_dir, info)
            damage = None
            if info.columns_bytes is not None:
                try:
                    tables.append(open_columns(self.segment_dir, info))
                    infos.append(info)
                    continue
                except CorruptionError as exc:
                    damage = str(exc)
            table = read_segment(self.segment_dir, info)
            done = "read from its segment into memory"
            if not self.read_only:
                columns = self.segment_dir / column_file_name(info.file)
                try:
                    info = rewrite_columns(self.segment_dir, info, table)
                    written = True
                    table = open_columns(self.segment_dir, info)
                    done = "written again from its segment"
                except OSError as exc:  # CorruptionError included: the Parquet serves
                    problems.append(f"{columns}: could not be written ({exc}); {done}")
            if damage is not None:
                problems.append(f"{damage}; {done}")
            tables.append(table)
            infos.append(info)
        if written:
            manifest = replace(manifest, segments=infos)
            # Decoded Parquet is gone (the mapped files replaced it); Arrow's pool would
            # keep its pages.
            pa.default_memory_pool().release_unused()
            try:
                manifest.write(self.path)  # type: ignore[arg-type]
            except OSError as exc:
                # The files are durable: the next manifest write (a checkpoint) records
                # them, and until then a crash only means they are written again.
                problems.append(f"manifest.json: column files not recorded yet ({exc})")
        return manifest, tables, problems

    def _read_consistent(
        self, manifest_path: Path
    ) -> tuple[Manifest, list[pa.Table], list[str], LogScan, list[pa.RecordBatch]]:
        """Manifest, segments and WAL as of one moment, beside a writer that may checkpoint.

        A checkpoint between reading the manifest and listing the WAL would trim WAL files
        the old manifest does not cover, and a compaction remove the segments it names;
        so read, then check the manifest did not change, and read again if it did.
        """
        for _ in range(20):
            seen = self._manifest_stat(manifest_path)
            raw = manifest_path.read_bytes()
            manifest = Manifest.from_bytes(raw, str(manifest_path))
            try:
                manifest, segments, problems = self._open_segments(manifest)
                scan = self.wal.scan(self.settings.recovery, repair=False)
            except FileNotFoundError:
                continue  # a WAL file trimmed while we listed them: the manifest moved on
            except CorruptionError:
                if manifest_path.read_bytes() != raw:
                    continue  # a segment compacted away meanwhile
                raise
            if manifest_path.read_bytes() == raw:
                batches = decode_log(scan, manifest.sealed_through)
                self._manifest_seen = seen
                return manifest, segments, problems, scan, batches
        raise StorageError(
            f"{self.path} kept changing under this read-only open (a writer checkpointing "
            "continuously); try again"
        )

    @staticmethod
    def _next_sequence(manifest: Manifest, batches: list[pa.RecordBatch]) -> int:
        last = manifest.sealed_through
        for b in batches:
            if b.num_rows:
                last = max(last, int(b.column(0)[-1].as_py()))
        return last + 1

    def _remove_orphans(self, manifest: Manifest) -> None:
        live = {s.file for s in manifest.segments}
        live |= {column_file_name(name) for name in live} | {index_file_name(n) for n in live}
        removed = False
        for path in self.segment_dir.iterdir():
            if path.name not in live:
                # A segment or column file written but never committed to the manifest, one
                # a compaction replaced, or a temp file.
                path.unlink()
                removed = True
        for path in (self.path / "manifest.json.tmp",):  # type: ignore[operator]
            if path.exists():
                path.unlink()
                removed = True
        if removed:
            fsync_folder(self.segment_dir)

    # -- following a writer (read-only) -------------------------------------------------

    @staticmethod
    def _manifest_stat(path: Path) -> tuple[int, int, int] | None:
        """manifest.json's (inode, time, size); None if its time is too recent to be
        sure a change within the same clock tick would move it (see ``SETTLED_NS``)."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        if time.time_ns() - st.st_mtime_ns <= SETTLED_NS:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def manifest_moved(self) -> bool:
        """Whether manifest.json may have changed since it was last read (one ``stat``:
        a writer replaces it by renaming a new file over it)."""
        seen = self._manifest_seen
        if seen is None:
            return True
        try:
            st = os.stat(self._manifest_file)
        except FileNotFoundError:
            return True
        return (st.st_ino, st.st_mtime_ns, st.st_size) != seen

    def reread_manifest(self) -> Manifest:
        """Read manifest.json again (a follower); it becomes this storage's manifest.

        Raises:
            CorruptionError: it is damaged.
        """
        path = self.path / "manifest.json"  # type: ignore[operator]
        seen = self._manifest_stat(path)
        manifest = Manifest.from_bytes(path.read_bytes(), str(path))
        self.manifest, self._manifest_seen = manifest, seen
        return manifest

    def open_segments(self, infos: list[SegmentInfo]) -> tuple[list[pa.Table], list[str]]:
        """Segments a follower has not seen, each as a table (mapped when it can be), and
        what was wrong with them.

        Raises:
            CorruptionError: a segment is missing (a compaction removed it: read the
                manifest again) or damaged.
        """
        assert self.manifest is not None
        _, tables, problems = self._open_segments(replace(self.manifest, segments=infos))
        return tables, problems

    # -- writing -----------------------------------------------------------------------

    def write_log(self, *pieces: Any) -> None:
        self.wal.write(*pieces)

    def sync_log(self) -> None:
        self.wal.sync()

    def log_size(self) -> int:
        return self.wal.size

    def rotate_log(self, next_sequence: int) -> None:
        self.wal.rotate(next_sequence, sync=True)

    def start_seal(self, through: int) -> int | None:
        self.wal.rotate(through + 1, sync=False)
        return through + 1

    def seal(
        self,
        table: pa.Table,
        through: int,
        settings: Settings,
        trim_before: int | None = None,
        entities: np.ndarray | None = None,
    ) -> tuple[pa.Table, np.ndarray]:
        """Checkpoint: segment, then manifest, then drop the WAL files it made redundant.

        The order is what makes a crash at any point safe: until the manifest names the
        segment, the WAL still holds its events; once it does, the WAL files before
        ``trim_before`` (see :meth:`start_seal`) are redundant, and skipped on replay if
        their deletion did not happen.
        """
        assert self.manifest is not None
        self.settle()
        with self._arena.lend(table.nbytes) as allocate:
            ordered, order = sort_for_segment(table, _helper(), allocate, entities)
            self.manifest, stored = self._commit(
                ordered,
                settings,
                self.manifest.segments,
                sealed_through=through,
                name_durable=False,
            )
            if stored is ordered and allocate is not pa.allocate_buffer:
                # The column file could not be mapped: the rows stay in the heap, so they
                # leave the arena, which the next seal writes over.
                stored = _copied(ordered)
            del ordered
        # The store folder's fsync (which makes the new manifest's name durable) and then
        # the removal of the WAL files it made redundant run after the checkpoint returns:
        # its events were durable in the WAL already, and until that fsync a crash finds
        # the old manifest and those files still there.
        root: Path = self.path  # type: ignore[assignment]
        wal = self.wal

        def housekeeping() -> None:
            fsync_folder(root)
            if trim_before is not None:
                wal.trim(trim_before)
            # No folder fsync for the removals: a removal lost in a crash leaves a file
            # whose records are all sealed, and replay skips those by sequence.

        self._housekeeping = _background().submit(housekeeping)
        return stored, order

    def settle(self) -> None:
        """Wait for the last checkpoint's background work; raises what it raised."""
        pending, self._housekeeping = self._housekeeping, None
        if pending is not None:
            pending.result()

    def compact(self, table: pa.Table, settings: Settings) -> pa.Table:
        """One segment for every sealed event, then a manifest naming only it, then the old
        files removed. A crash before the manifest leaves the new file an orphan; after
        it, the old ones: open removes either, and no event is ever in neither."""
        assert self.manifest is not None
        self.settle()
        old = [s.file for s in self.manifest.segments]
        ordered, _ = sort_for_segment(table, _helper())
        # Two or more segments merge into a range no one of them had: a new name.
        self.manifest, stored = self._commit(ordered, settings, [])
        for name in old:
            for file in (name, column_file_name(name), index_file_name(name)):
                with contextlib.suppress(FileNotFoundError):
                    (self.segment_dir / file).unlink()
        fsync_folder(self.segment_dir)
        return stored

    def _commit(
        self,
        ordered: pa.Table,
        settings: Settings,
        before: list[SegmentInfo],
        *,
        sealed_through: int | None = None,
        name_durable: bool = True,
    ) -> tuple[Manifest, pa.Table]:
        """Write the rows ``ordered`` as a segment and its column file, make both durable,
        then the manifest naming them.

        The column file is written on the helper thread while this one encodes the
        Parquet: both release the GIL, and the column file (~200 MB for 1M events, its
        CRC32C taken as it goes) costs ~0.05-0.1 s that the encoding (~0.2-0.3 s) hides
        when the other core is free (measured). The new manifest lists ``before`` then
        the segment, with its column file's size and CRC32C. The two files go straight
        under their final names (until the manifest names them, a half-written one is an
        orphan that open removes). Their data, their folder entry and the new manifest's
        temp file are fsynced at once, on four threads (fsync drops the GIL), and only
        then is the manifest renamed into place and the store folder fsynced: the
        manifest can never name a file that is not wholly on disk. Returns the committed
        manifest and the rows as the store keeps them: the column file mapped, so the
        heap copy can go (``ordered`` itself if mapping it failed: past the commit
        nothing may fail, and the next open writes the file again).
        """
        assert self.manifest is not None
        root: Path = self.path  # type: ignore[assignment]
        temp = root / "manifest.json.tmp"
        file = segment_name(*sequence_range(ordered))
        segment = self.segment_dir / file
        columns = self.segment_dir / column_file_name(file)
        written = _helper().submit(write_columns, columns, ordered)
        try:
            with contextlib.ExitStack() as fds:
                try:
                    data = encode_segment(
                        ordered,
                        row_group_rows=settings.segment_row_group_rows,
                        zstd_level=settings.segment_zstd_level,
                    )
                finally:
                    # Whatever the encoding did, the column file is finished (its fd
                    # closed on the way out) or failed before anything else happens.
                    columns_fd, size, crc = written.result()
                    fds.callback(os.close, columns_fd)
                info = replace(segment_info(ordered, data), columns_bytes=size, columns_crc32c=crc)
                segment_fd = write_whole(segment, data)
                fds.callback(os.close, segment_fd)
                manifest = replace(
                    self.manifest,
                    segments=[*before, info],
                    sealed_through=(
                        self.manifest.sealed_through if sealed_through is None else sealed_through
                    ),
                )
                manifest_fd = write_whole(temp, manifest.to_bytes())
                fds.callback(os.close, manifest_fd)
                _fsync_together(
                    lambda: os.fsync(segment_fd),
                    lambda: os.fsync(columns_fd),
                    lambda: fsync_folder(self.segment_dir),
                    lambda: os.fsync(manifest_fd),
                )
        except OSError:
            # Not committed: the half-written files go now (a full disk gets its room
            # back); open would remove them as orphans anyway.
            for path in (segment, columns, temp):
                with contextlib.suppress(OSError):
                    path.unlink()
            raise
        os.replace(temp, root / "manifest.json")
        if name_durable:  # otherwise the caller fsyncs root before anything relies on it
            fsync_folder(root)
        try:
            stored = open_columns(self.segment_dir, info)
        except OSError:  # CorruptionError included
            stored = ordered
        return manifest, stored

    # -- checking ----------------------------------------------------------------------

    def verify(self) -> tuple[list[str], int]:
        problems: list[str] = []
        checked = 0
        manifest_path = self.path / "manifest.json"  # type: ignore[operator]
        try:
            manifest = Manifest.from_bytes(manifest_path.read_bytes(), str(manifest_path))
            checked += 1
        except (CorruptionError, OSError) as exc:
            return [str(exc)], 1
        for info in manifest.segments:
            path = self.segment_dir / info.file
            checked += 1
            try:
                data = path.read_bytes()
                problem = check_segment_bytes(path, data, info)
                del data  # before the column file is read: one file's bytes at a time
                if problem is not None:
                    problems.append(f"{path}: {problem}")
            except OSError as exc:
                problems.append(f"{path}: cannot be read ({exc})")
            if info.columns_bytes is not None:
                columns = self.segment_dir / column_file_name(info.file)
                checked += 1
                try:
                    problem = check_columns(self.segment_dir, info)
                except OSError as exc:
                    problem = f"cannot be read ({exc})"
                if problem is not None:
                    problems.append(f"{columns}: {problem}")
        for path in self.wal.files():
            try:
                problems.extend(check_wal_file(path))
            except FileNotFoundError:
                continue  # trimmed by a checkpoint since it was listed: nothing to check
            except OSError as exc:
                problems.append(f"{path}: cannot be read ({exc})")
            checked += 1
        for log in (self.snapshot_log, self.registry_log):
            if log.exists():
                checked += 1
                problems.extend(
                    f"{log}: {why} at byte {at}" for at, why in read_records(log.read_bytes())[1]
                )
        for kind in STATE_KINDS:
            checked += len(list((self.path / kind).glob("*.state")))  # type: ignore[operator]
            problems.extend(self.load_states(kind)[1])
        return problems, checked

    # -- snapshots -----------------------------------------------------------------------

    def load_snapshots(self) -> tuple[list[bytes], list[str]]:
        """Read ``snapshots/snapshots.log``, repairing it as :meth:`_load_log` says.

        Snapshots are derived data: a damaged record is skipped and reported, never fatal,
        so the open always goes ahead with this log.
        """
        bodies, problems = self._load_log(self.snapshot_log, damage_refuses_open=False)
        if self._snapshots_held:
            problems.append(
                f"{self.snapshot_log}: no snapshot is saved by this open (recovery='strict' "
                "leaves its torn final record in place; any other mode cuts it)"
            )
        return bodies, problems

    def load_registry(self) -> tuple[list[bytes], list[str]]:
        """Read ``schemas/registry.log``, repairing it as :meth:`_load_log` says.

        Damage refuses the open unless ``recovery="salvage"`` (``open_registry`` raises on
        any problem reported here), so in the other modes a damaged registry log is left
        exactly as it was found.
        """
        return self._load_log(
            self.registry_log, damage_refuses_open=self.settings.recovery != "salvage"
        )

    def write_registry(self, bodies: list[bytes]) -> None:
        if self.read_only:
            raise StorageError("the store was opened with read_only=True; open it for writing")
        self._append_log(self.registry_log, bodies)

    def load_states(self, kind: str) -> tuple[dict[str, bytes], list[str]]:
        """``<store>/<kind>/*.state``: one framed record each, ``name`` then body."""
        folder = self.path / kind  # type: ignore[operator]
        states: dict[str, bytes] = {}
        problems: list[str] = []
        try:
            files = sorted(folder.glob("*.state"))
        except OSError as exc:
            return {}, [f"{folder}: cannot be listed ({exc})"]
        for path in files:
            try:
                data = path.read_bytes()
            except OSError as exc:
                problems.append(f"{path}: cannot be read ({exc}); it is ignored")
                continue
            bodies, damaged, end = read_records(data)
            if damaged or len(bodies) != 1 or end != len(data):
                at, why = damaged[0] if damaged else (end, "not one whole record")
                problems.append(f"{path}: {why} at byte {at}; it is ignored")
                continue
            body = bodies[0]
            size = int.from_bytes(body[:4], "little")
            try:
                name = body[4 : 4 + size].decode()
            except UnicodeDecodeError:
                problems.append(f"{path}: its name is not UTF-8; it is ignored")
                continue
            if path.name != state_file_name(name):
                problems.append(f"{path}: holds {name!r}, which belongs elsewhere; ignored")
                continue
            states[name] = body[4 + size :]
        return states, problems

    def write_state(self, kind: str, name: str, body: bytes | None) -> None:
        if self.read_only:
            raise StorageError("the store was opened with read_only=True; open it for writing")
        folder = self.path / kind  # type: ignore[operator]
        final = folder / state_file_name(name)
        if body is None:
            with contextlib.suppress(FileNotFoundError):
                final.unlink()
                fsync_folder(folder)
            return
        make_folder(folder)
        encoded = name.encode()
        record = frame_record(len(encoded).to_bytes(4, "little") + encoded + body)
        replace_file(final, record)

    def _load_log(self, path: Path, *, damage_refuses_open: bool) -> tuple[list[bytes], list[str]]:
        """A record log's readable bodies and its problems; repaired only as the open allows.

        An open changes a record log only if it goes ahead with it, and then only as far
        as its recovery mode allows (RELIABILITY.md: a refused open changes nothing):

        * read-only, or damage that refuses the open (``damage_refuses_open``): nothing;
        * ``"strict"``: nothing; a torn final record is reported instead of cut;
        * ``"truncate_tail"``: a torn final record is cut off (damage elsewhere stays, and
          records appended after it are still found: reading resyncs past damage);
        * ``"salvage"``: a damaged log is rewritten (atomically) with only its readable
          records, so later opens in any mode find it clean; an undamaged one with a torn
          final record is cut as above.

        Cutting damage instead (as this once did, before anyone decided) would destroy
        the records a salvage open could still read.
        """
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return [], []
        except OSError as exc:
            return [], [f"{path}: cannot be read ({exc}); its records are ignored"]
        bodies, damaged, end = read_records(data)
        problems = [f"{path}: {why} at byte {at}" for at, why in damaged]
        # An unreadable rest is reported where it starts, which is ``end``; past ``end``
        # without a problem there is a torn final record.
        torn = end < len(data) and not (damaged and damaged[-1][0] >= end)
        mode = self.settings.recovery
        if self.read_only or (damaged and damage_refuses_open):
            return bodies, problems
        if damaged and mode == "salvage":
            try:
                replace_file(path, b"".join(frame_record(body) for body in bodies))
                problems.append(f"{path}: rewritten with its {len(bodies)} readable records")
            except OSError as exc:
                # The open can go ahead without it: reading resyncs past the damage, so
                # records appended after it are still found.
                problems.append(f"{path}: could not be rewritten ({exc}); left as it was")
        elif torn and mode == "strict":
            problems.append(
                f"{path}: torn final record (a crash cut its write short), left in place by "
                f"recovery='strict'; recovery='truncate_tail' cuts it, at byte {end}"
            )
            if path == self.snapshot_log:
                self._snapshots_held = True
        elif torn:
            with open(path, "r+b") as f:
                f.truncate(end)
                os.fsync(f.fileno())
        return bodies, problems

    def _append_log(self, path: Path, bodies: list[bytes]) -> None:
        """Append framed records and fsync (the folder too, the first time)."""
        make_folder(path.parent)
        new = not path.exists()
        with open(path, "ab") as f:
            f.write(b"".join(frame_record(b) for b in bodies))
            f.flush()
            os.fsync(f.fileno())
        if new:
            fsync_folder(path.parent)  # the new file's name

    def wal_bytes(self) -> int:
        total = 0
        for path in self.wal.files():
            with contextlib.suppress(FileNotFoundError):  # trimmed by a checkpoint meanwhile
                total += path.stat().st_size
        return total

    def read_index(self, k: int, rows: int) -> SegmentIndex | None:
        manifest = self.manifest
        if manifest is None or not -len(manifest.segments) <= k < len(manifest.segments):
            return None
        name = manifest.segments[k].file
        return read_index_file(self.segment_dir / index_file_name(name), name, rows)

    def write_index(self, k: int, index: SegmentIndex) -> None:
        manifest = self.manifest
        if (
            self.read_only
            or manifest is None
            or not -len(manifest.segments) <= k < len(manifest.segments)
        ):
            return
        name = manifest.segments[k].file
        final = self.segment_dir / index_file_name(name)
        temp = final.with_name(final.name + ".tmp")
        with contextlib.suppress(OSError):
            # Renamed into place, never rewritten in place: an open maps these files.
            os.close(write_new(temp, *encode_index(name, index)))
            os.replace(temp, final)

    def read_entities(self) -> EntityIndex:
        return self.entity_index.read(self.manifest.segments if self.manifest else [])

    def write_entities(
        self, start: int, keys: tuple[np.ndarray, np.ndarray], runs: list[np.ndarray]
    ) -> None:
        if self.manifest is not None and self.manifest.segments:
            live = self.manifest.segments
            self.entity_index.write(live, start % len(live) if start < 0 else start, keys, runs)

    def segment_files(self) -> list[Path]:
        manifest = self.manifest
        return [] if manifest is None else [self.segment_dir / s.file for s in manifest.segments]

    def write_snapshots(self, bodies: list[bytes]) -> None:
        if self.read_only or not bodies or self._snapshots_held:
            return
        self._append_log(self.snapshot_log, bodies)

    def close(self) -> None:
        try:
            self.settle()
            if not self.read_only:
                self.wal.close()
        finally:
            self._arena.close()
            self.lock.release()


def _copied(table: pa.Table) -> pa.Table:
    """``table`` with its buffers copied into memory of its own."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return pa.ipc.open_stream(sink.getvalue()).read_all()


_fsync_pool: ThreadPoolExecutor | None = None
_housekeeping_pool: ThreadPoolExecutor | None = None
_helper_pool: ThreadPoolExecutor | None = None


def _helper() -> ThreadPoolExecutor:
    """A second thread for a seal or compaction: it moves half of the columns into
    segment order and writes the column file while the sealing thread encodes the
    Parquet. A seal waits for its own tasks, so a seal of another store only queues."""
    global _helper_pool
    if _helper_pool is None:
        _helper_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="allsource-seal-helper")
    return _helper_pool


def _background() -> ThreadPoolExecutor:
    """One thread for work a checkpoint leaves behind, done in the order it was left."""
    global _housekeeping_pool
    if _housekeeping_pool is None:
        _housekeeping_pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="allsource-housekeeping"
        )
    return _housekeeping_pool


def _fsync_together(*calls: Callable[[], None]) -> None:
    """Run independent fsyncs at once: the first on this thread, the rest on a pool.

    Every call has finished (or raised) when this returns; the first error is raised.
    """
    global _fsync_pool
    if _fsync_pool is None:
        _fsync_pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="allsource-fsync")
    others = [_fsync_pool.submit(call) for call in calls[1:]]
    error: BaseException | None = None
    try:
        calls[0]()
    except BaseException as exc:
        error = exc
    for other in others:
        try:
            other.result()
        except BaseException as exc:
            error = error or exc
    if error is not None:
        raise error
