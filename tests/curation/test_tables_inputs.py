"""Table versions as inputs of the commands that read documents: `iceberg:<table>[@<run id | snapshot id>]`
through the one input resolver (`curation edu score --input`, `curation dedup --input`), the DuckDB text
source (`synthesis label-edu --input`) and the version a DAG run pins (edu_classifier). The same rows as the
version folder the table mirrors. Real documents (the dolma sample), SQLite catalog on a temporary
warehouse."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from tables_helpers import real_docs, to_table

from curation.contract import DatasetRoot, StageCounts
from curation.dataset_version import pin_dataset_version
from curation.edu.text_source import open_text_source
from curation.ingest.inputs import resolve_input
from curation.tables import TablesConfig, Warehouse, versions
from curation.tables.catalog import TableNotFound


@pytest.fixture
def web(tmp_path, monkeypatch, shared_data):
    """Root `web` with versions v1 (20 documents) and v2 (30), each published to table `web` too."""
    monkeypatch.setenv("PHI_ICEBERG_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.delenv("PHI_ICEBERG_CATALOG_URI", raising=False)
    root = DatasetRoot(tmp_path / "web")
    for version, n in (("v1", 20), ("v2", 30)):
        docs = real_docs(shared_data, n)
        with root.building(version) as b:
            (b.staging / "data").mkdir()
            pq.write_table(to_table(docs), b.staging / "data" / "part-00000.parquet")
            b.manifest(
                dataset="web",
                inputs=["dolma sample"],
                config={},
                rows=n,
                rejected_rows=0,
                stages=[StageCounts(stage="quality", rows_in=n, rows_kept=n, rows_rejected=0)],
                columns=to_table(docs).schema.names,
            )
    return root, Warehouse(TablesConfig.from_env())


def _ids(files) -> list[str]:
    return sorted(i for f in files for i in pq.read_table(f, columns=["id"]).column("id").to_pylist())


def test_the_resolver_reads_a_table_version_pinned_to_its_snapshot(web):
    root, wh = web
    history = {v["run_id"]: v["snapshot_id"] for v in versions(wh.table("web"))}
    for ref, run in (("iceberg:web", "v2"), ("iceberg:web@v1", "v1"), (f"iceberg:web@{history['v1']}", "v1")):
        inp = resolve_input(ref)
        assert inp.is_plain and inp.formats == ["parquet"]
        assert (inp.version, inp.version_uri) == (run, f"iceberg:web@{history[run]}")
        assert _ids(f for f, _ in inp.files) == _ids(root.version_dir(run).glob("data/*.parquet"))
    with pytest.raises(TableNotFound, match="nope"):
        resolve_input("iceberg:nope")


def test_text_sources_and_pinned_versions_read_tables(web):
    root, wh = web
    with open_text_source("iceberg:web@v1", "label-edu input") as src:
        from_table = src.con.sql(f"SELECT id, text FROM {src.table} ORDER BY id").fetchall()
    with open_text_source(root.version_dir("v1"), "label-edu input") as src:
        assert from_table == src.con.sql(f"SELECT id, text FROM {src.table} ORDER BY id").fetchall()
    assert len(from_table) == 20
    # what edu_classifier labels and scores: the snapshot current when it planned, not whatever comes later
    pinned = pin_dataset_version("iceberg:web")
    assert pinned == f"iceberg:web@{wh.table('web').current_snapshot().snapshot_id}"
    assert pin_dataset_version(pinned) == pinned and pin_dataset_version(root.root) == str(
        root.version_dir("v2")
    )
    with pytest.raises(TableNotFound):
        pin_dataset_version("iceberg:missing")
