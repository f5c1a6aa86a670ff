"""The web corpus stored as an Iceberg table rather than version folders (`PHI_CORPUS_STORE=table`): how the
DAGs that grow it (nightly_refresh, web_curation in mode add) plan a run. Write-audit-publish
(curation/tables/wap.py) replaces the folder contract's candidate:

    curate    `python -m curation run` over the new inputs into the delta `<root>/_deltas/<version>` (scratch)
    append    `python -m curation append --delta <delta> --table web_curated --run-id <version> --stage`: the
              delta's rows the table does not hold yet (same id or normalized text: `published_dedup`) as ONE
              snapshot on the run's branch `audit/<version>`; main does not move (O(night): nothing of the
              corpus is read but its id and text_hash columns, nothing of it is written)
    validate  `python -m curation gate --input iceberg:web_curated@audit/<version>`: the whole corpus as it
              would be (main's head + the night), its verdict in `<root>/_runs/<version>/quality/`
    report    the same version's report, in `<root>/_runs/<version>/report/`
    publish   `tables publish --require-gate`: main fast-forwards to the staged snapshot only if the verdict
              passed, names exactly that snapshot, and main has not moved since (else the run fails, nothing
              published); then the band index table's night (dags/lib/near_index.py)

The data root keeps only scratch and state (deltas, the effective config, the evidence, the segment ledger,
the writer lease); the corpus itself lives in the warehouse, which may be `s3://` (PHI_ICEBERG_WAREHOUSE).
Readers name it `iceberg:web_curated[@<run id | snapshot id>]`: mixtures, edu_classifier's input, the gate,
the report, DuckDB. The first table night onto a table that folder versions were mirrored into takes it over
(its writer becomes `curation append`; the migration path: the folder root stops publishing there).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from curation.paths import TABLE_PREFIX
from dags.lib.paths import registry_root
from dags.lib.plan import DELTAS, RUNS, check_inputs, effective_config, run_plan

log = logging.getLogger(__name__)

#: `PHI_CORPUS_STORE`: `folders` (default: the dataset contract's version folders, mirrored into tables when
#: a catalog is configured) or `table` (the web corpus is the Iceberg table `web_curated`).
STORES = ("folders", "table")


def corpus_store() -> str:
    from curation.tables.publish import tables_configured

    store = os.environ.get("PHI_CORPUS_STORE") or "folders"
    if store not in STORES:
        raise ValueError(f"PHI_CORPUS_STORE={store!r}: expected one of {', '.join(STORES)}")
    if store == "table" and not tables_configured():
        raise ValueError(
            "PHI_CORPUS_STORE=table but no table catalog is configured: set PHI_ICEBERG_WAREHOUSE (and"
            " PHI_ICEBERG_CATALOG_URI for a remote warehouse or a shared catalog)"
        )
    return store


def corpus_reference(name: str, root: str | Path) -> str:
    """What a reader of corpus `name` is given: `iceberg:<name>` in the table store, else its folder root."""
    return f"{TABLE_PREFIX}{name}" if corpus_store() == "table" else str(root)


def published_run(table_name: str, version: str) -> str | None:
    """The run id of the table's live version (main's head, past compactions), None for a missing or empty
    table. When that is `version` itself (the plan re-ran after this run published), its parent's run."""
    from curation.tables.catalog import Warehouse
    from curation.tables.compact import described_snapshot
    from curation.tables.summary import RUN_ID

    warehouse = Warehouse()
    if not warehouse.exists(table_name):
        return None
    table = warehouse.table(table_name)
    head = table.current_snapshot()
    if head is None:
        return None
    run = described_snapshot(table, head)
    if run.summary.get(RUN_ID) == version:
        if run.parent_snapshot_id is None:  # this run was the table's first version
            return None
        run = described_snapshot(table, table.metadata.snapshot_by_id(run.parent_snapshot_id))
    return run.summary.get(RUN_ID)


