"""Write-audit-publish for table appends (curation/tables/wap.py): a staged night lands on branch
`audit/<run id>`, not on main; the gate audits exactly that version (main's head + the night); publishing
fast-forwards main iff nobody moved it since, tags the run and drops the branch; a discarded night leaves main
as it was and its files orphaned. Real nights of the dolma CC sample, Spark local[2], a SQLite catalog on a
tmp warehouse."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from tables_helpers import real_docs, warehouse_config
from test_tables_append import _ids, _night

from curation.cli import main as curation_cli
from curation.quality_gates import run_gate
from curation.tables import Warehouse, data_files, expire_versions, read_arrow, snapshot_id, versions
from curation.tables.catalog import TableNotFound
from curation.tables.commit import RunStaged, TableMoved
from curation.tables.maintenance import referenced_files, remove_orphan_files
from curation.tables.nightly import append_night
from curation.tables.version import open_version
from curation.tables.wap import (
    GateNotPassed,
    NotStaged,
    check_gate_verdict,
    discard_staged,
    publish_staged,
    staged_runs,
)


@pytest.fixture(scope="module")
def nights(shared_data, tmp_path_factory):
    sample = real_docs(shared_data, 70)
    docs = [d for d in sample if d["text"]][:60]  # the sample holds empty documents, which fail the gate
    root = tmp_path_factory.mktemp("nights")
    return {
        "docs": docs,
        "n1": _night(root, "n1", docs[:30]),
        "n1-broken": _night(root, "n1-broken", sample[:30]),  # with the sample's empty document 16
        "n2": _night(root, "n2", docs[30:50] + [docs[5]]),  # one id n1 published
        "n3": _night(root, "n3", docs[50:60]),
    }


def _cli(cfg, *args: str) -> int:
    return curation_cli([*args, "--warehouse", cfg.warehouse, "--catalog-uri", cfg.resolved_catalog_uri()])


def _main(table) -> int | None:
    table.refresh()
    return snapshot_id(table)


def test_a_staged_night_is_invisible_on_main_gates_as_base_plus_night_and_publishes(
    nights, spark, tmp_path, monkeypatch, capsys
):
    cfg = warehouse_config("local", tmp_path)
    monkeypatch.setenv("PHI_ICEBERG_WAREHOUSE", cfg.warehouse)
    monkeypatch.setenv("PHI_ICEBERG_CATALOG_URI", cfg.resolved_catalog_uri())
    wh, docs = Warehouse(cfg), nights["docs"]
    base = append_night(spark, nights["n1"], wh, "web")

    assert _cli(cfg, "append", "--delta", str(nights["n2"]), "--table", "web", "--stage") == 0
    assert "staged as iceberg:web@audit/n2" in capsys.readouterr().out
    table = wh.table("web")
    sid = staged_runs(table)["n2"]
    staged = table.metadata.snapshot_by_id(sid)
    assert staged.parent_snapshot_id == base.snapshot_id and staged.summary["phi.run-id"] == "n2"
    assert staged.summary["phi.base-snapshot-id"] == str(base.snapshot_id)
    # main and its readers do not see it: not current, not a version, not reachable by its run id
    assert _main(table) == base.snapshot_id and [v["run_id"] for v in versions(table)] == ["n1"]
    assert _ids(table, None) == sorted(d["id"] for d in docs[:30])
    with pytest.raises(TableNotFound, match="'n2'"):
        snapshot_id(table, "n2")
    assert _cli(cfg, "tables", "versions", "--table", "web") == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 2 and listed[1].startswith(f"S {sid:>20}  n2") and "audit/n2" in listed[1]
    # the audit reads exactly base + the night's new rows (the repeated id rejected)
    tv = open_version("iceberg:web@audit/n2")
    assert tv.snapshot_id == sid and tv.manifest.version == "n2" and tv.manifest.rows == 50
    staged_files = sorted(p.removeprefix("file://") for p in data_files(table, sid))
    assert sorted(str(f) for f in tv.files) == staged_files
    assert set(data_files(table, base.snapshot_id)) < set(data_files(table, sid))
    assert _ids(table, "audit/n2") == sorted(d["id"] for d in docs[:50])
    verdict = run_gate("iceberg:web@audit/n2", engine="pandas", docs_dir=tmp_path / "gate")
    assert verdict.dataset_dir == f"iceberg:web@{sid}"

    # retries: a staged night on an unmoved head is a no-op; a direct append of a staged run is refused;
    # retention keeps the staged snapshot (its branch protects it, and it does not count among `keep`)
    again = append_night(spark, nights["n2"], wh, "web", stage=True)
    assert (again.created, again.staged, again.snapshot_id) == (False, True, sid)
    with pytest.raises(RunStaged, match="audit/n2"):
        append_night(spark, nights["n2"], wh, "web")
    assert expire_versions(wh.table("web"), keep=1) == [] and staged_runs(wh.table("web")) == {"n2": sid}
    assert remove_orphan_files(wh.table("web"), older_than=dt.timedelta(0)) == []  # its files are kept

    gate_file = tmp_path / "gate" / "gate.json"
    assert verdict.success, verdict.summary()
    # a verdict about another version (the base, gated for real) does not publish the staged one
    run_gate(f"iceberg:web@{base.snapshot_id}", engine="pandas", docs_dir=tmp_path / "base-gate")
    with pytest.raises(GateNotPassed, match="not the staged"):
        publish_staged(wh.table("web"), "n2", require_gate=tmp_path / "base-gate" / "gate.json")
    assert _main(wh.table("web")) == base.snapshot_id
    # nor does one about the same snapshot id of a table in another namespace; the full identifier passes
    for name, passes in (("other.web", False), ("phi.web", True)):
        other = json.loads(gate_file.read_text()) | {"dataset_dir": f"iceberg:{name}@{sid}"}
        (tmp_path / "other-gate.json").write_text(json.dumps(other))
        if passes:
            check_gate_verdict(tmp_path / "other-gate.json", "phi.web", sid)
        else:
            with pytest.raises(GateNotPassed, match="not the staged iceberg:phi.web@"):
                publish_staged(wh.table("web"), "n2", require_gate=tmp_path / "other-gate.json")

    args = ("tables", "publish", "--table", "web", "--run-id", "n2", "--require-gate", str(gate_file))
    assert _cli(cfg, *args) == 0
    assert f"run n2 published, current snapshot {sid}" in capsys.readouterr().out
    table = wh.table("web")
    assert _main(table) == sid and table.metadata.refs["n2"].snapshot_id == sid
    assert "audit/n2" not in table.metadata.refs and staged_runs(table) == {}
    assert [v["run_id"] for v in versions(table)] == ["n1", "n2"] and _ids(table, "n2") == _ids(table, None)
    # a retried publish, a retried staged night and a retried plain night are no-ops
    assert publish_staged(table, "n2").created is False
    assert append_night(spark, nights["n2"], wh, "web", stage=True).created is False
    assert append_night(spark, nights["n2"], wh, "web").snapshot_id == sid
    assert _main(wh.table("web")) == sid


def test_publishing_after_another_writer_moved_main_is_refused_until_the_night_is_staged_again(
    nights, spark, tmp_path
):
    wh = Warehouse(warehouse_config("local", tmp_path))
    append_night(spark, nights["n1"], wh, "web")
    first = append_night(spark, nights["n2"], wh, "web", stage=True)
    other = append_night(spark, nights["n3"], wh, "web")  # another writer lands on main meanwhile

    with pytest.raises(TableMoved, match="--stage"):
        publish_staged(wh.table("web"), "n2")
    table = wh.table("web")
    assert _main(table) == other.snapshot_id and staged_runs(table) == {"n2": first.snapshot_id}

    # staged again: deduplicated against the new head, the old staged snapshot replaced (and dropped)
    second = append_night(spark, nights["n2"], wh, "web", stage=True)
    table = wh.table("web")
    assert second.created and second.base_snapshot_id == other.snapshot_id
    assert table.metadata.snapshot_by_id(first.snapshot_id) is None
    assert table.metadata.snapshot_by_id(second.snapshot_id).parent_snapshot_id == other.snapshot_id
    assert publish_staged(table, "n2").snapshot_id == second.snapshot_id
    ids = read_arrow(wh.table("web"), columns=("id",)).column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 60
    assert [v["run_id"] for v in versions(wh.table("web"))] == ["n1", "n3", "n2"]


def test_a_night_that_fails_its_audit_is_discarded_main_unchanged_files_orphaned(
    nights, spark, tmp_path, monkeypatch, capsys
):
    cfg = warehouse_config("local", tmp_path)
    monkeypatch.setenv("PHI_ICEBERG_WAREHOUSE", cfg.warehouse)
    monkeypatch.setenv("PHI_ICEBERG_CATALOG_URI", cfg.resolved_catalog_uri())
    wh = Warehouse(cfg)
    # the table's first night (no base), with a document the gate rejects
    staged = append_night(spark, nights["n1-broken"], wh, "web", run_id="n1", stage=True)
    table = wh.table("web")
    assert staged.base_snapshot_id is None and _main(table) is None and read_arrow(table).num_rows == 0
    verdict = run_gate("iceberg:web@audit/n1", engine="pandas", docs_dir=tmp_path / "gate")
    assert not verdict.success and verdict.dataset_dir == f"iceberg:web@{staged.snapshot_id}"
    with pytest.raises(GateNotPassed, match="FAILED"):
        publish_staged(table, "n1", require_gate=tmp_path / "gate" / "gate.json")

    assert _cli(cfg, "tables", "discard", "--table", "web", "--run-id", "n1") == 0
    assert f"staged snapshot {staged.snapshot_id} dropped" in capsys.readouterr().out
    table = wh.table("web")
    assert _main(table) is None and staged_runs(table) == {} and table.metadata.snapshots == []
    assert all(Path(p.removeprefix("file://")).is_file() for p in staged.files)
    assert not referenced_files(table) & {p.removeprefix("file://") for p in staged.files}
    assert discard_staged(table, "n1") is None
    with pytest.raises(NotStaged):
        publish_staged(table, "n1")
    removed = remove_orphan_files(table, older_than=dt.timedelta(0))
    assert sorted(removed) == sorted(p.removeprefix("file://") for p in staged.files)

    # staged again after the fix, onto the empty table, gated, published: main starts at the staged night
    again = append_night(spark, nights["n1"], wh, "web", stage=True)
    assert again.created and again.snapshot_id != staged.snapshot_id
    assert run_gate("iceberg:web@audit/n1", engine="pandas", docs_dir=tmp_path / "gate").success
    published = publish_staged(wh.table("web"), "n1", require_gate=tmp_path / "gate" / "gate.json")
    assert published.snapshot_id == again.snapshot_id
    assert _ids(wh.table("web"), None) == sorted(d["id"] for d in nights["docs"][:30])
