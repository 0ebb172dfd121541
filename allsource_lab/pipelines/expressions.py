"""Arithmetic expressions for ``map`` with ``transform: "compute"``.

An expression is Python-like arithmetic text over field paths and numbers:
``payload.price * payload.qty + 1``, ``round(amount / 3, 2)``, ``-(a - b) ** 2``.
Operators ``+ - * / // % **``, unary ``-``/``+``, parentheses, and the functions
``abs``, ``round``, ``min``, ``max``. A name is a field path (``amount`` means
``payload.amount``). It is parsed with :mod:`ast` and evaluated by walking the tree:
nothing is ever passed to ``eval``.

A missing (or null) input makes the result null; an input that is not a number (text, a
bool, an object) or a division by zero is an error of that record.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

from allsource_lab.errors import InvalidArgument
from allsource_lab.pipelines.paths import Record, getter, is_number, normalize_path, show

__all__ = ["compile_expression", "expression_fields"]

Evaluator = Callable[[Record], Any]

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {
    "abs": (abs, 1, 1),
    "round": (round, 1, 2),
    "min": (min, 2, 99),
    "max": (max, 2, 99),
}
ACCEPTED = "numbers, field paths, + - * / // % **, parentheses and abs(), round(), min(), max()"


def _parse(text: object) -> ast.expr:
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument(
            f"expr must be arithmetic text like 'payload.price * payload.qty'; got {text!r}"
        )
    try:
        return ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise InvalidArgument(
            f"expr {text!r} is not valid arithmetic ({exc.msg}); use {ACCEPTED}"
        ) from None


def _path_of(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _build(node: ast.expr, text: str, fields: list[str]) -> Evaluator:
    if isinstance(node, ast.Constant):
        value = node.value
        if not is_number(value):
            raise InvalidArgument(f"expr {text!r}: only numbers may be constants, not {value!r}")
        return lambda record: value
    if isinstance(node, ast.Name | ast.Attribute):
        dotted = _path_of(node)
        if dotted is None:
            raise InvalidArgument(f"expr {text!r}: {ast.unparse(node)!r} is not a field path")
        path = normalize_path(dotted, "a name in expr")
        fields.append(path)
        read = getter(path)

        def field(record: Record) -> Any:
            value = read(record)
            if value is None or is_number(value):
                return value
            raise TypeError(f"{path} is {show(value)}, not a number")

        return field
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        fn = _BINARY[type(node.op)]
        left, right = _build(node.left, text, fields), _build(node.right, text, fields)

        def binary(record: Record) -> Any:
            a, b = left(record), right(record)
            return None if a is None or b is None else fn(a, b)

        return binary
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        fn1 = _UNARY[type(node.op)]
        inner = _build(node.operand, text, fields)

        def unary(record: Record) -> Any:
            a = inner(record)
            return None if a is None else fn1(a)

        return unary
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id
        if name not in _FUNCTIONS or node.keywords:
            raise InvalidArgument(
                f"expr {text!r}: unknown function {name}(); use abs, round, min, max"
            )
        fn_any, lo, hi = _FUNCTIONS[name]
        if not lo <= len(node.args) <= hi:
            raise InvalidArgument(f"expr {text!r}: {name}() takes {lo} to {hi} arguments")
        args = [_build(a, text, fields) for a in node.args]
        if name == "round" and len(args) == 2 and not isinstance(node.args[1], ast.Constant):
            raise InvalidArgument(f"expr {text!r}: round()'s digits must be a number")

        def call(record: Record) -> Any:
            values = [a(record) for a in args]
            return None if any(v is None for v in values) else fn_any(*values)

        return call
    raise InvalidArgument(f"expr {text!r}: {ast.unparse(node)!r} is not allowed; use {ACCEPTED}")


def expression_fields(text: object) -> list[str]:
    """The field paths an expression reads (full form), checking it.

    Raises:
        InvalidArgument: the text is not an accepted expression (the message says what is).

    >>> expression_fields("price * qty + metadata.fee")
    ['payload.price', 'payload.qty', 'metadata.fee']
    """
    node = _parse(text)
    fields: list[str] = []
    _build(node, str(text), fields)
    return fields


def compile_expression(text: str) -> Evaluator:
    """A function computing the expression over a record.

    >>> compile_expression("round(price * qty, 1)")({"payload": {"price": 2.25, "qty": 3}})
    6.8
    """
    return _build(_parse(text), text, [])
