"""The parts the :class:`~allsource_lab.store.EventStore` facade is composed of.

One job each: ``entities`` (entity and type numbers, versions), ``log`` (the write path
and its durability), ``batches`` (``append_batch``), ``validation`` (schemas at ingest),
``event_ids`` (idempotent retries), ``sealing`` (checkpoints and compaction),
``opening`` (what a store loads on open), ``reads`` (rows by position and query),
``states`` (state folds and snapshots), ``sql`` (DuckDB), ``feed`` (what projections,
replays, subscriptions and widgets follow). Parts import one way — later parts above
earlier ones — and the facade wires them together; see docs/architecture.md.
"""
