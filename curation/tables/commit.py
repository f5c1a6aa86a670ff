"""Publishing a version: the data files a job wrote become ONE snapshot, committed once per run id.

Spark writes parquet under `data_location(table, run_id)`; the driver then calls `commit_version`, which

- returns at once when a snapshot of `run_id` is already in the table's history (a retried job, or two
  copies of one job racing: the second commit is a no-op, so a run can never land twice);
- adds columns the files bring (schema evolution: `union_by_name`, existing files are never rewritten);
- commits every file in one snapshot whose summary carries the run id and the run's description
  (`phi.*` properties: per-stage counts, config hash, code version, ...), then tags it with the run id;
- on `CommitFailedException` (another writer committed first) reloads the table and starts over, so
  non-conflicting appends of two writers both land;
- or, staged (`stage=True`, write-audit-publish: curation/tables/wap.py), commits the snapshot on the run's
  branch `audit/<run id>` instead of main, untagged: it is not "committed" for the run-id check until
  `wap.publish_staged` fast-forwards main to it.

Files written by a job that died before committing are referenced by no snapshot: readers, who plan their
scans from snapshots, never see them, and `maintenance.remove_orphan_files` deletes them later.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from curation.ingest.files import url_to_fs
from curation.tables.summary import RUN_ID, summary_properties

log = logging.getLogger(__name__)
#: `commit_version(parent=...)` default: commit on whatever the table's head is.
ANY_PARENT = object()

#: Summary property of a staged snapshot (write-audit-publish, curation/tables/wap.py): its audit branch.
AUDIT_REF = "phi.audit-ref"
MAIN = "main"
#: How many times a commit that lost a race reloads the table and tries again.
COMMIT_ATTEMPTS = 12


@dataclass(frozen=True)
class Committed:
    run_id: str
    snapshot_id: int
    created: bool  # False: `run_id` was already in the history and nothing was committed


def data_location(table, run_id: str) -> str:
    """A fresh folder for one attempt of `run_id` to write its data files in (`data/<run_id>/<attempt>/` under
    the table's location). Each attempt gets its own folder, so a retry commits exactly the files it wrote,
    never the leftovers of a killed earlier attempt (those stay orphans until `remove_orphan_files`)."""
    return f"{table.location().rstrip('/')}/data/{run_id}/{uuid.uuid4().hex[:12]}"


def written_files(location: str) -> list[str]:
    """The parquet data files a writer (Spark: part-*.parquet beside _SUCCESS and .crc files) left under
    `location`, as full URIs, sorted."""

    fs, root = url_to_fs(location)
    scheme = location.split("://", 1)[0] + "://" if "://" in location else ""
    names = [
        p for p in fs.find(root) if p.endswith(".parquet") and not p.rsplit("/", 1)[-1].startswith(("_", "."))
    ]
    return sorted(scheme + p.lstrip("/") if scheme and scheme != "file://" else scheme + p for p in names)


def snapshot_for_run(table, run_id: str):
    """The published snapshot whose summary names `run_id` (anywhere in the history, rolled back or not), or
    None. A staged snapshot awaiting its audit (`staged_snapshot`) is not one: it counts once published."""
    for snap in table.metadata.snapshots:
        if snap.summary is not None and snap.summary.get(RUN_ID) == run_id and is_published(table, snap):
            return snap
    return None


def audit_ref(run_id: str) -> str:
    """The branch a staged run waits on for its audit: `audit/<run id>` (`iceberg:<table>@audit/<run id>`)."""
    return f"audit/{run_id}"


def staged_snapshot(table, run_id: str):
    """The snapshot run `run_id` staged for audit (the head of its `audit/<run id>` branch), or None."""
    ref = table.metadata.refs.get(audit_ref(run_id))
    snap = table.metadata.snapshot_by_id(ref.snapshot_id) if ref is not None else None
    if snap is None or snap.summary is None or snap.summary.get(RUN_ID) != run_id:
        return None  # a branch left at the base by a staging attempt that died before its commit
    return snap


def is_published(table, snap) -> bool:
    """Whether readers of the table's history may see `snap`: always for a snapshot committed on main; for a
    staged one (AUDIT_REF in its summary) once published: tagged with its run id, or main reached it (a
    publish that died between the fast-forward and the tag)."""
    # pyiceberg's Summary answers `key in summary` True for any key (its [] returns None): use .get
    if snap.summary is None or snap.summary.get(AUDIT_REF) is None:
        return True
    tag = table.metadata.refs.get(snap.summary.get(RUN_ID, ""))
    if tag is not None and tag.snapshot_id == snap.snapshot_id:
        return True
    return any(s.snapshot_id == snap.snapshot_id for s in ancestors(table, table.current_snapshot()))


def ancestors(table, snap):
    """`snap`, its parent, its parent's parent, ... (main's history when `snap` is main's head), up to the
    oldest one not expired."""
    while snap is not None:
        yield snap
        snap = table.metadata.snapshot_by_id(snap.parent_snapshot_id) if snap.parent_snapshot_id else None


def commit_version(
    table,
    data_files: Sequence[str],
    run_id: str,
    summary: dict[str, Any] | None = None,
    *,
    mode: Literal["append", "overwrite"] = "append",
    parent: int | None | object = ANY_PARENT,
    stage: bool = False,
) -> Committed:
    """Commit `data_files` (parquet, already written) as one snapshot of `run_id`; idempotent per run id.

    `append` adds the files to the table's current content (a night's new rows); `overwrite` makes them the
    table's whole content (a full rebuild), in one OVERWRITE snapshot. Returns the snapshot (new or found).

    `parent`: the snapshot id (None: an empty table) the files were computed against (a night deduplicated
    against it). The commit lands only on that snapshot: the catalog's commit asserts the branch head the
    transaction saw, and a lost race whose winner moved the table raises `TableMoved` instead of retrying
    (the caller recomputes against the new head). Default: any parent (appends of disjoint data).

    `stage` (write-audit-publish, curation/tables/wap.py; appends only): the snapshot is committed on the
    run's own branch `audit/<run id>`, created at main's head, not on main: readers of main do not see it
    until `wap.publish_staged` fast-forwards main to it. A run already staged on that head is reused
    (created=False); one staged on an older head is replaced (the old staged snapshot is dropped). A run
    that is staged and not published cannot be committed straight onto main (`RunStaged`)."""
    if not data_files:
        raise ValueError(f"commit_version({run_id}): no data files to commit")
    if len(set(data_files)) != len(data_files):
        raise ValueError(f"commit_version({run_id}): a data file is listed twice")
    if stage and mode != "append":
        raise ValueError(f"commit_version({run_id}): only an append can be staged, not an {mode}")
    props = summary_properties(run_id, summary)
    if stage:
        props[AUDIT_REF] = audit_ref(run_id)
    for attempt in range(COMMIT_ATTEMPTS):
        table.refresh()
        head = table.current_snapshot()
        head_id = head.snapshot_id if head else None
        found = _already_committed(table, run_id, head_id if parent is ANY_PARENT else parent, stage)
        if found is not None:
            return found
        if parent is not ANY_PARENT and head_id != parent:
            raise TableMoved(
                f"table {table.name()} moved from snapshot {parent} to {head_id}"
                f" before run {run_id} committed: nothing committed"
            )
        replaced = _unpublished_staged(table, run_id) if stage else []
        try:
            # one job writes one schema: evolve from the first file's footer (add_files reads every footer
            # anyway); a file with more columns than that makes add_files refuse, then all footers are read
            evolve_schema(table, data_files[:1])
            branch = audit_ref(run_id) if stage else None
            try:
                _commit_once(table, list(data_files), props, mode, branch, head_id)
            except ValueError as e:
                if "contains more columns" not in str(e):
                    raise
                evolve_schema(table, data_files)
                _commit_once(table, list(data_files), props, mode, branch, head_id)
        except commit_conflicts() as e:
            wait = min(0.05 * 2**attempt, 2.0) * (1 + random.random())
            log.info(
                "commit of run %s to %s lost a race (%s): retry %d in %.2fs",
                run_id,
                table.name(),
                e,
                attempt + 1,
                wait,
            )
            time.sleep(wait)
            continue
        if stage:
            for sid in replaced:
                drop_snapshot(table, sid)
            return Committed(run_id, staged_snapshot(table, run_id).snapshot_id, created=True)
        snap = snapshot_for_run(table, run_id)
        tag_snapshot(table, run_id, snap.snapshot_id)
        return Committed(run_id, snap.snapshot_id, created=True)
    raise RuntimeError(f"commit of run {run_id} to {table.name()}: lost {COMMIT_ATTEMPTS} races in a row")


def _already_committed(table, run_id: str, base: int | None, stage: bool) -> Committed | None:
    """The run's snapshot when nothing is to be committed: published already (tag repaired), or staged on
    `base` already (a retried staged commit). None: commit (a staged run on an older base is replaced)."""
    done = snapshot_for_run(table, run_id)
    if done is not None:
        log.info(
            "run %s is already committed to %s as snapshot %s: nothing to do",
            run_id,
            table.name(),
            done.snapshot_id,
        )
        tag_snapshot(table, run_id, done.snapshot_id)
        return Committed(run_id, done.snapshot_id, created=False)
    staged = staged_snapshot(table, run_id)
    if staged is None:
        return None
    if not stage:
        raise RunStaged(
            f"run {run_id} is staged in table {table.name()} awaiting its audit (snapshot"
            f" {staged.snapshot_id}, ref {audit_ref(run_id)}): publish it (python -m curation tables publish"
            f" --table T --run-id {run_id}) or discard it (tables discard) before committing it onto main"
        )
    if staged.parent_snapshot_id == base:
        log.info("run %s is already staged on snapshot %s: nothing to do", run_id, base)
        return Committed(run_id, staged.snapshot_id, created=False)
    return None


def _unpublished_staged(table, run_id: str) -> list[int]:
    """Every staged, unpublished snapshot of `run_id`: the one its branch points at and any a crashed
    staging left without a ref (what a new staging of the run replaces)."""
    return [
        snap.snapshot_id
        for snap in table.metadata.snapshots
        if snap.summary is not None
        and snap.summary.get(RUN_ID) == run_id
        and snap.summary.get(AUDIT_REF) is not None
        and not is_published(table, snap)
    ]


def drop_snapshot(table, sid: int) -> None:
    """Remove snapshot `sid` (no ref may point at it) from the table's metadata: a staged snapshot replaced
    or discarded. Its data files become orphans that `maintenance.remove_orphan_files` deletes."""
    table.maintenance.expire_snapshots().by_ids([sid]).commit()


class RunStaged(RuntimeError):
    """The run is staged for audit (write-audit-publish) and not published: publish or discard it first."""


class TableMoved(RuntimeError):
    """Another writer committed after the snapshot this run's files were computed against."""


