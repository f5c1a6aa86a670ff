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
