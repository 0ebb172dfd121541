"""``allsource_lab.spark.local_session``: the JVM's own output goes to its log, not to stderr.

JupyterLab shows anything written to a kernel's standard error as an error-coloured
output, so a notebook that starts Spark must not get the JVM's start-up warnings there.
Run in a process of its own: the JVM keeps the standard error it was started with.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from allsource_lab import spark
from allsource_lab.errors import InvalidArgument

SCRIPT = """
import sys
from allsource_lab import spark
session = spark.local_session(1, log=sys.argv[1])
assert session.range(5).count() == 5
assert session.conf.get("spark.sql.session.timeZone") == "UTC"
session.stop()
print("done")
"""


@pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java (17)")
def test_the_jvm_writes_to_the_log_not_to_stderr(tmp_path: Path) -> None:
    log = tmp_path / "spark.log"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(log)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
    assert "log4j" not in done.stderr and "WARN" not in done.stderr, done.stderr
    assert "log4j" in log.read_text()


@pytest.mark.parametrize("cores", [0, -1, 1.5, True, "2"])
def test_cores_must_be_a_positive_int(cores: object) -> None:
    with pytest.raises(InvalidArgument, match="cores"):
        spark.local_session(cores)  # type: ignore[arg-type]
