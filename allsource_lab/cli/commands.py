"""What each ``allsource`` command does, given its parsed arguments."""

from __future__ import annotations

import argparse
import datetime as dt
import operator
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from allsource_lab.cli.output import ProgressBar, json_text, print_json, write_rows
from allsource_lab.errors import CommandError

if TYPE_CHECKING:
    from allsource_lab.store import EventStore

__all__ = [
    "COMMANDS",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CommandError",
    "run_bench",
]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


# -- opening stores ------------------------------------------------------------------------


def _is_store(path: Path) -> bool:
    return (path / "manifest.json").is_file()


def _existing(path_text: str) -> Path:
    path = Path(path_text)
    if not path.exists():
        raise CommandError(f"no store at {path} (the folder does not exist)")
    if not _is_store(path):
        raise CommandError(f"{path} is not an AllSource store (it has no manifest.json)")
    return path


def _read(path_text: str) -> EventStore:
    from allsource_lab.store import open as open_store

    return open_store(_existing(path_text), read_only=True)


def _write(path_text: str, *, create: bool) -> EventStore:
    """Open for writing; with ``create``, a missing or empty folder becomes a new store."""
    from allsource_lab.store import open as open_store

    path = Path(path_text)
    if not create or (path.exists() and not _is_empty_dir(path)):
        path = _existing(path_text)
    return open_store(path)


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


# -- commands ------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from allsource_lab.datasets import flights_events, load_table, shop_events

    path = Path(args.path)
    if path.exists() and not _is_empty_dir(path):
        raise CommandError(f"{path} already exists; give a new folder for the demo store")
    bar = None if args.quiet else ProgressBar(sys.stderr)
    started = time.perf_counter()
    if bar is not None:
        bar.note("generating events...")
    if args.dataset == "shop":
        table = shop_events(n_users=args.users, days=args.days, seed=args.seed)
    else:
        table = flights_events(limit=args.limit)
    with _write(args.path, create=True) as store:
        load_table(store, table, progress=bar)
        store.checkpoint()
        stats = store.stats()
        hints = _demo_hints(store, args.dataset)
    seconds = time.perf_counter() - started
    print(
        f"Built {path}: {stats['events']:,} events, {stats['entities']:,} entities, "
        f"{stats['event_types']} event types in {seconds:.1f} s."
    )
    print("\nTry next:")
    where = shlex.quote(str(path))
    for line in hints:
        print("  " + line.replace("{path}", where))
    print(f'\nIn Python or a notebook: import allsource_lab as asl; store = asl.open("{path}")')
    return EXIT_OK


def _demo_hints(store: EventStore, dataset: str) -> list[str]:
    """Commands worth running on the new store, naming entities that exist in it."""
    if dataset == "flights":
        rows = store.sql(
            "select entity_id, count(*) n, min(timestamp) first from events "
            "group by 1 order by n desc limit 1"
        ).fetchall()
        plane, first = (rows[0][0], rows[0][2]) if rows else ("N14228", None)
        moment = first + dt.timedelta(days=30) if first else dt.datetime(2013, 3, 1, tzinfo=dt.UTC)
        at = moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return [
            "allsource stats {path}",
            f"allsource events {{path}} --entity {plane} --limit 6",
            f"allsource state {{path}} {plane} --as-of {at}      # where was it then?",
            "allsource sql {path} \"select payload->>'origin' origin, count(*) flights, "
            "avg((payload->>'dep_delay_min')::int) delay from events "
            "where event_type = 'flight.departed' group by 1\"",
        ]
    corrected = store.sql(
        "select entity_id from events where event_type = 'order.corrected' order by sequence "
        "limit 1"
    ).fetchall()
    order = corrected[0][0] if corrected else "order-0000001"
    return [
        "allsource stats {path}",
        "allsource events {path} --type order.placed --limit 5",
        f"allsource events {{path}} --entity {order}   # placed ... corrected",
        f"allsource state {{path}} {order}",
        'allsource sql {path} "select event_type, count(*) n from events group by 1 '
        'order by n desc"',
        "allsource verify {path}",
    ]


