"""``manifest.json``: which segments are live, and up to which sequence the WAL is sealed.

Replaced atomically: written to a temp file, fsynced, renamed over the old one, and the
folder fsynced, so a crash leaves either the old or the new manifest, never a mix. It
carries its own SHA-256 so that bit rot in it is detected rather than obeyed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from allsource_lab._storage.direct import write_new
from allsource_lab.errors import CorruptionError

__all__ = ["FORMAT", "Manifest", "SegmentInfo", "fsync_folder"]

FORMAT = 1


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """One sealed Parquet segment: its file, rows, sequence range and checksum, and the
    size and CRC32C of its column file (``columns.py``)."""

    file: str
    rows: int
    first_sequence: int
    last_sequence: int
    bytes: int
    sha256: str
    # CRC32C of each BLOCK_BYTES block, so that damage is placed to within a block (empty
    # in manifests written before they were kept).
    blocks: tuple[int, ...] = ()
    # The column file ``seg-A-B.arrow`` beside it: its size, checked at every open, and its
    # CRC32C, checked by verify(). None in manifests written before column files (an open
    # for writing writes the file and records both).
    columns_bytes: int | None = None
    columns_crc32c: int | None = None


@dataclass(slots=True)
class Manifest:
    """The durable description of a store's sealed state."""

    store_id: str
    partitions: int
    sealed_through: int = 0  # every event with sequence <= this is in a segment
    segments: list[SegmentInfo] = field(default_factory=list)
    format: int = FORMAT

    def to_bytes(self) -> bytes:
        # By hand rather than dataclasses.asdict, whose deep copy cost ~1 ms a checkpoint.
        body = {
            "store_id": self.store_id,
            "partitions": self.partitions,
            "sealed_through": self.sealed_through,
            "segments": [
                {
                    "file": s.file,
                    "rows": s.rows,
                    "first_sequence": s.first_sequence,
                    "last_sequence": s.last_sequence,
                    "bytes": s.bytes,
                    "sha256": s.sha256,
                    **({"blocks": list(s.blocks)} if s.blocks else {}),
                    **(
                        {"columns_bytes": s.columns_bytes, "columns_crc32c": s.columns_crc32c}
                        if s.columns_bytes is not None
                        else {}
                    ),
                }
                for s in self.segments
            ],
            "format": self.format,
        }
        digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return orjson.dumps({**body, "sha256": digest}, option=orjson.OPT_INDENT_2)

    @classmethod
    def from_bytes(cls, data: bytes, path: str) -> Manifest:
        """Parse and check a manifest. Raises CorruptionError if it is damaged."""
        try:
            raw: dict[str, Any] = orjson.loads(data)
            digest = raw.pop("sha256")
            if hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)).hexdigest() != digest:
                raise CorruptionError(
                    "manifest checksum mismatch: the file was changed or damaged after it "
                    "was written; restore manifest.json from a backup",
                    path=path,
                )
            if raw.get("format") != FORMAT:
                raise CorruptionError(f"unknown manifest format {raw.get('format')!r}", path=path)
            segments = [
                SegmentInfo(**{**s, "blocks": tuple(s.get("blocks", ()))})
                for s in raw.pop("segments")
            ]
            return cls(segments=segments, **raw)
        except CorruptionError:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptionError(f"manifest is not readable ({exc})", path=path) from exc

    def write(self, folder: Path) -> None:
        """Replace ``folder/manifest.json`` atomically and durably."""
        replace_file(folder / "manifest.json", self.to_bytes())


def replace_file(final: Path, data: Any, temp: Path | None = None) -> None:
    """Put ``data`` (bytes-like) under ``final`` atomically and durably.

    Written whole to a temp name, fsynced, renamed over ``final``, and the folder fsynced:
    a crash leaves the old file or the new one, never a half file under ``final``.
    """
    temp = final.with_name(final.name + ".tmp") if temp is None else temp
    fd = write_whole(temp, data)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    # rename is atomic; the folder fsync makes the new name itself durable.
    os.replace(temp, final)
    fsync_folder(final.parent)


def write_whole(path: Path, data: Any) -> int:
    """Create (or truncate) ``path``, write all of ``data``; returns the open fd (not
    fsynced: the caller fsyncs and closes it). Large data goes past the page cache
    (``direct.py``)."""
    return write_new(path, data)


def make_folder(folder: Path) -> None:
    """Create ``folder`` and any missing parents durably: the folder holding each new name
    is fsynced, so a power cut cannot take a folder back after this returns."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        new.mkdir(exist_ok=True)
        fsync_folder(new.parent)


def fsync_folder(folder: Path) -> None:
    """fsync a directory so that names created, renamed or removed in it are durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
