"""`python -m curation append --table`: a night's curated delta becomes one APPEND snapshot of its new rows
only, deduplicated in Spark against the ids and text hashes of the table's pinned snapshot. Three nights of
real documents (the dolma CC sample) on a local warehouse and on moto's S3 server: the second night repeats a
published id and a published text (rejected by reason, counts reconcile), the third brings an edu column (a
schema update: the earlier nights' files stay as they are); a retried night is a no-op; each night reads back
by its run id. The folder-contract path of the same command is unchanged (curation.append)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tables_helpers import moto_s3_with_spark, real_docs, to_table, warehouse_config

from curation.append import ID_PUBLISHED, STAGE, TEXT_PUBLISHED
from curation.cli import main as curation_cli
from curation.contract import DatasetRoot, Manifest, StageCounts
from curation.tables import Warehouse, data_files, read_arrow, versions
from curation.tables.nightly import append_night


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory, spark):
    with moto_s3_with_spark(tmp_path_factory.mktemp("aws"), spark) as endpoint:
        yield endpoint


def _night(root, name: str, rows: list[dict]):
    """A curated delta as `curation run` publishes it: two data files, counts for one quality stage."""
    n = len(rows)
    with DatasetRoot(root).building(name) as b:
        (b.staging / "data").mkdir()
        half = n // 2
        for k, part in enumerate([rows[:half], rows[half:]]):
            pq.write_table(to_table(part), b.staging / "data" / f"part-{k}-{name}.parquet")
        b.manifest(
            dataset="web_curated",
            inputs=[name],
            config={"night": name},
            rows=n,
            rejected_rows=2,
            stages=[
                StageCounts(
                    stage="quality",
                    rows_in=n + 2,
                    rows_kept=n,
                    rows_rejected=2,
                    reasons={"quality:too_short": 2},
                )
            ],
        )
    return b.final


@pytest.fixture(scope="module")
def nights(shared_data, tmp_path_factory):
    docs = real_docs(shared_data, 60)
    root = tmp_path_factory.mktemp("nights")
    again = [docs[5], {**docs[7], "id": "a-copy-of-7"}]  # an id and a text night n1 published
    scored = [{**d, "edu_score": 1.0 + i / 10} for i, d in enumerate(docs[50:60])]
    return {
        "docs": docs,
        "n1": _night(root, "n1", docs[:30]),
        "n2": _night(root, "n2", docs[30:50] + again),
        "n3": _night(root, "n3", scored),
    }


def _ids(table, ref) -> list[str]:
    return sorted(read_arrow(table, ref, columns=("id",)).column("id").to_pylist())


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_nights_append_their_new_rows_only(kind, nights, spark, tmp_path, request, capsys):
    if kind == "s3":
        request.getfixturevalue("s3_endpoint")
    cfg = warehouse_config(kind, tmp_path)
    wh = Warehouse(cfg)
    docs = nights["docs"]

    first = append_night(spark, nights["n1"], wh, "corpus")
    assert (first.created, first.base_snapshot_id, first.appended, first.rejected) == (True, None, 30, {})
    second = append_night(spark, nights["n2"], wh, "corpus")
    table = wh.table("corpus")
    assert second.base_snapshot_id == first.snapshot_id
    assert second.rejected == {ID_PUBLISHED: 1, TEXT_PUBLISHED: 1} and second.appended == 20
    assert second.delta_rows == second.appended + sum(second.rejected.values()) == 22
    assert _ids(table, "n1") == sorted(d["id"] for d in docs[:30])
    assert _ids(table, "n2") == sorted(d["id"] for d in docs[:50])
    # the snapshot added the night's files only, all under its own folder; the base's files are untouched
    assert set(data_files(table, "n2")) == set(data_files(table, "n1")) | set(second.files)
    assert all("/data/n2/" in f for f in second.files)
    summary = table.metadata.snapshot_by_id(second.snapshot_id).summary
    assert summary.operation.value == "append" and int(summary["added-records"]) == 20
    assert int(summary["phi.base-snapshot-id"]) == first.snapshot_id and int(summary["phi.base-rows"]) == 30
    stages = json.loads(summary["phi.stages"])
    assert [s["stage"] for s in stages] == ["quality", STAGE]
    assert stages[-1] == {
        "stage": STAGE,
        "rows_in": 22,
        "rows_kept": 20,
        "rows_rejected": 2,
        "seconds": stages[-1]["seconds"],
        "reasons": {ID_PUBLISHED: 1, TEXT_PUBLISHED: 1},
    }
    assert int(summary["phi.rows"]) == int(summary["total-records"]) == 50

    # a retried night commits nothing
    again = append_night(spark, nights["n2"], wh, "corpus")
    assert (again.created, again.snapshot_id) == (False, second.snapshot_id)
    assert len(versions(wh.table("corpus"))) == 2

    # night 3 through the CLI: the edu column is a schema update, the earlier files stay as they are
    assert (
        curation_cli(
            [
                "append",
                "--delta",
                str(nights["n3"]),
                "--table",
                "corpus",
                "--warehouse",
                cfg.warehouse,
                "--catalog-uri",
                cfg.resolved_catalog_uri(),
            ]
        )
        == 0
    )
    assert "10 rows = 10 appended + rejected none" in capsys.readouterr().out
    table = wh.table("corpus")
    assert "edu_score" in table.schema().column_names
    assert set(data_files(table, "n2")) < set(data_files(table, "n3"))
    scores = read_arrow(table, "n3", columns=("id", "edu_score")).to_pylist()
    assert len(scores) == 60 and sum(r["edu_score"] is not None for r in scores) == 10
    assert [v["operation"] for v in versions(table)] == ["append"] * 3


def test_the_folder_contract_append_is_unchanged(nights, tmp_path, capsys):
    root = tmp_path / "corpus"
    assert (
        curation_cli(["append", "--delta", str(nights["n1"]), "--output", str(root), "--version", "n1"]) == 0
    )
    assert (
        curation_cli(
            [
                "append",
                "--delta",
                str(nights["n2"]),
                "--base",
                str(root / "n1"),
                "--output",
                str(root),
                "--version",
                "n2",
            ]
        )
        == 0
    )
    m = Manifest.read(root / "n2")
    assert (m.rows, m.base_rows, m.stages[-1].reasons) == (50, 30, {ID_PUBLISHED: 1, TEXT_PUBLISHED: 1})
    assert curation_cli(["append", "--delta", str(nights["n1"]), "--table", "t", "--output", str(root)]) == 2
    assert "give one or the other" in capsys.readouterr().err


def test_a_night_that_loses_the_race_to_another_writer_dedups_again_and_lands_once(
    nights, spark, tmp_path, monkeypatch
):
    """Another night committed while this one was deduplicating: this night's first attempt commits nothing
    (the catalog's commit asserts the head it deduplicated against), its files are deleted, and the second
    attempt dedups against the new head: both nights land, the rows both bring land once."""
    from curation.tables import nightly
    from curation.tables.maintenance import referenced_files

    wh = Warehouse(warehouse_config("local", tmp_path))
    append_night(spark, nights["n1"], wh, "corpus")
    real_write, attempts = nightly.write_rows, []

    def write_then_other_writer(*args):
        paths = real_write(*args)
        attempts.append(paths)
        if len(attempts) == 1:  # the other writer commits between this night's pin and its commit
            monkeypatch.setattr(nightly, "write_rows", real_write)
            append_night(spark, nights["n3"], wh, "corpus")
            monkeypatch.setattr(nightly, "write_rows", write_then_other_writer)
        return paths

    monkeypatch.setattr(nightly, "write_rows", write_then_other_writer)
    done = append_night(spark, nights["n2"], wh, "corpus")
    table = wh.table("corpus")
    assert len(attempts) == 2 and [v["run_id"] for v in versions(table)] == ["n1", "n3", "n2"]
    assert done.appended == 20 and done.base_snapshot_id == table.snapshot_by_name("n3").snapshot_id
    ids = read_arrow(table, columns=("id",)).column("id").to_pylist()
    assert len(ids) == len(set(ids))  # the rows n2 and n3 share landed once
    # the lost attempt left nothing behind: every file under the table is one a snapshot reads
    on_disk = {str(p) for p in Path(table.location().removeprefix("file://"), "data").rglob("*.parquet")}
    assert on_disk == referenced_files(table) and not any(Path(p).exists() for p in attempts[0])
