"""End-to-end `dag.test()` runs of the DAGs on real crawl files: Spark through SparkSubmitOperator
(`spark_default` = local[2]), the great-expectations gate, the DuckDB report, publication and the Asset.

Each run happens in a fresh interpreter with its own AIRFLOW_HOME (SQLite, migrated once per module), so
Airflow's global settings and ORM never leak into other tests.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curation.contract import DatasetRoot
from curation.paths import REPO_ROOT

pytestmark = pytest.mark.slow

RUNNER = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.models.asset import AssetEvent, AssetModel
from airflow.utils.session import create_session

dag_id, conf = sys.argv[1], json.loads(sys.argv[2])
bag = DagBag(dag_folder=sys.argv[3])
assert not bag.import_errors, bag.import_errors
run = bag.get_dag(dag_id).test(run_conf=conf)
with create_session() as session:
    events = [e.extra for e in session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
              .filter(AssetModel.name == "web_curated").order_by(AssetEvent.id)]
print("RESULT " + json.dumps({"state": str(run.state), "run_id": run.run_id, "events": events,
                              "tasks": {ti.task_id: str(ti.state) for ti in run.get_task_instances()}}))
"""


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow")
    data = tmp_path_factory.mktemp("data")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__PARALLELISM": "2",
           "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
           "SPARK_MASTER": "local[2]", "SPARK_DRIVER_MEMORY": "1g", "PHI_DATA_ROOT": str(data),
           "GX_ANALYTICS_ENABLED": "false"}
    migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True,
                             text=True, timeout=300, check=False)
    assert migrate.returncode == 0, migrate.stderr[-3000:]

    def run(dag_id: str, conf: dict) -> dict:
        proc = subprocess.run([sys.executable, "-c", RUNNER, dag_id, json.dumps(conf), str(REPO_ROOT / "dags")],
                              env=env, capture_output=True, text=True, timeout=900, check=False)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        assert proc.returncode == 0 and lines, (proc.stdout + proc.stderr)[-6000:]
        result = json.loads(lines[-1].removeprefix("RESULT "))
        result["log"] = proc.stdout + proc.stderr
        return result

    run.root = DatasetRoot(data / "web_curated")
    return run


def samples(shared_data: Path, name: str) -> str:
    return str(shared_data / "warc_commoncrawl_samples" / name)


def test_failing_expectation_blocks_publication(airflow, shared_data):
    """whirlwind.warc.gz holds one Aragonese page: curation keeps no English document, the gate's
    row-count expectation fails, and the version is never published (the report still shows why)."""
    before = airflow.root.versions()
    result = airflow("web_curation", {"input_globs": [samples(shared_data, "whirlwind.warc.gz")]})
    assert result["tasks"] == {"plan": "success", "curate": "success", "validate": "failed",
                               "report": "success", "publish": "upstream_failed"}, result["log"][-4000:]
    assert result["state"] == "failed"
    assert airflow.root.versions() == before and result["events"] == []
    candidates = DatasetRoot(airflow.root.root / "_candidates")
    candidate = candidates.version_dir(candidates.current())  # left for inspection, never published
    gate = json.loads((candidate / "quality" / "gate.json").read_text())
    assert gate["success"] is False
    assert any(f["expectation"] == "expect_table_row_count_to_be_between" for f in gate["failures"])
    page = (candidate / "report" / "report.html").read_text()
    assert "quality gate web_curated: FAILED" in page


def test_web_curation_publishes_a_validated_version(airflow, shared_data, tmp_path):
    config = tmp_path / "curation.yaml"
    config.write_text("output_partitions: 1\n")
    result = airflow("web_curation", {"input_globs": [samples(shared_data, "dolma-sample-0000.warc.gz")],
                                      "crawl_id": "CC-MAIN-2024-22", "config_path": str(config)})
    assert result["tasks"] == {t: "success" for t in ("plan", "curate", "validate", "report", "publish")}, \
        result["log"][-4000:]
    version = airflow.root.current()
    vdir = airflow.root.version_dir(version)
    manifest = json.loads((vdir / "manifest.json").read_text())
    assert manifest["rows"] > 0 and manifest["config"]["output_partitions"] == 1
    data = pq.read_table(vdir / "data", columns=["crawl_id", "lang"])
    assert set(data.column("crawl_id").to_pylist()) == {"CC-MAIN-2024-22"}  # the param reached the job
    assert len(list((vdir / "data").glob("*.parquet"))) == 1
    assert json.loads((vdir / "quality" / "gate.json").read_text())["success"] is True
    assert (vdir / "report" / "report.html").is_file()
    assert not (airflow.root.root / "_candidates" / version).exists()
    assert result["events"][-1]["version"] == version and result["events"][-1]["rows"] == manifest["rows"]


def test_nightly_refresh_skips_processed_segments(airflow, shared_data, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "segment-0001.warc.gz").symlink_to(samples(shared_data, "dolma-sample-0001.warc.gz"))
    conf = {"segment_globs": [str(inbox / "*.warc.gz")]}
    before = set(airflow.root.versions())

    first = airflow("nightly_refresh", conf)
    assert set(first["tasks"].values()) == {"success"}, first["log"][-4000:]
    new = set(airflow.root.versions()) - before
    assert len(new) == 1 and airflow.root.current() in new
    ledger = json.loads((airflow.root.root / "_ledger" / "segments.json").read_text())
    assert ledger[str(inbox / "segment-0001.warc.gz")]["version"] == airflow.root.current()

    second = airflow("nightly_refresh", conf)
    assert second["tasks"]["discover"] == "success" and second["tasks"]["anything_new"] == "success"
    skipped = {t for t, s in second["tasks"].items() if s == "skipped"}
    assert skipped == {"plan", "curate", "validate", "report", "publish", "record"}
    assert set(airflow.root.versions()) == before | new  # nothing processed, nothing published
    assert len(second["events"]) == len(first["events"])
