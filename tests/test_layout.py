"""The house's shape: imports one way, no reaching into another module's private members,
and exactly the documented public API (docs/architecture.md)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import allsource_lab as asl

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "allsource_lab"
# Private names every Python object or library type has: not another module's internals.
_LANGUAGE = {"_replace", "_asdict", "_fields", "_field_defaults", "_make", "_exit"}


def test_the_package_exports_exactly_the_documented_public_api() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## The public API", 1)[1].split("\n## ", 1)[0]
    documented = sorted(re.findall(r"^- `(\w+)`", section, flags=re.MULTILINE))
    assert documented, "docs/architecture.md lists no public names"
    assert sorted(asl.__all__) == documented
    assert list(asl.__all__) == sorted(asl.__all__)
    for name in asl.__all__:
        assert getattr(asl, name) is not None


def test_the_import_contracts_hold() -> None:
    """The layers and the store's one interface, as `make check` checks them."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def _defined_private_names(tree: ast.Module) -> set[str]:
    """Private names a module defines: functions, classes, attributes it assigns."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)  # __slots__ entries
    return {n for n in names if n.startswith("_")}


def test_no_module_reaches_into_another_modules_private_members() -> None:
    """`x._name` only where the module defines `_name` itself (its own classes), so no
    part of the package touches another part's internals."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        own = _defined_private_names(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            name = node.attr
            if not name.startswith("_") or name.startswith("__") or name in _LANGUAGE:
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                if name in own:
                    continue
            elif name in own:
                continue
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert not found, "\n".join(found)
