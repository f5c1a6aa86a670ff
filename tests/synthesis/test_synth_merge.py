"""The synthetic merge on Spark (synthesis/merge.py, `python -m synthesis merge`): curation's NearDedup over
the merged shards removes near-duplicates split across shards, as reject rows, and the counts reconcile."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from manifest_helpers import make_manifest

from curation.contract import DatasetRoot, Manifest
from synthesis.merge import CROSS_SHARD_REASON, CROSS_SHARD_STAGE, merge_shards


def _texts(shared_data: Path, n: int) -> list[str]:
    src = next((shared_data / "webtext_cc2019_dolma_sample").glob("*.jsonl.gz"))
    with gzip.open(src, "rt") as f:
        texts = [json.loads(line)["text"] for line in f]
    return [t for t in texts if len(t.split()) >= 150][:n]


def _edit(text: str, at: int, word: str) -> str:
    """One word replaced: a near-duplicate (shingle Jaccard ~0.95 on a 150+ word text)."""
    words = text.split()
    return " ".join(words[:at] + [word] + words[at + 1 :])


def _shard(root: Path, name: str, texts: list[str], verified: list) -> Path:
    staging = DatasetRoot(root).staging_dir(name)
    (staging / "data").mkdir()
    (staging / "rejects").mkdir()
    cols = {
        "id": [f"{name}-{i}" for i in range(len(texts))],
        "text": texts,
        "generator": ["explainer"] * len(texts),
        "verified": pa.array(verified, pa.bool_()),
    }
    pq.write_table(pa.table(cols), staging / "data" / "part-0.parquet")
    conf = {"postfilter": {"near_dedup": {"threshold": 0.7}}}
    make_manifest("synthetic", name, len(texts), columns=list(cols), config=conf).write(staging)
    return DatasetRoot(root).publish(staging, name, set_current=False)


def test_cross_shard_family_keeps_the_verified_copy(tmp_path, shared_data, spark):
    """A family of three near-duplicates, one copy per shard, plus distinct documents: one member survives
    (the verified one, though its id sorts last), the two others are rejects naming the survivor."""
    base = _texts(shared_data, 7)
    a = base[0]
    shards = [
        _shard(tmp_path / "shards", "s0", [a, base[1], base[2]], [False, None, None]),
        _shard(tmp_path / "shards", "s1", [base[3], _edit(a, 40, "indeed"), base[4]], [None, None, None]),
        _shard(tmp_path / "shards", "s2", [base[5], base[6], _edit(a, 90, "surely")], [None, None, True]),
    ]
    merged = merge_shards(shards, tmp_path / "_candidates", "v1", spark=spark)
    m = Manifest.read(merged)
    m.check()
    cross = m.stages[-1]
    assert (cross.stage, cross.rows_in, cross.rows_kept, cross.rows_rejected, cross.reasons) == (
        CROSS_SHARD_STAGE,
        9,
        7,
        2,
        {CROSS_SHARD_REASON: 2},
    )
    data = pq.read_table(merged / "data")
    assert data.num_rows == m.rows == 7
    assert sorted(data.column_names) == ["generator", "id", "text", "verified"]  # no helper column left
    assert "s2-2" in data.column("id").to_pylist()  # verified beats not-applicable beats unverified
    rejects = pq.read_table(merged / "rejects")
    assert rejects.num_rows == m.rejected_rows == 2
    cross_rows = rejects.filter(pc.equal(rejects.column("reject_stage"), CROSS_SHARD_STAGE)).to_pylist()
    assert sorted(r["id"] for r in cross_rows) == ["s0-0", "s1-1"]
    assert {r["reject_reason"] for r in cross_rows} == {CROSS_SHARD_REASON}
    for r in cross_rows:  # the survivor and the pair's exact Jaccard (at or above the recipes' 0.7)
        assert re.fullmatch(r"cluster of s2-2; Jaccard 0\.[789]\d\d with s2-2", r["reject_detail"]), r
    assert {r["text"] for r in cross_rows} == {a, _edit(a, 40, "indeed")}  # the rows themselves
    assert pq.read_table(merged / "duplicates").num_rows == 2  # NearDedup's audit, beside the rejects
    assert m.extra["near_dedup_cross_shard"]["dropped"] == 2
    assert m.extra["near_dedup_cross_shard"]["verified_pairs"] >= 2


def test_shards_sharing_ids_are_refused_and_nothing_is_published(tmp_path, shared_data, spark):
    base = _texts(shared_data, 4)
    shards = [
        _shard(tmp_path / "a", "s0", base[:2], [None, None]),
        _shard(tmp_path / "b", "s0", base[2:], [None, None]),  # same shard name: same row ids
    ]
    with pytest.raises(ValueError, match="repeated `id` values"):
        merge_shards(shards, tmp_path / "_candidates", "v1", spark=spark)
    assert not (tmp_path / "_candidates").exists() or not any((tmp_path / "_candidates").iterdir())


def test_merged_version_reaches_the_table_when_it_goes_live(tmp_path, shared_data, spark, monkeypatch):
    """With PHI_ICEBERG_WAREHOUSE set, the synthetic_data DAG's path: shards under `synthetic/_shards/<v>` and
    the merged candidate under `synthetic/_candidates` reach no table; publishing the candidate into
    `synthetic` (what publish_gated does once the gate passed) makes it snapshot `v1` of table `synthetic`."""
    from curation.tables import TablesConfig, Warehouse, read_arrow, versions

    monkeypatch.setenv("PHI_ICEBERG_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.delenv("PHI_ICEBERG_CATALOG_URI", raising=False)
    root, texts = tmp_path / "synthetic", _texts(shared_data, 4)
    shards = [
        _shard(root / "_shards" / "v1", "s0", texts[:2], [None, True]),
        _shard(root / "_shards" / "v1", "s1", texts[2:], [None, None]),
    ]
    merged = merge_shards(shards, root / "_candidates", "v1", spark=spark)
    wh = Warehouse(TablesConfig.from_env())
    assert not wh.exists("synthetic") and not wh.exists("v1") and not wh.exists("_candidates")
    final = DatasetRoot(root).publish(merged, "v1")
    table = wh.table("synthetic")
    assert [v["run_id"] for v in versions(table)] == ["v1"] and DatasetRoot(root).current() == "v1"
    ids = sorted(read_arrow(table, "v1", columns=("id",)).column("id").to_pylist())
    assert (
        ids
        == sorted(pq.read_table(final / "data", columns=["id"]).column("id").to_pylist())
        == [
            "s0-0",
            "s0-1",
            "s1-0",
            "s1-1",
        ]
    )
