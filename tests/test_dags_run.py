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
           "PHI_EDU_REGISTRY": str(data / "edu_models"), "GX_ANALYTICS_ENABLED": "false"}
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
    run.registry = data / "edu_models"
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
    """No edu model is promoted yet (the nightly test below promotes one): the version is unscored, and
    its manifest says why."""
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
    assert "edu_score" not in manifest["columns"] and "edu" not in [s["stage"] for s in manifest["stages"]]
    assert any("no promoted edu model" in n for n in manifest["extra"]["notes"])
    assert "edu scoring skipped: no promoted edu model" in result["log"]


def promote_edu_model(registry: Path, shared_data: Path) -> str:
    """A small promoted edu model (fasttext on the DCLM human labels, as in test_edu_score)."""
    from curation.edu.labels import read_label_file
    from curation.edu.registry import ModelRegistry
    from curation.edu.train import EduTrainConfig, FastTextParams
    from curation.edu.workflow import train_and_register

    reg = ModelRegistry(registry)
    labels = read_label_file(shared_data / "quality_labels_dclm_human" / "majority_data_disputed.jsonl", max_score=1)
    ref = train_and_register(labels, EduTrainConfig(fasttext=FastTextParams(dim=16, bucket=20_000), max_score=1,
                                                    threshold=0.5), reg, human_labels=None)
    return reg.promote(ref.version).version


def ids_of(vdir: Path) -> set[str]:
    return set(pq.read_table(vdir / "data", columns=["id"]).column("id").to_pylist())


def inodes(vdir: Path) -> set[int]:
    return {p.stat().st_ino for p in (vdir / "data").glob("*.parquet")}


def test_nightly_refresh_publishes_whole_corpus_versions(airflow, shared_data, tmp_path):
    """Night 1 and night 2 each curate only their new segment (scored with the promoted edu model) and
    publish the whole corpus: the previous version's documents (hard-linked) + the night's new ones.
    A third run over the same segments processes nothing."""
    from curation.append import STAGE
    from curation.contract import Manifest

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "segment-0001.warc.gz").symlink_to(samples(shared_data, "dolma-sample-0001.warc.gz"))
    conf = {"segment_globs": [str(inbox / "*")]}
    model = promote_edu_model(airflow.registry, shared_data)
    before = set(airflow.root.versions())
    base = airflow.root.current()  # web_curation's version when the module runs whole, else none
    base_ids = ids_of(airflow.root.version_dir(base)) if base else set()

    def night(expect_base: str | None, expect_base_ids: set[str], segment: str) -> tuple[str, Manifest, int]:
        result = airflow("nightly_refresh", conf)
        assert set(result["tasks"].values()) == {"success"}, result["log"][-4000:]
        version = airflow.root.current()
        vdir = airflow.root.version_dir(version)
        m = Manifest.read(vdir)
        m.check()
        delta = Manifest.read(airflow.root.root / "_deltas" / version)
        assert m.base_version == expect_base and delta.inputs == [str(inbox / segment)]
        assert m.base_rows == (Manifest.read(airflow.root.version_dir(expect_base)).rows if expect_base else 0)
        # the whole corpus: every earlier document plus what the night added, counts reconciling
        new = m.stages[-1].rows_kept
        assert m.stages[-1].stage == STAGE and m.stages[:-1] == delta.stages and new > 0
        assert m.rows == m.base_rows + new == len(ids_of(vdir))
        assert expect_base_ids <= ids_of(vdir) and len(ids_of(vdir) - expect_base_ids) == new
        assert ids_of(vdir) - expect_base_ids <= ids_of(airflow.root.root / "_deltas" / version)
        # scored with the promoted model; the manifest names it
        assert "edu" in [s.stage for s in delta.stages] and m.extra["edu"]["model"] == model
        scored = pq.read_table(vdir / "data", columns=["id", "edu_score", "edu_model"]).to_pylist()
        assert {r["edu_model"] for r in scored if r["id"] not in expect_base_ids} == {model}
        assert all(0.0 <= r["edu_score"] <= 1.0 for r in scored if r["edu_score"] is not None)
        assert result["events"][-1] == {"version": version, "path": str(vdir), "rows": m.rows}
        return version, m, len(result["events"])

    night1, m1, _ = night(base, base_ids, "segment-0001.warc.gz")
    ids1 = ids_of(airflow.root.version_dir(night1))
    ledger = json.loads((airflow.root.root / "_ledger" / "segments.json").read_text())
    assert ledger[str(inbox / "segment-0001.warc.gz")]["version"] == night1

    # night 2: one new segment landed
    (inbox / "segment-0002.jsonl.gz").symlink_to(
        shared_data / "webtext_cc2019_dolma_sample" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz")
    night2, m2, events = night(night1, ids1, "segment-0002.jsonl.gz")
    assert m2.rows > m1.rows and night2 != night1
    # night 1's files are in night 2 as hard links (same schema: both scored), not copies
    assert inodes(airflow.root.version_dir(night1)) <= inodes(airflow.root.version_dir(night2))
    assert m2.extra["files"]["base_linked"] == len(inodes(airflow.root.version_dir(night1)))
    ledger = json.loads((airflow.root.root / "_ledger" / "segments.json").read_text())
    assert {ledger[str(inbox / s)]["version"] for s in ("segment-0001.warc.gz", "segment-0002.jsonl.gz")} \
        == {night1, night2}

    # the same segments again: nothing to do, nothing published
    third = airflow("nightly_refresh", conf)
    assert third["tasks"]["discover"] == "success" and third["tasks"]["anything_new"] == "success"
    skipped = {t for t, s in third["tasks"].items() if s == "skipped"}
    assert skipped == {"plan", "curate", "append", "validate", "report", "publish", "record"}
    assert set(airflow.root.versions()) == before | {night1, night2} and airflow.root.current() == night2
    assert len(third["events"]) == events
