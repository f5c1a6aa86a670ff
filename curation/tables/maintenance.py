"""Table maintenance: delete data files no snapshot references (a killed job's leftovers) and expire snapshots.

Neither changes what any reader sees: readers plan scans from snapshots, and a file is only an orphan when no
snapshot (current, tagged or kept for time travel) references it.
"""
from __future__ import annotations

import datetime as _dt
import logging

log = logging.getLogger(__name__)


def _key(path: str) -> str:
    """A path without its scheme, the way fsspec lists it (file:///a/b -> /a/b, s3://bucket/k -> bucket/k)."""
    for scheme in ("file://", "s3://", "s3a://"):
        if path.startswith(scheme):
            return path[len(scheme):]
    return path


def referenced_files(table) -> set[str]:
    """Every data file any snapshot of the table references (scheme stripped)."""
    io = table.io
    seen_manifests: set[str] = set()
    files: set[str] = set()
    for snap in table.metadata.snapshots:
        for manifest in snap.manifests(io):
            if manifest.manifest_path in seen_manifests:
                continue
            seen_manifests.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(io, discard_deleted=False):
                files.add(_key(entry.data_file.file_path))
    return files


def _mtime(info: dict) -> float:
    if "mtime" in info:  # local filesystem
        return float(info["mtime"])
    return info["LastModified"].timestamp()  # s3fs


def remove_orphan_files(table, older_than: _dt.timedelta = _dt.timedelta(days=1),
                        dry_run: bool = False) -> list[str]:
    """Delete the files under the table's data/ folder that no snapshot references and that were last written
    more than `older_than` ago (the grace period protects a job that is writing right now and has not
    committed yet). Returns the paths removed (or, with `dry_run`, that would be)."""
    import fsspec

    data_root = f"{table.location().rstrip('/')}/data"
    fs, root = fsspec.core.url_to_fs(data_root)
    if not fs.exists(root):
        return []
    keep = referenced_files(table)
    cutoff = _dt.datetime.now(_dt.UTC).timestamp() - older_than.total_seconds()
    listed = fs.find(root, detail=True)
    doomed = sorted(p for p, info in listed.items() if _key(p) not in keep and _mtime(info) <= cutoff)
    if not dry_run and doomed:
        fs.rm(doomed)
    log.info("table %s: %s %d orphan file(s) of %d under %s", table.name(),
             "would remove" if dry_run else "removed", len(doomed), len(listed), data_root)
    return doomed


def expire_snapshots(table, older_than: _dt.datetime) -> None:
    """Expire snapshots committed before `older_than`. Tagged snapshots (every version committed through
    commit_version is tagged with its run id) and the current one are kept by Iceberg itself; remove a
    version's tag first to let it expire."""
    protected = {ref.snapshot_id for ref in table.metadata.refs.values()}
    doomed = [s.snapshot_id for s in table.metadata.snapshots
              if s.timestamp_ms < older_than.timestamp() * 1000 and s.snapshot_id not in protected]
    if doomed:
        table.maintenance.expire_snapshots().by_ids(doomed).commit()
    log.info("table %s: expired %d snapshot(s)", table.name(), len(doomed))
