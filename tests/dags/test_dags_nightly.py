"""nightly_refresh's whole-corpus versions (curation.append): the next version = the base version's
documents (hard-linked, not copied) + the night's delta minus what is already published, with the
manifest reconciling base rows, delta stage counts and the cumulative row count. No Spark, no Airflow:
the end-to-end nightly runs are in test_dags_run.py."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tables_helpers import to_table

from curation.append import ID_PUBLISHED, STAGE, TEXT_PUBLISHED, append_version
from curation.contract import DOC_COLUMNS, DatasetRoot, Manifest, StageCounts, config_hash, now_iso, text_hash


def doc(i: str, text: str, **more) -> dict:
    row = {c: None for c in DOC_COLUMNS}
    row.update(
        id=i,
        text=text,
        url=f"https://example.org/{i}",
        lang="en",
        lang_score=0.9,
        source_format="warc",
        text_hash=text_hash(text.lower()),
        **more,
    )
    return row


def version(root: Path, name: str, files: list[list[dict]], rejected: int = 1) -> Path:
    """A published contract version: one data file per list of documents, `rejected` quality rejects (typed
    as Spark writes them: a table catalog takes no all-null column)."""
    root.mkdir(parents=True, exist_ok=True)
    staging = DatasetRoot(root).staging_dir(name)
    (staging / "data").mkdir()
    (staging / "rejects").mkdir()
    n = 0
    for k, rows in enumerate(files):
        pq.write_table(to_table(rows), staging / "data" / f"part-{k:05d}-{name}.parquet")
        n += len(rows)
    rej = [
        {
            **doc(f"{name}-rej{k}", "short"),
            "reject_stage": "quality",
            "reject_reason": "too_short",
            "reject_detail": "1 word",
        }
        for k in range(rejected)
    ]
    pq.write_table(to_table(rej), staging / "rejects" / f"part-00000-{name}.parquet")
    stages = [
        StageCounts(stage="ingest", rows_in=n + rejected, rows_kept=n + rejected, rows_rejected=0),
        StageCounts(
            stage="quality",
            rows_in=n + rejected,
            rows_kept=n,
            rows_rejected=rejected,
            reasons={"too_short": rejected} if rejected else {},
        ),
    ]
    cols = list(files[0][0]) if files and files[0] else DOC_COLUMNS
    m = Manifest(
        dataset="web_curated",
        version=name,
        created_at=now_iso(),
        code_version="test",
        inputs=[name],
        config={},
        config_hash=config_hash({}),
        stages=stages,
        rows=n,
        rejected_rows=rejected,
        columns=cols,
    )
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
    delta = version(
        corpus / "_deltas",
        "n2",
        [[doc("d", "delta text"), doc("b", "beta re-crawled"), doc("e", "ALPHA text"), doc("f", "phi text")]],
        rejected=2,
    )
    out = append_version(delta, corpus, corpus / "_candidates", "n2")  # a root resolves to its CURRENT
    m = Manifest.read(out)
    # night 1's documents all stay; of night 2's, `b` (id published) and `e` (same normalized text as `a`)
    # are rejected as already published
    assert ids(out) == ["a", "b", "c", "d", "f"]
    assert pq.read_table(out / "data", filters=[("id", "=", "b")]).column("text").to_pylist() == ["beta text"]
    assert m.base_version == "n1" and m.base_rows == 3 and m.rows == 3 + 2
    last = m.stages[-1]
    assert (last.stage, last.rows_in, last.rows_kept, last.reasons) == (
        STAGE,
        4,
        2,
        {ID_PUBLISHED: 1, TEXT_PUBLISHED: 1},
    )
    assert m.rejected_rows == 2 + 2 and m.extra["delta"]["version"] == "n2"
    m.check()
    rejects = pq.read_table(out / "rejects")
    assert len(rejects) == m.rejected_rows
    assert sorted(
        rejects.filter(pa.compute.equal(rejects.column("reject_stage"), STAGE)).column("id").to_pylist()
    ) == ["b", "e"]
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
    assert Manifest.read(base).rows == 1 and pq.read_schema(
        next((base / "data").glob("*.parquet"))
    ).names == list(doc("a", "x"))


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
    m = Manifest(
        dataset="web_curated",
        version="v",
        created_at="t",
        code_version="c",
        inputs=[],
        config={},
        config_hash="h",
        stages=stages,
        rows=14,
        rejected_rows=1,
        base_version="v0",
        base_rows=10,
    )
    m.check()
    with pytest.raises(ValueError, match=r"kept 4 \+ 10 from base version v0 but dataset has 15"):
        m.model_copy(update={"rows": 15}).check()
    with pytest.raises(ValueError, match="without a base_version"):
        m.model_copy(update={"base_version": None}).check()


# ---- the near-dedup band index as the DAGs keep it (dags/lib/near_index.py): planned, staged, promoted -----


def index_version(root: Path, name: str, lsh: dict, parent: str | None = None, shingles: bool = True) -> Path:
    """A published band-index version (what curation.dedup.band_index.BandIndex writes), without Spark."""
    from curation.dedup.band_index import INDEX_DATASET

    staging = DatasetRoot(root).staging_dir(name)
    (staging / "bands").mkdir()
    pq.write_table(pa.table({"id": ["a"], "band": [0], "key": [7]}), staging / "bands" / "part-0.parquet")
    if shingles:
        (staging / "shingles").mkdir()
        pq.write_table(pa.table({"id": ["a"], "shingles": [[1, 2]]}), staging / "shingles" / "part-0.parquet")
    Manifest(
        dataset=INDEX_DATASET,
        version=name,
        created_at=now_iso(),
        code_version="test",
        inputs=[],
        config={"lsh": lsh},
        config_hash=config_hash({"lsh": lsh}),
        rows=1,
        columns=["id", "band", "key"],
        extra={"parent": parent},
    ).write(staging)
    return DatasetRoot(root).publish(staging, name)


def default_lsh() -> dict:
    from curation.dedup.band_index import params_dict
    from curation.dedup.near import lsh_params
    from curation.dedup.near_config import NearDedupConfig

    return params_dict(lsh_params(NearDedupConfig()))


def test_failed_gate_leaves_the_band_index_current_unchanged(tmp_path):
    """The curate job stages the night's index version in the run's own root; the index's CURRENT moves
    only in publish, after the gate passed and the corpus version went live."""
    from curation.config import load_config
    from curation.quality_gates import GateFailed
    from dags.lib.near_index import index_root, plan_near_index, promote, publish_with_index

    corpus = tmp_path / "web"
    version(corpus, "n1", [[doc("a", "alpha text")]])
    index = DatasetRoot(index_root(corpus))
    index_version(index.root, "n1", default_lsh())
    cfg = load_config(None)
    near = plan_near_index(cfg, None, corpus, "n2", "n1", incremental=True)
    # near-dedup on, against index version n1, hard-linked into the run's staged root
    staged = DatasetRoot(near["staged_root"])
    assert cfg.near_dedup.enabled and cfg.near_dedup.index_dir == str(staged.root)
    assert (near["base"], near["rebuilt"]) == ("n1", False) and staged.current() == "n1"
    assert {p.stat().st_ino for p in (index.root / "n1").rglob("*.parquet")} == {
        p.stat().st_ino for p in (staged.root / "n1").rglob("*.parquet")
    }
    # what the curate job leaves: version n2 in the staged root (its pipeline "publishes" it there)
    index_version(staged.root, "n2", default_lsh(), parent="n1")
    assert index.current() == "n1"

    bad = version(
        corpus / "_candidates", "n2", [[doc("d", "delta text"), doc("d", "delta again")]]
    )  # repeated id
    with pytest.raises(GateFailed):
        publish_with_index(bad, corpus, "web_curated", near)
    assert index.current() == "n1" and index.versions() == ["n1"] and DatasetRoot(corpus).current() == "n1"
    assert (staged.root / "n2" / "manifest.json").is_file()  # left staged, like the candidate

    good = version(corpus / "_candidates", "n2", [[doc("d", "delta text"), doc("e", "epsilon text")]])
    publish_with_index(good, corpus, "web_curated", near)
    assert (
        DatasetRoot(corpus).current() == "n2" and index.current() == "n2" and index.versions() == ["n1", "n2"]
    )
    assert Manifest.read(index.root / "n2").extra["parent"] == "n1" and not staged.root.exists()
    assert promote(near, "n2") == "n2" and index.current() == "n2"  # a retried publish: no-op


def test_plan_rebuilds_a_band_index_that_does_not_describe_the_base(tmp_path):
    from curation.config import load_config
    from curation.dedup.band_index import REBUILD_REQUEST
    from dags.lib.near_index import index_root, plan_near_index

    corpus = tmp_path / "web"
    version(corpus, "n0", [[doc("a", "alpha text")]])
    version(corpus, "n1", [[doc("a", "alpha text"), doc("b", "beta text")]])
    index = index_root(corpus)

    def plan(
        config: str | None = None, base: str | None = "n1", incremental: bool = True
    ) -> tuple[dict, object]:
        cfg = load_config(config)
        return plan_near_index(cfg, config, corpus, "n2", base, incremental), cfg

    near, _ = plan()  # no index at all yet
    assert (
        near["rebuilt"]
        and "no version yet" in near["reason"]
        and "signatures of its 2 documents" in near["note"]
    )
    request = json.loads((Path(near["staged_root"]) / REBUILD_REQUEST).read_text())
    assert request["corpus"] == str(corpus / "n1") and request["version"] == "n1"
    index_version(index, "n0", default_lsh())  # the index describes an older corpus version
    near, _ = plan()
    assert near["rebuilt"] and "CURRENT is n0, not the corpus's CURRENT n1" in near["reason"]
    index_version(index, "n1", default_lsh(), shingles=False)
    near, _ = plan()
    assert near["rebuilt"] and "no shingles/" in near["reason"]
    index_version(index, "n1", default_lsh())
    other = tmp_path / "other.yaml"
    other.write_text("near_dedup:\n  num_perm: 60\n  bands: 10\n")
    near, cfg = plan(str(other))
    assert near["rebuilt"] and "LSH parameters" in near["reason"] and cfg.near_dedup.num_perm == 60
    near, _ = plan()
    assert not near["rebuilt"] and near["base"] == "n1"
    assert not (Path(near["staged_root"]) / REBUILD_REQUEST).exists()  # re-planned: a clean root
    # web_curation (full run): near-dedup only when its config enables it, built from the run alone
    near, cfg = plan(base=None, incremental=False)
    assert near["enabled"] is False and not cfg.near_dedup.enabled and cfg.near_dedup.index_dir is None
    on = tmp_path / "on.yaml"
    on.write_text("near_dedup:\n  enabled: true\n")
    near, cfg = plan(str(on), base=None, incremental=False)
    assert near["enabled"] and near["base"] is None and not any(Path(near["staged_root"]).iterdir())
    # nightly: an explicit opt-out is respected; the DAGs own index_dir
    off = tmp_path / "off.yaml"
    off.write_text("near_dedup:\n  enabled: false\n")
    near, cfg = plan(str(off))
    assert near["enabled"] is False and not cfg.near_dedup.enabled
    own = tmp_path / "own.yaml"
    own.write_text("near_dedup:\n  index_dir: /somewhere\n")
    with pytest.raises(ValueError, match="index_dir is set"):
        plan(str(own))


def test_promote_prunes_the_band_index_to_its_newest_versions(tmp_path):
    """Each promote keeps KEEP_INDEX_VERSIONS index versions (the new CURRENT and the one before): an index
    version only serves as the base of the next night, older ones would be rebuilt from the corpus anyway."""
    from dags.lib.near_index import KEEP_INDEX_VERSIONS, STAGED, index_root, promote

    assert KEEP_INDEX_VERSIONS == 2
    index = DatasetRoot(index_root(tmp_path / "web"))
    for v in ("n0", "n1"):
        index_version(index.root, v, default_lsh())
    staged = index.root / STAGED / "n2"
    index_version(staged, "n2", default_lsh(), parent="n1")
    (index.root / STAGED / "n3").mkdir()  # another run's staged root: not a version, left alone
    near = {"enabled": True, "root": str(index.root), "staged_root": str(staged), "version": "n2"}
    assert promote(near, "n2") == "n2"
    assert (
        index.current() == "n2" and index.versions() == ["n1", "n2"] and (index.root / STAGED / "n3").is_dir()
    )
    assert promote(near, "n2") == "n2" and index.versions() == ["n1", "n2"]  # a retried publish: no-op


def test_delta_cleanup_removes_only_earlier_published_nights(tmp_path):
    """What nightly_refresh's record task does after a successful publish: the deltas of earlier published
    nights go (their documents live on in the published versions as hard links), this night's stays, and a
    failed night's delta (not published) is left for its rerun."""
    from curation.contract_prune import prune_run_folders

    corpus = tmp_path / "web"
    version(corpus, "n1", [[doc("a", "alpha text")]])
    deltas = corpus / "_deltas"
    d2 = version(deltas, "n2", [[doc("b", "beta text")]])
    append_version(d2, corpus / "n1", corpus / "_candidates", "n2")
    DatasetRoot(corpus).publish(corpus / "_candidates" / "n2", "n2")
    d3 = version(deltas, "n3", [[doc("c", "gamma text")]])
    append_version(d3, corpus / "n2", corpus / "_candidates", "n3")
    DatasetRoot(corpus).publish(corpus / "_candidates" / "n3", "n3")
    version(deltas, "n4", [[doc("d", "delta text")]])  # a failed night: never published
    assert prune_run_folders(deltas, corpus, keep="n3") == ["n2"]
    assert sorted(p.name for p in deltas.iterdir() if not p.name.startswith(".")) == ["CURRENT", "n3", "n4"]
    assert ids(corpus / "n3") == ["a", "b", "c"] and ids(corpus / "n2") == ["a", "b"]  # links survive
    assert prune_run_folders(deltas, corpus, keep="n3") == []
