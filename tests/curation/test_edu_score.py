"""Scoring with the edu classifier: Spark (mapInArrow, model shipped, loaded once per worker) equals local
scoring document by document; the EduScore step rejects below the threshold with the reason; standalone
scoring publishes with the contract and records the model version; bad models are clear errors."""

from __future__ import annotations

import gzip
import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from curation.contract import (
    DOC_COLUMNS,
    DOC_FIELDS,
    DatasetRoot,
    Manifest,
    StageCounts,
    iter_parquet_files,
    now_iso,
)
from curation.edu.labels import read_label_file
from curation.edu.registry import ModelRegistry
from curation.edu.score import (
    BELOW_THRESHOLD,
    MISSING_TEXT,
    EduConfig,
    EduScore,
    score_dataset,
    score_frame,
    ship_model,
)
from curation.edu.scorer import EduScorer
from curation.edu.train import EduTrainConfig, FastTextParams
from curation.edu.workflow import train_and_register
from curation.steps.base import DocBatch

DCLM = "quality_labels_dclm_human/majority_data_disputed.jsonl"
DOLMA = "webtext_cc2019_dolma_sample/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


@pytest.fixture(scope="module")
def registry(shared_data, tmp_path_factory):
    """A promoted model trained on the DCLM human quality labels (English, scores 0/1)."""
    reg = ModelRegistry(tmp_path_factory.mktemp("edu_registry"))
    labels = read_label_file(shared_data / DCLM, max_score=1)
    cfg = EduTrainConfig(fasttext=FastTextParams(dim=16, bucket=20_000), max_score=1, threshold=0.5)
    ref = train_and_register(labels, cfg, reg, human_labels=None)
    reg.promote(ref.version)
    return reg


@pytest.fixture(scope="module")
def dolma_docs(shared_data):
    with gzip.open(shared_data / DOLMA, "rt") as f:
        rows = [json.loads(line) for line in f]
    docs = [
        {
            "id": r["id"],
            "text": r["text"],
            "url": None,
            "title": None,
            "date": r.get("created"),
            "crawl_id": "CC-MAIN-2019-30",
            "source_format": "jsonl",
            "source_file": DOLMA,
            "lang": None,
            "lang_score": None,
        }
        for r in rows
    ]
    # two defective rows: nothing to score
    docs += [{**docs[0], "id": "no-text", "text": None}, {**docs[1], "id": "blank-text", "text": "  \n "}]
    return docs


@pytest.fixture(scope="module")
def input_dataset(dolma_docs, tmp_path_factory):
    """The Dolma sample (+2 defective rows) published as a contract dataset in two parquet files."""
    root = DatasetRoot(tmp_path_factory.mktemp("web") / "web_curated")
    root.root.mkdir(parents=True)
    staging = root.staging_dir("v1")
    (staging / "data").mkdir()
    table = pa.Table.from_pylist(dolma_docs, schema=pa.schema(DOC_FIELDS))
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), staging / "data" / "part-0.parquet")
    pq.write_table(table.slice(half), staging / "data" / "part-1.parquet")
    Manifest(
        dataset="web_curated",
        version="v1",
        created_at=now_iso(),
        code_version="test",
        inputs=[DOLMA],
        config={},
        config_hash="x",
        rows=table.num_rows,
        columns=DOC_COLUMNS,
        stages=[
            StageCounts(stage="ingest", rows_in=table.num_rows, rows_kept=table.num_rows, rows_rejected=0)
        ],
    ).write(staging)
    root.publish(staging, "v1")
    return root.root


def _read(version_dir, part):
    return pa.concat_tables([pq.read_table(p) for p in iter_parquet_files(version_dir, part)])


def test_spark_scoring_equals_local_scoring(spark, registry, dolma_docs, tmp_path):
    ref = registry.resolve()
    ship_model(spark, ref, tmp_path / "ship")
    df = spark.createDataFrame(
        pa.Table.from_pylist(dolma_docs, schema=pa.schema(DOC_FIELDS)).to_pandas()
    ).repartition(2)
    got = score_frame(df, ref, threshold=None).toArrow()
    by_id = {r["id"]: r for r in got.to_pylist()}
    assert len(by_id) == len(dolma_docs)

    local = EduScorer(ref)
    with_text = [d for d in dolma_docs if d["text"] and not d["text"].isspace()]
    scores, ints = local.score([d["text"] for d in with_text])
    for d, s, k in zip(with_text, scores.tolist(), ints.tolist()):
        row = by_id[d["id"]]
        assert row["edu_score"] == s and row["edu_int"] == k, d["id"]  # bit-identical, document by document
        assert row["edu_model"] == ref.version and row["reject_stage"] is None
        assert row["text"] == d["text"]  # input columns pass through
    for d in dolma_docs:
        if d not in with_text:  # the sample has 27 empty documents, plus our two defective rows
            assert by_id[d["id"]]["reject_reason"] == MISSING_TEXT and by_id[d["id"]]["edu_score"] is None
    assert 0.0 <= min(scores) < max(scores) <= 1.0 and len(set(scores.tolist())) > 100


