"""The band index as an append-only Iceberg table (curation/dedup/band_table.py), run side by side with the
folder index on the same nights: the same documents removed, one APPEND snapshot per night holding only that
night's kept documents, a retried night a no-op, a deferred night whose gate fails leaving the table as it
was (its files orphans that remove-orphans deletes), compaction keeping the rows, a rebuild as one
OVERWRITE snapshot. Real Spark (local), SQLite catalog on a temporary warehouse."""

from __future__ import annotations

import datetime as dt

import pyarrow.parquet as pq
import pytest
from test_near_dedup_helpers import edit_words, fixture_docs, publish_docs

from curation.contract import Manifest
from curation.dedup.band_table import BandTable, commit_staged
from curation.dedup.job import run_near_dedup
from curation.dedup.near import lsh_params
from curation.dedup.near_config import NearDedupConfig
from curation.tables import TablesConfig, Warehouse, read_arrow, remove_orphan_files, versions
from curation.tables.compact import compact
from curation.tables.maintenance import referenced_files

pytestmark = pytest.mark.slow
LATER = "2024-02-01"  # copies are crawled later, so the keep rule (date asc) keeps the originals
TABLE = "web_near_index"


def _doc(id_, text, date="2024-01-01"):
    return {"id": id_, "text": text, "date": date}


@pytest.fixture(scope="module")
def nights():
    base = fixture_docs()
    n1 = [_doc(d["id"], d["text"]) for d in base[:40]] + [
        _doc("n1-copy", edit_words(base[0]["text"], 60), LATER)
    ]
    n2 = [_doc(d["id"], d["text"]) for d in base[40:]] + [
        _doc("n2-copy-old", edit_words(base[5]["text"], 60, tag="y"), LATER),  # of a doc indexed by n1
        _doc("n2-copy-new", base[45]["text"].upper(), LATER),  # of a doc of the same night
    ]
    n3 = [
        _doc("n3-copy", edit_words(base[7]["text"], 70, tag="z"), LATER),  # of n1's
        _doc("n3-copy-n2", edit_words(base[50]["text"], 70, tag="w"), LATER),  # of n2's
        _doc(base[10]["id"], base[10]["text"]),  # a re-submitted id: the table then holds it twice
    ]
    n4 = [_doc("n4-copy-resubmitted", edit_words(base[10]["text"], 60, tag="v"), LATER)]
    return {"n1": n1, "n2": n2, "n3": n3, "n4": n4}


@pytest.fixture(scope="module")
def side_by_side(spark, nights, tmp_path_factory):
    """Nights n1..n3 through both backends: (tmp, table cfg, warehouse, {backend: {night: result}})."""
    tmp = tmp_path_factory.mktemp("bandtable")
    mp = pytest.MonkeyPatch()
    mp.setenv("PHI_ICEBERG_WAREHOUSE", str(tmp / "warehouse"))
    mp.delenv("PHI_ICEBERG_CATALOG_URI", raising=False)
    for night, docs in nights.items():
        publish_docs(tmp / f"in-{night}", night, docs)
    folder = NearDedupConfig(index_dir=str(tmp / "folder-index"))
    table = NearDedupConfig(index_table=TABLE)
    results: dict = {"folder": {}, "table": {}}
    for night in ("n1", "n2", "n3"):
        for backend, cfg in (("folder", folder), ("table", table)):
            results[backend][night] = run_near_dedup(
                tmp / f"in-{night}", tmp / f"out-{backend}", cfg, run_id=night, spark=spark
            )
    yield tmp, table, Warehouse(TablesConfig.from_env()), results
    mp.undo()


def _dups(result) -> dict[str, str]:
    rows = pq.read_table(result.version_dir / "duplicates").to_pylist()
    return {r["doc_id"]: r["kept_id"] for r in rows}


def _files(wh: Warehouse) -> set[str]:
    """The index table's data files (the runs' outputs are tables of the same warehouse too)."""
    from pathlib import Path

    return {
        str(p) for p in (Path(wh.config.warehouse) / wh.config.namespace / TABLE / "data").rglob("*.parquet")
    }


