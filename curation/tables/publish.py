"""Every live dataset version also as an Iceberg snapshot: the storage layer behind `DatasetRoot`.

`DatasetRoot.make_current(version)` (called by every publish that moves CURRENT: `building`, a deferred
`VersionBuild.publish()`, the quality gate's `publish_gated`) calls `publish_live` first: when the root has a
table, the version's rejects are appended to `<table>_rejects` and its kept documents become one snapshot of
the table, tagged with the version id (in that order: a failed rejects commit leaves the table's current
snapshot unmoved); then CURRENT moves. So the table's current snapshot and the folder's
CURRENT move together, and a version that never goes live (a synthesis shard, a gate's candidate, a nightly
delta) never reaches a table.

Which table (`table_target`):
- `DatasetRoot(root, table=TableTarget(name, config))`: that table (`curation run --table NAME`);
- `DatasetRoot(root, table=False)`: none (the band index, a study's results and shuffled control corpus);
- otherwise, when a catalog is configured (PHI_ICEBERG_WAREHOUSE or PHI_ICEBERG_CATALOG_URI set): the table
  named after the root's folder (`out/web_curated` -> `<namespace>.web_curated`, the DAGs' asset names),
  unless the root is private to another one (its name or its parent's starts with `_` or `.`:
  `_candidates`, `_deltas`, `_shards/<v>`, `_near_index`); with neither variable set, none (folders only).

A version is the whole dataset, so its snapshot is the table's whole content (an OVERWRITE), except a nightly
version whose base is the table's current snapshot and whose files include all of the base's (hard links):
an APPEND of the files it adds (`migrate.publish_version`).

Failures: when the table commit fails, the version folder is already in place but CURRENT has not moved (nor
has the table's current snapshot; the version's rejects may already be in `<table>_rejects`); the error
propagates (the run fails). Rerunning the same run id reconciles: `commit_version` is a no-op for a run
id the table holds (so a rerun adds no snapshot, and a rerun that changed the folder's content does NOT
change the committed snapshot: one whose row counts differ from it is refused, naming both, with CURRENT
unmoved), the table's current snapshot is set back to that run's when it is not, and CURRENT moves.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from curation.tables.catalog import TablesConfig, Warehouse
from curation.tables.compact import described_snapshot
from curation.tables.migrate import ImportedVersion, publish_rejects, publish_version, rejects_table
from curation.tables.read import rollback

if TYPE_CHECKING:
    from curation.contract import DatasetRoot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableTarget:
    """The table a dataset root's live versions are published to; `config` None: the environment's."""

    name: str
    config: TablesConfig | None = None


def tables_configured() -> bool:
    """Whether the environment names a table catalog (without one, roots publish folders only)."""
    return bool(os.environ.get("PHI_ICEBERG_WAREHOUSE") or os.environ.get("PHI_ICEBERG_CATALOG_URI"))


def table_target(root: DatasetRoot) -> TableTarget | None:
    """The table `root`'s live versions go to, or None (see the module docstring for the rule)."""
    if root.table is False:
        return None
    if isinstance(root.table, TableTarget):
        return root.table
    if not tables_configured():
        return None
    if any(name.startswith(("_", ".")) for name in (root.root.name, root.root.parent.name)):
        return None
    # a dot would read as a namespace separator (Warehouse.identifier)
    return TableTarget(root.root.name.replace(".", "_"))


def publish_live(root: DatasetRoot, version: str) -> list[ImportedVersion]:
    """Publish `root`'s version `version` (already in place) to its table, if it has one, and make that the
    table's current snapshot. Returns what was committed or found (documents, then rejects if any)."""
    target = table_target(root)
    if target is None:
        return []
    vdir = root.version_dir(version)
    warehouse = Warehouse(target.config or TablesConfig.from_env())
    # rejects first: `<table>_rejects` is an append-only log nobody reads as "the corpus", so when either
    # commit fails the table's current snapshot has not moved either (CURRENT never moves on a failure)
    rejects = publish_rejects(vdir, warehouse, rejects_table(target.name))
    docs = publish_version(vdir, warehouse, target.name)
    table = warehouse.table(target.name)
    # a rerun of an older run id goes live again (a compaction on top of this one's is this version already)
    if described_snapshot(table, table.current_snapshot()).snapshot_id != docs.snapshot_id:
        rollback(table, docs.snapshot_id)
    done = [d for d in (docs, rejects) if d is not None]
    for name, what in zip((target.name, rejects_table(target.name)), done):
        how = "already in" if what.mode == "skipped" else f"{what.mode} to"
        log.info(
            "version %s of %s %s table %s: snapshot %s, %d rows",
            version,
            root.root,
            how,
            warehouse.identifier(name),
            what.snapshot_id,
            what.rows,
        )
    return done


def live_table_line(root: DatasetRoot, version: str) -> str | None:
    """`version <v> is snapshot <id> of table <ns.name>` for a CLI's last line, or None without a table."""
    from curation.tables.commit import snapshot_for_run

    target = table_target(root)
    if target is None:
        return None
    warehouse = Warehouse(target.config or TablesConfig.from_env())
    snap = snapshot_for_run(warehouse.table(target.name), version)
    return f"version {version} is snapshot {snap.snapshot_id} of table {warehouse.identifier(target.name)}"