def commit_conflicts() -> tuple[type[BaseException], ...]:
    from pyiceberg.exceptions import CommitFailedException

    return (CommitFailedException,)


def _commit_once(
    table, paths: list[str], props: dict[str, str], mode: str, branch: str | None, head_id: int | None
) -> None:
    """One commit of `paths` on main, or (`branch`) on a staging branch first reset to main's `head_id`."""
    if branch is not None and head_id is None:
        _stage_on_empty_table(table, paths, props, branch)
        return
    if branch is not None:  # the staged snapshot's parent is exactly the head the run computed against
        table.manage_snapshots().create_branch(head_id, branch).commit()
    _commit_files(table, paths, props, mode, branch or MAIN)


def _stage_on_empty_table(table, paths: list[str], props: dict[str, str], branch: str) -> None:
    """Iceberg refuses every ref but main on a table without snapshots (AssertRefSnapshotId): commit the
    staged snapshot without a ref first (its parent: main's head as this transaction saw it, i.e. none),
    then point the branch at it. A crash in between leaves a ref-less staged snapshot nobody sees; the next
    staging of the run drops it (commit_version)."""
    known = {snap.snapshot_id for snap in table.metadata.snapshots}
    if branch in table.metadata.refs:
        table.manage_snapshots().remove_branch(branch).commit()
    _commit_files(table, paths, props, "append", None)
    new = [
        snap
        for snap in table.metadata.snapshots
        if snap.snapshot_id not in known and snap.summary.get(RUN_ID) == props[RUN_ID]
    ]
    if new[0].parent_snapshot_id is not None:  # main moved under the transaction: not deduplicated against
        drop_snapshot(table, new[0].snapshot_id)
        raise TableMoved(
            f"table {table.name()} moved to {new[0].parent_snapshot_id} while {branch} was being staged"
        )
    table.manage_snapshots().create_branch(new[0].snapshot_id, branch).commit()