def test_both_backends_remove_the_same_documents(side_by_side, nights):
    _, _, _, results = side_by_side
    base = fixture_docs()
    expected = {
        "n1": {"n1-copy": base[0]["id"]},
        "n2": {"n2-copy-old": base[5]["id"], "n2-copy-new": base[45]["id"]},
        "n3": {"n3-copy": base[7]["id"], "n3-copy-n2": base[50]["id"]},
    }
    for night, want in expected.items():
        assert _dups(results["folder"][night]) == want, night
        assert _dups(results["table"][night]) == want, night


def test_each_night_is_one_append_snapshot_of_its_kept_documents_only(side_by_side, nights):
    _, _, wh, results = side_by_side
    table = wh.table(TABLE)
    snaps = versions(table)
    assert [s["run_id"] for s in snaps] == ["n1", "n2", "n3"]
    assert [s["operation"] for s in snaps] == ["append"] * 3
    added = [int(table.metadata.snapshot_by_id(s["snapshot_id"]).summary["added-records"]) for s in snaps]
    kept = [results["table"][n].manifest.rows for n in ("n1", "n2", "n3")]
    assert added == kept == [len(nights[n]) - len(_dups(results["table"][n])) for n in ("n1", "n2", "n3")]
    rows = read_arrow(table, "n3", columns=("id", "seq"))
    ids = rows.column("id").to_pylist()
    assert ids.count(fixture_docs()[10]["id"]) == 2  # re-submitted in n3: both entries kept
    # the folder index holds the same documents, each once
    folder_ids = pq.read_table(side_by_side[0] / "folder-index" / "n3" / "bands", columns=["id"]).column(0)
    assert set(folder_ids.to_pylist()) == set(ids)
    assert sorted(set(rows.column("seq").to_pylist())) == [1, 2, 3]


def test_an_id_indexed_twice_yields_one_duplicate_row(spark, side_by_side):
    """n4 holds a near copy of the id n3 re-submitted (two table entries): one audit row, kept the
    published id, in both backends."""
    tmp, table_cfg, wh, _ = side_by_side
    before = versions(wh.table(TABLE))
    for backend, cfg in (
        ("folder", NearDedupConfig(index_dir=str(tmp / "folder-index"))),
        ("table", table_cfg),
    ):
        done = run_near_dedup(tmp / "in-n4", tmp / f"out4-{backend}", cfg, run_id="n4", spark=spark)
        assert _dups(done) == {"n4-copy-resubmitted": fixture_docs()[10]["id"]}, backend
        assert pq.read_table(done.version_dir / "duplicates").num_rows == 1
    after = versions(wh.table(TABLE))
    assert len(after) == len(before) + 1 and after[-1]["run_id"] == "n4"
    assert after[-1]["rows"] == before[-1]["rows"]  # its one document was removed: an empty snapshot


def test_a_retried_night_is_a_no_op(spark, side_by_side):
    tmp, cfg, wh, results = side_by_side
    before, files = versions(wh.table(TABLE)), _files(wh)
    again = run_near_dedup(tmp / "in-n2", tmp / "out-retry", cfg, run_id="n2", spark=spark)
    assert _dups(again) == _dups(results["table"]["n2"])  # deduplicated against n2's parent again
    assert versions(wh.table(TABLE)) == before
    assert _files(wh) == files  # the retry's staged files were deleted, not left as orphans


