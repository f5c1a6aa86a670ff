"""Compaction (curation/tables/compact.py): a table grown night by night (one small file per night, a column
arriving on the third night) is rewritten into one file in one snapshot; the current version reads the same
rows and columns, earlier versions still read their own files, and once they expire the old files are
orphans that `remove_orphan_files` deletes. Real documents; local warehouse and moto's S3 server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from tables_helpers import moto_s3, real_docs, to_table, warehouse_config, write_files

from curation.cli import main as curation_cli
from curation.tables import (
    Warehouse,
    commit_version,
    expire_versions,
    read_arrow,
    remove_orphan_files,
    versions,
)
from curation.tables.compact import compact
from curation.tables.maintenance import referenced_files


@pytest.fixture(scope="module")
def docs(shared_data):
    return real_docs(shared_data, 40)


def _grow(wh: Warehouse, docs: list[dict]):
    table = wh.ensure("web", to_table(docs[:1]).schema)
    for k in range(4):  # n0..n3, 10 documents each; n2 brings an edu_score column
        rows = docs[k * 10 : k * 10 + 10]
        if k == 2:
            rows = [{**d, "edu_score": 2.0 + i / 10} for i, d in enumerate(rows)]
        commit_version(table, write_files(table, f"n{k}", [rows[:5], rows[5:]]), f"n{k}")
    return wh.table("web")


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_compaction_rewrites_small_files_into_one_snapshot_with_the_same_rows(kind, docs, tmp_path, request):
    if kind == "s3":
        (tmp_path / "aws").mkdir()
        ctx = moto_s3(tmp_path / "aws")
        ctx.__enter__()
        request.addfinalizer(lambda: ctx.__exit__(None, None, None))
    wh = Warehouse(warehouse_config(kind, tmp_path))
    table = _grow(wh, docs)
    before = read_arrow(table).sort_by("id")
    assert len(table.inspect.files()) == 8 and before.num_rows == 40

    done = compact(table, target_rows=1000)
    table = wh.table("web")
    assert (done.files_in, done.files_out, done.rows) == (8, 1, 40)
    assert len(table.inspect.files()) == 1
    after = read_arrow(table).sort_by("id")
    assert after.equals(before)  # same rows, same columns, edu_score null where it was
    assert after.column("edu_score").null_count == 30
    history = versions(table)
    assert [v["run_id"] for v in history][:4] == ["n0", "n1", "n2", "n3"] and len(history) == 5
    assert table.current_snapshot().summary.additional_properties["phi.maintenance"] == "compact"
    assert sorted(read_arrow(table, "n1", columns=("id",)).column("id").to_pylist()) == sorted(
        d["id"] for d in docs[:20]
    )  # time travel still reads the old files

    assert compact(table, target_rows=1000).snapshot_id is None  # nothing small left

    # once the nightly versions expire, their files are orphans and go
    expire_versions(table, keep=1)
    removed = remove_orphan_files(wh.table("web"), older_than=dt.timedelta(0))
    assert len(removed) == 8 and len(referenced_files(wh.table("web"))) == 1
    assert read_arrow(wh.table("web")).sort_by("id").equals(before)


def test_compaction_through_the_cli_and_its_target_size(docs, tmp_path, capsys):
    cfg = warehouse_config("local", tmp_path)
    _grow(Warehouse(cfg), docs)
    flags = ["--table", "web", "--warehouse", cfg.warehouse]
    assert curation_cli(["tables", "compact", *flags, "--target-rows", "20"]) == 0
    assert "8 file(s) -> 2, 40 rows" in capsys.readouterr().out  # two groups of 20 rows
    assert curation_cli(["tables", "compact", *flags, "--target-rows", "20"]) == 0
    assert "nothing to compact" in capsys.readouterr().out  # 20-row files are not below the target


def test_a_night_landing_during_compaction_wins_and_compaction_commits_nothing(docs, tmp_path, monkeypatch):
    from curation.tables import compact as compaction
    from curation.tables.commit import TableMoved

    wh = Warehouse(warehouse_config("local", tmp_path))
    table = _grow(wh, docs[:30] + docs[:10])  # n3 repeats n0's documents: only the ids matter here
    real_read = compaction._read_group

    def read_then_night_lands(*args):
        monkeypatch.setattr(compaction, "_read_group", real_read)
        late = wh.table("web")
        commit_version(late, write_files(late, "n4", [docs[30:40]]), "n4")
        return real_read(*args)

    monkeypatch.setattr(compaction, "_read_group", read_then_night_lands)
    with pytest.raises(TableMoved, match="compaction not committed"):
        compact(table, target_rows=1000)
    table = wh.table("web")
    assert [v["run_id"] for v in versions(table)] == ["n0", "n1", "n2", "n3", "n4"]
    assert len(table.inspect.files()) == 9  # the night's file landed, no compacted file did
    compacted = Path(table.location().removeprefix("file://")) / "data" / "_compacted"
    assert not list(compacted.rglob("*.parquet"))  # the attempt's files were deleted
