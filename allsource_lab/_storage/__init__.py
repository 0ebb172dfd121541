"""The storage layer: a store's bytes and files, and the seam the store writes them through.

The store hands storage what to keep; storage keeps it and gives it back. It knows bytes
and files — the WAL and its record layout (``wal``, ``records``), Parquet segments
(``segments``) with the column files the store maps (``columns``) and the index files an
open reads (``index_file``) beside them, the manifest and atomic file replacement
(``manifest``), the write lock (``lock``), files of checksummed records for snapshots,
the schema registry and named states (``record_log``), the unsealed tail's buffer of
records (``tail``), Arrow string buffers for the kernels (``arrowbuf``) — and the seam
over them: :class:`Storage` (``base``), with :class:`FolderStorage` (``folder``) and its
in-memory twin :class:`MemoryStorage` (``memory``).

Imports run one way: modules here import only each other, the kernels, and
``errors``/``events``/``settings``. Nothing here assigns versions, checks schemas,
answers queries or knows the store; those decide, above storage, what the bytes mean.
"""

from allsource_lab._storage.base import Loaded, Storage
from allsource_lab._storage.folder import FolderStorage
from allsource_lab._storage.memory import MemoryStorage
from allsource_lab._storage.record_log import state_file_name

__all__ = ["FolderStorage", "Loaded", "MemoryStorage", "Storage", "state_file_name"]
