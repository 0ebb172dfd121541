"""API keys of a served store: created, listed and revoked by ``allsource keys``, checked
by the server on every request.

A store's keys live in one JSON file beside its folder, ``<store>.keys.json`` (for
``shop.events``, ``shop.events.keys.json``), so a key belongs to exactly one store: the
tenant that the server serves from that folder. The file holds, per key, its id, the
SHA-256 of the whole key text, its role and rate limit, when it was made and whether it is
revoked; never the key itself, which is shown once when it is created.

A key is ``asl_<id>_<secret>``: the id (8 random bytes, hex) finds the record without
trying every hash, and the secret is 32 random bytes (base64url). A plain SHA-256 is
enough for a secret of 256 random bits (a slow password hash defends guessable secrets,
which these are not), and costs ~1 µs a request instead of the ~50 ms of a KDF.

The server notices a changed file on the next request (one ``os.stat`` per request,
~1 µs), so ``allsource keys revoke`` refuses a key at once, without a restart.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import os
import secrets
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from allsource_lab.errors import InvalidArgument, NotFound, StorageError

__all__ = ["ROLES", "ApiKey", "KeyRing", "keys_file"]

# Each role may do what the roles before it may: read (queries, state, stats, the stream,
# validation), write (+ ingest and snapshots), admin (+ schemas, pipelines, replays,
# checkpoints, compaction, metrics).
ROLES = ("read", "write", "admin")
_FORMAT_VERSION = 1


def keys_file(store_path: str | os.PathLike[str]) -> Path:
    """The keys file of the store folder ``store_path``: ``<store>.keys.json`` beside it.

    >>> keys_file("/data/shop.events").as_posix()
    '/data/shop.events.keys.json'
    """
    path = Path(store_path).absolute()
    return path.parent / (path.name + ".keys.json")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One key's record (never the key text itself)."""

    id: str
    hash: str
    role: str
    name: str
    created: str
    revoked: str | None = None
    # Requests a second this key may make on average, and how many at once; None: the
    # server's defaults (``allsource serve --rate-limit/--burst``).
    rate_per_s: float | None = None
    burst: int | None = None

    def public(self) -> dict[str, Any]:
        """The record as ``keys list`` shows it: without the hash."""
        out = asdict(self)
        del out["hash"]
        return out


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyRing:
    """The keys of one store, read from its keys file and re-read when the file changes.

    >>> import tempfile, os
    >>> ring = KeyRing(os.path.join(tempfile.mkdtemp(), "s.events.keys.json"))
    >>> key, record = ring.create("read", name="notebook")
    >>> ring.find(key).role, ring.find(key + "x") is None
    ('read', True)
    >>> _ = ring.revoke(record.id); ring.find(key) is None
    True
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._keys: dict[str, ApiKey] = {}

    # -- reading -------------------------------------------------------------------------

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _load(self) -> dict[str, ApiKey]:
        """The keys as the file holds them now (re-read only when it changed)."""
        stamp = self._stat()
        if stamp == self._stamp and stamp is not None:
            return self._keys
        with self._lock:
            return self._read(stamp)

    def _read(self, stamp: tuple[int, int, int] | None) -> dict[str, ApiKey]:
        """Read the file (whose stat was ``stamp``); the caller holds the lock."""
        keys: dict[str, ApiKey] = {}
        if stamp is not None:
            try:
                data = orjson.loads(self.path.read_bytes())
                keys = {r["id"]: ApiKey(**r) for r in data["keys"]}
            except FileNotFoundError:
                pass
            except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
                raise StorageError(
                    f"the keys file {self.path} cannot be read ({exc}); fix or remove it and "
                    "create keys again with 'allsource keys'"
                ) from None
        self._keys, self._stamp = keys, stamp
        return keys

    def records(self) -> list[ApiKey]:
        """Every key's record, revoked ones too, oldest first."""
        return sorted(self._load().values(), key=lambda k: k.created)

    def find(self, key: str) -> ApiKey | None:
        """The live (not revoked) record of ``key``, or None when it is unknown or revoked."""
        parts = key.split("_")
        if len(parts) != 3 or parts[0] != "asl":
            return None
        record = self._load().get(parts[1])
        if record is None or record.revoked is not None:
            return None
        if not hmac.compare_digest(record.hash, _digest(key)):
            return None
        return record

    # -- changing ------------------------------------------------------------------------

    def _write(self, keys: dict[str, ApiKey]) -> None:
        """Replace the file atomically (temp file, fsync, rename), readable by its owner only."""
        body = orjson.dumps(
            {"version": _FORMAT_VERSION, "keys": [asdict(k) for k in keys.values()]},
            option=orjson.OPT_INDENT_2,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".keys-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp, 0o600)
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        self._stamp = None  # re-read on the next use

    def create(
        self,
        role: str,
        *,
        name: str = "",
        rate_per_s: float | None = None,
        burst: int | None = None,
    ) -> tuple[str, ApiKey]:
        """Make a new key; returns the key text (shown only now) and its record.

        Raises:
            InvalidArgument: an unknown role, or a rate or burst that is not positive.
        """
        if role not in ROLES:
            raise InvalidArgument(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        if rate_per_s is not None and not rate_per_s > 0:
            raise InvalidArgument(f"rate_per_s must be > 0, not {rate_per_s!r}")
        if burst is not None and burst < 1:
            raise InvalidArgument(f"burst must be >= 1, not {burst!r}")
        key_id = secrets.token_hex(8)
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        secret = secret.replace("_", "-")  # "_" separates the parts
        key = f"asl_{key_id}_{secret}"
        record = ApiKey(
            id=key_id,
            hash=_digest(key),
            role=role,
            name=name,
            created=dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
            rate_per_s=rate_per_s,
            burst=burst,
        )
        with self._lock:
            keys = dict(self._read(self._stat()))
            keys[key_id] = record
            self._write(keys)
        return key, record

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key by its id (as ``keys list`` shows it); the server refuses it at once.

        Raises:
            NotFound: no key with that id.
        """
        with self._lock:
            keys = dict(self._read(self._stat()))
            record = keys.get(key_id)
            if record is None:
                raise NotFound(f"no key with id {key_id!r} in {self.path}; see 'keys list'")
            if record.revoked is None:
                now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
                record = keys[key_id] = ApiKey(**{**asdict(record), "revoked": now})
                self._write(keys)
        return record
