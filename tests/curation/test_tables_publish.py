"""Every live dataset version is also an Iceberg snapshot (curation/tables/publish.py), from the one place
the contract publishes (`DatasetRoot.building` / `make_current`): with PHI_ICEBERG_WAREHOUSE set, a version
that goes live lands in the table named after its root, tagged with its run id, the same ids as the folder;
a rerun adds no snapshot; a version built with set_current=False reaches the table only when it goes live;
CURRENT and the table's current snapshot move together; a failed commit leaves CURRENT where it was and a
rerun reconciles; without the variables only folders are written. Real documents (the dolma sample), SQLite
catalog."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from tables_helpers import real_docs, to_table

from curation.contract import DatasetRoot, StageCounts, link_or_copy
from curation.tables import TablesConfig, Warehouse, read_arrow, versions
from curation.tables.publish import TableTarget, table_target


@pytest.fixture()
def warehouse(tmp_path, monkeypatch) -> Warehouse:
    monkeypatch.setenv("PHI_ICEBERG_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.delenv("PHI_ICEBERG_CATALOG_URI", raising=False)
    return Warehouse(TablesConfig.from_env())


def build(root: DatasetRoot, version: str, rows: list[dict], *, base: str | None = None, **kw):
    """Publish `rows` (the first one rejected) as `version`; with `base`, hard-link the base version's files
    first, as the nightly append does."""
    kept, dropped = rows[1:], [{**rows[0], "reject_stage": "quality", "reject_reason": "too_short"}]
    base_rows = 0
    with root.building(version, **kw) as b:
        (b.staging / "data").mkdir()
        (b.staging / "rejects").mkdir()
        if base:
            for f in (root.version_dir(base) / "data").glob("*.parquet"):
                link_or_copy(f, b.staging / "data" / f.name)
                base_rows += pq.read_metadata(f).num_rows
        pq.write_table(to_table(kept), b.staging / "data" / f"part-{version}.parquet")
        pq.write_table(to_table(dropped), b.staging / "rejects" / f"part-{version}.parquet")
        stage = StageCounts(stage="quality", rows_in=len(rows), rows_kept=len(kept), rows_rejected=1)
        stage.reasons = {"too_short": 1}
        b.manifest(
            dataset="web_curated",
            inputs=["dolma"],
            config={},
            stages=[stage],
            rows=base_rows + len(kept),
            rejected_rows=1,
            base_version=base,
            base_rows=base_rows,
        )
    return b.final


def folder_ids(vdir) -> list[str]:
    return sorted(pq.read_table(vdir / "data", columns=["id"]).column("id").to_pylist())


def table_ids(table, ref=None) -> list[str]:
    return sorted(read_arrow(table, ref, columns=("id",)).column("id").to_pylist())


def test_live_versions_are_snapshots_and_reruns_add_none(shared_data, tmp_path, warehouse):
    docs = real_docs(shared_data, 30)
    root = DatasetRoot(tmp_path / "web_curated")
    v1 = build(root, "v1", docs[:10])
    table = warehouse.table("web_curated")
    assert [v["run_id"] for v in versions(table)] == ["v1"] and table_ids(table) == folder_ids(v1)
    assert "v1" in table.metadata.refs  # tagged with the run id
    assert table_ids(warehouse.table("web_curated_rejects")) == [docs[0]["id"]]

    # a night on top of v1 (its files hard-linked): an APPEND of the new file only; then a column arrives
    v2 = build(root, "v2", docs[10:20], base="v1")
    table.refresh()
    assert [(v["run_id"], v["operation"]) for v in versions(table)][-1] == ("v2", "append")
    assert table_ids(table) == folder_ids(v2) and len(folder_ids(v2)) == 9 + 9
    v3 = build(root, "v3", [{**d, "edu_score": 3.5} for d in docs[20:30]])
    table.refresh()
    assert "edu_score" in table.schema().column_names and table_ids(table) == folder_ids(v3)

    # a rerun of a run id: no snapshot added, and the table's current snapshot follows CURRENT back to it
    build(root, "v1", docs[:10])
    table.refresh()
    assert len(table.metadata.snapshots) == 3 and root.current() == "v1"
    assert table.current_snapshot().snapshot_id == table.metadata.refs["v1"].snapshot_id
    assert len(warehouse.table("web_curated_rejects").metadata.snapshots) == 3


def test_a_version_reaches_the_table_only_when_it_goes_live(shared_data, tmp_path, warehouse):
    docs = real_docs(shared_data, 20)
    root = DatasetRoot(tmp_path / "synthetic")
    build(root, "v1", docs[:10])
    candidate = build(root, "v2", docs[10:], set_current=False)  # a candidate a gate publishes later
    table = warehouse.table("synthetic")
    assert [v["run_id"] for v in versions(table)] == ["v1"] and root.current() == "v1"
    root.make_current("v2")
    table.refresh()
    assert root.current() == "v2" and table_ids(table) == folder_ids(candidate)
    assert table.current_snapshot().snapshot_id == table.metadata.refs["v2"].snapshot_id
    # roots private to another one never reach a table: candidates, deltas, synthesis shards
    for private in ("web/_candidates", "web/_deltas", "synthetic/_shards/v9", "web/.x"):
        assert table_target(DatasetRoot(tmp_path / private)) is None
    assert table_target(DatasetRoot(tmp_path / "idx", table=False)) is None
    named = TableTarget("corpus")
    assert table_target(DatasetRoot(tmp_path / "out", table=named)) is named


def test_a_failed_commit_leaves_current_and_a_rerun_reconciles(shared_data, tmp_path, warehouse, monkeypatch):
    docs = real_docs(shared_data, 20)
    root = DatasetRoot(tmp_path / "web")
    build(root, "v1", docs[:10])
    # the catalog is unreachable while v2 publishes (a database that cannot be opened)
    monkeypatch.setenv("PHI_ICEBERG_CATALOG_URI", f"sqlite:///{tmp_path}/no/such/dir/catalog.db")
    with pytest.raises(Exception, match="unable to open database"):
        build(root, "v2", docs[10:])
    assert root.versions() == ["v1", "v2"] and root.current() == "v1"  # folder in place, CURRENT unmoved
    monkeypatch.delenv("PHI_ICEBERG_CATALOG_URI")
    assert [v["run_id"] for v in versions(warehouse.table("web"))] == ["v1"]
    build(root, "v2", docs[10:])  # the rerun of the same run id
    table = warehouse.table("web")
    assert [v["run_id"] for v in versions(table)] == ["v1", "v2"] and root.current() == "v2"


def test_without_a_catalog_only_folders_are_written(shared_data, tmp_path, monkeypatch):
    monkeypatch.delenv("PHI_ICEBERG_WAREHOUSE", raising=False)
    monkeypatch.delenv("PHI_ICEBERG_CATALOG_URI", raising=False)
    root = DatasetRoot(tmp_path / "web")
    build(root, "v1", real_docs(shared_data, 5))
    assert root.current() == "v1" and table_target(root) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["web"]


def test_a_compacted_table_stays_the_live_version(shared_data, tmp_path, warehouse):
    """`tables compact` puts a snapshot without a run id on top of the live version (same rows, other
    files): the gate and report still read that version's manifest, a retried publish of it does not undo
    the compaction, and the next night is still an APPEND of its new file (not a whole-corpus OVERWRITE)."""
    from curation.tables.compact import compact
    from curation.tables.version import open_version

    docs = real_docs(shared_data, 30)
    root = DatasetRoot(tmp_path / "web_curated")
    build(root, "v1", docs[:10])
    build(root, "v2", docs[10:20], base="v1")
    table = warehouse.table("web_curated")
    compacted = compact(table, min_files=2).snapshot_id
    assert compacted is not None

    live = open_version("iceberg:web_curated", warehouse)
    assert live.snapshot_id == compacted and live.manifest.version == "v2" and live.manifest.rows == 18
    root.make_current("v2")  # a retried publish of the live version
    table.refresh()
    assert table.current_snapshot().snapshot_id == compacted

    v3 = build(root, "v3", docs[20:30], base="v2")
    table.refresh()
    assert [(v["run_id"], v["operation"]) for v in versions(table)][-1] == ("v3", "append")
    assert table.current_snapshot().parent_snapshot_id == compacted
    assert table_ids(table) == folder_ids(v3) and len(folder_ids(v3)) == 27


def test_a_rerun_whose_counts_differ_from_the_committed_snapshot_is_refused(shared_data, tmp_path, warehouse):
    """The run id is committed already, so a rerun commits nothing: a folder rebuilt with other rows fails
    the run, naming both counts, instead of passing silently while the table holds other rows (the table's
    current snapshot stays the committed one)."""
    docs = real_docs(shared_data, 30)
    root = DatasetRoot(tmp_path / "web_curated")
    build(root, "v1", docs[:10])
    build(root, "v2", docs[10:20])
    with pytest.raises(RuntimeError, match=r"holds 9 rows but the manifest says rows=4"):
        build(root, "v2", docs[10:15])
    table = warehouse.table("web_curated")
    assert (
        root.current() == "v2"
        and table.current_snapshot().snapshot_id == table.metadata.refs["v2"].snapshot_id
    )
    assert len(table.metadata.snapshots) == 2


def test_a_failed_rejects_commit_moves_neither_the_table_nor_current(shared_data, tmp_path, warehouse):
    """The rejects are committed before the documents: when `<table>_rejects` refuses them (here: its `id`
    is a long, the version's a string), the documents' table does not show a version CURRENT does not name."""
    import pyarrow as pa

    docs = real_docs(shared_data, 20)
    root = DatasetRoot(tmp_path / "web_curated")
    build(root, "v1", docs[:10])
    warehouse.catalog.drop_table(warehouse.identifier("web_curated_rejects"))
    warehouse.ensure("web_curated_rejects", pa.schema([pa.field("id", pa.int64())]))
    with pytest.raises(Exception, match="id"):
        build(root, "v2", docs[10:])
    table = warehouse.table("web_curated")
    assert root.current() == "v1" and [v["run_id"] for v in versions(table)] == ["v1"]
    assert table.current_snapshot().snapshot_id == table.metadata.refs["v1"].snapshot_id


def test_a_table_has_one_writer(shared_data, tmp_path, warehouse, spark):
    """A dataset root's publishes and `curation append --table` nights must not share a table (a publish makes
    each version the whole content and would drop an appended night), nor may two roots of one folder name;
    nights may take a root's table over (the migration path), and then the root may not publish to it."""
    from curation.tables.catalog import WRITER_PROPERTY, TableOwned
    from curation.tables.migrate import root_writer
    from curation.tables.nightly import append_night

    docs = real_docs(shared_data, 30)
    root = DatasetRoot(tmp_path / "web_curated")
    build(root, "v1", docs[:10])
    table = warehouse.table("web_curated")
    assert table.properties[WRITER_PROPERTY] == root_writer(root.root)
    other = DatasetRoot(tmp_path / "elsewhere" / "web_curated")
    with pytest.raises(
        TableOwned, match=r"is written by 'dataset root .*web_curated'; 'dataset root .*elsewhere"
    ):
        build(other, "w1", docs[10:20])
    assert other.current() is None  # refused before anything went live
    # table-native nights may continue the root's corpus (the migration path), for good: the root is refused
    night = DatasetRoot(tmp_path / "_deltas")
    build(night, "n1", docs[20:30])
    append_night(spark, night.version_dir("n1"), warehouse, "web_curated", run_id="n1")
    table.refresh()
    assert table.properties[WRITER_PROPERTY] == "curation append"
    with pytest.raises(TableOwned, match="is written by 'curation append'; 'dataset root "):
        build(root, "v2", docs[10:20], base="v1")
    assert root.current() == "v1"
    table.refresh()
    assert [v["run_id"] for v in versions(table)] == ["v1", "n1"]  # the appended night was not overwritten


def test_rolling_a_mirrored_table_back_moves_the_root_too(shared_data, tmp_path, warehouse):
    from curation.cli import main as curation_cli

    docs = real_docs(shared_data, 20)
    root = DatasetRoot(tmp_path / "web_curated")
    build(root, "v1", docs[:10])
    build(root, "v2", docs[10:20])
    table = warehouse.table("web_curated")
    assert curation_cli(["tables", "rollback", "--table", "web_curated", "--to", "v1"]) == 0
    table.refresh()
    assert root.current() == "v1" and table_ids(table) == folder_ids(root.version_dir("v1"))
    # --table-only moves the table alone (the root keeps its CURRENT)
    assert curation_cli(["tables", "rollback", "--table", "web_curated", "--to", "v2", "--table-only"]) == 0
    table.refresh()
    assert root.current() == "v1" and table_ids(table) == folder_ids(root.version_dir("v2"))
