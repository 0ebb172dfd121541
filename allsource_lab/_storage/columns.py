"""Column files: each segment's rows again, as an uncompressed Arrow IPC file to map.

A Parquet segment must be decoded into the heap before it can be read, so a store that
held its sealed history that way kept every event in anonymous memory (280-590 bytes an
event, measured at open). Beside each ``seg-A-B.parquet`` the store writes
``seg-A-B.arrow``: the same rows in the same order, as an Arrow IPC *file* (one record
batch, ``EVENT_SCHEMA``, no compression), and maps it (zero copy, :func:`map_file`). Its
pages then belong to the file: the operating system reads them in on first touch and may
drop them under pressure, and the store's anonymous memory is its index.

The Parquet stays the source of truth (its format, ``segment_files()``, exports); a
column file is derived data. It is written and fsynced before the manifest that records
its size and CRC32C is committed, so a committed manifest never names a torn one. An
open maps it only after cheap checks (its size, the IPC footer, schema, row count and
buffer bounds): checksumming it whole would read every byte (25 GB at 100M events), so
its CRC32C is checked by ``verify()`` instead. A column file that fails those checks, or
that an older store never had, is written again from the Parquet by a writable open.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import crc32c
import pyarrow as pa

from allsource_lab._storage import direct
from allsource_lab._storage.manifest import SegmentInfo, fsync_folder
from allsource_lab.errors import CorruptionError
from allsource_lab.events import EVENT_SCHEMA

__all__ = [
    "check_columns",
    "column_file_name",
    "map_file",
    "open_columns",
    "require_segment",
    "rewrite_columns",
    "will_need",
    "write_columns",
]

COLUMNS_SUFFIX = ".arrow"
_MAGIC = b"ARROW1"

# verify() reads a column file in pieces of this size: a whole file at once could be
# gigabytes of heap.
_CHECK_CHUNK = 16 * 1024 * 1024


def column_file_name(segment_file: str) -> str:
    """The column file beside segment ``segment_file``.

    >>> column_file_name("seg-00000000000000000001-00000000000000000040.parquet")
    'seg-00000000000000000001-00000000000000000040.arrow'
    """
    return segment_file.removesuffix(".parquet") + COLUMNS_SUFFIX


class _ChecksummedSink:
    """A file-like sink for ``pa.PythonFile``: ``os.write``s to ``fd`` and keeps the
    CRC32C and length of what went through, so the file is checksummed as it is written
    (no second pass over it). pyarrow hands the record batch's body buffers over as
    ``pa.Buffer`` objects, not copies: measured on 1M events, writing the 200 MB file this
    way took 0.05 s, against 0.03-0.37 s to serialize it into a heap buffer first (which
    would also hold a second copy of the segment while the checkpoint runs)."""

    closed = False

    def __init__(self, fd: int, stage: direct.Stage | None = None) -> None:
        self.fd = fd
        self.crc = 0
        self.size = 0
        self.stage = stage  # a staging buffer: ``fd`` takes only direct writes
        if stage is not None:
            stage.begin(fd, 0)

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.crc = crc32c.crc32c(view, value=self.crc)
        self.size += len(view)
        if self.stage is not None:
            self.stage.add(view)
            return self.size
        while view:
            view = view[os.write(self.fd, view) :]
        return self.size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def write_columns(path: Path, table: pa.Table) -> tuple[int, int, int]:
    """Write ``table`` (events, one chunk per column) as a column file at ``path``.

    The file is created or truncated and written whole, not fsynced. Returns the open
    file descriptor (the caller fsyncs and closes it), the file's size and its CRC32C.

    Raises:
        OSError: the file could not be created or written (the fd is closed then).

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> fd, size, crc = write_columns(folder / "x.arrow", EVENT_SCHEMA.empty_table())
    >>> os.close(fd)
    >>> size == (folder / "x.arrow").stat().st_size
    True
    """
    batch = _one_batch(table)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    # A large file goes past the page cache (``direct.py``); a small one, or one on a
    # file system without direct I/O, through it.
    fd = direct.open_direct(path, flags) if batch.nbytes >= direct.DIRECT_BYTES else None
    with contextlib.ExitStack() as held:
        buffer = held.enter_context(direct.stage()) if fd is not None else None
        if fd is None:
            fd = os.open(path, flags, 0o644)
        try:
            sink = _ChecksummedSink(fd, buffer)
            with pa.ipc.new_file(pa.PythonFile(sink, mode="w"), EVENT_SCHEMA) as writer:
                # One record batch (an empty one for no rows): the store holds each
                # segment as one batch, and reads it back as the file's only one.
                writer.write_batch(batch)
            if buffer is not None:
                os.ftruncate(fd, buffer.end())
        except BaseException:
            os.close(fd)
            raise
    return fd, sink.size, sink.crc


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    """``table`` as one record batch (a copy only where a column has several chunks)."""
    batches = table.combine_chunks().to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=EVENT_SCHEMA)


def rewrite_columns(folder: Path, info: SegmentInfo, table: pa.Table) -> SegmentInfo:
    """Write the column file of segment ``info`` again from its rows ``table``, durably.

    Used by a writable open for a column file that is missing, damaged, or from before
    column files. It goes through ``<file>.tmp``, fsync, rename and a folder fsync, so the
    column file's name always holds a whole file (an old damaged one until the rename);
    a crash leaves the temp file, which the next open removes as an orphan. Returns
    ``info`` with the new file's size and CRC32C, for the manifest.

    Raises:
        OSError: the file could not be written (nothing under the final name changed).
    """
    final = folder / column_file_name(info.file)
    temp = final.with_name(final.name + ".tmp")
    try:
        fd, size, crc = write_columns(temp, table)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    fsync_folder(folder)
    return replace(info, columns_bytes=size, columns_crc32c=crc)


def require_segment(folder: Path, info: SegmentInfo) -> None:
    """Check that the Parquet segment ``info`` is there at its recorded size.

    Opening maps the column file instead of reading the Parquet, but the Parquet is the
    source of truth: a missing or resized one refuses the open, as reading it would have.
    Its SHA-256 is not checked here (that reads the whole file); ``verify()`` checks it.

    Raises:
        CorruptionError: the segment is missing, or its size is not the manifest's.
    """
    path = folder / info.file
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CorruptionError(
            "segment listed in the manifest is missing; restore it from a backup "
            "(the events in it cannot be recovered from the WAL, which was trimmed)",
            path=str(path),
        ) from None
    if size != info.bytes:
        raise CorruptionError(
            f"segment size is {size} bytes, the manifest says {info.bytes}; run "
            "store.verify() for a full report and restore the file from a backup",
            path=str(path),
        )


def open_columns(folder: Path, info: SegmentInfo) -> pa.Table:
    """Map the column file of segment ``info`` as a one-batch table (zero copy).

    Checked without reading the data: the size against the manifest, the IPC footer and
    schema, one record batch of the manifest's row count, and its buffers within the
    file and long enough for its rows (``RecordBatch.validate``, which also checks the
    first and last offset of each text column). A flipped bit inside the data passes these
    checks; ``verify()`` finds it by the CRC32C. The mapping stays alive while any of its
    buffers does; the file itself is closed before this returns (no descriptor is held).

    Raises:
        CorruptionError: the file is missing, of another size, or not the column file
            the manifest describes.
    """
    path = folder / column_file_name(info.file)
    if info.columns_bytes is None:
        raise CorruptionError("the manifest records no column file", path=str(path))
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CorruptionError("column file is missing", path=str(path)) from None
    if size != info.columns_bytes:
        raise CorruptionError(
            f"column file is {size} bytes, the manifest says {info.columns_bytes}",
            path=str(path),
        )
    try:
        mapped = map_file(path)
        # What the checks read, asked for at once: a file written past the page cache is
        # read back one page fault, one disk read, at a time otherwise (~35 ms a segment
        # against ~10, measured cold; an open of 100M events maps 100 of them).
        footer = mapped.address + max(0, size - _FOOTER_BYTES)
        _will_need([(mapped.address, _FOOTER_BYTES), (footer, _FOOTER_BYTES)])
        # The reader checks the closing magic and the footer, not the opening magic.
        if mapped.size < len(_MAGIC) or mapped[: len(_MAGIC)].to_pybytes() != _MAGIC:
            raise CorruptionError("column file does not start with ARROW1", path=str(path))
        reader = pa.ipc.open_file(pa.BufferReader(mapped))
        batch = reader.get_batch(0) if reader.num_record_batches == 1 else None
        if batch is not None:
            _will_need([(end, _PAGE) for end in _buffer_ends(batch)])
            batch.validate()
    except CorruptionError:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise CorruptionError(
            f"column file is not readable Arrow IPC ({exc})", path=str(path)
        ) from exc
    if batch is None or not batch.schema.equals(EVENT_SCHEMA):
        raise CorruptionError(
            "column file does not hold one record batch of the event columns", path=str(path)
        )
    if batch.num_rows != info.rows:
        raise CorruptionError(
            f"column file holds {batch.num_rows} rows, the manifest says {info.rows}",
            path=str(path),
        )
    return pa.Table.from_batches([batch])


class _Mapping:
    """Owns a read-only mapping made by :func:`map_file`; unmaps it when the last Arrow
    buffer over it goes."""

    __slots__ = ("address", "size")

    def __init__(self, address: int, size: int) -> None:
        self.address, self.size = address, size

    def __del__(self) -> None:
        _libc.munmap(ctypes.c_void_p(self.address), ctypes.c_size_t(self.size))


def _load_libc() -> Any:
    if not hasattr(os, "fork"):  # not POSIX: no mmap(2) to call
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return libc


_libc = _load_libc()
_MAP_FAILED = ctypes.c_void_p(-1).value


def map_file(path: Path) -> pa.Buffer:
    """The whole file mapped read-only as an Arrow buffer (zero copy), its pages read in
    on first touch.

    Not ``pa.memory_map``: reading a record batch through it advises the kernel to read
    the whole body ahead (``MADV_WILLNEED``), so a seal read back from the disk the ~200 MB
    column file of 1M events it had just written past the page cache, and an open asked
    for every column file of the store at once (~20 GB at 100M events). Nor Python's
    ``mmap``, which keeps a file descriptor open per mapping (one per segment). The
    mapping holds no descriptor and goes with the last buffer over it.
    """
    if _libc is None:
        with pa.memory_map(str(path)) as source:
            return source.read_buffer()
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return pa.py_buffer(b"")
        address = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if address is None or address == _MAP_FAILED:
            err = ctypes.get_errno()
            raise OSError(err, f"cannot map the file: {os.strerror(err)}", str(path))
    finally:
        os.close(fd)
    return pa.foreign_buffer(address, size, base=_Mapping(address, size))


_PAGE = mmap.PAGESIZE
_FOOTER_BYTES = 64 * 1024  # the IPC footer and schema at the end, and the first message


def _buffer_ends(batch: pa.RecordBatch) -> list[int]:
    """The addresses of the first and last byte of every buffer of ``batch``: what
    ``RecordBatch.validate`` reads (each text column's first and last offset)."""
    ends = []
    for column in batch.columns:
        array = column.storage if isinstance(column, pa.ExtensionArray) else column
        for buffer in array.buffers():
            if buffer is not None and buffer.size:
                ends += [buffer.address, buffer.address + buffer.size - 1]
    return ends


def _will_need(ranges: list[tuple[int, int]]) -> None:
    """Ask the kernel to start reading each (address, length) range of a mapping now, all
    at once (``MADV_WILLNEED``); a hint, so errors are ignored."""
    if _libc is None or not hasattr(mmap, "MADV_WILLNEED"):
        return
    for address, length in ranges:
        start = address // _PAGE * _PAGE
        _libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(length), mmap.MADV_WILLNEED)