def _commit_files(table, paths: list[str], props: dict[str, str], mode: str, branch: str | None) -> None:
    """One transaction adding `paths` as one snapshot on `branch` (None: on no ref)."""
    with table.transaction() as tx:
        if tx.table_metadata.name_mapping() is None:
            # Spark's parquet carries no Iceberg field ids: readers map its columns to the schema by name
            tx.set_properties(
                **{"schema.name-mapping.default": tx.table_metadata.schema().name_mapping.model_dump_json()}
            )
        if mode == "append":
            # no duplicate-file scan: a run's files live under its own data/<run_id>/ folder, and a second
            # commit of the same run id has already returned above
            tx.add_files(paths, snapshot_properties=props, check_duplicate_files=False, branch=branch)
            return
        from pyiceberg.io.pyarrow import parquet_file_to_data_file

        current = table.current_snapshot()
        old = [task.file for task in table.scan().plan_files()] if current is not None else []
        with tx.update_snapshot(snapshot_properties=props).overwrite() as overwrite:
            for f in old:
                overwrite.delete_data_file(f)
            for path in paths:
                overwrite.append_data_file(parquet_file_to_data_file(table.io, tx.table_metadata, path))


def file_schemas(table, paths: Sequence[str]) -> list[pa.Schema]:
    """The distinct Arrow schemas of parquet files `paths` (footers only), read through the table's FileIO."""

    def read(path: str) -> pa.Schema:
        with table.io.new_input(path).open() as f:
            return pq.read_schema(f)

    with ThreadPoolExecutor(max_workers=8) as pool:
        schemas = list(pool.map(read, paths))
    distinct: list[pa.Schema] = []
    for s in schemas:
        if not any(s.equals(d) for d in distinct):
            distinct.append(s)
    return distinct


