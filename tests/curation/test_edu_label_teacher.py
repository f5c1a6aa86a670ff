"""Teacher labelling for the edu classifier: the score parser on real SmolLM2 answers (malformed ones are
recorded as unparseable, never guessed), seeded stratified sampling, and the resumable labelling batch
against the real llama.cpp server."""

from __future__ import annotations

import ast
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.contract import DOC_FIELDS, DatasetRoot, Manifest, StageCounts, iter_parquet_files, now_iso
from synthesis.label_edu import (
    LabelEduConfig,
    build_request,
    parse_edu_score,
    run_label_edu,
    sample_documents,
)

DOLMA = "webtext_cc2019_dolma_sample/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


def test_parser_on_real_smollm2_answers(fixtures):
    """Twelve real answers of the embedded teacher to the free-text rubric prompt. SmolLM2-135M mostly
    echoes the page or invents scales ("85%", "10 out of 5", "Score: 80 ... 1 point"): every one must come
    out unparseable with the reason, none may be turned into a 0-5 score."""
    rows = [json.loads(line) for line in (fixtures / "edu" / "teacher_outputs_smollm2.jsonl").open()]
    assert len(rows) == 12
    reasons = []
    for r in rows:
        parsed = parse_edu_score(r["raw_response"])
        assert parsed.score == r["expected_score"] and parsed.error == r["expected_error"], r["raw_response"][
            :200
        ]
        reasons.append(parsed.error.split(" ")[0])
    assert all(r["expected_score"] is None for r in rows)
    assert sorted(set(reasons)) == ["conflicting", "no", "score"]  # conflicting / no score / out of range


@pytest.mark.parametrize(
    "answer, score, method",
    [
        ('{"rationale": "Explains photosynthesis with a worked example.", "score": 4}', 4, "json"),
        ('Sure!\n```json\n{"score": 2, "reason": "basic facts"}\n```', 2, "json"),
        ("The page introduces fractions clearly.\nEducational score: 3", 3, "score_line"),
        ("Mostly ads.\n**Educational score: 1**", 1, "score_line"),
        ("Score: 5/5 - excellent tutorial", 5, "score_line"),
        ("2", 2, "bare_number"),
        ('{"score": 7}', None, "json"),
        ('{"score": 2.5}', None, "json"),
        ('{"score": 2} and later {"score": 4}', None, "json"),
        ("Educational score: 3\nOn reflection, educational score: 4", None, "score_line"),
        ("It is a good page, maybe three points.", None, None),
        ("", None, None),
    ],
)
def test_parser_formats(answer, score, method):
    parsed = parse_edu_score(answer)
    assert (parsed.score, parsed.method) == (score, method)
    assert (parsed.error is None) == (score is not None)


def test_rationale_is_kept():
    assert parse_edu_score('{"rationale": "clear steps", "score": 3}').rationale == "clear steps"
    assert parse_edu_score("Has exercises.\nEducational score: 4").rationale == "Has exercises."


@pytest.fixture(scope="module")
def dolma_dataset(shared_data, tmp_path_factory):
    """The Dolma sample as a curated dataset with its real URLs (from the Dolma metadata)."""
    rows = []
    with gzip.open(shared_data / DOLMA, "rt") as f:
        lines = f.readlines()
    for line in lines:
        r = json.loads(line)
        meta = ast.literal_eval(r["metadata"]) if isinstance(r["metadata"], str) else r["metadata"]
        rows.append(
            {
                "id": r["id"],
                "text": r["text"],
                "url": meta.get("warc_url"),
                "title": None,
                "date": r.get("created"),
                "crawl_id": "CC-MAIN-2019-30",
                "source_format": "jsonl",
                "source_file": DOLMA,
                "lang": None,
                "lang_score": None,
            }
        )
    root = DatasetRoot(tmp_path_factory.mktemp("web") / "web_curated")
    root.root.mkdir(parents=True)
    staging = root.staging_dir("v1")
    (staging / "data").mkdir()
    pq.write_table(
        pa.Table.from_pylist(rows, schema=pa.schema(DOC_FIELDS)), staging / "data" / "part-0.parquet"
    )
    Manifest(
        dataset="web_curated",
        version="v1",
        created_at=now_iso(),
        code_version="test",
        inputs=[DOLMA],
        config={},
        config_hash="x",
        rows=len(rows),
        stages=[StageCounts(stage="ingest", rows_in=len(rows), rows_kept=len(rows), rows_rejected=0)],
    ).write(staging)
    root.publish(staging, "v1")
    return root.root


def test_sampling_is_stratified_and_seeded(dolma_dataset):
    sample = sample_documents(dolma_dataset, 60, seed=1, length_buckets=[500, 1500, 4000])
    assert sample.num_rows == 60 and len(set(sample.column("id").to_pylist())) == 60
    strata = list(zip(sample.column("domain").to_pylist(), sample.column("length_bucket").to_pylist()))
    everything = sample_documents(dolma_dataset, 10_000, seed=1, length_buckets=[500, 1500, 4000])
    all_strata = set(
        zip(everything.column("domain").to_pylist(), everything.column("length_bucket").to_pylist())
    )
    assert everything.num_rows == 670  # 697 documents minus 27 with empty text
    # round-robin: the first k documents come from k different strata (as long as there are k strata)
    k = min(60, len(all_strata))
    assert len(set(strata[:k])) == k
    assert "unknown" not in {d for d, _ in strata}  # domains come from the real URLs
    assert sample.equals(sample_documents(dolma_dataset, 60, seed=1, length_buckets=[500, 1500, 4000]))
    other = sample_documents(dolma_dataset, 60, seed=2, length_buckets=[500, 1500, 4000])
    assert other.column("id").to_pylist() != sample.column("id").to_pylist()