def will_need(column: pa.Array | pa.ChunkedArray) -> None:
    """Ask the kernel to start reading a mapped column's data now, in one request (a hint):
    a read that then touches most of its pages waits for large reads under way instead
    of one small read per page fault."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    for chunk in chunks:
        buffer = chunk.buffers()[-1]
        if buffer is not None and buffer.size:
            _will_need([(buffer.address, buffer.size)])


def check_columns(folder: Path, info: SegmentInfo) -> str | None:
    """Why the column file of segment ``info`` is not the one the manifest records, or
    None if it is (or the manifest records none). Reads the whole file for its CRC32C
    (~0.1 s per GB from the page cache), in pieces, never all at once.

    Raises:
        OSError: the file could not be read, other than being missing.
    """
    if info.columns_bytes is None:
        return None
    path = folder / column_file_name(info.file)
    remedy = (
        f"it is derived from {info.file}: delete it and open the store for writing to "
        "write it again"
    )
    try:
        f = open(path, "rb", buffering=0)  # noqa: SIM115 (closed below, after the loop)
    except FileNotFoundError:
        return f"column file is missing; {remedy}"
    crc = 0
    size = 0
    chunk = bytearray(_CHECK_CHUNK)
    with f:
        while read := f.readinto(chunk):
            crc = crc32c.crc32c(memoryview(chunk)[:read], value=crc)
            size += read
    if size != info.columns_bytes:
        return f"column file is {size} bytes, the manifest says {info.columns_bytes}; {remedy}"
    if crc != info.columns_crc32c:
        return f"column file CRC32C does not match the manifest; {remedy}"
    return None
