"""Reading a table at a version: a snapshot named by id, by run id (its tag) or the current one.

Readers never list folders: the files of a version come from the snapshot's scan planning (with column and
row-filter pruning), so files no snapshot references (a killed job's) are never read.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from curation.ingest.files import url_to_fs
from curation.paths import REPO_ROOT, parse_table_reference
from curation.tables.catalog import TableNotFound
from curation.tables.commit import is_published, snapshot_for_run
from curation.tables.summary import RUN_ID

Ref = int | str | None


def snapshot_id(table, ref: Ref = None) -> int | None:
    """The snapshot `ref` names: None -> the current one (None for an empty table); an int (or its digits)
    -> that snapshot id; a string -> the tag (run id) or branch of that name (`audit/<run id>`: a run staged
    for audit, curation/tables/wap.py), else the published snapshot whose summary names it."""
    if ref is None:
        snap = table.current_snapshot()
        return None if snap is None else snap.snapshot_id
    if isinstance(ref, int) or ref.isdigit():
        sid = int(ref)
        if table.metadata.snapshot_by_id(sid) is None:
            raise TableNotFound(f"table {table.name()}: no snapshot {sid}; it has {_known(table)}")
        return sid
    if ref in table.metadata.refs:
        return table.metadata.refs[ref].snapshot_id
    snap = snapshot_for_run(table, ref)
    if snap is None:
        raise TableNotFound(
            f"table {table.name()}: no version (tag or run id) {ref!r}; it has {_known(table)}"
        )
    return snap.snapshot_id


def _known(table) -> list[str]:
    return [v["run_id"] or str(v["snapshot_id"]) for v in versions(table)]


def data_files(
    table, ref: Ref = None, row_filter: Any = None, columns: tuple[str, ...] = ("*",)
) -> list[str]:
    """Paths of the data files version `ref` reads (scan planning; pruned by `row_filter` when given)."""
    sid = snapshot_id(table, ref)
    if sid is None:
        return []
    scan = table.scan(
        snapshot_id=sid,
        selected_fields=columns,
        **({"row_filter": row_filter} if row_filter is not None else {}),
    )
    return [task.file.file_path for task in scan.plan_files()]


def read_arrow(table, ref: Ref = None, columns: tuple[str, ...] = ("*",), row_filter: Any = None) -> pa.Table:
    """Version `ref` of the table as Arrow, projected on the current schema (columns added later read
    null)."""
    sid = snapshot_id(table, ref)
    if sid is None:
        return table.schema().as_arrow().empty_table()
    kwargs = {"row_filter": row_filter} if row_filter is not None else {}
    return table.scan(snapshot_id=sid, selected_fields=columns, **kwargs).to_arrow()


def versions(table) -> list[dict[str, Any]]:
    """Every snapshot, oldest first: id, parent, run id, operation, total rows and files, time, current?
    Snapshots staged for audit and not published (curation/tables/wap.py) are not versions yet: left out."""
    current = table.current_snapshot()
    out = []
    for snap in sorted(table.metadata.snapshots, key=lambda s: s.sequence_number or 0):
        if not is_published(table, snap):
            continue
        summary = snap.summary
        out.append(
            {
                "snapshot_id": snap.snapshot_id,
                "parent_id": snap.parent_snapshot_id,
                "run_id": summary.get(RUN_ID) if summary else None,
                "operation": summary.operation.value if summary else None,
                "rows": int(summary.get("total-records", 0)) if summary else 0,
                "files": int(summary.get("total-data-files", 0)) if summary else 0,
                "committed_at": _dt.datetime.fromtimestamp(snap.timestamp_ms / 1000, _dt.UTC).isoformat(),
                "current": current is not None and snap.snapshot_id == current.snapshot_id,
            }
        )
    return out


def rollback(table, ref: int | str) -> int:
    """Make version `ref` (snapshot id or run id) the table's current one again; returns its snapshot id.
    The later snapshots stay in the history (time travel still reaches them) until they expire."""
    sid = snapshot_id(table, ref)
    table.manage_snapshots().set_current_snapshot(snapshot_id=sid).commit()
    return sid


def local_version_files(table, ref: Ref, cache_dir: str | None = None) -> tuple[int, list[str]]:
    """(snapshot id, local paths of its data files, sorted) for readers that need plain files (DuckDB over a
    mixture source, the gate, the report): see `localize`. Versions with delete files are refused: plain
    files would show rows the snapshot deleted."""
    sid = snapshot_id(table, ref)
    if sid is None:
        raise TableNotFound(f"table {table.name()}: empty (no snapshot), nothing to read")
    return sid, localize(table, sid, cache_dir=cache_dir)


def localize(table, sid: int, paths: list[str] | None = None, cache_dir: str | None = None) -> list[str]:
    """Local paths of `paths` (default: every data file snapshot `sid` reads), sorted. A local warehouse's
    files are used in place; a remote one's are downloaded once into `<cache_dir>/<table>/` (default
    PHI_ICEBERG_CACHE, else <repo>/out/iceberg-cache): a data file's path is written once and never changed,
    so a cached copy stays valid."""
    if paths is None:
        tasks = list(table.scan(snapshot_id=sid).plan_files())
        if any(task.delete_files for task in tasks):
            raise ValueError(
                f"table {table.name()} snapshot {sid}: has delete files; read it with read_arrow"
            )
        paths = [task.file.file_path for task in tasks]
    paths = sorted(paths)
    if all(p.startswith("file:") or "://" not in p for p in paths):
        return [p.removeprefix("file://") for p in paths]
    cache_dir = cache_dir or os.environ.get("PHI_ICEBERG_CACHE") or str(REPO_ROOT / "out" / "iceberg-cache")
    out = []
    for p in paths:
        local = Path(cache_dir) / ".".join(table.name()) / p.split("://", 1)[1]
        if not local.is_file():
            local.parent.mkdir(parents=True, exist_ok=True)
            fs, src = url_to_fs(p)
            fs.get_file(src, str(local) + ".part")
            os.replace(str(local) + ".part", local)  # a half-downloaded file is never taken for a cached one
        out.append(str(local))
    return out


def table_version_files(reference: str, version: str | int | None = None) -> tuple[int, list[Path]]:
    """Where version `version` (run id or snapshot id; None: the current snapshot) of the Iceberg table that
    `reference` (`iceberg:<table>`) names lives: (its snapshot id, its data files as local paths, sorted).

    The catalog is the one the environment configures (PHI_ICEBERG_WAREHOUSE / PHI_ICEBERG_CATALOG_URI, see
    curation/tables/catalog.py). A remote warehouse's files are copied once into PHI_ICEBERG_CACHE (default
    <repo>/out/iceberg-cache). This is training's door into a table's versions (the layer rule lets it import
    curation.tables): it reads plain parquet files, pinned to a snapshot."""
    from curation.tables.catalog import Warehouse

    name, at = parse_table_reference(reference)
    if at is not None and version is not None and str(version) != at:
        raise ValueError(f"{reference!r} names version {at!r} but version {version!r} is asked for too")
    sid, files = local_version_files(Warehouse().table(name), version if version is not None else at)
    return sid, [Path(f) for f in files]
