"""The whole curation -> nightly -> mixture path through Iceberg tables, on a local warehouse and on an S3
warehouse (moto's server, the real S3 protocol): the same documents, counts, rejects and mixture build.

Two real crawl slices (the Dolma CC sample) are curated once by `python -m curation run` (folder versions, as
the DAGs write them); each warehouse then gets night 1 as the table's first snapshot plus its rejects (what
`curation run --table` publishes), night 2 by `python -m curation append --table` (night 2 repeats some of
night 1's documents, which the append rejects as published), and a mixture reading `iceberg:corpus`."""

from __future__ import annotations

import gzip
import hashlib
import json

import pyarrow.parquet as pq
import pytest
from tables_helpers import moto_s3_with_spark, warehouse_config

from curation.cli import main as curation_cli
from curation.contract import Manifest
from curation.tables import TablesConfig, Warehouse, read_arrow, versions
from curation.tables.migrate import publish_rejects, publish_version
from training.mixture.build import build

DOLMA = "webtext_cc2019_dolma_sample/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
MIXTURE = """\
name: from-table
seed: 1
seq_len: 64
heldout_fraction: 0.05
tokenizer:
  train: {vocab_size: 512, sample_documents: 100}
phases:
  - name: p1
    tokens: 20000
    sources:
      - {name: web, dataset: "iceberg:corpus", weight: 1.0, max_epochs: 20}
"""


@pytest.fixture(scope="module")
def curated(spark, shared_data, tmp_path_factory):
    """Night 1 (lines 0-59) as a version of a corpus root, night 2 (lines 60-99 plus 10 of night 1's) as a
    delta: `curation run` folder versions."""
    tmp = tmp_path_factory.mktemp("whole_path")
    lines = gzip.decompress((shared_data / DOLMA).read_bytes()).decode().splitlines()
    slices = {"n1": lines[:60], "n2": lines[60:100] + lines[:10]}
    out = {}
    for night, rows in slices.items():
        crawl = tmp / f"{night}.jsonl.gz"
        crawl.write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
        root = tmp / ("web" if night == "n1" else "_deltas")
        cli = ["run", "--input", str(crawl), "--output", str(root), "--run-id", night]
        assert curation_cli(cli) == 0
        out[night] = root / night
    return out


def _path_on(kind: str, curated, tmp_path, monkeypatch) -> dict:
    cfg: TablesConfig = warehouse_config(kind, tmp_path)
    for key, value in (
        ("PHI_ICEBERG_WAREHOUSE", cfg.warehouse),
        ("PHI_ICEBERG_CATALOG_URI", cfg.resolved_catalog_uri()),
        ("PHI_ICEBERG_CACHE", str(tmp_path / "cache")),
    ):
        monkeypatch.setenv(key, value)
    wh = Warehouse(cfg)
    publish_version(curated["n1"], wh, "corpus")
    publish_rejects(curated["n1"], wh, "corpus_rejects")
    assert curation_cli(["append", "--delta", str(curated["n2"]), "--table", "corpus"]) == 0
    (tmp_path / "mix.yaml").write_text(MIXTURE)
    result = build(tmp_path / "mix.yaml", tmp_path / "build")
    table = wh.table("corpus")
    stages = {
        v["run_id"]: json.loads(
            table.metadata.snapshot_by_id(v["snapshot_id"]).summary.additional_properties["phi.stages"]
        )
        for v in versions(table)
    }
    for per_run in stages.values():
        for stage in per_run:
            stage.pop("seconds", None)
    return {
        "history": [(v["run_id"], v["operation"], v["rows"]) for v in versions(table)],
        "ids": {
            run: sorted(read_arrow(table, run, columns=("id",)).column("id").to_pylist()) for run in stages
        },
        "texts": sorted(read_arrow(table, columns=("text",)).column("text").to_pylist()),
        "stages": stages,
        "rejects": sorted(
            read_arrow(wh.table("corpus_rejects"), columns=("id", "reject_reason")).to_pylist(), key=str
        ),
        "mixture": {
            k: result.manifest["phases"][0]["sources"][0][k] for k in ("content_hash", "documents", "tokens")
        },
        "shards": {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((tmp_path / "build" / "p1").rglob("*"))
            if p.is_file()
        },
    }


@pytest.mark.slow
def test_curation_nightly_mixture_through_tables_is_the_same_on_local_and_s3(
    curated, spark, tmp_path, monkeypatch
):
    local = _path_on("local", curated, tmp_path / "local", monkeypatch)
    (tmp_path / "s3").mkdir()
    with moto_s3_with_spark(tmp_path / "s3", spark):
        remote = _path_on("s3", curated, tmp_path / "s3", monkeypatch)
    assert local == remote

    # and what both hold is the folder versions' content, night 2 minus what night 1 published
    m1, m2 = Manifest.read(curated["n1"]), Manifest.read(curated["n2"])
    n1_ids = sorted(pq.read_table(curated["n1"] / "data", columns=["id"]).column("id").to_pylist())
    n2_ids = set(pq.read_table(curated["n2"] / "data", columns=["id"]).column("id").to_pylist())
    assert local["ids"]["n1"] == n1_ids and len(n1_ids) == m1.rows
    repeated = n2_ids & set(n1_ids)
    assert repeated and set(local["ids"]["n2"]) == set(n1_ids) | n2_ids
    assert [h[:2] for h in local["history"]] == [("n1", "append"), ("n2", "append")]  # n1: nothing to replace
    assert local["history"][1][2] == m1.rows + m2.rows - len(repeated)
    published = local["stages"]["n2"][-1]
    assert published["stage"] == "published_dedup" and published["rows_rejected"] == len(repeated)
    assert len(local["rejects"]) == m1.rejected_rows > 0
    assert local["mixture"]["documents"] > 0 and local["shards"]
