"""The DAGs' band index as an append-only Iceberg table (dags/lib/near_index.py, with a catalog configured):
planned against the snapshot of the base corpus version or rebuilt from it, committed only after the gate,
expired to its newest snapshots. SQLite catalog on a temporary warehouse, no Spark (the curate job's side,
rebuild included, is in tests/curation/test_near_dedup_table.py; the DAG run in test_dags_run_tables.py)."""

from __future__ import annotations

import json

import pytest
from tables_helpers import write_files
from test_dags_nightly import doc, version

from curation.contract import DatasetRoot, Manifest
from curation.dedup.band_index import params_dict
from curation.dedup.band_table import LSH_PROPERTY, BandTable, _summary, commit_staged
from curation.dedup.near import lsh_params
from curation.dedup.near_config import NearDedupConfig
from curation.tables import TablesConfig, Warehouse, versions
from curation.tables.commit import commit_version

TABLE = "web_near_index"  # the band index table of corpus root .../web (table `web`)


@pytest.fixture
def warehouse(tmp_path, monkeypatch) -> Warehouse:
    monkeypatch.setenv("PHI_ICEBERG_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.delenv("PHI_ICEBERG_CATALOG_URI", raising=False)
    return Warehouse(TablesConfig.from_env())


def band_rows(ids: list[str], seq: int) -> list[dict]:
    return [{"id": i, "bands": [k, k + 1], "shingles": [k], "seq": seq} for k, i in enumerate(ids)]


def index_night(wh: Warehouse, run_id: str, ids: list[str], cfg: NearDedupConfig | None = None) -> int:
    """One night's rows staged as the curate job stages them and committed by `commit_staged` (what promote
    calls), without Spark."""
    cfg = cfg or NearDedupConfig()
    table = BandTable(TABLE, lsh_params(cfg), warehouse=wh)._table(create=True, with_shingles=cfg.verify)
    head = table.current_snapshot()
    staged = {
        "table": wh.identifier(TABLE),
        "run_id": run_id,
        "parent_snapshot_id": head.snapshot_id if head else None,
        "files": write_files(table, run_id, [band_rows(ids, 1 + len(table.metadata.snapshots))]),
        "documents": len(ids),
        "shingles": cfg.verify,
        "mode": "append",
    }
    return commit_staged(staged, wh)


def plan(tmp_path, config: str | None = None, base: str | None = "n1", incremental: bool = True):
    from curation.config import load_config
    from dags.lib.near_index import plan_near_index

    cfg = load_config(config)
    return plan_near_index(cfg, config, tmp_path / "web", "n2", base, incremental), cfg.near_dedup


def test_plan_uses_the_table_at_the_base_version_or_has_the_job_rebuild_it(tmp_path, warehouse):
    near, nd = plan(tmp_path)  # no table yet
    assert near["rebuilt"] and "does not exist yet" in near["reason"] and near["root"] == f"iceberg:{TABLE}"
    assert (nd.index_table, nd.index_commit, nd.index_dir) == (TABLE, "deferred", None)
    assert (nd.index_table_ref, nd.index_table_rebuild_from) == ("rebuild/n2", str(tmp_path / "web" / "n1"))
    assert not (tmp_path / "web" / "_near_index").exists()  # no folder index in table mode

    index_night(warehouse, "n1", ["a", "b"])
    near, nd = plan(tmp_path)  # the table's head is corpus version n1's snapshot
    assert not near["rebuilt"] and near["staged"] and near["base"] == "n1"
    assert (nd.index_table_ref, nd.index_table_rebuild_from) == ("n1", None)

    other = tmp_path / "other.yaml"
    other.write_text("near_dedup:\n  num_perm: 60\n  bands: 10\n")
    near, nd = plan(tmp_path, str(other))
    assert near["rebuilt"] and "LSH parameters" in near["reason"] and nd.index_table_ref == "rebuild/n2"
    no_verify = tmp_path / "no_verify.yaml"
    no_verify.write_text("near_dedup:\n  verify: false\n")
    near, _ = plan(tmp_path, str(no_verify))
    assert near["rebuilt"] and "carry shingle sets but verification is off" in near["reason"]

    index_night(warehouse, "x", ["c"])  # the head moved past n1 (e.g. the corpus was rolled back to n1)
    near, nd = plan(tmp_path)
    assert near["rebuilt"] and "(run x), which does not describe corpus version n1" in near["reason"]
    # the rebuild an earlier attempt of the night committed (then its gate failed) serves the next attempt
    table = warehouse.table(TABLE)
    rebuilt = _summary(lsh_params(NearDedupConfig()), None, 3, True) | {
        "rebuilt_from": nd.index_table_rebuild_from
    }
    paths = write_files(table, "rebuild/n2", [band_rows(["a", "b", "c"], 9)])
    commit_version(table, paths, "rebuild/n2", rebuilt, mode="overwrite")
    near, nd = plan(tmp_path)
    assert not near["rebuilt"] and (nd.index_table_ref, nd.index_table_rebuild_from) == ("rebuild/n2", None)
    # a rebuild that died after setting the table's properties, before committing its rows: the rows are
    # still the old parameters', which the head's own record says
    table = warehouse.table(TABLE)
    new_lsh = params_dict(lsh_params(NearDedupConfig(num_perm=60, bands=10)))
    with table.transaction() as tx:
        tx.set_properties(**{LSH_PROPERTY: json.dumps(new_lsh)})
    near, nd = plan(tmp_path, str(other))
    assert near["rebuilt"] and "LSH parameters" in near["reason"]

    # a run without a base deduplicates its input alone and stages nothing (the next night rebuilds)
    on = tmp_path / "on.yaml"
    on.write_text("near_dedup:\n  enabled: true\n")
    near, nd = plan(tmp_path, str(on), base=None, incremental=False)
    assert near["enabled"] and not near["staged"] and nd.enabled and nd.index_table is None
    own = tmp_path / "own.yaml"
    own.write_text(f"near_dedup:\n  index_table: {TABLE}\n")
    with pytest.raises(ValueError, match="index_table is set"):
        plan(tmp_path, str(own))


def test_the_table_moves_only_after_the_gate_and_keeps_its_newest_snapshots(tmp_path, warehouse):
    """publish_with_index: a failing gate commits nothing; a passing one publishes the corpus version, then
    commits the night's staged rows on the snapshot the night read and expires all but the newest two."""
    from curation.quality_gates import GateFailed
    from dags.lib.near_index import KEEP_INDEX_VERSIONS, promote, publish_with_index

    corpus = tmp_path / "web"
    version(corpus, "n1", [[doc("a", "alpha text"), doc("b", "beta text")]])
    for run in ("n0", "n1"):
        index_night(warehouse, run, ["a"] if run == "n0" else ["b"])
    near, _ = plan(tmp_path)
    head = warehouse.table(TABLE).current_snapshot().snapshot_id
    table = warehouse.table(TABLE)
    staged = {
        "table": warehouse.identifier(TABLE),
        "run_id": "n2",
        "parent_snapshot_id": head,
        "files": write_files(table, "n2", [band_rows(["d", "e"], 3)]),
        "documents": 2,
        "mode": "append",
    }

    def candidate(rows: list[dict]):
        vdir = version(corpus / "_candidates", "n2", [rows])
        m = Manifest.read(vdir)
        m.model_copy(update={"extra": {**m.extra, "near_dedup": {"index_commit": staged}}}).write(vdir)
        return vdir

    with pytest.raises(GateFailed):  # a repeated id
        publish_with_index(
            candidate([doc("d", "delta text"), doc("d", "again")]), corpus, "web_curated", near
        )
    assert warehouse.table(TABLE).current_snapshot().snapshot_id == head
    final = publish_with_index(
        candidate([doc("d", "delta text"), doc("e", "epsilon text")]), corpus, "web_curated", near
    )
    assert DatasetRoot(corpus).current() == "n2"
    history = versions(warehouse.table(TABLE))
    assert len(history) == KEEP_INDEX_VERSIONS == 2  # n0's snapshot expired
    assert [(v["run_id"], v["current"]) for v in history] == [("n1", False), ("n2", True)]
    assert history[-1]["parent_id"] == head and history[-1]["rows"] == 4  # n0's a, n1's b, the night's d e
    assert promote(near, "n2", final) == "n2" and versions(warehouse.table(TABLE)) == history  # a retry
    with pytest.raises(FileNotFoundError, match="records no staged band index rows"):
        promote(near, "n2", version(corpus / "_candidates", "n3", [[doc("f", "phi text")]]))
