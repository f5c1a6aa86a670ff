"""Shared fixtures: the real sample data, one local SparkSession per test session, the embedded models."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from curation.paths import models_dir, shared_data_dir

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
# With a catalog in the environment every published DatasetRoot version also commits to the table named after
# its folder (curation/tables/publish.py): a developer's PHI_ICEBERG_* (their warehouse, the stack's catalog)
# must not receive the tests' versions. Tests that want tables set these themselves (monkeypatch.setenv).
for _var in ("PHI_ICEBERG_WAREHOUSE", "PHI_ICEBERG_CATALOG_URI", "PHI_ICEBERG_NAMESPACE"):
    os.environ.pop(_var, None)

FIXTURES = Path(__file__).parent / "fixtures"

# Fixture modules owned by one topic each (loaded by name: tests/ is on sys.path via rootdir conftest).
pytest_plugins = ["fixtures_teacher", "stack_fixtures"]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if not d.is_dir():
        pytest.fail(f"shared sample data not found at {d}; set PHI_SHARED_DATA")
    return d


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def models() -> Path:
    d = models_dir()
    if not (d / "lid.176.ftz").is_file():
        pytest.fail(f"embedded models missing in {d}; run `make setup`")
    return d


@pytest.fixture(scope="session")
def spark():
    from curation.spark import get_spark

    session = get_spark(
        "phi-tests",
        master="local[2]",
        conf={"spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2"},
    )
    yield session
    session.stop()
