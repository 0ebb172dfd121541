"""``%allsource`` / ``%%allsource``: one magic, many subcommands.

The magic reads its line (:mod:`~allsource_lab.notebook.arguments`), looks the
subcommand up in the registry (:mod:`~allsource_lab.notebook.registry`: its parser,
handler and whether it takes a cell), runs it against the kernel's current store
(:mod:`~allsource_lab.notebook.session`) and returns a view that displays as AllSource
JSON, HTML and text; ``-o NAME`` binds the plain result. User mistakes and the store's
refusals are ``UsageError`` lines (:mod:`.errors`); anything else keeps its traceback.

Settings are traitlets, so ``%config AllSourceMagics.displaylimit = 20`` works.
"""

from __future__ import annotations

import argparse
import difflib
import os
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from traitlets import Bool, Int, TraitError, observe, validate

from allsource_lab.display import DEFAULT_LIMIT, set_default_limit
from allsource_lab.display.views import StoreView
from allsource_lab.notebook.arguments import (
    HelpShown,
    MagicArgumentParser,
    Token,
    expand,
    split_line,
)
from allsource_lab.notebook.commands import DEFAULT_STORE_VARIABLE
from allsource_lab.notebook.errors import expected, usage_error
from allsource_lab.notebook.parsers import PROG
from allsource_lab.notebook.registry import SUBCOMMANDS, Subcommand
from allsource_lab.notebook.session import Context, Options, Session

__all__ = ["AllSourceMagics", "overview"]

_HELP = ("-h", "--help")
# Of the options a verbatim subcommand (sql) may take before its text, those followed by
# a value: the text starts after it.
_VALUE_OPTIONS = frozenset({"-o", "--output"})


def overview(store: Any = None) -> str:
    """The text of ``%allsource --help``: the current store, then every subcommand, and
    what ``open`` without a PATH opens (the demo store when ``ALLSOURCE_DEFAULT_STORE``
    names one, as ``make lab`` does).

    >>> "open with no PATH opens" in overview()
    True
    """
    default = os.environ.get(DEFAULT_STORE_VARIABLE) or None
    if store is None and default is not None:
        where = (
            f"no store is open (start with: %allsource open, which opens {default}; "
            "or open PATH, or open --memory)"
        )
    elif store is None:
        where = "no store is open (start with: %allsource open PATH, or open --memory)"
    else:
        where = f"current store: {store.path or 'memory'} ({store.stats()['events']:,} events)"
    width = max(map(len, SUBCOMMANDS))
    lines = [
        f"usage: {PROG} SUBCOMMAND [ARGS] [-o NAME]   (or %%allsource SUBCOMMAND with a cell)",
        "",
        where,
        "",
        "subcommands:",
        *(f"  {name:<{width}}  {entry.summary}" for name, entry in SUBCOMMANDS.items()),
        "",
        f"open with no PATH opens {default} (${DEFAULT_STORE_VARIABLE}, the demo store)"
        if default is not None
        else f"open with no PATH opens the folder ${DEFAULT_STORE_VARIABLE} names (`make lab` "
        "sets it to a demo store), else a new memory store",
        f"{PROG} SUBCOMMAND --help shows its arguments. $name or {{name}} in an argument is",
        "the Python variable name (quote it to keep it literal). Settings: %config "
        "AllSourceMagics.",
    ]
    return "\n".join(lines)


