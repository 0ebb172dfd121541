"""argparse value types shared by the ``allsource`` CLI and the ``%allsource`` magics."""

from __future__ import annotations

import argparse

__all__ = ["count", "positive"]


def count(text: str) -> int:
    """A whole number >= 0 (argparse type).

    >>> count("3")
    3
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def positive(text: str) -> int:
    """A whole number >= 1 (argparse type)."""
    value = count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value
