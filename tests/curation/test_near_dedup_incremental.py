"""Incremental near-dedup against a persisted band index: cross-batch duplicates removed, the index
advances only on success, and rerunning a batch is idempotent."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from test_near_dedup_helpers import edit_words, fixture_docs, publish_docs

from curation.contract import DatasetRoot, Manifest
from curation.dedup.job import run_near_dedup
from curation.dedup.near_config import NearDedupConfig

pytestmark = pytest.mark.slow


def _doc(id_, text, date="2024-01-01"):
    return {"id": id_, "text": text, "date": date}


LATER = "2024-02-01"  # copies are crawled later, so the keep rule (date asc) keeps the originals


@pytest.fixture(scope="module")
def batches():
    base = fixture_docs()
    b1 = [_doc(d["id"], d["text"]) for d in base[:40]] + [
        _doc("b1-copy", edit_words(base[0]["text"], 60), LATER)
    ]
    b2 = [_doc(d["id"], d["text"]) for d in base[40:]] + [
        _doc("b2-copy-old", edit_words(base[5]["text"], 60, tag="y"), LATER),  # duplicate of an indexed doc
        _doc("b2-copy-new", base[45]["text"].upper(), LATER),
    ]  # duplicate inside the batch
    b3 = [_doc("b3-copy", edit_words(base[7]["text"], 70, tag="z"), LATER)]
    return base, b1, b2, b3


@pytest.fixture(scope="module")
def incremental(spark, batches, tmp_path_factory):
    base, b1, b2, _ = batches
    tmp = tmp_path_factory.mktemp("incr")
    cfg = NearDedupConfig(index_dir=str(tmp / "index"))
    publish_docs(tmp / "in1", "b1", b1)
    publish_docs(tmp / "in2", "b2", b2)
    r1 = run_near_dedup(tmp / "in1", tmp / "out", cfg, run_id="r1", spark=spark)
    r2 = run_near_dedup(tmp / "in2", tmp / "out", cfg, run_id="r2", spark=spark)
    return tmp, cfg, r1, r2


def _dups(version_dir):
    return {r["doc_id"]: r for r in pq.read_table(version_dir / "duplicates").to_pylist()}


def _index_ids(index_root, version):
    return set(pq.read_table(index_root / version / "bands", columns=["id"]).column(0).to_pylist())


def test_first_batch_builds_the_index(incremental, batches):
    tmp, _, r1, _ = incremental
    base, b1, _, _ = batches
    assert set(_dups(r1.version_dir)) == {"b1-copy"}
    assert _index_ids(tmp / "index", "r1") == {d["id"] for d in b1} - {"b1-copy"}
    assert Manifest.read(tmp / "index" / "r1").extra["parent"] is None


def test_second_batch_is_deduplicated_against_the_index_and_itself(incremental, batches):
    tmp, _, _, r2 = incremental
    base, b1, b2, _ = batches
    dups = _dups(r2.version_dir)
    assert set(dups) == {"b2-copy-old", "b2-copy-new"}
    assert dups["b2-copy-old"]["kept_id"] == base[5]["id"]  # the published document wins
    assert dups["b2-copy-new"]["kept_id"] == base[45]["id"]
    kept = set(pq.read_table(r2.version_dir / "data", columns=["id"]).column(0).to_pylist())
    assert kept == {d["id"] for d in b2} - set(dups)
    assert _index_ids(tmp / "index", "r2") == (_index_ids(tmp / "index", "r1") | kept)
    assert DatasetRoot(tmp / "index").current() == "r2"
    assert Manifest.read(tmp / "index" / "r2").extra["parent"] == "r1"


def test_rerunning_a_batch_is_idempotent(spark, incremental):
    tmp, cfg, _, r2 = incremental
    before_dups, before_index = _dups(r2.version_dir), _index_ids(tmp / "index", "r2")
    again = run_near_dedup(tmp / "in2", tmp / "out", cfg, run_id="r2", spark=spark)
    assert _dups(again.version_dir) == before_dups
    assert _index_ids(tmp / "index", "r2") == before_index
    assert DatasetRoot(tmp / "index").versions() == ["r1", "r2"]


def test_failed_run_leaves_the_index_unchanged(spark, incremental, batches, monkeypatch):
    tmp, cfg, _, _ = incremental
    publish_docs(tmp / "in3", "b3", batches[3])
    before = _index_ids(tmp / "index", "r2")

    def fail(self):  # an error after the index was staged, before anything is published
        raise RuntimeError("injected failure before publish")

    monkeypatch.setattr(Manifest, "check", fail)
    with pytest.raises(RuntimeError, match="injected"):
        run_near_dedup(tmp / "in3", tmp / "out", cfg, run_id="r3", spark=spark)
    monkeypatch.undo()
    index = DatasetRoot(tmp / "index")
    assert index.current() == "r2" and index.versions() == ["r1", "r2"]
    assert not [p for p in index.root.iterdir() if p.name.startswith(".staging")]
    assert _index_ids(tmp / "index", "r2") == before
    assert not (tmp / "out" / "r3").exists()


def test_index_built_with_other_parameters_is_refused(spark, incremental):
    tmp, cfg, _, _ = incremental
    other = cfg.model_copy(update={"seed": 7})
    with pytest.raises(ValueError, match="LSH parameters"):
        run_near_dedup(tmp / "in2", tmp / "out", other, run_id="r9", spark=spark)