def test_step_scores_active_rows_and_rejects_below_threshold(registry, dolma_docs):
    docs = [d for d in dolma_docs if d["text"] and not d["text"].isspace()][:40]
    batch = DocBatch({k: [d[k] for d in docs] for k in DOC_COLUMNS})
    batch.reject(0, "langid", "lang_not_allowed")  # an earlier stage's reject is left alone
    scores, _ = EduScorer(registry.resolve()).score([d["text"] for d in docs])
    threshold = float(np.median(scores))
    step = EduScore(EduConfig(enabled=True, registry=str(registry.root), threshold=threshold))
    step.setup()
    step.apply(batch)
    assert batch["reject_stage"][0] == "langid" and batch["edu_score"][0] is None
    for i in range(1, len(docs)):
        assert batch["edu_score"][i] == pytest.approx(scores[i], abs=0)
        below = scores[i] < threshold
        assert (batch["reject_reason"][i] == BELOW_THRESHOLD) == below
        if below:
            assert batch["reject_stage"][i] == "edu" and "edu_score=" in batch["reject_detail"][i]
    out = batch.to_arrow(pa.schema([*DOC_FIELDS, *EduScore.output_fields]))
    assert out.column("edu_model").to_pylist()[1:] == [registry.promoted()] * (len(docs) - 1)


def test_score_dataset_publishes_with_contract(spark, registry, input_dataset, dolma_docs, tmp_path):
    ref = registry.resolve()
    result = score_dataset(
        spark, input_dataset, tmp_path / "scored", registry=str(registry.root), threshold=0.5, run_id="s1"
    )
    m = result.manifest
    assert (
        result.version_dir == tmp_path / "scored" / "s1"
        and DatasetRoot(tmp_path / "scored").current() == "s1"
    )
    assert m.extra["edu_model_version"] == ref.version and m.config["model"] == ref.version
    assert m.dataset == "web_curated_edu" and m.inputs == [str(input_dataset / "v1")]
    data, rejects = _read(result.version_dir, "data"), _read(result.version_dir, "rejects")
    assert data.num_rows == m.rows and rejects.num_rows == m.rejected_rows
    assert m.rows + m.rejected_rows == 699
    empty = sum(1 for d in dolma_docs if not d["text"] or d["text"].isspace())
    assert empty == 27 + 2
    assert m.stages[0].reasons == {BELOW_THRESHOLD: m.rejected_rows - empty, MISSING_TEXT: empty}
    assert pc.min(data["edu_score"]).as_py() >= 0.5
    below = rejects.filter(pc.equal(rejects["reject_reason"], BELOW_THRESHOLD))
    assert pc.max(below["edu_score"]).as_py() < 0.5
    assert set(data["edu_model"].to_pylist()) == {ref.version}
    assert "reject_stage" not in data.column_names and data.column_names[: len(DOC_COLUMNS)] == DOC_COLUMNS
    # rescoring a scored dataset replaces the edu columns instead of duplicating them
    again = score_dataset(spark, result.version_dir, tmp_path / "rescored", registry=str(registry.root))
    assert again.manifest.rows == m.rows and again.manifest.rejected_rows == 0


