"""The prebuilt JupyterLab extension: installed where JupyterLab finds it, and built from
the sources in extension/ as they are now. No Node.js needed."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import allsource_lab

ROOT = Path(__file__).parent.parent.parent
EXTENSION = ROOT / "extension"
BUILT = Path(allsource_lab.__file__).parent / "labextension"
NAME = "allsource-lab-extension"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def source_hash(extension: Path) -> str:
    """sha256 over extension/'s sources, as extension/scripts/stamp.js computes it: sorted
    POSIX paths (relative to extension/) of every file under src/ and style/ plus
    package.json, package-lock.json and tsconfig.json; for each, path NUL bytes NUL."""
    paths = [
        p.relative_to(extension).as_posix()
        for tree in ("src", "style")
        for p in (extension / tree).rglob("*")
        if p.is_file()
    ]
    paths += ["package.json", "package-lock.json", "tsconfig.json"]
    digest = hashlib.sha256()
    for rel in sorted(paths):
        digest.update(rel.encode("utf-8") + b"\0" + (extension / rel).read_bytes() + b"\0")
    return digest.hexdigest()


def test_jupyterlab_lists_the_extension_enabled_and_ok_as_installed_by_python():
    done = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    listing = ANSI.sub("", done.stdout + done.stderr)
    version = json.loads((BUILT / "package.json").read_text())["version"]
    line = f"{NAME} v{version} enabled OK (python, allsource-lab)"
    assert line in listing, (
        f"`jupyter labextension list` does not show {line!r} (run `make venv`, or install "
        f"the wheel):\n{listing}"
    )


def test_the_package_ships_a_complete_build():
    package = json.loads((BUILT / "package.json").read_text())
    assert package["name"] == NAME and package["jupyterlab"]["mimeExtension"]
    entry = package["jupyterlab"]["_build"]["load"]
    assert (BUILT / entry).is_file(), f"{entry} is missing: run `make extension`"
    assert json.loads((ROOT / "install.json").read_text())["packageName"] == "allsource-lab"


@pytest.mark.skipif(not (EXTENSION / "src").is_dir(), reason="no extension sources here")
def test_the_build_is_of_the_current_extension_sources():
    recorded = (BUILT / "source-hash.txt").read_text().strip()
    assert recorded == source_hash(EXTENSION), (
        "allsource_lab/labextension was built from other sources than extension/ holds: "
        "run `make extension` (and commit allsource_lab/labextension)"
    )
