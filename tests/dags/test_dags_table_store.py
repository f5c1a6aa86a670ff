"""nightly_refresh with the web corpus stored as an Iceberg table (PHI_CORPUS_STORE=table,
dags/lib/table_store.py): each night's new rows are staged as one snapshot on `audit/<version>`, gated and
reported there, and main fast-forwards to it only after the gate; no version folder is written. Night 2's
band index table is rebuilt from the table's live version. `dag.test()` in fresh interpreters, Spark through
SparkSubmitOperator (local[2]), SQLite catalog."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagtest_helpers import DagTest
from tables_helpers import real_docs
from test_dags_run import plant_near_copy, samples
from test_dags_run_tables import append_to_segment

from curation.append import STAGE
from curation.contract import Manifest
from curation.tables import TablesConfig, Warehouse, read_arrow, versions
from curation.tables.version import open_version

pytestmark = pytest.mark.slow
INDEX = "web_curated_near_index"


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    run = DagTest.with_spark(tmp_path_factory, tables=True, PHI_CORPUS_STORE="table")
    run.warehouse = Warehouse(TablesConfig(warehouse=str(run.data / "_warehouse")))
    return run


def table_ids(wh: Warehouse, ref: str | None = None) -> set[str]:
    return set(read_arrow(wh.table("web_curated"), ref, columns=("id",)).column("id").to_pylist())


def test_nightly_refresh_grows_the_corpus_table_through_write_audit_publish(airflow, shared_data, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    conf = {"segment_globs": [str(inbox / "*")]}
    wh = airflow.warehouse

    def night() -> tuple[str, dict, dict]:
        result = airflow("nightly_refresh", conf)
        assert set(result["tasks"].values()) == {"success"}, result["log"][-4000:]
        published = result["xcom"]["publish"]
        v = published["version"]
        table = wh.table("web_curated")
        head = versions(table)[-1]
        assert (head["run_id"], head["current"], head["snapshot_id"]) == (v, True, published["snapshot_id"])
        assert published["reference"] == f"iceberg:web_curated@{head['snapshot_id']}"
        assert published["rows"] == head["rows"] == len(table_ids(wh))
        assert "audit/" + v not in table.metadata.refs  # the audit branch went with the publish
        # the gate and the report read the staged version, their evidence in the run's folder
        evidence = airflow.root.root / "_runs" / v
        verdict = json.loads((evidence / "quality" / "gate.json").read_text())
        assert verdict["success"] and verdict["dataset_dir"] == published["reference"]
        assert (evidence / "report" / "report.html").is_file()
        assert airflow.root.versions() == [] and airflow.root.current() is None  # no version folder
        assert not (airflow.root.root / "_candidates").exists()
        ledger = json.loads((airflow.root.root / "_ledger" / "segments.json").read_text())
        assert {e["version"] for e in ledger.values()} <= {r["run_id"] for r in versions(table)}
        return v, published, result

    # night 1: no table yet; the night creates it
    (inbox / "segment-0001.warc.gz").symlink_to(samples(shared_data, "dolma-sample-0001.warc.gz"))
    night1, pub1, result = night()
    assert [r["run_id"] for r in versions(wh.table("web_curated"))] == [night1]
    assert result["events"] == [pub1]  # the web_curated Asset event names the published snapshot
    ids1 = table_ids(wh)
    manifest1 = open_version(f"iceberg:web_curated@{night1}", wh).manifest
    manifest1.check()
    assert manifest1.stages[-1].stage == STAGE and manifest1.rows == len(ids1)

    # night 2: a near copy of a night-1 document and fresh documents; the band index table is rebuilt from
    # the table's live version (night 1) first
    planted, original = plant_near_copy_from_table(wh, night1, ids1, inbox / "segment-0002.jsonl")
    append_to_segment(inbox / "segment-0002.jsonl", real_docs(shared_data, 30))
    night2, pub2, result = night()
    ids2 = table_ids(wh)
    assert ids1 < ids2 and planted not in ids2 and original in ids2
    assert table_ids(wh, night1) == ids1  # time travel: night 1 as it was
    m2 = open_version(f"iceberg:web_curated@{night2}", wh).manifest
    m2.check()
    assert m2.stages[-1].stage == STAGE and m2.base_rows == len(ids1)
    assert m2.rows == len(ids2) == len(ids1) + m2.stages[-1].rows_kept
    history = [(v["run_id"], v["operation"]) for v in versions(wh.table("web_curated"))]
    assert history == [(night1, "append"), (night2, "append")]
    delta = Manifest.read(airflow.root.root / "_deltas" / night2)
    assert delta.extra["near_dedup"]["index_commit"]["run_id"] == night2
    # the band index table was rebuilt from the table's live version, night 1
    assert delta.config["near_dedup"]["index_table_rebuild_from"] == f"iceberg:web_curated@{night1}"
    rejects = pq.read_table(airflow.root.root / "_deltas" / night2 / "rejects").to_pylist()
    assert [(r["reject_reason"], r["reject_detail"]) for r in rejects if r["id"] == planted] == [
        ("near_duplicate", f"kept {original}")
    ]
    index_history = [(v["run_id"], v["operation"]) for v in versions(wh.table(INDEX))]
    assert index_history == [(f"rebuild/{night2}", "append"), (night2, "append")], index_history
    assert len(result["events"]) == 2 and result["events"][-1] == pub2


def plant_near_copy_from_table(wh: Warehouse, run: str, among: set[str], path):
    """plant_near_copy over the table version's files (there is no version folder to read)."""
    version = open_version(f"iceberg:web_curated@{run}", wh)
    scratch = path.parent.parent / "planted-from"
    (scratch / "data").mkdir(parents=True, exist_ok=True)
    rows = pa.concat_tables([pq.read_table(f, columns=["id", "text"]) for f in version.files])
    pq.write_table(rows, scratch / "data" / "part-0.parquet")
    return plant_near_copy(scratch, among, path)


def test_web_curation_cannot_replace_a_table_stored_corpus(airflow, shared_data):
    """mode replace is refused at plan time (a table's versions are rolled back, not replaced): nothing
    moves."""
    wh = airflow.warehouse
    before = versions(wh.table("web_curated")) if wh.exists("web_curated") else []
    result = airflow(
        "web_curation", {"input_globs": [samples(shared_data, "whirlwind.warc.gz")], "mode": "replace"}
    )
    assert result["state"] == "failed" and result["tasks"]["plan"] == "failed", result["tasks"]
    assert "tables rollback --table web_curated" in result["log"]
    assert {result["tasks"][t] for t in ("curate", "append", "publish")} == {"upstream_failed"}
    assert (versions(wh.table("web_curated")) if wh.exists("web_curated") else []) == before
    assert result["tasks"]["writer_unlock"] == "success"
