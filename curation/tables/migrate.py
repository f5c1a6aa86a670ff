"""Import a folder-contract dataset root (`DIR/<version>/data/*.parquet` + manifest.json, CURRENT) into a
table.

Every published version becomes one snapshot, oldest first, tagged with its version id and carrying its
manifest's description (rows, per-stage counts, config hash, code version, base version). A version folder
holds the version's WHOLE content, and a nightly version hard-links its base's files, so:

- when a version holds every file of the version imported just before it (same inode: hard-linked), it is an
  APPEND snapshot of the files it adds (the nightly delta); nothing is copied twice;
- otherwise (the first version, a full rebuild, a base rewritten because columns arrived, a copy where hard
  links were impossible) it is an OVERWRITE snapshot: the table becomes exactly this version's files.

Either way a snapshot's row count is its manifest's `rows`, which the import checks. Each version's rejects
are appended to the table `<name>_rejects` (one snapshot per version, `publish_rejects`). Files are copied
into the table's location (`data/<first version that holds them>/imported/`), so the table does not depend on
the folder tree (which may be pruned) and the warehouse may be on S3. Re-running the import skips versions
already committed. In a local warehouse the files are hard-linked, not copied. Finally the table's current
snapshot is the version CURRENT names (a rolled-back root stays rolled back).
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from curation.contract_files import link_or_copy
from curation.contract_manifest import Manifest, current_version, iter_parquet_files, published_versions
from curation.tables.catalog import ROOT_WRITER, Warehouse
from curation.tables.commit import commit_version, snapshot_for_run
from curation.tables.compact import described_snapshot
from curation.tables.read import rollback
from curation.tables.summary import RUN_ID, manifest_summary

log = logging.getLogger(__name__)

FileId = tuple[int, int]  # (st_dev, st_ino): hard links of one file share it


@dataclass(frozen=True)
class ImportedVersion:
    version: str
    snapshot_id: int
    mode: str  # append | overwrite | skipped (already imported)
    rows: int
    files_copied: int


def _file_ids(files: list[Path]) -> dict[FileId, Path]:
    out = {}
    for f in files:
        st = f.stat()
        out[(st.st_dev, st.st_ino)] = f
    return out


def _copy(table, src: Path, dest: str) -> None:
    """Put `src` at `dest` in the table: a hard link in a local warehouse (no data copied; a copy across
    devices), a streamed upload otherwise."""
    if dest.startswith("file://"):
        target = Path(dest.removeprefix("file://"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)  # a partial file of an interrupted import
        link_or_copy(src, target)
        return
    with open(src, "rb") as fin, table.io.new_output(dest).create(overwrite=True) as fout:
        shutil.copyfileobj(fin, fout, length=8 << 20)


def root_writer(root: str | os.PathLike) -> str:
    """The writer name (`catalog.claim_writer`) of a dataset root's publishes and imports."""
    return f"{ROOT_WRITER}{Path(root).resolve()}"


def import_root(root: str | os.PathLike, warehouse: Warehouse, name: str) -> list[ImportedVersion]:
    """Import every published version of dataset root `root` into table `name` (created from the first
    version's schema when missing). Returns what happened to each version, oldest first."""
    root = Path(root)
    version_names = published_versions(root)
    if not version_names:
        raise FileNotFoundError(f"{root}: no published versions (no <version>/manifest.json) to import")
    first_files = list(iter_parquet_files(root / version_names[0]))
    if not first_files:
        raise FileNotFoundError(f"{root / version_names[0]}/data: no parquet files")
    table = warehouse.ensure(name, pq.read_schema(first_files[0]), writer=root_writer(root))
    home: dict[FileId, str] = {}  # file identity -> its path in the table (under its first version's folder)
    previous: set[FileId] = set()
    done = []
    for version in version_names:
        done.append(_import_version(table, root / version, home, previous))
        publish_rejects(root / version, warehouse, rejects_table(name))
        previous = set(_file_ids(list(iter_parquet_files(root / version))))
    current = current_version(root)
    if (
        current in version_names
        and described_snapshot(table, table.current_snapshot()).snapshot_id
        != snapshot_for_run(table, current).snapshot_id
    ):
        rollback(table, current)
        log.info("table %s: current version set to CURRENT %s", table.name(), current)
    return done


def publish_version(version_dir: str | os.PathLike, warehouse: Warehouse, name: str) -> ImportedVersion:
    """Commit one published folder version as table `name`'s content, tagged with the version id (the table is
    created from its schema when missing): what `DatasetRoot.make_current` does through
    curation/tables/publish.py. A nightly version whose base version is the table's current snapshot and which
    holds every file of the base folder (hard links) is an APPEND of the files it adds; any other version an
    OVERWRITE. A version id the table already holds is not committed again (mode "skipped")."""
    vdir = Path(version_dir)
    files = list(iter_parquet_files(vdir))
    if not files:
        raise FileNotFoundError(f"{vdir}/data: no parquet files to publish as a table snapshot")
    table = warehouse.ensure(name, pq.read_schema(files[0]), writer=root_writer(vdir.parent))
    base = _base_files(table, vdir, set(_file_ids(files)))
    # the base's files are in the table already: never copied again ("home" is only read for added files)
    return _import_version(table, vdir, dict.fromkeys(base, ""), base)


