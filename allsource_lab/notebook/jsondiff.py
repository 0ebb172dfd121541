"""What changed between two JSON documents: keys added, removed and changed, by path.

The time-travel widget shows it between an entity's states, the schema panel between two
versions of a schema. Objects are compared key by key, recursively; anything else (lists
included) is compared whole, because a list's elements have no stable identity to pair
them by.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["Change", "diff_json", "dotted", "pointer"]


class Change(NamedTuple):
    """One difference: ``kind`` is ``"added"``, ``"removed"`` or ``"changed"``; ``before``
    is None when added, ``after`` None when removed."""

    path: tuple[str, ...]
    kind: str
    before: Any
    after: Any


def diff_json(before: Any, after: Any) -> list[Change]:
    """The changes that turn ``before`` into ``after``, sorted by path.

    A key present on one side only is added or removed as a whole (its nested keys are
    not listed one by one); a key whose value is an object on both sides is compared
    inside; any other differing value is ``changed``. Two documents that are not both
    objects differ, if at all, as one change at the empty path.

    >>> diff_json({"a": 1, "b": {"c": 2}, "d": [1]}, {"a": 1, "b": {"c": 3, "e": 4}})
    ... # doctest: +NORMALIZE_WHITESPACE
    [Change(path=('b', 'c'), kind='changed', before=2, after=3),
     Change(path=('b', 'e'), kind='added', before=None, after=4),
     Change(path=('d',), kind='removed', before=[1], after=None)]
    """
    changes: list[Change] = []
    _compare(before, after, (), changes)
    return changes


def _compare(before: Any, after: Any, path: tuple[str, ...], out: list[Change]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        # Sorted so that the same two documents always list their changes in one order.
        for key in sorted(before.keys() | after.keys(), key=str):
            inner = (*path, str(key))
            if key not in after:
                out.append(Change(inner, "removed", before[key], None))
            elif key not in before:
                out.append(Change(inner, "added", None, after[key]))
            else:
                _compare(before[key], after[key], inner, out)
    elif not _same(before, after):
        out.append(Change(path, "changed", before, after))


def _same(a: Any, b: Any) -> bool:
    # JSON has one number type: 1 and 1.0 are the same value, but True is not 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def dotted(path: tuple[str, ...]) -> str:
    """A state path as dotted keys (``items.tea``); the whole document is ``(root)``.

    >>> dotted(("items", "tea")), dotted(())
    ('items.tea', '(root)')
    """
    return ".".join(path) if path else "(root)"


def pointer(path: tuple[str, ...]) -> str:
    """A path as a JSON Pointer fragment, as schema problems name them (``#/required``).

    >>> pointer(("properties", "a/b")), pointer(())
    ('#/properties/a~1b', '#')
    """
    return "#" + "".join("/" + key.replace("~", "~0").replace("/", "~1") for key in path)