def published_runs(table_name: str) -> set[str]:
    """The run ids the table holds (what the table store's record task may delete the deltas of)."""
    from curation.tables.catalog import Warehouse
    from curation.tables.read import versions

    warehouse = Warehouse()
    if not warehouse.exists(table_name):
        return set()
    return {v["run_id"] for v in versions(warehouse.table(table_name)) if v["run_id"]}


class BaseMoved(RuntimeError):
    """The corpus table's live version is no longer the one the run was planned on."""


def _check_base(table, planned: dict) -> None:
    """Refuse to publish a night staged on another live version than the one it was planned (and
    near-deduplicated) on: an operator's rollback or a manual append moved main between plan and append."""
    from curation.tables.commit import snapshot_for_run, staged_snapshot
    from curation.tables.compact import described_snapshot
    from curation.tables.summary import RUN_ID

    version = planned["version"]
    staged = staged_snapshot(table, version)
    if staged is None or snapshot_for_run(table, version) is not None:
        return  # published already (a retry), or nothing staged: publish_staged says so
    parent = staged.parent_snapshot_id
    base = None if parent is None else described_snapshot(table, table.metadata.snapshot_by_id(parent))
    staged_on = None if base is None else base.summary.get(RUN_ID)
    if staged_on != planned["base_version"]:
        raise BaseMoved(
            f"table {planned['table']}: the night {version} was planned on version {planned['base_version']}"
            f" but staged on {staged_on} (main moved between plan and append): nothing published. Clear the"
            f" run from `plan` to curate it against {staged_on}"
        )


def plan_table_run(
    inputs: list[str],
    root: str | Path,
    table: str,
    version: str,
    config_path: str | None = None,
    crawl_id: str | None = None,
) -> dict:
    """Everything the curate/append/validate/report/publish tasks of a table-store run need (XCom JSON).
    Same keys as dags.lib.plan.plan_curation where they mean the same (version, root, delta_dir,
    base_version, config, inputs, argv, edu_model, edu_note, near_index), plus the table, the append argv,
    the staged version's reference and where its evidence goes."""
    check_inputs(inputs)
    root = Path(root)
    base = published_run(table, version)
    runs = root / RUNS / version
    config, edu, near = effective_config(
        config_path,
        crawl_id,
        runs / "config.yaml",
        registry_root(),
        near_index={
            "corpus_root": root,
            "version": version,
            "base_version": base,
            "incremental": True,
            "base_source": f"{TABLE_PREFIX}{table}@{base}" if base else None,
        },
    )
    if edu["note"]:
        log.warning("%s", edu["note"])
    plan = run_plan(inputs, root, version, base, config, edu, near, root / DELTAS)
    staged = f"{TABLE_PREFIX}{table}@audit/{version}"
    log.info("table store: %s + the night %s, staged as %s for its audit", table, version, staged)
    return {
        **plan,
        "table": table,
        "append_argv": [
            "append",
            "--delta",
            plan["delta_dir"],
            "--table",
            table,
            "--run-id",
            version,
            "--stage",
        ],
        "staged": staged,
        "evidence": str(runs),
    }


def publish_table_run(planned: dict) -> dict:
    """The publish task's body: fast-forward main to the run's staged snapshot if its gate passed (see the
    module doc), then commit the band index table's night. Returns the Asset event's extra."""
    from curation.quality_gates.gate import GATE_FILE
    from curation.tables.catalog import Warehouse
    from curation.tables.wap import publish_staged
    from dags.lib.near_index import promote

    table = Warehouse().table(planned["table"])
    _check_base(table, planned)
    done = publish_staged(
        table, planned["version"], require_gate=Path(planned["evidence"]) / "quality" / GATE_FILE
    )
    promote(planned["near_index"], planned["version"], planned["delta_dir"])
    table.refresh()
    rows = int(table.metadata.snapshot_by_id(done.snapshot_id).summary["total-records"])
    return {
        "version": planned["version"],
        "table": planned["table"],
        "snapshot_id": done.snapshot_id,
        "reference": f"{TABLE_PREFIX}{planned['table']}@{done.snapshot_id}",
        "rows": rows,
    }
