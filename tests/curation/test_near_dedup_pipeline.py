"""Near dedup as a stage of `python -m curation run`: after exact dedup, rejects and the duplicates audit
land in the published version, and the manifest's stage chain reconciles."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from test_near_dedup_helpers import edit_words, fixture_docs, jaccard

from curation.config import CurationConfig
from curation.contract import Manifest
from curation.pipeline import run

pytestmark = pytest.mark.slow


def test_curation_run_with_near_dedup_stage(spark, tmp_path):
    docs = [d for d in fixture_docs() if d["id"].startswith("dclm-")]  # English pages from DCLM
    rows = [{"id": d["id"], "text": d["text"], "date": "2024-01-01"} for d in docs]
    # later-crawled near copies of every document, and one exact copy (exact dedup's job, not ours)
    rows += [{"id": f"copy-{d['id']}", "text": edit_words(d["text"], 60), "date": "2024-03-01"} for d in docs]
    rows.append({"id": "exact-copy", "text": docs[0]["text"], "date": "2024-05-01"})
    src = tmp_path / "batch.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    cfg = CurationConfig.model_validate({"near_dedup": {"enabled": True}, "decontam": {"enabled": False}})

    result = run([str(src)], tmp_path / "out", cfg, run_id="nd1", spark=spark)

    m = Manifest.read(result.version_dir)
    m.check()
    stages = [s.stage for s in m.stages]
    assert stages[-2:] == ["exact_dedup", "near_dedup"]
    near = m.stages[-1]
    rejects = pq.read_table(result.version_dir / "rejects").to_pylist()
    near_rejects = {r["id"]: r for r in rejects if r["reject_stage"] == "near_dedup"}
    assert near.rows_rejected == len(near_rejects) > 0
    stage_of = {r["id"]: r["reject_stage"] for r in rejects}
    # the exact copy is exact dedup's (or shares its original's fate in an earlier filter), never ours
    assert stage_of.get("exact-copy") in ("exact_dedup", stage_of.get(docs[0]["id"], "exact_dedup"))
    dups = {r["doc_id"]: r for r in pq.read_table(result.version_dir / "duplicates").to_pylist()}
    assert set(dups) == set(near_rejects)
    for doc_id, r in dups.items():  # each removed copy points at its original (the earlier crawl)
        assert doc_id == f"copy-{r['kept_id']}" and r["similarity"] >= 0.8
    kept = {
        r["id"]: r["text"]
        for r in pq.read_table(result.version_dir / "data", columns=["id", "text"]).to_pylist()
    }
    assert not set(kept) & set(dups)
    # an original and its copy both kept only when their (filtered) texts really are below the threshold
    both = [i for i in kept if f"copy-{i}" in kept]
    assert all(jaccard(kept[i], kept[f"copy-{i}"]) < 0.8 for i in both)
    assert len(both) < len(dups)  # most planted pairs are over the threshold and were caught
    assert m.extra["near_dedup"]["removed"] == near.rows_rejected
    assert not (result.version_dir / "_work").exists()