def evolve_schema(table, paths: Sequence[str]) -> list[str]:
    """Add to the table the columns the files have and it lacks (union by name; existing data untouched).
    Returns the names added."""
    known = {f.name for f in table.schema().fields}
    added: list[str] = []
    for schema in file_schemas(table, paths):
        new = [n for n in schema.names if n not in known]
        if new:
            with table.update_schema() as update:
                update.union_by_name(schema)
            known |= set(new)
            added += new
    if added:
        log.info("table %s: new columns %s", table.name(), added)
    return added


def tag_snapshot(table, name: str, snapshot_id: int) -> None:
    """Tag `snapshot_id` as `name`: a run id (a tag lost to a crash after the commit is repaired) or a pin
    (curation/tables/pins.py). Idempotent; a tag of that name on another snapshot is an error."""
    for _ in range(COMMIT_ATTEMPTS):
        ref = table.metadata.refs.get(name)
        if ref is not None:
            if ref.snapshot_id != snapshot_id:
                raise RuntimeError(
                    f"table {table.name()}: tag {name!r} points at snapshot {ref.snapshot_id},"
                    f" not at snapshot {snapshot_id}"
                )
            return
        try:
            table.manage_snapshots().create_tag(snapshot_id, name).commit()
            return
        except commit_conflicts():
            time.sleep(0.05 * (1 + random.random()))
            table.refresh()
    raise RuntimeError(f"table {table.name()}: could not tag snapshot {snapshot_id} as {name!r}")
