"""nightly_refresh with a table catalog configured (as in the demo, the stack and compose): each published
version is also a snapshot of table `web_curated`, and near-dedup's band index is the append-only table
`web_curated_near_index` (dags/lib/near_index.py): rebuilt once from the base corpus version by the curate
job, then one APPEND of the night's kept documents per night, committed only after the gate. `dag.test()`
runs in fresh interpreters, Spark through SparkSubmitOperator (local[2]), SQLite catalog."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagtest_helpers import DagTest
from tables_helpers import real_docs
from test_dags_run import ids_of, plant_near_copy, samples

from curation.contract import Manifest
from curation.tables import TablesConfig, Warehouse, read_arrow, versions

pytestmark = pytest.mark.slow
INDEX = "web_curated_near_index"


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    run = DagTest.with_spark(tmp_path_factory, tables=True)
    run.warehouse = Warehouse(TablesConfig(warehouse=str(run.data / "_warehouse")))
    return run


def append_to_segment(path: Path, docs: list[dict]) -> None:
    with path.open("a") as f:
        f.write("".join(json.dumps({k: d[k] for k in ("id", "text", "url")}) + "\n" for d in docs))


def test_nightly_refresh_keeps_its_band_index_as_an_append_only_table(airflow, shared_data, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    conf = {"segment_globs": [str(inbox / "*")]}

    def night(segment: str) -> tuple[str, Manifest, str]:
        result = airflow("nightly_refresh", conf)
        assert set(result["tasks"].values()) == {"success"}, result["log"][-4000:]
        v = airflow.root.current()
        m = Manifest.read(airflow.root.version_dir(v))
        m.check()
        assert Manifest.read(airflow.root.root / "_deltas" / v).inputs == [str(inbox / segment)]
        # the version is the corpus table's current snapshot, with the same documents
        corpus = airflow.warehouse.table("web_curated")
        assert versions(corpus)[-1]["run_id"] == v and versions(corpus)[-1]["current"]
        assert set(read_arrow(corpus, columns=("id",)).column("id").to_pylist()) == ids_of(
            airflow.root.version_dir(v)
        )
        assert not (airflow.root.root / "_near_index").exists()  # no folder index in table mode
        return v, m, result["log"]

    # night 1: an empty corpus, no base: the night is deduplicated alone and no index is staged
    (inbox / "segment-0001.warc.gz").symlink_to(samples(shared_data, "dolma-sample-0001.warc.gz"))
    night1, m1, log = night("segment-0001.warc.gz")
    assert m1.base_version is None and not airflow.warehouse.exists(INDEX)
    assert "band index table web_curated_near_index not updated" in log, log[-4000:]
    ids1 = ids_of(airflow.root.version_dir(night1))

    # night 2: the table does not exist, so the curate job first rebuilds it from night 1's version; the
    # night brings new documents and a near copy of a night-1 document, which is dropped
    planted, original = plant_near_copy(airflow.root.version_dir(night1), ids1, inbox / "segment-0002.jsonl")
    append_to_segment(inbox / "segment-0002.jsonl", real_docs(shared_data, 30))
    night2, m2, log = night("segment-0002.jsonl")
    used = m2.extra["near_dedup_index"]
    assert used["rebuilt"] and "does not exist yet" in used["reason"] and used["root"] == f"iceberg:{INDEX}"
    ids2 = ids_of(airflow.root.version_dir(night2))
    assert original in ids2 and planted not in ids2 and ids1 < ids2
    rejects = pq.read_table(airflow.root.root / "_deltas" / night2 / "rejects").to_pylist()
    assert [(r["reject_reason"], r["reject_detail"]) for r in rejects if r["id"] == planted] == [
        ("near_duplicate", f"kept {original}")
    ]
    index = airflow.warehouse.table(INDEX)
    history = [(v["run_id"], v["operation"]) for v in versions(index)]
    # (the rebuild is an OVERWRITE, recorded as an append on a table without rows)
    assert history == [(f"rebuild/{night2}", "append"), (night2, "append")], history
    assert set(read_arrow(index, columns=("id",)).column("id").to_pylist()) == ids2
    # the index moved only after the corpus version went live
    assert (
        0
        <= log.find(f"published {airflow.root.version_dir(night2)} (gate passed")
        < log.find(f"band index table {INDEX} promoted")
    )

    # night 3: a near copy of a night-2 document is dropped against the rows night 2 appended (no rebuild)
    planted3, original3 = plant_near_copy(
        airflow.root.version_dir(night2), ids2 - ids1, inbox / "segment-0003.jsonl"
    )
    night3, m3, _ = night("segment-0003.jsonl")
    assert m3.extra["near_dedup_index"]["rebuilt"] is False and m3.extra["near_dedup_index"]["base"] == night2
    assert planted3 not in ids_of(airflow.root.version_dir(night3)) and original3 in ids2
    index = airflow.warehouse.table(INDEX)
    # one APPEND per night, the rebuild expired (the newest two snapshots are kept)
    assert [(v["run_id"], v["operation"]) for v in versions(index)] == [
        (night2, "append"),
        (night3, "append"),
    ]
    assert versions(index)[-1]["rows"] == versions(index)[0]["rows"]  # night 3 kept no new document
