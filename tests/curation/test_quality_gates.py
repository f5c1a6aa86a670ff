"""Quality gates (great-expectations 1.x) on dataset versions built from the real Dolma sample."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_quality_gates_helpers import build_version, rewrite_data

from curation.contract import DatasetRoot
from curation.quality_gates import GateConfig, GateFailed, publish_gated, run_gate
from curation.quality_gates.gate import validate_frame


@pytest.fixture()
def published(tmp_path, shared_data, models) -> Path:
    return build_version(shared_data, models, tmp_path / "web", "v1", limit=200)


@pytest.fixture()
def candidate(tmp_path, shared_data, models) -> Path:
    """A finished version in the root's hidden candidates folder, not yet visible to readers."""
    return build_version(shared_data, models, tmp_path / "web" / "_candidates", "v2", limit=200)


def failed(result) -> set[tuple[str, str | None]]:
    return {(f.expectation, f.column) for f in result.failures}


def test_clean_version_passes_and_builds_data_docs(published):
    result = run_gate(published.parent)  # a dataset root resolves to its CURRENT version
    assert result.success, result.summary()
    assert result.kind == "web_curated" and result.version == "v1"
    assert result.evaluated >= 20
    index = Path(result.docs_index)
    assert index.is_file() and "web_curated" in index.read_text()
    pages = list((index.parent / "validations").rglob("*.html"))
    assert pages, "Data Docs has no validation result page"
    saved = json.loads((published / "quality" / "gate.json").read_text())
    assert saved["success"] is True and saved["version"] == "v1"


def test_defects_fail_with_the_failing_expectations_named(published):
    def corrupt(df):
        df.loc[df.index[1], "id"] = df.loc[df.index[0], "id"]  # duplicate id
        df.loc[df.index[2], "text_hash"] = df.loc[df.index[3], "text_hash"]  # duplicate content
        df.loc[df.index[4], "lang_score"] = 1.7  # impossible confidence
        df.loc[df.index[5], "lang"] = "fr"  # a language the run did not keep
        df.loc[df.index[6], "text"] = ""  # empty document
        return df

    rewrite_data(published, corrupt)
    result = run_gate(published)
    assert not result.success
    assert failed(result) == {
        ("expect_column_values_to_be_unique", "id"),
        ("expect_column_values_to_be_unique", "text_hash"),
        ("expect_column_values_to_be_between", "lang_score"),
        ("expect_column_values_to_be_in_set", "lang"),
        ("expect_column_values_to_be_between", "text_chars"),
    }
    by_column = {f.column: f for f in result.failures}
    assert by_column["lang_score"].sample == [1.7]
    assert by_column["lang"].sample == ["fr"]
    assert "expect_column_values_to_be_unique on 'id'" in result.summary()


def test_row_count_must_match_the_manifest(published):
    rewrite_data(published, lambda df: df.iloc[:10])
    result = run_gate(published)
    assert ("expect_table_row_count_to_equal", None) in failed(result)


def test_missing_column_is_reported_not_crashed(published):
    rewrite_data(published, lambda df: df.drop(columns=["lang_score"]))
    result = run_gate(published)
    assert ("expect_column_to_exist", "lang_score") in failed(result)


def test_failing_gate_blocks_publication(candidate):
    root = DatasetRoot(candidate.parent.parent)
    rewrite_data(candidate, lambda df: df.assign(lang_score=df["lang_score"] + 2.0))
    with pytest.raises(GateFailed, match="lang_score"):
        publish_gated(candidate, root.root, kind="web_curated")
    assert root.versions() == [] and root.current() is None
    assert (candidate / "manifest.json").is_file()  # left in place for inspection


def test_passing_gate_publishes_once_and_retry_is_a_no_op(candidate):
    root = DatasetRoot(candidate.parent.parent)
    final = publish_gated(candidate, root.root, kind="web_curated")
    assert final == root.version_dir("v2") and root.current() == "v2" and root.versions() == ["v2"]
    assert not candidate.exists()
    assert publish_gated(candidate, root.root, kind="web_curated") == final  # a retried publish task


