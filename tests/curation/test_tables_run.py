"""`python -m curation run`: the curation job publishes its version folder as before and, with `--table NAME`
or with PHI_ICEBERG_WAREHOUSE set (the table named after the --output folder; curation/tables/publish.py),
the same kept documents as one snapshot of an Iceberg table, tagged with the run id, carrying the manifest's
counts."""

from __future__ import annotations

import gzip
import json
import re

import pyarrow.parquet as pq
import pytest

from curation.cli import main as curation_cli
from curation.contract import DatasetRoot, Manifest
from curation.tables import TablesConfig, Warehouse, read_arrow, versions
from curation.tables.migrate import publish_version

DOLMA = "webtext_cc2019_dolma_sample/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


def _crawl(shared_data, tmp_path, n: int = 40):
    lines = gzip.decompress((shared_data / DOLMA).read_bytes()).decode().splitlines()[:n]
    crawl = tmp_path / "dolma-head.jsonl.gz"
    crawl.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return crawl


@pytest.mark.slow
def test_curation_run_publishes_the_folder_version_and_a_table_snapshot(spark, shared_data, tmp_path, capsys):
    crawl = _crawl(shared_data, tmp_path)
    out, wh = tmp_path / "out", tmp_path / "warehouse"
    assert (
        curation_cli(
            [
                "run",
                "--input",
                str(crawl),
                "--output",
                str(out),
                "--run-id",
                "r1",
                "--table",
                "web",
                "--warehouse",
                str(wh),
            ]
        )
        == 0
    )
    assert re.search(r"version r1 is snapshot \d+ of table phi.web\n", capsys.readouterr().out)
    assert DatasetRoot(out).current() == "r1"  # the folder contract as without --table

    table = Warehouse(TablesConfig(warehouse=str(wh))).table("web")
    m = Manifest.read(out / "r1")
    want = sorted(pq.read_table(out / "r1" / "data", columns=["id"]).column("id").to_pylist())
    assert [v["run_id"] for v in versions(table)] == ["r1"] and m.rows == len(want) > 0
    assert sorted(read_arrow(table, columns=("id",)).column("id").to_pylist()) == want
    props = table.metadata.snapshot_by_id(table.metadata.refs["r1"].snapshot_id).summary.additional_properties
    assert json.loads(props["phi.stages"]) == [s.model_dump(exclude_none=True) for s in m.stages]
    assert props["phi.rejected-rows"] == str(m.rejected_rows) and props["phi.config-hash"] == m.config_hash
    # the table's file is a hard link of the version's (local warehouse): no data copied
    inodes = {p.stat().st_ino for p in (out / "r1" / "data").glob("*.parquet")}
    assert {p.stat().st_ino for p in (wh / "phi" / "web" / "data" / "r1").rglob("*.parquet")} == inodes
    # the run's rejects: one APPEND snapshot of table web_rejects, the same rows as the version's rejects/
    rejects = Warehouse(TablesConfig(warehouse=str(wh))).table("web_rejects")
    cols = ("id", "reject_stage", "reject_reason", "reject_detail")
    folder = pq.read_table(out / "r1" / "rejects", columns=list(cols)).to_pylist()
    assert [v["run_id"] for v in versions(rejects)] == ["r1"] and len(folder) == m.rejected_rows > 0
    assert sorted(read_arrow(rejects, columns=cols).to_pylist(), key=str) == sorted(folder, key=str)
    again = publish_version(out / "r1", Warehouse(TablesConfig(warehouse=str(wh))), "web")
    assert (
        again.mode == "skipped"
        and len(Warehouse(TablesConfig(warehouse=str(wh))).table("web").metadata.snapshots) == 1
    )


@pytest.mark.slow
def test_with_the_catalog_configured_every_run_is_a_snapshot_once(spark, shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("PHI_ICEBERG_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.delenv("PHI_ICEBERG_CATALOG_URI", raising=False)
    crawl, out = _crawl(shared_data, tmp_path), tmp_path / "web_curated"
    for _ in range(2):  # a retried run: the folder is replaced, the table gets no second snapshot
        assert curation_cli(["run", "--input", str(crawl), "--output", str(out), "--run-id", "r1"]) == 0
    table = Warehouse(TablesConfig.from_env()).table("web_curated")
    want = sorted(pq.read_table(out / "r1" / "data", columns=["id"]).column("id").to_pylist())
    assert [v["run_id"] for v in versions(table)] == ["r1"] and "r1" in table.metadata.refs
    assert sorted(read_arrow(table, "r1", columns=("id",)).column("id").to_pylist()) == want
