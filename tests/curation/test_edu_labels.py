"""Label ingestion: real label files, defects counted (never guessed or dropped silently), the
reference-vs-random recipe, teacher label datasets with unparseable rows, de-duplication."""

from __future__ import annotations

import gzip
import json
import logging

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.contract import DatasetRoot, Manifest, StageCounts, now_iso
from curation.edu.labels import (
    combine,
    parse_score,
    read_label_dataset,
    read_label_file,
    read_labels,
    reference_vs_random,
    sample_texts,
)

DANISH = "edu_labels_finewebc_danish/fineweb-c_danish.csv"
DCLM = "quality_labels_dclm_human/majority_data_disputed.jsonl"
DOLMA = "webtext_cc2019_dolma_sample/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


def test_reads_finewebc_csv_with_its_counts(shared_data):
    labels = read_label_file(shared_data / DANISH, max_score=4)  # picks int_score (no score/label column)
    assert len(labels) == 806
    assert labels.counts() == {0: 491, 1: 250, 2: 62, 3: 3}  # as documented in SOURCE.md
    assert labels.rejects == {}
    assert all(t.strip() for t in labels.texts)


def test_reads_dclm_jsonl_label_field(shared_data):
    labels = read_label_file(shared_data / DCLM, max_score=1)
    assert labels.counts() == {0: 98, 1: 120}
    assert set(labels.table.column("label_source").to_pylist()) == {"file:majority_data_disputed.jsonl"}


def test_parquet_and_named_score_field(shared_data, tmp_path):
    src = read_label_file(shared_data / DCLM, max_score=1).table
    path = tmp_path / "l.parquet"
    pq.write_table(src.rename_columns(["id", "text", "quality", "label_source"]), path)
    labels = read_label_file(path, score_field="quality", max_score=1)
    assert labels.counts() == {0: 98, 1: 120}
    with pytest.raises(ValueError, match=r"l.parquet: no field 'grade'"):
        read_label_file(path, score_field="grade")
    with pytest.raises(ValueError, match=r"none of the score fields"):
        read_label_file(path)  # quality is not a known score name: asks for --score-field


def test_defects_are_counted_with_reasons(fixtures, caplog):
    path = fixtures / "edu" / "labels_with_defects.jsonl"
    with caplog.at_level(logging.WARNING):
        labels = read_label_file(path, max_score=5)
    assert labels.rejects == {
        "invalid_json": 1,
        "missing_text": 2,
        "score_out_of_range": 1,
        "score_not_integer": 1,
        "score_not_a_number": 1,
        "missing_score": 1,
        "not_an_object": 1,
    }
    ids = labels.table.column("id").to_pylist()
    assert len(ids) == 12 + 2 and "string-int" in ids and "float-int" in ids  # "3" and 1.0 are integers
    assert dict(zip(ids, labels.scores))["string-int"] == 3
    # the log names the file, line and offending value of each reason
    assert "labels_with_defects.jsonl:" in caplog.text and "score=7" in caplog.text


@pytest.mark.parametrize(
    "value, expected",
    [
        (3, (3, None)),
        ("4", (4, None)),
        (2.0, (2, None)),
        (True, (1, None)),
        (2.5, (None, "score_not_integer")),
        (-1, (None, "score_out_of_range")),
        (6, (None, "score_out_of_range")),
        ("five", (None, "score_not_a_number")),
        (None, (None, "missing_score")),
        (float("nan"), (None, "missing_score")),
        ([3], (None, "score_not_a_number")),
    ],
)
def test_parse_score(value, expected):
    assert parse_score(value, 5) == expected


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        read_label_file(tmp_path / "nope.jsonl")
    bad = tmp_path / "labels.txt"
    bad.write_text("x")
    with pytest.raises(ValueError, match="labels.txt: unsupported format"):
        read_label_file(bad)
    allbad = tmp_path / "allbad.jsonl"
    allbad.write_text(json.dumps({"text": "some text", "score": 9}) + "\n")
    with pytest.raises(ValueError, match="allbad.jsonl: no usable row"):
        read_label_file(allbad)


def test_reference_vs_random(shared_data):
    """DCLM-style: human-good DCLM documents as the reference, the Dolma crawl sample as random web."""
    ref = shared_data / DCLM
    labels = reference_vs_random([ref], shared_data / DOLMA, n=50, seed=7)
    assert labels.counts() == {0: 50, 1: 50}
    srcs = labels.table.column("label_source").to_pylist()
    assert srcs.count("reference") == 50 and srcs.count("random") == 50
    with gzip.open(shared_data / DOLMA, "rt") as f:
        dolma_ids = {json.loads(line)["id"] for line in f}
    neg_ids = [i for i, s in zip(labels.table.column("id").to_pylist(), srcs) if s == "random"]
    assert set(neg_ids) <= dolma_ids
    # seeded: same seed same sample, another seed another sample
    again = reference_vs_random([ref], shared_data / DOLMA, n=50, seed=7)
    assert again.table.equals(labels.table)
    other = reference_vs_random([ref], shared_data / DOLMA, n=50, seed=8)
    assert other.table.column("id").to_pylist() != labels.table.column("id").to_pylist()


def test_sample_texts_errors(shared_data, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        sample_texts(tmp_path / "missing.parquet", 5, 0)
    p = tmp_path / "notext.parquet"
    pq.write_table(pa.table({"id": ["a"], "body": ["x"]}), p)
    with pytest.raises(ValueError, match="notext.parquet: no `text` column"):
        sample_texts(p, 5, 0)


def _publish_label_dataset(root, rows):
    """A label dataset as `synthesis label-edu` publishes it (contract layout)."""
    ds = DatasetRoot(root)
    ds.root.mkdir(parents=True, exist_ok=True)
    staging = ds.staging_dir("v1")
    (staging / "data").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), staging / "data" / "part-0.parquet")
    Manifest(
        dataset="edu_labels",
        version="v1",
        created_at=now_iso(),
        code_version="test",
        inputs=[],
        config={},
        config_hash="x",
        rows=len(rows),
        stages=[StageCounts(stage="label", rows_in=len(rows), rows_kept=len(rows), rows_rejected=0)],
    ).write(staging)
    ds.publish(staging, "v1")


def test_teacher_label_dataset_counts_unparseable(shared_data, tmp_path):
    texts = read_label_file(shared_data / DCLM, max_score=1).texts[:6]
    rows = [
        {"id": f"d{i}", "text": t, "score": s, "teacher_model": "smollm2-135m", "prompt_version": "edu-v1"}
        for i, (t, s) in enumerate(zip(texts, [0, 3, None, 5, None, 2]))
    ]
    _publish_label_dataset(tmp_path / "labels", rows)
    labels = read_labels(tmp_path / "labels")  # a folder: read as a dataset (root -> CURRENT)
    assert labels.scores == [0, 3, 5, 2]
    assert labels.rejects == {"unparseable_teacher_score": 2}
    assert set(labels.table.column("label_source").to_pylist()) == {"teacher:smollm2-135m"}
    with pytest.raises(FileNotFoundError, match="neither a dataset version"):
        read_label_dataset(tmp_path)


def test_combine_drops_duplicates_after_key(shared_data):
    a = read_label_file(shared_data / DCLM, max_score=1)
    b = read_label_file(shared_data / DCLM, max_score=1)
    both = combine([a, b], key=str.lower)
    assert len(both) == len(a) - (len(a) - len({t.lower() for t in a.texts}))
    assert both.rejects["duplicate_text"] == 2 * len(a) - len(both)