def test_the_table_snapshot_moves_with_current_when_the_gate_publishes(candidate, tmp_path, monkeypatch):
    """With PHI_ICEBERG_WAREHOUSE set: the candidate is in no table until the gate publishes it; then it is
    snapshot `v2` of table `web` (the same ids), and a retried publish task adds no snapshot."""
    import pyarrow.parquet as pq

    from curation.tables import TablesConfig, Warehouse, read_arrow, versions

    monkeypatch.setenv("PHI_ICEBERG_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.delenv("PHI_ICEBERG_CATALOG_URI", raising=False)
    wh = Warehouse(TablesConfig.from_env())
    assert not wh.exists("web")
    root = DatasetRoot(candidate.parent.parent)
    final = publish_gated(candidate, root.root, kind="web_curated")
    assert publish_gated(candidate, root.root, kind="web_curated") == final  # a retried publish task
    table = wh.table("web")
    assert [v["run_id"] for v in versions(table)] == ["v2"] and root.current() == "v2"
    want = sorted(pq.read_table(final / "data", columns=["id"]).column("id").to_pylist())
    assert sorted(read_arrow(table, "v2", columns=("id",)).column("id").to_pylist()) == want


def test_data_changed_after_a_passing_gate_is_validated_again(candidate):
    assert run_gate(candidate).success
    rewrite_data(candidate, lambda df: df.assign(id="same-id"))
    with pytest.raises(GateFailed, match="expect_column_values_to_be_unique on 'id'"):
        publish_gated(candidate, candidate.parent.parent)


def test_scored_web_checks_edu_score_range(published):
    from curation.quality_gates.frames import documents_frame

    frame = documents_frame(published)
    frame["edu_score"] = [i % 6 * 1.0 for i in range(len(frame))]
    frame["edu_int"] = [i % 6 for i in range(len(frame))]
    _, failures, _ = validate_frame(frame, "web_scored", GateConfig(allowed_languages=["en"]))
    assert failures == []
    frame.loc[frame.index[0], "edu_score"] = 7.5
    frame.loc[frame.index[1], "edu_int"] = -1
    _, failures, _ = validate_frame(frame, "web_scored", GateConfig(allowed_languages=["en"]))
    assert {(f.column, tuple(f.sample)) for f in failures} == {("edu_score", (7.5,)), ("edu_int", (-1,))}


def test_web_curated_accepts_scored_and_unscored_corpora(published):
    """web_curation publishes unscored versions until an edu model is promoted, scored ones after; a
    nightly whole-corpus version can mix both (older documents have null scores)."""
    from curation.quality_gates.frames import documents_frame

    cfg = GateConfig(allowed_languages=["en"])
    frame = documents_frame(published)
    assert "edu_score" not in frame.columns
    _, failures, _ = validate_frame(frame, "web_curated", cfg)
    assert failures == []
    frame["edu_score"] = [None if i % 3 == 0 else i % 6 * 1.0 for i in range(len(frame))]
    frame["edu_int"] = [None if i % 3 == 0 else i % 6 for i in range(len(frame))]
    _, failures, _ = validate_frame(frame, "web_curated", cfg)
    assert failures == []
    frame.loc[frame.index[1], "edu_score"] = -0.5
    frame.loc[frame.index[2], "edu_int"] = 9
    _, failures, _ = validate_frame(frame, "web_curated", cfg)
    assert {(f.column, tuple(f.sample)) for f in failures} == {("edu_score", (-0.5,)), ("edu_int", (9,))}
    # a corpus scored as a whole (web_edu) must score every document
    _, failures, _ = validate_frame(frame, "web_scored", cfg)
    assert ("edu_score", "expect_column_values_to_not_be_null") in {
        (f.column, f.expectation) for f in failures
    }


def _mixture_build(path: Path, realised_web: float) -> Path:
    path.mkdir(parents=True)
    manifest = {
        "name": "m",
        "seed": 0,
        "seq_len": 64,
        "dtype": "uint16",
        "phases": [
            {
                "name": "phase1",
                "dir": "phase1",
                "tokens": 1000,
                "sources": [
                    {
                        "name": "web",
                        "dataset": "web",
                        "documents": 12,
                        "tokens": int(1000 * realised_web),
                        "epochs": 1.0,
                        "target_weight": 0.7,
                        "realised_weight": realised_web,
                        "content_hash": "a",
                    },
                    {
                        "name": "synthetic",
                        "dataset": "syn",
                        "documents": 5,
                        "tokens": int(1000 * (1 - realised_web)),
                        "epochs": 2.0,
                        "target_weight": 0.3,
                        "realised_weight": 1 - realised_web,
                        "content_hash": "b",
                    },
                ],
            }
        ],
    }
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def test_mixture_ratios_within_tolerance(tmp_path):
    ok = run_gate(_mixture_build(tmp_path / "ok", 0.71), kind="mixture")
    assert ok.success, ok.summary()
    bad = run_gate(
        _mixture_build(tmp_path / "bad", 0.95), kind="mixture", cfg=GateConfig(mixture_tolerance=0.05)
    )
    assert failed(bad) == {("expect_column_values_to_be_between", "weight_error")}
    assert Path(bad.docs_index).is_file()


def test_unknown_kind_is_a_clear_error(published):
    with pytest.raises(ValueError, match="no quality suite for dataset kind 'tokens'"):
        run_gate(published, kind="tokens")


def test_ge_import_after_airflow_is_quiet():
    """Pitfall P13: importing GE after Airflow logged hundreds of 'Skipping registering' lines."""
    code = (
        "import airflow.sdk, logging; logging.basicConfig(level=logging.INFO);"
        "from curation.quality_gates.gate import quiet_gx; quiet_gx()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "Skipping registering" not in proc.stderr + proc.stdout


def test_gate_on_a_spark_frame(published, spark):
    """A caller holding the data as a Spark DataFrame validates it without rereading or collecting text."""
    df = spark.read.parquet(str(published / "data"))
    assert run_gate(published, frame=df, docs_dir=published / "quality-spark").success
    dup = df.limit(3).unionByName(df)  # three documents twice
    result = run_gate(published, frame=dup.drop("text_hash"), docs_dir=published / "quality-dup")
    assert {
        ("expect_column_values_to_be_unique", "id"),
        ("expect_column_values_to_be_unique", "text_hash"),
        ("expect_table_row_count_to_equal", None),
    } <= failed(result)