@magics_class
class AllSourceMagics(Magics):
    """The ``%allsource`` magic and its settings; one instance (and store) per kernel."""

    displaylimit = Int(
        DEFAULT_LIMIT,
        help="Rows a result table shows before 'showing N of M' (0: all). Also used by "
        "EventFrame's own display.",
    ).tag(config=True)
    progress_rows = Int(
        100_000, help="ingest shows a progress bar for inputs of at least this many rows."
    ).tag(config=True)
    ingest_batch_rows = Int(
        100_000, help="Rows per atomic append_batch when ingesting (--batch-size overrides)."
    ).tag(config=True)
    tail_rows = Int(50, help="Rows the live tail keeps (tail --rows overrides).").tag(config=True)
    widgets = Bool(
        True, help="Show replay progress as a widget (with cancel) when ipywidgets is installed."
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.session = Session()
        # Built when first used (all of them take ~5 ms), by entry: an entry replaced
        # under the same name gets its own parser.
        self._parsers: dict[Subcommand, MagicArgumentParser] = {}
        set_default_limit(self.displaylimit)

    @validate("displaylimit", "progress_rows")
    def _at_least_zero(self, proposal: Any) -> int:
        value: int = proposal["value"]
        if value < 0:
            raise TraitError(f"{proposal['trait'].name} must be >= 0, not {value}")
        return value

    @validate("ingest_batch_rows", "tail_rows")
    def _at_least_one(self, proposal: Any) -> int:
        value: int = proposal["value"]
        if value < 1:
            raise TraitError(f"{proposal['trait'].name} must be >= 1, not {value}")
        return value

    @observe("displaylimit")
    def _new_limit(self, change: Any) -> None:
        set_default_limit(change["new"])

    def options(self) -> Options:
        """The settings as they are now."""
        return Options(
            progress_rows=self.progress_rows,
            ingest_batch_rows=self.ingest_batch_rows,
            tail_rows=self.tail_rows,
            widgets=self.widgets,
        )

    def _namespace(self) -> dict[str, Any]:
        """The user's variables (where ``$name`` is looked up and ``-o`` binds)."""
        if self.shell is None:
            raise UsageError("the magics are not attached to an IPython shell")
        namespace: dict[str, Any] = self.shell.user_ns
        return namespace

    @no_var_expand
    @line_cell_magic
    def allsource(self, line: str, cell: str | None = None) -> Any:
        """AllSource Lab: an event store in this kernel. ``%allsource --help`` lists the
        subcommands; ``%allsource SUBCOMMAND --help`` shows one's arguments.

        Examples::

            %allsource open shop.events
            %allsource append order.placed order-17 {"amount": 42.5}
            %allsource events --entity order-17 -o frame
            %allsource state order-17 --as-of 2026-01-01T12:00:00Z

            %%allsource sql -o big
            select entity_id, count(*) n from events where payload->>'sku' = {sku} group by 1
        """
        try:
            return self._run(line, cell)
        except HelpShown:
            return None

    def _run(self, line: str, cell: str | None) -> Any:
        tokens = split_line(line)
        if not tokens or tokens[0].text in (*_HELP, "help"):
            store = self.session.store
            print(overview(store))
            return None if store is None else StoreView.of(store)
        entry = _subcommand(tokens[0].text)
        namespace = self._namespace()
        args = self._arguments(entry, tokens[1:], line)
        if cell is not None and cell.strip() and not entry.cell:
            raise UsageError(
                f"%%allsource {entry.name} takes no cell body; its arguments go on the line"
            )
        ctx = Context(self.session, namespace, cell, self.options())
        try:
            outcome = entry.handler(ctx, args)
        except Exception as exc:
            if not expected(exc):
                raise
            raise usage_error(exc, writes=entry.writes) from None
        if args.output is not None:
            namespace[args.output] = outcome.value
        return outcome.shown

    def _arguments(self, entry: Subcommand, tokens: list[Token], line: str) -> argparse.Namespace:
        """The subcommand's arguments: the tokens, with ``$name`` references expanded,
        read by its parser — or, for a verbatim one, the options before its text, then
        the text kept as written."""
        parser = self._parsers.get(entry)
        if parser is None:
            parser = self._parsers[entry] = entry.parser()
        if not entry.verbatim:
            return parser.parse_args(expand(tokens, self._namespace()))
        options: list[Token] = []
        i = 0
        while i < len(tokens):
            text = tokens[i].text
            if text in _HELP or text.startswith(("-o=", "--output=")):
                options.append(tokens[i])
                i += 1
            elif text in _VALUE_OPTIONS:
                options.extend(tokens[i : i + 2])
                i += 2
            else:
                break
        args = parser.parse_args(expand(options, self._namespace()))
        args.sql = line[tokens[i].start :] if i < len(tokens) else ""
        return args


def _subcommand(name: str) -> Subcommand:
    """The registry's entry named ``name``.

    Raises:
        UsageError: there is none; names the nearest, if one is near.
    """
    entry = SUBCOMMANDS.get(name)
    if entry is not None:
        return entry
    close = difflib.get_close_matches(name, SUBCOMMANDS, n=1)
    guess = f"did you mean {close[0]!r}? " if close else ""
    raise UsageError(
        f"unknown subcommand {name!r}; {guess}subcommands are {', '.join(SUBCOMMANDS)} "
        f"(see {PROG} --help)"
    )
