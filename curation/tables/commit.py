"""Publishing a version: the data files a job wrote become ONE snapshot, committed once per run id.

Spark writes parquet under `data_location(table, run_id)`; the driver then calls `commit_version`, which

- returns at once when a snapshot of `run_id` is already in the table's history (a retried job, or two
  copies of one job racing: the second commit is a no-op, so a run can never land twice);
- adds columns the files bring (schema evolution: `union_by_name`, existing files are never rewritten);
- commits every file in one snapshot whose summary carries the run id and the run's description
  (`phi.*` properties: per-stage counts, config hash, code version, ...), then tags it with the run id;
- on `CommitFailedException` (another writer committed first) reloads the table and starts over, so
  non-conflicting appends of two writers both land.

Files written by a job that died before committing are referenced by no snapshot: readers, who plan their
scans from snapshots, never see them, and `maintenance.remove_orphan_files` deletes them later.
"""

from __future__ import annotations

import json
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

from curation.contract_manifest import Manifest
from curation.ingest.files import url_to_fs

log = logging.getLogger(__name__)
#: `commit_version(parent=...)` default: commit on whatever the table's head is.
ANY_PARENT = object()

RUN_ID = "phi.run-id"
PREFIX = "phi."
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
    """The snapshot whose summary names `run_id` (anywhere in the history, rolled back or not), or None."""
    for snap in table.metadata.snapshots:
        if snap.summary is not None and snap.summary.get(RUN_ID) == run_id:
            return snap
    return None


def summary_properties(run_id: str, summary: dict[str, Any] | None) -> dict[str, str]:
    """`phi.*` snapshot properties: strings stay as they are, everything else is JSON."""
    props = {RUN_ID: run_id}
    for key, value in (summary or {}).items():
        props[PREFIX + key.replace("_", "-")] = value if isinstance(value, str) else json.dumps(value)
    return props


def manifest_summary(manifest: Manifest) -> dict[str, Any]:
    """What a folder-contract manifest says about a version, as `commit_version`'s `summary`: everything a
    gate or a report needs to read the snapshot as a version (curation/tables/version.py), config included
    (~3 KB: the gate's language list comes from it). Not the input list, only its length: a night of a web
    crawl reads thousands of files, and every snapshot's summary is kept in the table's metadata file."""
    out: dict[str, Any] = {
        "dataset": manifest.dataset,
        "input_files": len(manifest.inputs),
        "config": manifest.config,
        "rows": manifest.rows,
        "rejected_rows": manifest.rejected_rows,
        "config_hash": manifest.config_hash,
        "code_version": manifest.code_version,
        "created_at": manifest.created_at,
        "stages": [s.model_dump(exclude_none=True) for s in manifest.stages],
    }
    if manifest.base_version:
        out.update(base_version=manifest.base_version, base_rows=manifest.base_rows)
    return out


def commit_version(
    table,
    data_files: Sequence[str],
    run_id: str,
    summary: dict[str, Any] | None = None,
    *,
    mode: Literal["append", "overwrite"] = "append",
    parent: int | None | object = ANY_PARENT,
) -> Committed:
    """Commit `data_files` (parquet, already written) as one snapshot of `run_id`; idempotent per run id.

    `append` adds the files to the table's current content (a night's new rows); `overwrite` makes them the
    table's whole content (a full rebuild), in one OVERWRITE snapshot. Returns the snapshot (new or found).

    `parent`: the snapshot id (None: an empty table) the files were computed against (a night deduplicated
    against it). The commit lands only on that snapshot: the catalog's commit asserts the branch head the
    transaction saw, and a lost race whose winner moved the table raises `TableMoved` instead of retrying
    (the caller recomputes against the new head). Default: any parent (appends of disjoint data)."""
    if not data_files:
        raise ValueError(f"commit_version({run_id}): no data files to commit")
    if len(set(data_files)) != len(data_files):
        raise ValueError(f"commit_version({run_id}): a data file is listed twice")
    props = summary_properties(run_id, summary)
    for attempt in range(COMMIT_ATTEMPTS):
        table.refresh()
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
        head = table.current_snapshot()
        if parent is not ANY_PARENT and (head.snapshot_id if head else None) != parent:
            raise TableMoved(
                f"table {table.name()} moved from snapshot {parent} to {head.snapshot_id if head else None}"
                f" before run {run_id} committed: nothing committed"
            )
        try:
            # one job writes one schema: evolve from the first file's footer (add_files reads every footer
            # anyway); a file with more columns than that makes add_files refuse, then all footers are read
            evolve_schema(table, data_files[:1])
            try:
                _commit_once(table, list(data_files), props, mode)
            except ValueError as e:
                if "contains more columns" not in str(e):
                    raise
                evolve_schema(table, data_files)
                _commit_once(table, list(data_files), props, mode)
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
        snap = snapshot_for_run(table, run_id)
        tag_snapshot(table, run_id, snap.snapshot_id)
        return Committed(run_id, snap.snapshot_id, created=True)
    raise RuntimeError(f"commit of run {run_id} to {table.name()}: lost {COMMIT_ATTEMPTS} races in a row")


class TableMoved(RuntimeError):
    """Another writer committed after the snapshot this run's files were computed against."""


def commit_conflicts() -> tuple[type[BaseException], ...]:
    from pyiceberg.exceptions import CommitFailedException

    return (CommitFailedException,)


def _commit_once(table, paths: list[str], props: dict[str, str], mode: str) -> None:
    with table.transaction() as tx:
        if tx.table_metadata.name_mapping() is None:
            # Spark's parquet carries no Iceberg field ids: readers map its columns to the schema by name
            tx.set_properties(
                **{"schema.name-mapping.default": tx.table_metadata.schema().name_mapping.model_dump_json()}
            )
        if mode == "append":
            # no duplicate-file scan: a run's files live under its own data/<run_id>/ folder, and a second
            # commit of the same run id has already returned above
            tx.add_files(paths, snapshot_properties=props, check_duplicate_files=False)
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