def _ingest(args: argparse.Namespace) -> int:
    from allsource_lab._ingest import id_columns, row_ids
    from allsource_lab.datasets import load_table
    from allsource_lab.datasets.files import FILE_FORMATS, file_events

    source = Path(args.source)
    if not source.is_file():
        raise CommandError(f"cannot read {source}: no such file")
    cols = None
    if args.payload_cols is not None:
        cols = [c.strip() for c in args.payload_cols.split(",") if c.strip()]
    mapping: dict[str, Any] = {
        "type_col": args.type_col,
        "event_type": args.event_type,
        "entity_col": args.entity_col,
        "time_col": args.time_col,
        "payload_cols": cols,
        "timezone": args.timezone,
    }
    if args.id_col is None:
        table = file_events(source, format=args.format, **mapping)
    else:
        fmt = args.format or FILE_FORMATS.get(source.suffix.lower())
        table = id_columns.read_with_ids(str(source), fmt, args.id_col, mapping, file_events)
    if table.num_rows == 0:
        raise CommandError(f"{source} has no rows; nothing to ingest")
    bar = None if args.quiet else ProgressBar(sys.stderr)
    with _write(args.path, create=True) as store:
        # Ids derived from each row's content (unless --id-col or an event_id column gives
        # them), settled and every row checked before the first batch: running the command
        # again stores nothing twice, and a bad row leaves the store as it was.
        table = row_ids.with_table_ids(table, store.settings)
        first = store.stats()["last_sequence"] + 1
        count = load_table(store, table, batch_size=args.batch_size, progress=bar)
        last = store.stats()["last_sequence"]
    appended = last - first + 1
    skipped = count - appended
    note = f" ({skipped:,} already there: same event_id)" if skipped else ""
    span = f" (sequences {first:,}-{last:,})" if appended else ""
    print(f"appended {appended:,} events{span} to {args.path}{note}")
    return EXIT_OK


def _sql(args: argparse.Namespace) -> int:
    with _read(args.path) as store:
        relation = store.sql(args.query)
        if relation is None:  # a statement without a result (e.g. SET)
            return EXIT_OK
        table = relation.to_arrow_table()
    rows = [[row[name] for name in table.column_names] for row in table.to_pylist()]
    limit = args.max_rows if args.format == "table" else 0
    write_rows(sys.stdout, args.format, table.column_names, rows, limit=limit, noun="rows")
    return EXIT_OK


def _events(args: argparse.Namespace) -> int:
    with _read(args.path) as store:
        filters: dict[str, Any] = {
            "entity_id": args.entity,
            "event_type": args.event_type,
            "since": args.since,
            "until": args.until,
            "as_of": args.as_of,
            "known_at": args.known_at,
            "after": args.after,
        }
        frame = store.events(**filters, limit=args.limit or None, reverse=args.reverse)
        picked = list(frame)
        total = len(store.events(**filters)) if args.format == "table" else len(picked)
    if args.format == "table":
        columns = ["sequence", "timestamp", "event_type", "entity_id", "version", "payload"]
        rows: list[list[Any]] = [
            [
                e.sequence,
                e.timestamp,
                e.event_type,
                e.entity_id,
                e.version,
                json_text(e.payload_json),
            ]
            for e in picked
        ]
        write_rows(sys.stdout, "table", columns, rows, limit=0, noun="events")
        if total > len(picked):
            print(f"({len(picked):,} of {total:,} events; --limit 0 shows all)")
        return EXIT_OK
    columns = [
        "sequence",
        "event_id",
        "event_type",
        "entity_id",
        "version",
        "timestamp",
        "recorded_at",
        "payload",
        "metadata",
    ]
    structured = args.format in ("json", "jsonl")
    rows = [
        [
            e.sequence,
            e.event_id,
            e.event_type,
            e.entity_id,
            e.version,
            e.timestamp,
            e.recorded_at,
            e.payload if structured else json_text(e.payload_json),
            e.metadata if structured else json_text(e.metadata_json),
        ]
        for e in picked
    ]
    write_rows(sys.stdout, args.format, columns, rows, limit=0, noun="events")
    return EXIT_OK


def _state(args: argparse.Namespace) -> int:
    import orjson

    with _read(args.path) as store:
        state = store.state(args.entity, as_of=args.as_of, known_at=args.known_at)
    print(orjson.dumps(state, option=orjson.OPT_INDENT_2, default=str).decode())
    return EXIT_OK


def _stats(args: argparse.Namespace) -> int:
    with _read(args.path) as store:
        stats = store.stats()
    if args.json:
        print_json(stats)
        return EXIT_OK
    width = max(len(k) for k in stats)
    for key, value in stats.items():
        if isinstance(value, list):
            value = "; ".join(map(str, value)) or "none"
        elif isinstance(value, int) and not isinstance(value, bool):
            value = f"{value:,}"
        print(f"{key:<{width}}  {value}")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from allsource_lab.errors import CorruptionError
    from allsource_lab.integrity import IntegrityReport

    try:
        store = _read(args.path)
    except CorruptionError as exc:  # damage that stops the store opening is a finding too
        report = IntegrityReport(ok=False, problems=[f"the store cannot be opened: {exc}"])
    else:
        with store:
            report = store.verify()
    if args.json:
        print_json(
            {"ok": report.ok, "problems": report.problems, "files_checked": report.files_checked}
        )
    elif report.ok:
        print(f"ok: {report.files_checked} files checked, no problems")
    else:
        print(f"NOT OK: {len(report.problems)} problem(s) in {report.files_checked} files:")
        for problem in report.problems:
            print(f"  - {problem}")
    return EXIT_OK if report.ok else EXIT_ERROR


def _checkpoint(args: argparse.Namespace) -> int:
    with _write(args.path, create=False) as store:
        sealed = store.checkpoint()
    if sealed is None:
        print("nothing to checkpoint: every event is already in a segment")
    else:
        print(
            f"sealed {sealed['events']:,} events through sequence "
            f"{sealed['through_sequence']:,} in {sealed['seconds'] * 1000:.0f} ms"
        )
    return EXIT_OK