def test_requests_carry_prompt_version_and_truncate(dolma_dataset):
    cfg = LabelEduConfig(max_doc_chars=300, structured=True)
    req = build_request("d1", "x" * 1000, cfg)
    assert req.template_version == "edu-additive-v1-json" and req.response_schema["required"] == [
        "rationale",
        "score",
    ]
    assert "x" * 300 in req.messages[1].content and "x" * 301 not in req.messages[1].content
    assert build_request("d1", "x" * 1000, LabelEduConfig()).response_schema is None


def test_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.parquet"):
        sample_documents(tmp_path / "nothing.parquet", 5, 0, [500])
    p = tmp_path / "notext.parquet"
    pq.write_table(pa.table({"id": ["a"], "body": ["x"]}), p)
    with pytest.raises(ValueError, match="no `text` column"):
        sample_documents(p, 5, 0, [500])


@pytest.mark.slow
def test_labelling_batch_on_the_real_teacher_is_resumable(llama_server, dolma_dataset, tmp_path):
    """Three pages through the real llama.cpp server (SmolLM2, JSON-schema constrained), published as a
    label dataset; the rerun generates nothing and publishes the same labels."""
    from curation.edu.labels import read_labels
    from synthesis.teacher.backends.openai_http import OpenAIHttpBackend

    cfg = LabelEduConfig(n=3, seed=5, max_doc_chars=300, max_tokens=60, structured=True)
    backend = OpenAIHttpBackend(
        llama_server.base_url, llama_server.model_alias, concurrency=1, structured_output="json_object_schema"
    )
    first = run_label_edu(dolma_dataset, tmp_path / "labels", cfg, run_id="l1", backend=backend)
    m = first.manifest
    stage = m.stages[0]
    assert stage.rows_in == 3 and first.report.generated == 3
    assert set(stage.reasons) <= {"unparseable_score", "teacher_failed"}
    assert (
        m.extra["teacher_model"] == llama_server.model_alias
        and m.extra["prompt_version"] == "edu-additive-v1-json"
    )
    data = pa.concat_tables([pq.read_table(p) for p in iter_parquet_files(first.version_dir, "data")])
    rejects = pa.concat_tables([pq.read_table(p) for p in iter_parquet_files(first.version_dir, "rejects")])
    assert data.num_rows == stage.rows_kept and rejects.num_rows == stage.rows_rejected
    for row in data.to_pylist():
        assert 0 <= row["score"] <= 5 and row["parse_method"] == "json" and row["raw_response"]
        assert (
            json.loads(row["sampling"])["max_tokens"] == 60
            and row["teacher_model"] == llama_server.model_alias
        )
    for row in rejects.to_pylist():
        assert row["raw_response"] is not None and row["reject_detail"]

    again = run_label_edu(dolma_dataset, tmp_path / "labels", cfg, run_id="l2", backend=backend)
    assert again.report.generated == 0 and again.report.skipped == 3
    data2 = pa.concat_tables([pq.read_table(p) for p in iter_parquet_files(again.version_dir, "data")])
    assert data2.column("score").to_pylist() == data.column("score").to_pylist()
    if data.num_rows:  # the curation side reads it as a label dataset
        labels = read_labels(tmp_path / "labels")
        assert labels.scores == data2.column("score").to_pylist()


@pytest.mark.slow
def test_label_set_is_a_table_snapshot_with_the_catalog_configured(
    llama_server, dolma_dataset, tmp_path, monkeypatch
):
    """With PHI_ICEBERG_WAREHOUSE set, `label-edu` into `edu_labels/` also publishes table `edu_labels`: the
    labelled ids, tagged with the run id; the rerun of the run id (nothing generated) adds no snapshot."""
    from curation.tables import TablesConfig, Warehouse, read_arrow, versions
    from synthesis.teacher.backends.openai_http import OpenAIHttpBackend

    monkeypatch.setenv("PHI_ICEBERG_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.delenv("PHI_ICEBERG_CATALOG_URI", raising=False)
    cfg = LabelEduConfig(n=2, seed=7, max_doc_chars=300, max_tokens=60, structured=True)
    backend = OpenAIHttpBackend(
        llama_server.base_url, llama_server.model_alias, concurrency=1, structured_output="json_object_schema"
    )
    for _ in range(2):
        result = run_label_edu(dolma_dataset, tmp_path / "edu_labels", cfg, run_id="l1", backend=backend)
    table = Warehouse(TablesConfig.from_env()).table("edu_labels")
    assert [v["run_id"] for v in versions(table)] == ["l1"] and "l1" in table.metadata.refs
    folder = pa.concat_tables([pq.read_table(p) for p in iter_parquet_files(result.version_dir, "data")])
    labels = read_arrow(table, "l1", columns=("id", "score"))
    assert sorted(labels.to_pylist(), key=str) == sorted(folder.select(["id", "score"]).to_pylist(), key=str)
    assert labels.num_rows + result.manifest.rejected_rows == 2
