"""One local Spark session for every Spark test of the run (starting one costs ~10 s).

Spark runs on ``local[2]`` with the JVM found on the PATH (Java 17); tests that need it
are skipped, saying why, only when there is no Java. Python workers run this
interpreter, so they import this checkout's ``allsource_lab``.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from typing import Any

import pytest

# pyspark 4.3 warns that it does not fully support pandas 3 on every pandas conversion;
# the conversions these tests use are checked by the tests themselves.
PANDAS_WARNING = "ignore:PySpark does not yet fully support pandas:FutureWarning"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.filterwarnings(PANDAS_WARNING))


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """The shared SparkSession (UTC, two shuffle partitions, no UI)."""
    pytest.importorskip("pyspark")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs Java (17): no java on the PATH and no JAVA_HOME")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("allsource-lab-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "2g")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
