"""Plain inputs (issue 16): `curation dedup --input` and `curation edu score --input` take plain parquet /
JSONL(.gz) files, folders and globs besides dataset versions; the output is a proper dataset version whose
manifest starts with an `ingest` stage (rows in = lines/rows read) and reconciles. A plain file without `text`
is one error line naming the file and its columns (exit 2), before anything is published."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.cli import main as curation_cli
from curation.contract import DatasetRoot, Manifest
from curation.dedup.job import run_near_dedup
from curation.dedup.near_config import NearDedupConfig
from curation.edu.labels import read_label_file
from curation.edu.registry import ModelRegistry
from curation.edu.score import score_dataset
from curation.edu.train import EduTrainConfig, FastTextParams
from curation.edu.workflow import train_and_register
from curation.ingest import stable_id
from curation.ingest.inputs import resolve_input

DOLMA_DIR = "webtext_cc2019_dolma_sample"
DOLMA = f"{DOLMA_DIR}/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
DCLM = "quality_labels_dclm_human/majority_data_disputed.jsonl"


@pytest.fixture(scope="module")
def dolma_lines(shared_data) -> list[dict]:
    return [
        json.loads(x) for x in gzip.decompress((shared_data / DOLMA).read_bytes()).decode().split("\n") if x
    ]


def _published(out) -> tuple[Manifest, pa.Table, pa.Table]:
    v = DatasetRoot(out).version_dir(DatasetRoot(out).current())
    m = Manifest.read(v)
    m.check()
    return m, pq.read_table(v / "data"), pq.read_table(v / "rejects")


def test_dedup_reads_the_shared_jsonl_folder_as_plain_input(spark, shared_data, dolma_lines, tmp_path):
    """The folder holds the .jsonl.gz beside a LICENSE and SOURCE.md: those are skipped, not read."""
    result = run_near_dedup(shared_data / DOLMA_DIR, tmp_path / "out", NearDedupConfig(), spark=spark)
    m, data, rejects = _published(tmp_path / "out")
    assert result.version_dir.name == m.version
    assert [s.stage for s in m.stages] == ["ingest", "near_dedup"]
    blank = sum(1 for r in dolma_lines if not (r.get("text") or "").strip())
    ingest, near = m.stages
    assert ingest.rows_in == len(dolma_lines) and ingest.reasons == {"missing_text": blank}
    assert near.rows_in == len(dolma_lines) - blank and near.rows_rejected > 0
    assert data.num_rows == m.rows and rejects.num_rows == m.rejected_rows == blank + near.rows_rejected
    assert set(data.column("id").to_pylist()) <= {r["id"] for r in dolma_lines}  # the file's own ids
    assert m.inputs == [str(shared_data / DOLMA_DIR)] and m.extra["input_files"] == 1
    assert m.dataset == "plain_near_dedup"


def test_dedup_cli_reads_a_parquet_glob_without_ids(spark, dolma_lines, tmp_path):
    """Parquet files with `text` only: ids are sha1(source_file, row), unique and stable; a copied document
    in the second file is removed as a near duplicate of the first's."""
    texts = [r["text"] for r in dolma_lines if (r.get("text") or "").strip()][:60]
    d = tmp_path / "plain"
    d.mkdir()
    pq.write_table(pa.table({"text": texts[:30]}), d / "a.parquet")
    pq.write_table(pa.table({"text": [*texts[30:], texts[3]], "lang": ["en"] * 31}), d / "b.parquet")
    out = tmp_path / "out"
    assert curation_cli(["dedup", "--input", f"{d}/*.parquet", "--output", str(out)]) == 0
    m, data, rejects = _published(out)
    assert [(s.stage, s.rows_in, s.rows_kept) for s in m.stages][0] == ("ingest", 61, 61)
    assert m.stages[1].rows_rejected >= 1 and m.rows + m.stages[1].rows_rejected == 61
    ids = data.column("id").to_pylist() + rejects.column("id").to_pylist()
    assert len(set(ids)) == 61
    by_file = {
        f"file:{p}": pq.read_table(p).column("text").to_pylist() for p in (d / "a.parquet", d / "b.parquet")
    }
    rows = data.to_pylist()
    assert {r["source_file"] for r in rows} == set(by_file)
    for row in rows:
        assert row["id"] == stable_id(row["source_file"], by_file[row["source_file"]].index(row["text"]))
    dup = rejects.to_pylist()[0]
    assert dup["reject_reason"] == "near_duplicate" and dup["text"] == texts[3]


def test_plain_input_without_text_is_one_error_line(spark, tmp_path, capsys):
    pq.write_table(pa.table({"id": ["a"], "body": ["some words"]}), tmp_path / "no_text.parquet")
    rc = curation_cli(
        ["dedup", "--input", str(tmp_path / "no_text.parquet"), "--output", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("error: parquet input ") and "no_text.parquet" in err[-1]
    assert "columns: ['id', 'body']" in err[-1]
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "x.jsonl").write_text('{"id": "1", "content": "words"}\n')
    rc = curation_cli(
        ["edu", "score", "--input", str(tmp_path / "j"), "--output", str(tmp_path / "o"),
         "--registry", str(tmp_path / "no_registry")]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "x.jsonl" in err[-1] and "has no 'text' field" in err[-1]
    assert "fields: ['content', 'id']" in err[-1]
    assert not DatasetRoot(tmp_path / "o").versions()


def test_resolver_tells_versions_from_plain_files(shared_data, tmp_path):
    (tmp_path / "docs.txt").write_text("not data\n")
    with pytest.raises(FileNotFoundError, match="none of its 1 file"):
        resolve_input(tmp_path)
    with pytest.raises(FileNotFoundError, match="matches no file"):
        resolve_input(tmp_path / "missing" / "*.parquet")
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "manifest.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="holds dataset versions \\['v1'\\] but no CURRENT"):
        resolve_input(tmp_path)
    found = resolve_input(shared_data / DOLMA_DIR)
    assert found.is_plain and found.formats == ["jsonl"] and len(found.files) == 1


@pytest.fixture(scope="module")
def registry(shared_data, tmp_path_factory):
    reg = ModelRegistry(tmp_path_factory.mktemp("edu_registry"))
    labels = read_label_file(shared_data / DCLM, max_score=1)
    cfg = EduTrainConfig(fasttext=FastTextParams(dim=16, bucket=20_000), max_score=1, threshold=0.5)
    reg.promote(train_and_register(labels, cfg, reg, human_labels=None).version)
    return reg


def test_edu_score_reads_a_plain_jsonl_glob(spark, shared_data, dolma_lines, registry, tmp_path):
    result = score_dataset(
        spark, f"{shared_data / DOLMA_DIR}/*.jsonl.gz", tmp_path / "out", registry=str(registry.root)
    )
    m, data, rejects = _published(tmp_path / "out")
    assert result.version_dir.name == m.version
    assert [s.stage for s in m.stages] == ["ingest", "edu"]
    assert m.stages[0].rows_in == len(dolma_lines) and m.stages[1].rows_in == m.stages[0].rows_kept
    assert m.rows == data.num_rows == m.stages[1].rows_kept  # no threshold: every document kept, scored
    assert data.column("edu_score").null_count == 0 and m.dataset == "plain_edu"
    assert rejects.num_rows == m.rejected_rows == m.stages[0].rows_rejected