def _compact(args: argparse.Namespace) -> int:
    from allsource_lab.store import EventStore

    path = _existing(args.path)
    if not callable(getattr(EventStore, "compact", None)):
        # Merging segments means rewriting them and the manifest, which only the store
        # can do safely (no public API writes segments): say so rather than fake it.
        raise CommandError(
            "compaction is not available yet in this version of allsource_lab "
            "(EventStore has no compact()); nothing was changed",
            code=EXIT_USAGE,
        )
    with _write(str(path), create=False) as store:
        result = operator.methodcaller("compact")(store)
    if result is None:
        print("nothing to compact")
    elif isinstance(result, dict):
        for key, value in result.items():
            print(f"{key}: {value}")
    else:
        print(result)
    return EXIT_OK


def _export_delta(args: argparse.Namespace) -> int:
    options = dict(args.storage_options) if args.storage_options else None
    bar = None if args.quiet else ProgressBar(sys.stderr)
    opened = _write(args.path, create=False) if args.checkpoint else _read(args.path)
    with opened as store:
        done = store.export_delta(args.uri, options, checkpoint=args.checkpoint, progress=bar)
    if done["exported"]:
        first = done["through_sequence"] - done["exported"] + 1
        print(
            f"exported {done['exported']:,} events (sequences {first:,}-"
            f"{done['through_sequence']:,}) to {done['uri']} in {done['seconds']:.1f} s; "
            f"table version {done['table_version']}"
        )
    else:
        print(
            f"nothing new to export: {done['uri']} holds every sealed event "
            f"(through sequence {done['through_sequence']:,}); --checkpoint seals the tail"
        )
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    stores: dict[str, str] = {}
    if args.path is not None:
        stores["default"] = args.path
    for name, path in args.stores or ():
        if name in stores:
            raise CommandError(f"two stores are named {name!r}; give each tenant its own name")
        stores[name] = path
    if not stores:
        raise CommandError("give the store to serve: PATH, or --store NAME=PATH", EXIT_USAGE)
    for path in stores.values():
        _existing(path)
    try:
        from allsource_lab.server import ServerConfig, serve
    except ImportError as exc:
        raise CommandError(
            f"serving needs the 'serve' extra ({exc}): pip install 'allsource-lab[serve]'"
        ) from None
    config = ServerConfig(
        max_body_bytes=args.max_body_bytes,
        rate_per_s=args.rate_limit,
        burst=args.burst,
        allow_origins=tuple(args.allow_origins or ()),
    )
    settings = {} if args.fsync is None else {"fsync": args.fsync}
    where = f"http://{args.host}:{args.port}"
    print(f"serving {', '.join(stores)} at {where} (Ctrl-C stops)", file=sys.stderr, flush=True)
    serve(
        stores,
        host=args.host,
        port=args.port,
        require_keys=args.require_keys,
        config=config,
        store_settings=settings,
        log_level=args.log_level,
    )
    return EXIT_OK


def _keys(args: argparse.Namespace) -> int:
    from allsource_lab.server.keys import KeyRing, keys_file

    ring = KeyRing(keys_file(_existing(args.path)))
    if args.action == "create":
        if args.key_id is not None:
            raise CommandError("keys create takes no KEY_ID (it makes a new one)", EXIT_USAGE)
        key, record = ring.create(
            args.role, name=args.name, rate_per_s=args.rate_limit, burst=args.burst
        )
        if args.json:
            print_json({"key": key, **record.public()})
        else:
            print(key)
            print(
                f"(id {record.id}, role {record.role}; shown only now: keep it somewhere safe)",
                file=sys.stderr,
            )
        return EXIT_OK
    if args.action == "revoke":
        if args.key_id is None:
            raise CommandError("keys revoke needs the KEY_ID to revoke (see keys list)", EXIT_USAGE)
        record = ring.revoke(args.key_id)
        print(f"revoked {record.id} ({record.role}{', ' + record.name if record.name else ''})")
        return EXIT_OK
    records = [r.public() for r in ring.records()]
    if args.json:
        print_json(records)
    else:
        columns = ["id", "role", "name", "created", "revoked", "rate_per_s", "burst"]
        rows = [[r[c] for c in columns] for r in records]
        write_rows(sys.stdout, "table", columns, rows, limit=0, noun="keys")
    return EXIT_OK


def run_bench(arguments: list[str]) -> int:
    """Run the benchmark module with ``arguments`` as they are (``--help`` included)."""
    try:
        return subprocess.call([sys.executable, "-m", "allsource_lab.bench", *arguments])
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": _demo,
    "ingest": _ingest,
    "sql": _sql,
    "events": _events,
    "state": _state,
    "stats": _stats,
    "verify": _verify,
    "checkpoint": _checkpoint,
    "compact": _compact,
    "export-delta": _export_delta,
    "serve": _serve,
    "keys": _keys,
}
