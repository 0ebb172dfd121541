"""``{name}`` placeholders in SQL, bound as DuckDB parameters — never formatted in.

A placeholder is ``{`` + a Python identifier + ``}`` in the SQL itself: inside string
literals (``'...'``, ``$$...$$``), quoted identifiers and comments the text is left alone,
so ``'{x}'`` stays the three characters it is. Each placeholder becomes the named
parameter ``$name`` and the variable's value is passed to DuckDB beside the text: a
value can never change the query's shape, whatever quotes it holds.

>>> bind("select * from events where entity_id = {who} and note = '{who}'", {"who": "x"})
("select * from events where entity_id = $who and note = '{who}'", {'who': 'x'})
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from IPython.core.error import UsageError

__all__ = ["bind"]

_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_]\w*)?\$")


def _skip(sql: str, i: int) -> int:
    """If a literal, quoted identifier or comment starts at ``i``, the index after it;
    else ``i``. An unterminated one runs to the end (DuckDB will report it)."""
    char = sql[i]
    if char in "'\"":
        j = i + 1
        while j < len(sql):
            if sql[j] == char:
                if j + 1 < len(sql) and sql[j + 1] == char:  # '' or "" escapes itself
                    j += 2
                    continue
                return j + 1
            j += 1
        return len(sql)
    if sql.startswith("--", i):
        end = sql.find("\n", i)
        return len(sql) if end < 0 else end + 1
    if sql.startswith("/*", i):
        end = sql.find("*/", i + 2)
        return len(sql) if end < 0 else end + 2
    if char == "$":
        tag = _DOLLAR_TAG.match(sql, i)
        if tag is not None:
            end = sql.find(tag.group(0), tag.end())
            return len(sql) if end < 0 else end + len(tag.group(0))
    return i


def bind(sql: str, namespace: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The SQL with each ``{name}`` placeholder turned into ``$name``, and the values.

    Raises:
        UsageError: a placeholder names no variable of ``namespace``.

    >>> bind("select {a} + {a} as two_a -- {not_me}", {"a": 1})
    ('select $a + $a as two_a -- {not_me}', {'a': 1})
    """
    out: list[str] = []
    params: dict[str, Any] = {}
    i = 0
    while i < len(sql):
        after = _skip(sql, i)
        if after != i:
            out.append(sql[i:after])
            i = after
            continue
        found = _PLACEHOLDER.match(sql, i) if sql[i] == "{" else None
        if found is None:
            out.append(sql[i])
            i += 1
            continue
        name = found.group(1)
        if name not in namespace:
            raise UsageError(
                f"no Python variable named {name!r} for the SQL placeholder {{{name}}}; "
                "define it first (placeholders are bound as parameters)"
            )
        params[name] = namespace[name]
        out.append(f"${name}")
        i = found.end()
    return "".join(out), params