def _base_files(table, vdir: Path, files: set[FileId]) -> set[FileId]:
    """The file identities of `vdir`'s base version when that version is the table's current snapshot, its
    folder sits beside `vdir` and `files` (the version's) hold all of them and more; else none (the version is
    then committed whole)."""
    base = Manifest.read(vdir).base_version
    head = described_snapshot(table, table.current_snapshot())  # a compacted base: append on the compaction
    if base is None or head is None or (head.summary or {}).get(RUN_ID) != base:
        return set()
    base_dir = vdir.parent / base
    held = set(_file_ids(list(iter_parquet_files(base_dir)))) if base_dir.is_dir() else set()
    return held if held and held < files else set()


def rejects_table(name: str) -> str:
    """The table that holds the rejects of table `name`'s runs."""
    return f"{name}_rejects"


def publish_rejects(
    version_dir: str | os.PathLike, warehouse: Warehouse, name: str
) -> ImportedVersion | None:
    """Append one version's rejects (`rejects/*.parquet`: the rows its run dropped, with reject_stage /
    reject_reason / reject_detail) to table `name` as one APPEND snapshot tagged with the version id, so the
    table is the log of every run's rejects and `WHERE reject_reason = ...` works across nights. Idempotent (a
    version already there is "skipped"); the snapshot's added rows must equal the manifest's `rejected_rows`.
    None when the run rejected nothing."""
    vdir = Path(version_dir)
    manifest = Manifest.read(vdir)
    files = list(iter_parquet_files(vdir, "rejects"))
    if not files:
        if manifest.rejected_rows:
            raise FileNotFoundError(
                f"{vdir}/rejects: no parquet files, but its manifest says"
                f" rejected_rows={manifest.rejected_rows}"
            )
        return None
    table = warehouse.ensure(name, pq.read_schema(files[0]))
    already = snapshot_for_run(table, vdir.name)
    if already is not None:
        added = int(already.summary.get("added-records") or 0)
        _check_rows(table, vdir, already.snapshot_id, added, manifest.rejected_rows, "rejected_rows")
        return ImportedVersion(vdir.name, already.snapshot_id, "skipped", added, 0)
    dests = [f"{table.location().rstrip('/')}/data/{vdir.name}/rejects/{f.name}" for f in files]
    for src, dest in zip(files, dests):
        _copy(table, src, dest)
    summary = manifest_summary(manifest) | {"rejects_of": str(vdir)}
    committed = commit_version(table, dests, vdir.name, summary, mode="append")
    added = int(table.metadata.snapshot_by_id(committed.snapshot_id).summary.get("added-records") or 0)
    _check_rows(table, vdir, committed.snapshot_id, added, manifest.rejected_rows, "rejected_rows")
    log.info(
        "rejects of %s appended to %s: snapshot %s, %d rows", vdir.name, name, committed.snapshot_id, added
    )
    return ImportedVersion(vdir.name, committed.snapshot_id, "append", added, len(files))


def _import_version(table, vdir: Path, home: dict[FileId, str], previous: set[FileId]) -> ImportedVersion:
    version = vdir.name
    manifest = Manifest.read(vdir)
    files = _file_ids(list(iter_parquet_files(vdir)))
    if not files:
        raise FileNotFoundError(f"{vdir}/data: no parquet files, but its manifest says rows={manifest.rows}")
    append = bool(previous) and previous <= set(files)
    added = [fid for fid in files if fid not in previous] if append else list(files)
    fresh = [fid for fid in files if fid not in home]
    for fid in fresh:
        home[fid] = f"{table.location().rstrip('/')}/data/{version}/imported/{files[fid].name}"
    already = snapshot_for_run(table, version)
    if already is not None:  # a rerun: what the table holds must still be what the folder says
        rows = int(already.summary["total-records"])
        _check_rows(table, vdir, already.snapshot_id, rows, manifest.rows, "rows")
        return ImportedVersion(version, already.snapshot_id, "skipped", rows, 0)
    for fid in fresh:
        _copy(table, files[fid], home[fid])
    summary = manifest_summary(manifest) | {"imported_from": str(vdir)}
    mode = "append" if append else "overwrite"
    if append and not added:  # a version identical to the previous one: an empty overwrite keeps the history
        mode = "overwrite"
        added = list(files)
    committed = commit_version(table, [home[fid] for fid in added], version, summary, mode=mode)
    snap = table.metadata.snapshot_by_id(committed.snapshot_id)
    rows = int(snap.summary["total-records"])
    _check_rows(table, vdir, committed.snapshot_id, rows, manifest.rows, "rows")
    log.info(
        "imported %s as %s snapshot %s (%d rows, %d file(s) copied)",
        version,
        mode,
        committed.snapshot_id,
        rows,
        len(fresh),
    )
    return ImportedVersion(version, committed.snapshot_id, mode, rows, len(fresh))


def _check_rows(table, vdir: Path, sid: int, rows: int, expected: int, field: str) -> None:
    """The run's snapshot holds (or, for rejects, added) the rows its manifest says, whether committed now or
    found from an earlier attempt: a mismatch found on a rerun would otherwise go live unnoticed (the run id
    is committed already, so the rerun commits nothing)."""
    if rows != expected:
        raise RuntimeError(
            f"{vdir}: table {table.name()} snapshot {sid} of run {vdir.name} holds {rows} rows but the"
            f" manifest says {field}={expected} (a folder rebuilt after its run was committed keeps the"
            " committed snapshot: publish the new content under a new run id)"
        )
