"""Reading a magic's line: tokens (JSON kept whole), ``$name`` references, and argparse
parsers whose mistakes are ``UsageError`` lines instead of ``SystemExit``.

The line is never formatted by IPython (the magic is ``no_var_expand``): IPython's
``{expr}`` expansion would rewrite JSON such as ``{"n":5}``. Instead an unquoted token
``$name`` or ``{name}`` stands for the Python variable ``name``, as text; quoting a token
keeps it literal.

>>> [t.text for t in split_line('append order.placed o-1 {"amount": 42.5, "sku": "a b"}')]
['append', 'order.placed', 'o-1', '{"amount": 42.5, "sku": "a b"}']
>>> expand(split_line("state $who --as-of '$later'"), {"who": "order-17"})
['state', 'order-17', '--as-of', '$later']
"""

from __future__ import annotations

import argparse
import datetime as dt
import keyword
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, NoReturn

import orjson
from IPython.core.error import UsageError

from allsource_lab.display import iso, json_value
from allsource_lab.errors import HelpShown

__all__ = ["HelpShown", "MagicArgumentParser", "Token", "expand", "split_line"]

_REFERENCE = re.compile(r"^(?:\$([A-Za-z_]\w*)|\{([A-Za-z_]\w*)\})$")


@dataclass(frozen=True, slots=True)
class Token:
    """One argument of the line: its text (quotes removed), where it starts in the line,
    and whether any of it was quoted."""

    text: str
    start: int
    quoted: bool


def split_line(line: str) -> list[Token]:
    """The line's tokens, split at whitespace as a shell does, except that a JSON object
    or array (``{...}``, ``[...]``) is kept whole, spaces and quotes included.

    Backslashes are kept as they are outside quotes (Windows paths). Inside double
    quotes, ``\\"`` and ``\\\\`` escape.

    Raises:
        UsageError: an unterminated quote, or an unbalanced bracket.

    >>> [t.text for t in split_line("--agg={\\"payload.amount\\": [\\"sum\\"]} 'a b' c\\\\d")]
    ['--agg={"payload.amount": ["sum"]}', 'a b', 'c\\\\d']
    """
    tokens: list[Token] = []
    i, n = 0, len(line)
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        start, parts, quoted = i, [], False
        while i < n and not line[i].isspace():
            char = line[i]
            if char in "'\"":
                end = _quote_end(line, i)
                body = line[i + 1 : end]
                if char == '"':
                    body = re.sub(r'\\(["\\])', r"\1", body)
                parts.append(body)
                quoted = True
                i = end + 1
            elif char in "{[":
                end = _bracket_end(line, i)
                parts.append(line[i : end + 1])
                i = end + 1
            else:
                parts.append(char)
                i += 1
        tokens.append(Token("".join(parts), start, quoted))
    return tokens


def _quote_end(line: str, i: int) -> int:
    quote = line[i]
    j = i + 1
    while j < len(line):
        if quote == '"' and line[j] == "\\":
            j += 2
            continue
        if line[j] == quote:
            return j
        j += 1
    raise UsageError(f"unterminated {quote} quote in: {line[i:][:40]}")


def _bracket_end(line: str, i: int) -> int:
    """Where the JSON value opened at ``i`` closes (strings inside are skipped)."""
    depth = 0
    j = i
    while j < len(line):
        char = line[j]
        if char == '"':
            j = _quote_end(line, j)
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    raise UsageError(f"unbalanced {line[i]} in: {line[i:][:40]} (close it, or quote the text)")


def reference(token: Token) -> str | None:
    """The variable name an unquoted ``$name`` or ``{name}`` token refers to, else None."""
    if token.quoted:
        return None
    found = _REFERENCE.match(token.text)
    return None if found is None else (found.group(1) or found.group(2))


def expand(tokens: Sequence[Token], namespace: Mapping[str, Any]) -> list[str]:
    """The tokens' texts, with ``$name``/``{name}`` references replaced by the value of
    the variable, as text (times as ISO-8601, dicts and lists as JSON).

    Raises:
        UsageError: a referenced variable is undefined or cannot be text.
    """
    out = []
    for token in tokens:
        name = reference(token)
        if name is None:
            out.append(token.text)
            continue
        if name not in namespace:
            raise UsageError(
                f"no Python variable named {name!r} (for {token.text}); define it, or quote "
                "the text to use it as it is"
            )
        out.append(as_text(namespace[name], name))
    return out


def as_text(value: Any, name: str) -> str:
    """A variable's value as an argument.

    >>> as_text({"n": 1}, "p"), as_text(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "t")
    ('{"n":1}', '2026-01-01T00:00:00Z')
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float | PurePath):
        return str(value)
    if isinstance(value, dt.date) or type(value).__name__ == "Timestamp":
        return str(iso(value))
    if isinstance(value, dict | list | tuple):
        return orjson.dumps(json_value(value)).decode()
    hint = ""
    if type(value).__name__ in ("DataFrame", "Table", "RecordBatch"):
        hint = f"; to ingest it, name it without $: %allsource ingest {name}"
    raise UsageError(
        f"${name} holds a {type(value).__name__}, which cannot be an argument; use text, "
        f"a number, a time, a dict or a list{hint}"
    )


def output_name(text: str) -> str:
    """An ``-o`` target: a Python identifier that is not a keyword (argparse type)."""
    if not text.isidentifier() or keyword.iskeyword(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a Python variable name")
    return text


def bound(text: str) -> int | str:
    """A replay bound: digits are a sequence, anything else a time (argparse type)."""
    return int(text) if text.isdigit() else text


class MagicArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` for a subcommand: a mistake raises ``UsageError`` (one line,
    pointing at ``--help``) and ``--help`` prints to the cell's output."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            raise UsageError(message.strip())
        raise HelpShown
