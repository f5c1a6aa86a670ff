"""Compaction: an occasional maintenance task that rewrites a table's small data files into fewer, larger
ones, as one snapshot with the same rows.

Every nightly append adds a file or a few per night (O(delta) by design), so after months a scan plans
hundreds of small files: per-file overhead for every reader (planning, footers, one task each). Compaction
reads the current snapshot's files below `target_rows` rows, writes them again in groups of about
`target_rows` (the table's current schema: a column that arrived later, e.g. the edu scores, is null in the
older rows, as a scan shows it), and commits one snapshot that removes those files and adds the new ones. It
is O(the small files), so it runs by hand or on a slow cadence, never in the nightly path.

Readers are unaffected: the rows, ids and columns of the current version are the same, earlier versions
(pinned or kept for time travel) still read the old files, which become orphans only once those versions
expire. The compaction snapshot has no run id: the gate and report (`iceberg:<table>`) read it with the
manifest of the run it compacted, a retried publish of that run leaves it current, and the next nightly
version is an APPEND on top of it (`described_snapshot`). The commit asserts the snapshot it compacted: a
writer that landed meanwhile makes it fail cleanly (`TableMoved`, nothing committed, its files deleted);
rerun it.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from curation.tables.commit import TableMoved, ancestors, commit_conflicts

log = logging.getLogger(__name__)

MAINTENANCE = "phi.maintenance"


def described_snapshot(table, snap):
    """The snapshot whose run describes `snap`'s content: `snap` itself, or, when it is a compaction (same
    rows, other files, no run id), its nearest ancestor that is not one (or the oldest compaction left when
    that ancestor has expired). What the live version is, for the gate, the report and the publish path."""
    oldest = snap
    for oldest in ancestors(table, snap):
        if oldest.summary is None or oldest.summary.get(MAINTENANCE) != "compact":
            break
    return oldest


@dataclass(frozen=True)
class Compacted:
    snapshot_id: int | None  # None: nothing to compact
    files_in: int
    files_out: int
    rows: int
    seconds: float


def _groups(files: list, target_rows: int) -> list[list]:
    """Consecutive files packed into groups of at most ~target_rows rows (a larger file stays alone)."""
    groups, current, rows = [], [], 0
    for f in files:
        if current and rows + f.record_count > target_rows:
            groups.append(current)
            current, rows = [], 0
        current.append(f)
        rows += f.record_count
    if current:
        groups.append(current)
    return groups


def _read_group(table, files: list, schema: pa.Schema) -> pa.Table:
    """The group's files as one table in the current schema's column order (matched by name: Spark's files
    carry no field ids). Columns keep the files' own types; one no file of the group has (it arrived later)
    is all null, of the table's type."""
    parts = []
    for f in files:
        with table.io.new_input(f.file_path).open() as fh:
            parts.append(pq.read_table(fh))
    merged = pa.concat_tables(parts, promote_options="permissive")
    have = set(merged.column_names)
    columns = [merged.column(f.name) if f.name in have else pa.nulls(merged.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, names=schema.names)


def compact(table, target_rows: int = 1_000_000, min_files: int = 2) -> Compacted:
    """Rewrite the current snapshot's data files of fewer than `target_rows` rows into files of about
    `target_rows` rows, in one snapshot (summary `phi.maintenance=compact`). Nothing happens when fewer than
    `min_files` such files exist."""
    t0 = time.perf_counter()
    table.refresh()
    head = table.current_snapshot()
    if head is None:
        return Compacted(None, 0, 0, 0, 0.0)
    tasks = list(table.scan(snapshot_id=head.snapshot_id).plan_files())
    if any(task.delete_files for task in tasks):
        raise ValueError(f"table {table.name()}: snapshot {head.snapshot_id} has delete files; not compacted")
    small = sorted((t.file for t in tasks if t.file.record_count < target_rows), key=lambda f: f.file_path)
    if len(small) < min_files:
        log.info(
            "table %s: %d small file(s), fewer than %d: nothing to compact",
            table.name(),
            len(small),
            min_files,
        )
        return Compacted(None, 0, 0, 0, round(time.perf_counter() - t0, 3))
    schema = table.schema().as_arrow()
    folder = f"{table.location().rstrip('/')}/data/_compacted/{uuid.uuid4().hex[:12]}"
    written = []
    for k, group in enumerate(_groups(small, target_rows)):
        merged = _read_group(table, group, schema)
        path = f"{folder}/part-{k:05d}.parquet"
        with table.io.new_output(path).create(overwrite=True) as out:
            pq.write_table(merged, out)
        written.append(path)
    rows = sum(f.record_count for f in small)
    try:
        sid = _commit(table, head.snapshot_id, small, written)
    except TableMoved:
        for path in written:
            table.io.delete(path)
        raise
    done = Compacted(sid, len(small), len(written), rows, round(time.perf_counter() - t0, 3))
    log.info(
        "table %s: compacted %d file(s) into %d (%d rows) in %.1f s: snapshot %s",
        table.name(),
        done.files_in,
        done.files_out,
        rows,
        done.seconds,
        sid,
    )
    return done


def _commit(table, parent: int, removed: list, added: list[str]) -> int:
    from pyiceberg.io.pyarrow import parquet_file_to_data_file

    try:
        # the transaction starts from the metadata the files were planned on; the catalog's commit asserts
        # that head is still `parent`, so a writer that landed since makes it fail here
        with table.transaction() as tx:
            props = {MAINTENANCE: "compact", "phi.compacted-files": str(len(removed))}
            with tx.update_snapshot(snapshot_properties=props).overwrite() as overwrite:
                for f in removed:
                    overwrite.delete_data_file(f)
                for path in added:
                    overwrite.append_data_file(parquet_file_to_data_file(table.io, tx.table_metadata, path))
    except commit_conflicts() as e:  # the catalog saw another commit land first
        raise TableMoved(
            f"table {table.name()} moved past snapshot {parent}: compaction not committed ({e})"
        ) from e
    table.refresh()
    return table.current_snapshot().snapshot_id
