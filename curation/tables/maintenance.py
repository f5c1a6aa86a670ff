"""Table maintenance: delete data files no snapshot references (a killed job's leftovers) and expire
snapshots.

Neither changes what any reader sees: readers plan scans from snapshots, and a file is only an orphan when no
snapshot (current, tagged, staged for audit on an `audit/<run id>` branch, or kept for time travel)
references it. A staged snapshot awaiting its audit is never expired; once discarded (wap.discard_staged) it
leaves the metadata and its files are orphans.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Iterable

from curation.ingest.files import url_to_fs

log = logging.getLogger(__name__)


def _key(path: str) -> str:
    """A path without its scheme, the way fsspec lists it (file:///a/b -> /a/b, s3://bucket/k -> bucket/k)."""
    for scheme in ("file://", "s3://", "s3a://"):
        if path.startswith(scheme):
            return path[len(scheme) :]
    return path


def referenced_files(table) -> set[str]:
    """Every data file some snapshot of the table reads (scheme stripped)."""
    io = table.io
    seen_manifests: set[str] = set()
    files: set[str] = set()
    for snap in table.metadata.snapshots:
        for manifest in snap.manifests(io):
            if manifest.manifest_path in seen_manifests:
                continue
            seen_manifests.add(manifest.manifest_path)
            # live entries only: a DELETED entry records that a file left the table at that snapshot; only
            # older snapshots read it, and they are in this loop themselves while they are kept
            for entry in manifest.fetch_manifest_entry(io, discard_deleted=True):
                files.add(_key(entry.data_file.file_path))
    return files


def _mtime(info: dict) -> float:
    if "mtime" in info:  # local filesystem
        return float(info["mtime"])
    return info["LastModified"].timestamp()  # s3fs


def remove_orphan_files(
    table, older_than: _dt.timedelta = _dt.timedelta(days=1), dry_run: bool = False
) -> list[str]:
    """Delete the files under the table's data/ folder that no snapshot references and that were last written
    more than `older_than` ago (the grace period protects a job that is writing right now and has not
    committed yet). Returns the paths removed (or, with `dry_run`, that would be)."""

    data_root = f"{table.location().rstrip('/')}/data"
    fs, root = url_to_fs(data_root)
    if not fs.exists(root):
        return []
    keep = referenced_files(table)
    cutoff = _dt.datetime.now(_dt.UTC).timestamp() - older_than.total_seconds()
    listed = fs.find(root, detail=True)
    doomed = sorted(p for p, info in listed.items() if _key(p) not in keep and _mtime(info) <= cutoff)
    if not dry_run and doomed:
        fs.rm(doomed)
    log.info(
        "table %s: %s %d orphan file(s) of %d under %s",
        table.name(),
        "would remove" if dry_run else "removed",
        len(doomed),
        len(listed),
        data_root,
    )
    return doomed


def expire_versions(table, keep: int, pinned: Iterable[int | str] = ()) -> list[int]:
    """Retention: expire every snapshot but the newest `keep`, the current one, those with a pin tag
    (curation/tables/pins.py: what mixture builds read), the `pinned` ones given here (run ids or snapshot
    ids) and those staged for audit (curation/tables/wap.py: not counted among the newest `keep`). Their
    run-id tags go first (a tag protects its snapshot from expiry), then the snapshots; their data files,
    once no kept snapshot references them, are orphans that `remove_orphan_files` deletes. Returns the
    snapshot ids expired, oldest first. Idempotent."""
    from curation.tables.pins import pinned_snapshot_ids
    from curation.tables.read import snapshot_id
    from curation.tables.wap import staged_runs

    if keep < 1:
        raise ValueError(f"expire_versions({table.name()}): keep must be >= 1, got {keep}")
    table.refresh()
    awaiting_audit = set(staged_runs(table).values())  # staged, not published: spared, and not counted
    ordered = sorted(
        (snap for snap in table.metadata.snapshots if snap.snapshot_id not in awaiting_audit),
        key=lambda snap: snap.sequence_number or 0,
    )
    spared = {snap.snapshot_id for snap in ordered[-keep:]} | {snapshot_id(table, ref) for ref in pinned}
    spared |= pinned_snapshot_ids(table) | awaiting_audit
    current = table.current_snapshot()
    if current is not None:
        spared.add(current.snapshot_id)
    doomed = [snap.snapshot_id for snap in ordered if snap.snapshot_id not in spared]
    if not doomed:
        return []
    tags = [name for name, ref in table.metadata.refs.items() if ref.snapshot_id in doomed and name != "main"]
    if tags:
        manage = table.manage_snapshots()
        for name in tags:
            manage = manage.remove_tag(name)
        manage.commit()
    table.maintenance.expire_snapshots().by_ids(doomed).commit()
    log.info(
        "table %s: expired %d snapshot(s) (kept the newest %d, current and pinned %s)",
        table.name(),
        len(doomed),
        keep,
        sorted(spared),
    )
    return doomed
