"""One version of a table as the gate and the report read it: `iceberg:<table>[@<run id | snapshot id>]`.

The folder contract's version is a folder (data/, rejects/, manifest.json); a table's version is a snapshot:
its data files come from the snapshot's scan planning, its rejects are the files the same run id added to
`<table>_rejects`, and its manifest is the one the run's commit wrote into the snapshot summary (`phi.*`
properties, see curation/tables/summary.py). A remote warehouse's files are copied once into the local cache
(PHI_ICEBERG_CACHE, as for mixture sources), so both readers keep streaming plain parquet files.

    python -m curation gate   --input iceberg:web_curated@<run id>
    python -m curation report --input iceberg:web_curated          (the current snapshot)
    python -m curation gate   --input iceberg:web_curated@audit/<run id>   (a run staged for audit:
                              main's head at staging + the run's rows; curation/tables/wap.py)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from curation.contract_manifest import Manifest, StageCounts
from curation.paths import REPO_ROOT, TABLE_PREFIX, parse_table_reference
from curation.tables.catalog import TableNotFound, Warehouse
from curation.tables.commit import snapshot_for_run
from curation.tables.compact import described_snapshot
from curation.tables.migrate import rejects_table
from curation.tables.read import localize, snapshot_id
from curation.tables.summary import RUN_ID, summary_value


@dataclass(frozen=True)
class TableVersion:
    reference: str  # as the user wrote it
    table: str
    snapshot_id: int
    manifest: Manifest
    files: list[Path]  # the snapshot's data files, local (cached when the warehouse is remote)
    reject_files: list[Path]  # what the run added to <table>_rejects; [] when it rejected nothing

    @property
    def label(self) -> str:
        """What a gate verdict or a report names as the dataset it read (stable for one snapshot)."""
        return f"{TABLE_PREFIX}{self.table}@{self.snapshot_id}"

    @property
    def evidence_dir(self) -> Path:
        """Where what is written about this version goes (its gate's quality/, its report/): tables hold data
        only, so out/tables/<table>@<snapshot>/."""
        return REPO_ROOT / "out" / "tables" / f"{self.table}@{self.snapshot_id}"


def manifest_of(snapshot, table_name: str) -> Manifest:
    """The manifest the run's commit described the snapshot with (`phi.*`), as a Manifest."""
    s = snapshot.summary
    if s is None or s.get(RUN_ID) is None:  # not `in`: pyiceberg's Summary holds every key (as None)
        raise ValueError(
            f"table {table_name} snapshot {snapshot.snapshot_id}: no {RUN_ID} in its summary (not committed"
            " by this project's writers), so it has no manifest to gate or report on"
        )

    def prop(key: str, default=None):
        return summary_value(s, key, default)

    stages = [StageCounts(**st) for st in prop("stages", [])]
    return Manifest(
        dataset=str(prop("dataset", "unknown")),
        version=s[RUN_ID],
        created_at=str(prop("created_at", "")),
        code_version=str(prop("code_version", "")),
        inputs=[],  # the summary keeps only their number (summary.manifest_summary)
        config=prop("config", {}),
        config_hash=str(prop("config_hash", "")),
        stages=stages,
        rows=int(s.get("total-records", 0)),
        rejected_rows=int(prop("rejected_rows", 0)),
        # a nightly append names the snapshot it appended to rather than a folder version
        base_version=prop("base_version") or _str_or_none(prop("base_snapshot_id")),
        base_rows=int(prop("base_rows", 0)),
    )


def _str_or_none(value) -> str | None:
    return None if value is None else str(value)


def _added_files(table, snapshot) -> list[str]:
    """The data files `snapshot` added (not those it inherited): one run's rows of an append-only log."""
    out = []
    for manifest in snapshot.manifests(table.io):
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            if entry.snapshot_id == snapshot.snapshot_id and entry.status.name == "ADDED":
                out.append(entry.data_file.file_path)
    return sorted(out)


def open_version(reference: str, warehouse: Warehouse | None = None) -> TableVersion:
    """Resolve `reference` to its snapshot, manifest, data files and rejects (see the module docstring)."""
    name, ref = parse_table_reference(reference)
    warehouse = warehouse or Warehouse()
    table = warehouse.table(name)
    sid = snapshot_id(table, ref)
    if sid is None:
        raise TableNotFound(f"{reference}: table {name} is empty (no snapshot)")
    # a compaction on top of a run holds that run's rows: the run's manifest describes it
    manifest = manifest_of(described_snapshot(table, table.metadata.snapshot_by_id(sid)), name)
    files = [Path(p) for p in localize(table, sid)]
    reject_files: list[Path] = []
    if manifest.rejected_rows:
        try:
            rejects = warehouse.table(rejects_table(name))
        except TableNotFound:
            rejects = None
        snap = snapshot_for_run(rejects, manifest.version) if rejects is not None else None
        if snap is not None:
            reject_files = [Path(p) for p in localize(rejects, snap.snapshot_id, _added_files(rejects, snap))]
    return TableVersion(reference, name, sid, manifest, files, reject_files)