def test_a_failed_gate_leaves_the_table_unchanged_and_its_files_orphans(
    spark, side_by_side, nights, tmp_path
):
    tmp, cfg, wh, _ = side_by_side
    deferred = cfg.model_copy(update={"index_commit": "deferred"})
    publish_docs(tmp / "in-n5", "n5", [_doc("n5-new", fixture_docs()[3]["text"][::-1])])
    head = wh.table(TABLE).current_snapshot().snapshot_id
    done = run_near_dedup(tmp / "in-n5", tmp / "out-n5", deferred, run_id="n5", spark=spark)
    staged = Manifest.read(done.version_dir).extra["near_dedup"]["index_commit"]
    assert staged["run_id"] == "n5" and staged["parent_snapshot_id"] == head and staged["documents"] == 1
    table = wh.table(TABLE)
    assert table.current_snapshot().snapshot_id == head  # the gate failed: nothing committed
    orphans = remove_orphan_files(table, older_than=dt.timedelta(0))
    assert sorted(o.split("/data/", 1)[1] for o in orphans) == sorted(
        f.split("/data/", 1)[1] for f in staged["files"]
    )
    # the rerun after a fixed gate: promote commits the staged record (once; a second promote is a no-op)
    done = run_near_dedup(tmp / "in-n5", tmp / "out-n5b", deferred, run_id="n5", spark=spark)
    staged = Manifest.read(done.version_dir).extra["near_dedup"]["index_commit"]
    sid = commit_staged(staged)
    assert commit_staged(staged) == sid and wh.table(TABLE).current_snapshot().snapshot_id == sid
    assert versions(wh.table(TABLE))[-1]["run_id"] == "n5"
    assert not set(staged["files"]) - {"file://" + f for f in referenced_files(wh.table(TABLE))}


def test_compaction_keeps_the_rows(side_by_side):
    _, _, wh, _ = side_by_side
    table = wh.table(TABLE)
    before = read_arrow(table).sort_by([("id", "ascending"), ("seq", "ascending")])
    done = compact(table, target_rows=100_000)
    table = wh.table(TABLE)
    # n4's night removed its one document: an empty file, which scan planning skips (and compaction too)
    counts = table.inspect.files().column("record_count").to_pylist()
    assert done.files_in == 4 and done.files_out == 1 and sorted(counts) == [0, done.rows]
    assert read_arrow(table).sort_by([("id", "ascending"), ("seq", "ascending")]).equals(before)


def test_a_night_pinned_before_a_compaction_commits_on_it(spark, side_by_side):
    """The night names its base by run id (n5); the compaction on top of it holds the same rows, so the night
    reads it and commits on it instead of failing as a moved table."""
    tmp, cfg, wh, _ = side_by_side
    compacted = wh.table(TABLE).current_snapshot()
    assert compacted.summary["phi.maintenance"] == "compact"
    publish_docs(
        tmp / "in-n6", "n6", [_doc("n6-copy", edit_words(fixture_docs()[20]["text"], 60, tag="u"), LATER)]
    )
    done = run_near_dedup(
        tmp / "in-n6",
        tmp / "out-n6",
        cfg.model_copy(update={"index_table_ref": "n5"}),
        run_id="n6",
        spark=spark,
    )
    assert _dups(done) == {"n6-copy": fixture_docs()[20]["id"]}
    assert wh.table(TABLE).current_snapshot().parent_snapshot_id == compacted.snapshot_id


def test_rebuild_from_a_corpus_version_is_one_overwrite_snapshot(spark, side_by_side):
    tmp, cfg, wh, results = side_by_side
    corpus = results["table"]["n2"].version_dir  # any published version with data/
    index = BandTable(TABLE, lsh_params(cfg), warehouse=wh)
    sid = index.build_from_corpus(spark, corpus, "rebuild-n2", with_shingles=True)
    assert index.build_from_corpus(spark, corpus, "rebuild-n2", with_shingles=True) == sid  # idempotent
    table = wh.table(TABLE)
    assert versions(table)[-1]["operation"] == "overwrite" and versions(table)[-1]["run_id"] == "rebuild-n2"
    ids = read_arrow(table, columns=("id",)).column("id").to_pylist()
    assert sorted(ids) == sorted(pq.read_table(corpus / "data", columns=["id"]).column(0).to_pylist())