def test_cli_score_and_list(spark, registry, input_dataset, tmp_path, capsys):
    from curation.cli import main

    assert main(["edu", "list", "--registry", str(registry.root)]) == 0
    assert registry.promoted() + " *" in capsys.readouterr().out
    assert (
        main(
            [
                "edu",
                "score",
                "--registry",
                str(registry.root),
                "--input",
                str(input_dataset),
                "--output",
                str(tmp_path / "o"),
                "--run-id",
                "c1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "edu" in out and "-> " in out and (tmp_path / "o" / "c1" / "manifest.json").is_file()
    assert (
        main(
            [
                "edu",
                "score",
                "--registry",
                str(registry.root),
                "--model",
                "edu-missing",
                "--input",
                str(input_dataset),
                "--output",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "edu model version 'edu-missing' not found" in capsys.readouterr().err


def test_bad_model_is_a_clear_error_before_any_work(spark, registry, input_dataset, tmp_path):
    ref = registry.resolve()
    broken = tmp_path / "reg"
    shutil.copytree(ref.dir, broken / ref.version)
    (broken / ref.version / "model.bin").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="is corrupt"):
        score_dataset(spark, input_dataset, tmp_path / "out", model=ref.version, registry=str(broken))
    with pytest.raises(FileNotFoundError, match="no promoted edu model"):
        EduScore(EduConfig(enabled=True, registry=str(tmp_path / "empty"))).prepare_driver(
            spark, tmp_path / "w"
        )
    assert not (tmp_path / "out").exists() or not DatasetRoot(tmp_path / "out").versions()


def test_prepare_driver_pins_the_resolved_version(spark, registry, tmp_path):
    from curation.config import CurationConfig
    from curation.pipeline import build_python_steps

    cfg = CurationConfig.model_validate(
        {"edu": {"enabled": True, "registry": str(registry.root), "threshold": 0.5}}
    )
    steps = build_python_steps(cfg)
    names = [s.name for s in steps]
    assert names.index("edu") == names.index("text_hash") - 1  # just before TextHash
    edu = steps[names.index("edu")]
    edu.prepare_driver(spark, tmp_path / "work")
    assert cfg.edu.model == str(registry.resolve().dir.resolve())  # workers rebuild from this config
    assert (tmp_path / "work" / f"edu-{registry.promoted()}.bin").is_file()
    assert "edu" not in [s.name for s in build_python_steps(CurationConfig())]  # off by default


@pytest.mark.slow
def test_pipeline_run_with_edu_stage(spark, registry, shared_data, tmp_path):
    """The whole curation pass on Spark local[2] with the edu stage on: scores on kept rows, drops in
    rejects with the reason, the manifest names the pinned model."""
    from curation.config import CurationConfig
    from curation.pipeline import run

    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(shared_data / DOLMA, inputs / "dolma.jsonl.gz")
    cfg = CurationConfig.model_validate(
        {
            "edu": {"enabled": True, "registry": str(registry.root), "threshold": 0.5},
            "decontam": {"enabled": False},
        }
    )
    result = run([str(inputs / "*")], tmp_path / "out", cfg, spark=spark, run_id="e1")
    stages = {c.stage: c for c in result.counts}
    assert set(stages["edu"].reasons) <= {BELOW_THRESHOLD}
    assert result.manifest.config["edu"]["model"].endswith(registry.promoted())
    data, rejects = _read(result.version_dir, "data"), _read(result.version_dir, "rejects")
    assert data.num_rows > 0 and data["edu_score"].null_count == 0
    assert pc.min(data["edu_score"]).as_py() >= 0.5
    edu_rej = rejects.filter(pc.equal(rejects["reject_stage"], "edu"))
    assert edu_rej.num_rows == stages["edu"].rows_rejected > 0
    # the pipeline's scores equal local scoring of the same texts
    local, _ = EduScorer(registry.resolve()).score(data["text"].to_pylist())
    assert data["edu_score"].to_pylist() == local.tolist()


def test_scored_version_is_a_table_snapshot_with_the_catalog_configured(
    spark, registry, input_dataset, tmp_path, monkeypatch
):
    """With PHI_ICEBERG_WAREHOUSE set, `edu score` into `web_edu/` also publishes table `web_edu`: the kept
    ids, the edu columns, below-threshold rows in `web_edu_rejects`; a rerun of the run id adds nothing."""
    from curation.tables import TablesConfig, Warehouse, read_arrow, versions

    monkeypatch.setenv("PHI_ICEBERG_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.delenv("PHI_ICEBERG_CATALOG_URI", raising=False)
    for _ in range(2):
        result = score_dataset(
            spark,
            input_dataset,
            tmp_path / "web_edu",
            registry=str(registry.root),
            threshold=0.5,
            run_id="s1",
        )
    wh = Warehouse(TablesConfig.from_env())
    table, rejects = wh.table("web_edu"), wh.table("web_edu_rejects")
    assert [v["run_id"] for v in versions(table)] == ["s1"] and "s1" in table.metadata.refs
    scored = read_arrow(table, "s1", columns=("id", "edu_score"))
    folder_ids = _read(result.version_dir, "data")["id"].to_pylist()
    assert sorted(scored.column("id").to_pylist()) == sorted(folder_ids)
    assert pc.min(scored["edu_score"]).as_py() >= 0.5
    assert read_arrow(rejects, "s1", columns=("id",)).num_rows == result.manifest.rejected_rows > 0
    assert [v["run_id"] for v in versions(rejects)] == ["s1"]
