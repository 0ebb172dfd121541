"""The registry of ``%allsource`` subcommands, and the notebook's one-way imports.

One :class:`~allsource_lab.notebook.registry.Subcommand` entry is all a subcommand needs:
the overview, its ``--help``, its parser, "did you mean" and the cell rule follow from it.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from allsource_lab import display
from allsource_lab.notebook import load_ipython_extension, unload_ipython_extension
from allsource_lab.notebook.arguments import MagicArgumentParser
from allsource_lab.notebook.magics import overview
from allsource_lab.notebook.registry import SUBCOMMANDS, Subcommand
from allsource_lab.notebook.session import Context, Outcome
from allsource_lab.store import open as open_store

NOTEBOOK = Path(__file__).resolve().parents[2] / "allsource_lab" / "notebook"


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    load_ipython_extension(ip)
    yield ip
    unload_ipython_extension(ip)
    ip.run_line_magic("reset", "-f")
    display.set_default_limit(display.DEFAULT_LIMIT)


def greeting_arguments(p: MagicArgumentParser) -> None:
    p.add_argument("--who", default="world", metavar="NAME", help="whom to greet")


def greet(ctx: Context, args: Any) -> Outcome:
    text = f"hello, {args.who}" + (f" ({ctx.body().strip()})" if ctx.body() else "")
    return Outcome(text, text.upper())


def test_one_entry_makes_a_whole_subcommand(shell, monkeypatch, capsys):
    entry = Subcommand("greet", "say hello to someone", greeting_arguments, greet)
    monkeypatch.setitem(SUBCOMMANDS, "greet", entry)

    shell.run_line_magic("allsource", "--help")
    # The overview's first column is as wide as the longest subcommand name.
    assert re.search(r"^  greet +say hello to someone$", capsys.readouterr().out, re.M)
    assert shell.run_line_magic("allsource", "greet --help") is None
    assert capsys.readouterr().out.startswith("usage: %allsource greet [-h] [--who NAME] [-o NAME]")
    assert shell.run_line_magic("allsource", "greet --who ada -o loud") == "hello, ada"
    assert shell.user_ns["loud"] == "HELLO, ADA"
    with pytest.raises(UsageError, match=r"did you mean 'greet'\?"):
        shell.run_line_magic("allsource", "gret")
    with pytest.raises(UsageError, match=r"^%%allsource greet takes no cell body"):
        shell.run_cell_magic("allsource", "greet", "from the cell")

    monkeypatch.setitem(SUBCOMMANDS, "greet", dataclasses.replace(entry, cell=True))
    assert shell.run_cell_magic("allsource", "greet", "from the cell") == (
        "hello, world (from the cell)"
    )


def test_the_overview_lists_every_entry_in_the_registrys_order():
    listed = re.findall(r"^  (\S+) +(.+)$", overview(), flags=re.MULTILINE)
    assert listed == [(name, entry.summary) for name, entry in SUBCOMMANDS.items()]


def test_only_the_subcommands_that_read_a_cell_take_one():
    assert sorted(name for name, entry in SUBCOMMANDS.items() if entry.cell) == [
        "append",
        "schema",
        "sql",
    ]


# -- imports that run one way ----------------------------------------------------------------


def notebook_modules() -> list[Path]:
    return sorted(NOTEBOOK.rglob("*.py"))


def test_no_notebook_module_imports_the_package_root():
    offending = []
    for path in notebook_modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            if "allsource_lab" in names:
                offending.append(f"{path.relative_to(NOTEBOOK)}:{node.lineno}")
    assert offending == []


def private_store_members(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Where ``tree`` reads a private member of something named like a store:
    ``store._x``, ``self._store._x``, ``ctx.store()._x``, ``getattr(store, "_x")``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner, attr = node.value, node.attr
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "getattr":
            owner, attr = node.args[0], str(getattr(node.args[1], "value", ""))
        else:
            continue
        if isinstance(owner, ast.Call):
            owner = owner.func
        name = getattr(owner, "id", None) or getattr(owner, "attr", "")
        if "store" in name.lower() and attr.startswith("_") and not attr.startswith("__"):
            yield node.lineno, attr


def test_no_notebook_module_touches_a_stores_private_members():
    offending = [
        f"{path.relative_to(NOTEBOOK)}:{line} {attr}"
        for path in notebook_modules()
        for line, attr in private_store_members(ast.parse(path.read_text(), str(path)))
    ]
    assert offending == []


# -- following a store -----------------------------------------------------------------------


def test_a_store_is_followed_through_its_feed_after_each_append():
    store = open_store()
    seen: list[object] = []
    store.feed.follow(seen.append)
    store.append("a", "x", {})
    store.feed.unfollow(seen.append)
    store.feed.unfollow(seen.append)  # a second time: nothing to stop
    store.append("a", "x", {})
    assert seen == [1] and not store.closed
    store.close()
    assert store.closed
