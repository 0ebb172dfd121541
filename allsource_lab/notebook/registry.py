"""Every ``%allsource`` subcommand, once: its name, summary, arguments, handler, and whether
it reads a cell body.

Adding a subcommand is adding one :class:`Subcommand` to :data:`SUBCOMMANDS`. The overview
(``%allsource --help``) lists the entries in their order; each entry's parser gives its
``--help`` and reads its line; a mistyped name is matched against the names; a cell body
given to an entry without ``cell`` is refused.

>>> SUBCOMMANDS["sql"].cell, SUBCOMMANDS["stats"].cell
(True, False)
>>> SUBCOMMANDS["append"].writes, SUBCOMMANDS["state"].writes
(True, False)
>>> SUBCOMMANDS["state"].parser().parse_args(["order-17", "-o", "s"]).output
's'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from allsource_lab.notebook import (
    commands,
    export_commands,
    ingest,
    live_commands,
    parsers,
    schema_commands,
)
from allsource_lab.notebook.arguments import MagicArgumentParser
from allsource_lab.notebook.session import Command

__all__ = ["SUBCOMMANDS", "Subcommand", "build_parsers"]


@dataclass(frozen=True, slots=True)
class Subcommand:
    """One subcommand of ``%allsource``.

    ``arguments`` declares its arguments on the parser :meth:`parser` builds; ``handler``
    runs it. ``cell``: it reads the cell body of ``%%allsource`` (the others refuse
    one). ``verbatim``: after its options, the rest of the line is kept as written in
    ``args.sql``, not split into arguments (SQL, whose quotes and braces mean something
    to DuckDB).
    ``output``: the parser itself takes ``-o NAME`` (False where each action declares
    its own). ``writes``: it may append or register something, so a refusal says that
    nothing was written (a read's error never does).
    """

    name: str
    summary: str
    arguments: Callable[[MagicArgumentParser], None]
    handler: Command
    cell: bool = False
    verbatim: bool = False
    output: bool = True
    writes: bool = False

    def parser(self) -> MagicArgumentParser:
        """A new parser of this subcommand's line, ``-o NAME`` included.

        >>> SUBCOMMANDS["events"].parser().parse_args(["--entity", "o-1", "--limit", "5"]).limit
        5
        """
        parser = parsers.new_parser(self.name, self.summary)
        self.arguments(parser)
        if self.output:
            parsers.output_option(parser)
        return parser


def _by_name(*entries: Subcommand) -> dict[str, Subcommand]:
    table: dict[str, Subcommand] = {}
    for entry in entries:
        # Two entries of one name would leave one unreachable without a word.
        assert entry.name not in table, f"subcommand {entry.name!r} is declared twice"
        table[entry.name] = entry
    return table


# In the order the overview lists them.
SUBCOMMANDS: dict[str, Subcommand] = _by_name(
    Subcommand(
        "open",
        "open a store folder (created if missing) or a memory store; it becomes current",
        parsers.open_arguments,
        commands.open_store,
    ),
    Subcommand("close", "close the current store", parsers.no_arguments, commands.close),
    Subcommand(
        "append",
        "append one event: TYPE ENTITY and a JSON payload (on the line or in the cell)",
        parsers.append_arguments,
        commands.append,
        cell=True,
        writes=True,
    ),
    Subcommand(
        "ingest",
        "append the rows of a DataFrame variable or a CSV, JSON lines or Parquet file",
        parsers.ingest_arguments,
        ingest.ingest,
        writes=True,
    ),
    Subcommand(
        "events",
        "list events, filtered by entity, type and time (bitemporal)",
        parsers.events_arguments,
        commands.events,
    ),
    Subcommand(
        "state",
        "an entity's state (its payloads merged), now or at a moment",
        parsers.state_arguments,
        commands.state,
    ),
    Subcommand(
        "sql",
        "DuckDB SQL over the views events and log (the same rows in sequence order); "
        "{name} binds a Python variable as a parameter",
        parsers.sql_arguments,
        commands.sql,
        cell=True,
        verbatim=True,
    ),
    Subcommand(
        "schema",
        "JSON Schemas: register, check, show, list, compat, panel",
        parsers.schema_arguments,
        schema_commands.schema,
        cell=True,
        output=False,
        writes=True,
    ),
    Subcommand(
        "replay",
        "rebuild a projection from history (with progress)",
        parsers.replay_arguments,
        live_commands.replay,
    ),
    Subcommand(
        "window",
        "window analytics: tumbling, hopping or session windows with aggregates",
        parsers.window_arguments,
        commands.window,
    ),
    Subcommand(
        "projections",
        "the store's live projections and where they stand",
        parsers.no_arguments,
        live_commands.projections,
    ),
    Subcommand(
        "pipelines",
        "the live pipelines and their stats, or one pipeline's results",
        parsers.pipelines_arguments,
        live_commands.pipelines,
    ),
    Subcommand(
        "stats", "counts and facts about the current store", parsers.no_arguments, commands.stats
    ),
    Subcommand(
        "verify",
        "recompute every checksum and check the log's invariants",
        parsers.no_arguments,
        commands.verify,
    ),
    Subcommand(
        "checkpoint",
        "seal the write-ahead log's tail into a Parquet segment",
        parsers.no_arguments,
        commands.checkpoint,
    ),
    Subcommand("compact", "merge small segments", parsers.no_arguments, commands.compact),
    Subcommand(
        "export-delta",
        "append the sealed history to a Delta Lake table (incremental, exactly-once)",
        export_commands.export_delta_arguments,
        export_commands.export_delta,
    ),
    Subcommand(
        "explore",
        "an interactive explorer of the store (widget)",
        parsers.no_arguments,
        live_commands.explore,
    ),
    Subcommand(
        "timetravel",
        "a slider through an entity's history (widget)",
        parsers.timetravel_arguments,
        live_commands.timetravel,
    ),
    Subcommand(
        "tail",
        "a live tail of new events (widget)",
        parsers.tail_arguments,
        live_commands.tail,
    ),
)


def build_parsers() -> dict[str, MagicArgumentParser]:
    """A parser for every subcommand, by name, in the overview's order.

    >>> list(build_parsers())[:3]
    ['open', 'close', 'append']
    """
    return {name: entry.parser() for name, entry in SUBCOMMANDS.items()}
