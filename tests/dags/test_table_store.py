"""The table store's planning pieces (dags/lib/table_store.py) without Spark or Airflow: which store, what a
reader of the corpus is given, which version a run builds on. The DAG runs are in test_dags_table_store.py."""

from __future__ import annotations

import pytest
from tables_helpers import real_docs, to_table, write_files

from curation.tables import TablesConfig, Warehouse
from curation.tables.commit import commit_version
from dags.lib.table_store import corpus_reference, corpus_store, published_run


def test_the_store_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("PHI_CORPUS_STORE", raising=False)
    assert corpus_store() == "folders" and corpus_reference("web_curated", tmp_path) == str(tmp_path)
    monkeypatch.setenv("PHI_CORPUS_STORE", "table")
    with pytest.raises(ValueError, match="PHI_CORPUS_STORE=table but no table catalog is configured"):
        corpus_store()
    monkeypatch.setenv("PHI_ICEBERG_WAREHOUSE", str(tmp_path / "warehouse"))
    assert corpus_reference("web_curated", tmp_path) == "iceberg:web_curated"
    monkeypatch.setenv("PHI_CORPUS_STORE", "tables")
    with pytest.raises(ValueError, match="PHI_CORPUS_STORE='tables': expected one of folders, table"):
        corpus_store()


def test_a_run_builds_on_the_tables_live_version(monkeypatch, tmp_path, shared_data):
    monkeypatch.setenv("PHI_ICEBERG_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.delenv("PHI_ICEBERG_CATALOG_URI", raising=False)
    wh = Warehouse(TablesConfig.from_env())
    assert published_run("web_curated", "n1") is None  # no table yet
    docs = real_docs(shared_data, 6)
    table = wh.ensure("web_curated", to_table(docs).schema)
    assert published_run("web_curated", "n1") is None  # no snapshot yet
    for k, run in enumerate(("n1", "n2")):
        paths = write_files(table, run, [docs[3 * k : 3 * k + 3]])
        commit_version(table, paths, run, {}, mode="append")
        table.refresh()
    assert published_run("web_curated", "n3") == "n2"
    assert published_run("web_curated", "n2") == "n1"  # a re-planned run that published: its base


def test_a_night_staged_on_another_version_than_planned_is_not_published(monkeypatch, tmp_path, shared_data):
    """Main moved between plan and append (an operator's rollback, a manual append): the night was
    near-deduplicated against the planned version, so publishing it is refused and main stays."""
    from curation.tables.read import versions
    from dags.lib.table_store import BaseMoved, publish_table_run

    monkeypatch.setenv("PHI_ICEBERG_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.delenv("PHI_ICEBERG_CATALOG_URI", raising=False)
    wh = Warehouse(TablesConfig.from_env())
    docs = real_docs(shared_data, 6)
    table = wh.ensure("web_curated", to_table(docs).schema)
    for k, run in enumerate(("n1", "n2")):
        commit_version(table, write_files(table, run, [docs[2 * k : 2 * k + 2]]), run, {}, mode="append")
        table.refresh()
    head = table.current_snapshot().snapshot_id
    staged = write_files(table, "n3", [docs[4:]])
    commit_version(table, staged, "n3", {}, mode="append", parent=head, stage=True)
    planned = {"table": "web_curated", "version": "n3", "base_version": "n1"}  # planned before n2 landed
    with pytest.raises(BaseMoved, match="planned on version n1 but staged on n2"):
        publish_table_run(planned)
    assert wh.table("web_curated").current_snapshot().snapshot_id == head
    assert [v["run_id"] for v in versions(wh.table("web_curated"))] == ["n1", "n2"]
