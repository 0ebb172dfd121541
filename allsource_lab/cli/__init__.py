"""``allsource``: AllSource Lab from the shell.

Read commands (``sql``, ``events``, ``state``, ``stats``, ``verify``) open the store
read-only, so they work beside a notebook that has it open for writing; ``demo``,
``ingest``, ``checkpoint``, ``compact`` and ``serve`` take the store's write lock;
``export-delta`` opens it read-only unless ``--checkpoint`` asks it to seal the tail first.

Exit codes: 0 success; 1 an error (one line on stderr, no traceback) or ``verify``
found problems; 2 a usage error, or ``compact`` on a version without compaction;
130 interrupted.

The package: ``parser`` (arguments), ``commands`` (what each does), ``output`` (tables,
CSV, JSON, the progress bar); ``python -m allsource_lab.cli`` runs :func:`main`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence

from allsource_lab.cli.commands import (
    COMMANDS,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CommandError,
    run_bench,
)
from allsource_lab.cli.output import ProgressBar
from allsource_lab.cli.parser import PROG, build_parser

__all__ = ["CommandError", "ProgressBar", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``allsource`` command; returns the exit code.

    >>> main(["verify", "/nonexistent/store"])  # "allsource: error: no store at ..." on stderr
    1
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["bench"]:
        return run_bench(arguments[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: Callable[[argparse.Namespace], int] = COMMANDS[args.command]
    try:
        return handler(args)
    except CommandError as exc:
        _fail(str(exc))
        return exc.code
    except KeyboardInterrupt:
        _fail("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. "| head"): stop quietly, and keep Python's exit-time
        # flush from raising again.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as exc:
        message = _error_message(exc)
        if message is None:
            raise
        _fail(message)
        return EXIT_ERROR


def _error_message(exc: Exception) -> str | None:
    """One line for errors a user can cause and fix; None for bugs (they keep a traceback)."""
    from allsource_lab.errors import AllSourceError

    if isinstance(exc, AllSourceError):
        return str(exc)
    import duckdb

    if isinstance(exc, duckdb.Error):
        first = str(exc).strip().splitlines()
        return "SQL: " + (first[0] if first else type(exc).__name__)
    import pyarrow as pa

    if isinstance(exc, ImportError | OSError | pa.ArrowException):
        return str(exc)  # a missing extra, an unreadable file, data Arrow cannot convert
    return None


def _fail(message: str) -> None:
    line = " ".join(message.split("\n"))
    print(f"{PROG}: error: {line}", file=sys.stderr)
