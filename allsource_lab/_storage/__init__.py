"""Storage: bytes and files — the WAL, Parquet segments, the manifest, the lock, record logs.

Nothing here knows about versions, schemas or the store; the store's parts
(``allsource_lab._store``) decide what to write and hand storage the bytes.
"""

from allsource_lab._storage.backends import (
    FolderStorage,
    Loaded,
    MemoryStorage,
    Storage,
    state_file_name,
)

__all__ = ["FolderStorage", "Loaded", "MemoryStorage", "Storage", "state_file_name"]
