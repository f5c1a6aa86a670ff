"""nightly_refresh's whole-corpus versions (curation.append): the next version = the base version's
documents (hard-linked, not copied) + the night's delta minus what is already published, with the
manifest reconciling base rows, delta stage counts and the cumulative row count. No Spark, no Airflow:
the end-to-end nightly runs are in test_dags_run.py."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.append import ID_PUBLISHED, STAGE, TEXT_PUBLISHED, append_version
from curation.contract import DOC_COLUMNS, DatasetRoot, Manifest, StageCounts, config_hash, now_iso, text_hash


def doc(i: str, text: str, **more) -> dict:
    row = {c: None for c in DOC_COLUMNS}
    row.update(id=i, text=text, url=f"https://example.org/{i}", lang="en", lang_score=0.9, source_format="warc",
               text_hash=text_hash(text.lower()), **more)
    return row


def version(root: Path, name: str, files: list[list[dict]], rejected: int = 1) -> Path:
    """A published contract version: one data file per list of documents, `rejected` quality rejects."""
    root.mkdir(parents=True, exist_ok=True)
    staging = DatasetRoot(root).staging_dir(name)
    (staging / "data").mkdir()
    (staging / "rejects").mkdir()
    n = 0
    for k, rows in enumerate(files):
        pq.write_table(pa.Table.from_pylist(rows), staging / "data" / f"part-{k:05d}-{name}.parquet")
        n += len(rows)
    rej = [{**doc(f"{name}-rej{k}", "short"), "reject_stage": "quality", "reject_reason": "too_short",
            "reject_detail": "1 word"} for k in range(rejected)]
    pq.write_table(pa.Table.from_pylist(rej), staging / "rejects" / f"part-00000-{name}.parquet")
    stages = [StageCounts(stage="ingest", rows_in=n + rejected, rows_kept=n + rejected, rows_rejected=0),
              StageCounts(stage="quality", rows_in=n + rejected, rows_kept=n, rows_rejected=rejected,
                          reasons={"too_short": rejected} if rejected else {})]
    cols = list(files[0][0]) if files and files[0] else DOC_COLUMNS
    m = Manifest(dataset="web_curated", version=name, created_at=now_iso(), code_version="test", inputs=[name],
                 config={}, config_hash=config_hash({}), stages=stages, rows=n, rejected_rows=rejected, columns=cols)
    m.check()
    m.write(staging)
    return DatasetRoot(root).publish(staging, name)


def ids(vdir: Path) -> list[str]:
    return sorted(pq.read_table(vdir / "data", columns=["id"]).column("id").to_pylist())


def inodes(vdir: Path) -> set[int]:
    return {p.stat().st_ino for p in (vdir / "data").glob("*.parquet")}


def test_first_night_without_a_base_is_the_delta(tmp_path):
    delta = version(tmp_path / "_deltas", "n1", [[doc("a", "alpha text"), doc("b", "beta text")]])
    out = append_version(delta, None, tmp_path / "_candidates", "n1")
    m = Manifest.read(out)
    assert m.base_version is None and m.base_rows == 0 and m.rows == 2 and ids(out) == ["a", "b"]
    assert [s.stage for s in m.stages] == ["ingest", "quality", STAGE] and m.stages[-1].rows_rejected == 0
    assert inodes(out) == inodes(delta)  # the delta's files are linked too


def test_next_version_is_base_plus_new_documents_hard_linked(tmp_path):
    corpus = tmp_path / "web"
    base = version(corpus, "n1", [[doc("a", "alpha text"), doc("b", "beta text")], [doc("c", "gamma text")]])
    delta = version(corpus / "_deltas", "n2", [[doc("d", "delta text"), doc("b", "beta re-crawled"),
                                                 doc("e", "ALPHA text"), doc("f", "phi text")]],
                    rejected=2)
    out = append_version(delta, corpus, corpus / "_candidates", "n2")  # a root resolves to its CURRENT
    m = Manifest.read(out)
    # night 1's documents all stay; of night 2's, `b` (id published) and `e` (same normalized text as `a`)
    # are rejected as already published
    assert ids(out) == ["a", "b", "c", "d", "f"]
    assert pq.read_table(out / "data", filters=[("id", "=", "b")]).column("text").to_pylist() == ["beta text"]
    assert m.base_version == "n1" and m.base_rows == 3 and m.rows == 3 + 2
    last = m.stages[-1]
    assert (last.stage, last.rows_in, last.rows_kept, last.reasons) == (STAGE, 4, 2, {ID_PUBLISHED: 1, TEXT_PUBLISHED: 1})
    assert m.rejected_rows == 2 + 2 and m.extra["delta"]["version"] == "n2"
    m.check()
    rejects = pq.read_table(out / "rejects")
    assert len(rejects) == m.rejected_rows
    assert sorted(rejects.filter(pa.compute.equal(rejects.column("reject_stage"), STAGE)).column("id").to_pylist()) == ["b", "e"]
    # no old data copied: night 1's files are the same inodes in night 2's version
    assert inodes(base) <= inodes(out) and m.extra["files"]["base_linked"] == 2
    # rerunning the same version rebuilds it identically
    again = append_version(delta, base, corpus / "_candidates", "n2")
    assert ids(again) == ids(out) and Manifest.read(again).rows == m.rows


def test_schema_change_rewrites_old_files_with_null_columns(tmp_path):
    corpus = tmp_path / "web"
    base = version(corpus, "n1", [[doc("a", "alpha text")]])
    scored = [doc("d", "delta text", edu_score=2.5, edu_int=3, edu_model="edu-1")]
    delta = version(corpus / "_deltas", "n2", [scored])
    out = append_version(delta, base, corpus / "_candidates", "n2")
    for f in (out / "data").glob("*.parquet"):
        assert {"edu_score", "edu_int", "edu_model"} <= set(pq.read_schema(f).names), f
    t = pq.read_table(out / "data").sort_by("id")
    assert t.column("edu_score").to_pylist() == [None, 2.5]
    assert Manifest.read(out).extra["files"] == {"base_rewritten": 1, "delta_linked": 1}
    assert Manifest.read(base).rows == 1 and pq.read_schema(next((base / "data").glob("*.parquet"))).names == list(doc("a", "x"))


def test_copies_where_hard_links_are_impossible(tmp_path, monkeypatch):
    corpus = tmp_path / "web"
    base = version(corpus, "n1", [[doc("a", "alpha text")]])
    delta = version(corpus / "_deltas", "n2", [[doc("d", "delta text")]])

    def no_link(src, dst):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
    monkeypatch.setattr(os, "link", no_link)
    out = append_version(delta, base, corpus / "_candidates", "n2")
    assert ids(out) == ["a", "d"] and not inodes(base) & inodes(out)
    assert Manifest.read(out).extra["files"] == {"base_copied": 1, "delta_copied": 1}


def test_incompatible_column_types_are_a_clear_error(tmp_path):
    corpus = tmp_path / "web"
    base = version(corpus, "n1", [[doc("a", "alpha text", edu_score=1.5)]])
    delta = version(corpus / "_deltas", "n2", [[doc("d", "delta text", edu_score="high")]])
    with pytest.raises(ValueError, match="column types differ"):
        append_version(delta, base, corpus / "_candidates", "n2")
    assert DatasetRoot(corpus / "_candidates").versions() == []


def test_manifest_check_reconciles_base_rows():
    stages = [StageCounts(stage="ingest", rows_in=5, rows_kept=4, rows_rejected=1, reasons={"x": 1})]
    m = Manifest(dataset="web_curated", version="v", created_at="t", code_version="c", inputs=[], config={},
                 config_hash="h", stages=stages, rows=14, rejected_rows=1, base_version="v0", base_rows=10)
    m.check()
    with pytest.raises(ValueError, match=r"kept 4 \+ 10 from base version v0 but dataset has 15"):
        m.model_copy(update={"rows": 15}).check()
    with pytest.raises(ValueError, match="without a base_version"):
        m.model_copy(update={"base_version": None}).check()