def test_a_table_built_with_other_parameters_is_refused(spark, side_by_side):
    tmp, cfg, _, _ = side_by_side
    with pytest.raises(ValueError, match="LSH parameters"):
        run_near_dedup(
            tmp / "in-n2", tmp / "out-x", cfg.model_copy(update={"seed": 7}), run_id="x", spark=spark
        )


def test_the_index_table_on_s3(spark, nights, tmp_path):
    """n1 then n2 on an S3 warehouse (moto's server, a real S3 protocol): the workers write and read the
    index's files through fsspec, and n2 loses the same documents as on the local warehouse."""
    from tables_helpers import BUCKET, moto_s3_with_spark

    base = fixture_docs()
    with moto_s3_with_spark(tmp_path / "aws", spark), pytest.MonkeyPatch.context() as mp:
        mp.setenv("PHI_ICEBERG_WAREHOUSE", f"s3://{BUCKET}/near-index")
        mp.setenv("PHI_ICEBERG_CATALOG_URI", f"sqlite:///{tmp_path}/catalog.db")
        cfg = NearDedupConfig(index_table=TABLE)
        done = {}
        for night in ("n1", "n2"):
            publish_docs(tmp_path / f"in-{night}", night, nights[night])
            done[night] = run_near_dedup(
                tmp_path / f"in-{night}", tmp_path / "out", cfg, run_id=night, spark=spark
            )
        assert _dups(done["n2"]) == {"n2-copy-old": base[5]["id"], "n2-copy-new": base[45]["id"]}
        table = Warehouse(TablesConfig.from_env()).table(TABLE)
        assert table.location().startswith("s3://")
        assert [v["run_id"] for v in versions(table)] == ["n1", "n2"]
        assert versions(table)[-1]["rows"] == done["n1"].manifest.rows + done["n2"].manifest.rows


def test_a_night_on_a_stale_table_rebuilds_it_from_its_base_corpus_first(spark, nights, tmp_path):
    """`index_table_rebuild_from` (what nightly_refresh plans when the table does not describe the base corpus
    version): the job first indexes every document of that version as snapshot `index_table_ref`, then
    deduplicates the night against it; a retried night does not rebuild again."""
    base = fixture_docs()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PHI_ICEBERG_WAREHOUSE", str(tmp_path / "warehouse"))
        mp.delenv("PHI_ICEBERG_CATALOG_URI", raising=False)
        corpus = publish_docs(tmp_path / "corpus", "v1", nights["n1"][:-1])  # base[:40] went live
        publish_docs(tmp_path / "in-n2", "n2", nights["n2"])
        cfg = NearDedupConfig(
            index_table=TABLE,
            index_table_ref="rebuild/n2",
            index_table_rebuild_from=str(corpus),
            index_commit="deferred",
        )
        done = run_near_dedup(tmp_path / "in-n2", tmp_path / "out", cfg, run_id="n2", spark=spark)
        # n2's copy of a base document is removed against the rebuilt index, its in-night copy as usual
        assert _dups(done) == {"n2-copy-old": base[5]["id"], "n2-copy-new": base[45]["id"]}
        wh = Warehouse(TablesConfig.from_env())
        history = versions(wh.table(TABLE))
        # (an OVERWRITE of a table without rows is recorded as an append)
        assert [(v["run_id"], v["operation"]) for v in history] == [("rebuild/n2", "append")]
        assert history[0]["rows"] == 40  # the base's documents; the night's rows are staged, not committed
        staged = Manifest.read(done.version_dir).extra["near_dedup"]["index_commit"]
        assert staged["parent_snapshot_id"] == history[0]["snapshot_id"]
        again = run_near_dedup(tmp_path / "in-n2", tmp_path / "out-retry", cfg, run_id="n2", spark=spark)
        assert _dups(again) == _dups(done) and versions(wh.table(TABLE)) == history
    with pytest.raises(ValueError, match="index_table_rebuild_from .* needs index_table and index_table_ref"):
        NearDedupConfig(index_table=TABLE, index_table_rebuild_from=str(corpus))
