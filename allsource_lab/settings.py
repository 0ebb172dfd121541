"""Every tunable of a store in one place, with its unit in its name or comment."""

from __future__ import annotations

import dataclasses
from typing import Literal

from allsource_lab.errors import InvalidArgument

FsyncPolicy = Literal["always", "interval", "never"]
RecoveryMode = Literal["truncate_tail", "strict", "salvage"]


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Tunables of one open store. Pass overrides as keyword arguments to ``asl.open``.

    Raises:
        InvalidArgument: an unknown ``fsync`` or ``recovery`` mode, or a number out of
            its range (the message says which and what is accepted).

    >>> Settings().fsync
    'interval'
    >>> Settings(fsync_interval_s=0.05).fsync_interval_s
    0.05
    """

    # When an acknowledged append is fsynced: before append returns ("always"), within
    # fsync_interval_s ("interval"), or when the OS decides ("never").
    fsync: FsyncPolicy = "interval"
    fsync_interval_s: float = 0.1
    # What to do with a damaged WAL on open (docs/format.md, "Damage and recovery").
    recovery: RecoveryMode = "truncate_tail"
    # A WAL file is closed and a new one begun past this size.
    wal_segment_bytes: int = 64 * 1024 * 1024
    # Pending WAL bytes that are written out at once instead of at the next interval: by
    # the flusher thread, beside the appending one, or by the append itself when there is
    # no flusher or it is four buffers behind. Bounds what a killed process can lose
    # between fsyncs, whatever the interval.
    wal_buffer_bytes: int = 1024 * 1024
    # The unsealed tail is sealed into a Parquet segment past this many events. Measured on
    # the 2-core dev machine with ~110-byte payloads: sealing 100K events takes ~140 ms and
    # replaying 100K from the WAL after a crash ~130 ms (10K: 28/41 ms, 1M: 1.5/1.4 s), so
    # 100K keeps both pauses well under a notebook user's notice while keeping segments
    # few enough (10 per 1M events) for scans.
    checkpoint_every_events: int = 100_000
    # A read-only store with followers (subscriptions, live projections, widgets) checks
    # for its writer's news this often (reads check on their own: see store.refresh).
    follow_interval_s: float = 0.02
    # Parquet: rows per row group and zstd level of sealed segments.
    segment_row_group_rows: int = 128 * 1024
    segment_zstd_level: int = 1
    # Number of partitions; fixed when the store is created (kept in manifest.json).
    partitions: int = 32
    # An entity's state is snapshotted each time a fold passes a multiple of this many
    # versions (0: only explicit store.snapshot calls), so that a state as of any moment
    # folds at most this many payloads after the snapshot it starts from.
    snapshot_every_versions: int = 32
    # Entities whose current state is kept decoded, so state(entity_id) is a dict copy;
    # past this many, the least recently folded is dropped (a small state costs ~0.5 KB).
    state_cache_entities: int = 20_000
    # Input limits (bytes of UTF-8).
    max_payload_bytes: int = 1024 * 1024
    max_metadata_bytes: int = 64 * 1024
    max_json_depth: int = 64
    max_entity_id_bytes: int = 255
    max_event_type_chars: int = 255

    def __post_init__(self) -> None:
        if self.fsync not in ("always", "interval", "never"):
            raise InvalidArgument(
                f"fsync must be 'always', 'interval' or 'never', not {self.fsync!r}"
            )
        if self.recovery not in ("truncate_tail", "strict", "salvage"):
            raise InvalidArgument(
                f"recovery must be 'truncate_tail', 'strict' or 'salvage', not {self.recovery!r}"
            )
        if self.fsync_interval_s <= 0:
            raise InvalidArgument("fsync_interval_s must be > 0 seconds")
        if self.follow_interval_s <= 0:
            raise InvalidArgument("follow_interval_s must be > 0 seconds")
        if self.checkpoint_every_events < 1:
            raise InvalidArgument("checkpoint_every_events must be >= 1")
        if self.snapshot_every_versions < 0 or self.state_cache_entities < 0:
            raise InvalidArgument("snapshot_every_versions and state_cache_entities must be >= 0")
        if not 1 <= self.partitions <= 32767:
            raise InvalidArgument("partitions must be between 1 and 32767")
