"""The gate on Spark (the default engine, and what `python -m curation gate` and the DAGs' validate task
run) judges a planted bad candidate exactly as the pandas gate does: same expectations, same failures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_quality_gates_helpers import build_version, rewrite_data

from curation.paths import REPO_ROOT
from curation.quality_gates import GateResult, run_gate
from curation.quality_gates.frames import documents_frame, read_spark_documents, spark_documents

PLANTED = {
    ("expect_column_values_to_be_unique", "id"),
    ("expect_column_values_to_be_unique", "text_hash"),
    ("expect_column_values_to_be_between", "lang_score"),
    ("expect_column_values_to_be_in_set", "lang"),
    ("expect_column_values_to_be_between", "text_chars"),
}


@pytest.fixture()
def bad_candidate(tmp_path, shared_data, models) -> Path:
    """A candidate without `text_hash` (the gate computes it) and with one defect per expectation."""
    version = build_version(shared_data, models, tmp_path / "web" / "_candidates", "v2", limit=200)

    def plant(df):
        df = df.drop(columns=["text_hash"])
        df.loc[df.index[1], "id"] = df.loc[df.index[0], "id"]  # duplicate id
        # the same content up to case, compatibility forms and layout: exact dedup's key (NFKC + casefold)
        # says duplicate, so the gate's computed hash must too
        df.loc[df.index[2], "text"] = "Die Straße  ist\tlang. " + df.loc[df.index[3], "text"]
        df.loc[df.index[3], "text"] = "DIE STRASSE IST LANG. " + df.loc[df.index[3], "text"].upper()
        df.loc[df.index[4], "lang_score"] = 1.7  # impossible confidence
        df.loc[df.index[5], "lang"] = "fr"  # a language the run did not keep
        df.loc[df.index[6], "text"] = ""  # empty document
        return df

    rewrite_data(version, plant)
    return version


def failed(result) -> set[tuple[str, str | None]]:
    return {(f.expectation, f.column) for f in result.failures}


def test_planted_bad_candidate_fails_on_spark_as_on_pandas(bad_candidate):
    proc = subprocess.run(
        [sys.executable, "-m", "curation", "gate", "--input", str(bad_candidate), "--kind", "web_curated"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "quality gate web_curated on v2: FAILED" in proc.stdout
    on_spark = GateResult.read(bad_candidate / "quality" / "gate.json")  # what the DAG's validate reads
    assert Path(on_spark.docs_index).is_file()
    assert list((Path(on_spark.docs_index).parent / "validations").rglob("*.html"))
    on_pandas = run_gate(bad_candidate, engine="pandas", docs_dir=bad_candidate / "quality-pandas")
    assert failed(on_spark) == failed(on_pandas) == PLANTED
    assert on_spark.evaluated == on_pandas.evaluated >= 20
    spark_by, pandas_by = ({f.column: f for f in r.failures} for r in (on_spark, on_pandas))
    for column in ("lang_score", "lang", "text_chars"):
        assert spark_by[column].unexpected_count == pandas_by[column].unexpected_count == 1
        assert spark_by[column].sample == pandas_by[column].sample
    assert spark_by["lang_score"].sample == [1.7] and spark_by["lang"].sample == ["fr"]
    assert spark_by["text_hash"].unexpected_count == pandas_by["text_hash"].unexpected_count == 2


def test_spark_projection_equals_the_pandas_one(bad_candidate, spark):
    """text_chars and text_hash are the same values on both paths, row for row, also when only some files
    carry text_hash (computed for the others only); the Spark projection never carries the text."""
    path = bad_candidate / "data" / "part-00000.parquet"
    table = pq.read_table(path)
    half = table.num_rows // 2
    carried = table.slice(half).append_column("text_hash", pa.array(["carried"] * (table.num_rows - half)))
    pq.write_table(table.slice(0, half), path)  # no text_hash: computed
    pq.write_table(carried, path.with_name("part-00001.parquet"))  # carried values are validated as they are
    df = spark_documents(read_spark_documents(spark, bad_candidate))
    assert "text" not in df.columns
    on_spark = df.select("id", "text_chars", "text_hash").toPandas()  # 200 rows: a test, not the gate
    on_pandas = documents_frame(bad_candidate)[["id", "text_chars", "text_hash"]]
    key = ["id", "text_chars", "text_hash"]
    assert on_spark.sort_values(key).values.tolist() == on_pandas.sort_values(key).values.tolist()
    assert (on_spark["text_hash"] == "carried").sum() == table.num_rows - half


def test_gate_cli_clear_error_on_unknown_input(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "curation", "gate", "--input", str(tmp_path / "nothing")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and "nothing" in proc.stderr
