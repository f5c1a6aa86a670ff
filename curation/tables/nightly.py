"""The nightly append as an Iceberg APPEND snapshot of the night's new rows only (issue 15): cost O(delta).

    night's curated delta (a folder version: `curation run` over the night's inputs)
      - rows whose `id` the table already holds           -> rejected `id_already_published`
      - rows whose `text_hash` the table already holds    -> rejected `text_already_published`
      = the new rows, written as parquet under the table's data/<run_id>/ and committed as ONE append snapshot

The dedup runs in Spark: the table's current snapshot is pinned first, its data files come from that
snapshot's scan planning, and only their `id` and `text_hash` columns are read (the JVM parquet reader on a
local warehouse, the Python workers through fsspec where Hadoop has no filesystem for the scheme, e.g. s3://
without hadoop-aws). The keys are semi-joined with the night's, so only the hits travel. The new rows are
written by the workers (mapInArrow, one file per partition) under the table's location, on any filesystem
fsspec opens.

Nothing of the base is read beyond those two columns or written at all; columns the night brings (edu scores)
are an Iceberg schema update in `commit_version`, never a rewrite. The snapshot's summary carries the run id,
the night's per-stage counts plus `published_dedup`, the base snapshot id and rows, so counts reconcile:
delta rows = appended + rejected by reason. A run id already committed is a no-op (a retried night).

Concurrent writers: a night deduplicates against the snapshot it pinned and commits only on exactly that
snapshot (`commit_version(parent=...)`: the catalog's commit asserts the branch head). When another writer
landed first, the attempt's files are deleted and the night is deduplicated again against the new head (up to
NIGHT_ATTEMPTS), so two nights committing at once both land, and a row both bring lands once.

Staged (`stage=True`, write-audit-publish, curation/tables/wap.py): the same snapshot is committed on the
run's branch `audit/<run id>` (created at the dedup's head) instead of main, for the gate to audit
(`iceberg:<table>@audit/<run id>`) before `publish_staged` fast-forwards main to it.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from curation.append import ID_PUBLISHED, STAGE, TEXT_PUBLISHED
from curation.contract import Manifest, StageCounts, iter_parquet_files, resolve_version_dir
from curation.tables.catalog import ROOT_WRITER, Warehouse
from curation.tables.commit import (
    RunStaged,
    TableMoved,
    audit_ref,
    commit_version,
    data_location,
    snapshot_for_run,
    staged_snapshot,
)
from curation.tables.read import data_files, snapshot_id
from curation.tables.summary import manifest_summary, summary_value

log = logging.getLogger(__name__)
#: The writer (`catalog.claim_writer`) of tables whose versions are table-native nights.
APPEND_WRITER = "curation append"

KEYS = ("id", "text_hash")
#: Rows per data file the night writes (a night of a few thousand documents is one file).
ROWS_PER_FILE = 500_000
#: Attempts of a night whose commit finds the table moved (another writer landed first): each dedups anew.
NIGHT_ATTEMPTS = 4


@dataclass(frozen=True)
class NightAppended:
    run_id: str
    snapshot_id: int
    base_snapshot_id: int | None
    delta_rows: int
    appended: int
    rejected: dict[str, int]  # reason -> rows (the night's rows the table already held)
    files: list[str]
    created: bool  # False: the run id was already committed (or staged on the same head), nothing was done
    staged: bool = False  # True: on the audit branch `audit/<run id>`, not on main (curation/tables/wap.py)


def append_night(
    spark,
    delta: str | Path,
    warehouse: Warehouse,
    name: str,
    run_id: str | None = None,
    stage: bool = False,
) -> NightAppended:
    """Append the new rows of curated delta `delta` (a version folder or root) to table `name` (created from
    the delta's schema when missing) as one snapshot of `run_id` (default: the delta's version id).

    `stage`: write-audit-publish (curation/tables/wap.py): the snapshot lands on branch `audit/<run id>`
    (parent: main's head at dedup time), not on main; gate `iceberg:<name>@audit/<run id>`, then
    `wap.publish_staged`. A night staged on main's current head already is a no-op; one staged on an older
    head is deduplicated again and replaces it."""
    t0 = time.perf_counter()
    delta_dir = resolve_version_dir(delta)
    dm = Manifest.read(delta_dir)
    run_id = run_id or dm.version
    files = [str(f) for f in iter_parquet_files(delta_dir)]
    if not files:
        raise FileNotFoundError(f"{delta_dir}/data: no parquet files (its manifest says rows={dm.rows})")
    import pyarrow.parquet as pq

    table = warehouse.ensure(name, pq.read_schema(files[0]), writer=APPEND_WRITER, takes_over=ROOT_WRITER)
    done = snapshot_for_run(table, run_id)
    if done is not None:
        log.info(
            "night %s is already in table %s (snapshot %s): nothing to do", run_id, name, done.snapshot_id
        )
        return _already(done, run_id)
    staged = staged_snapshot(table, run_id)
    if staged is not None and not stage:  # before any work: committing it onto main would fail at the end
        raise RunStaged(
            f"night {run_id} is staged in table {name} awaiting its audit (ref {audit_ref(run_id)}): publish"
            f" it (python -m curation tables publish --table {name} --run-id {run_id}) or discard it"
            " (tables discard) rather than append it straight onto main"
        )
    if stage and staged is not None and staged.parent_snapshot_id == snapshot_id(table):
        log.info("night %s is staged in %s (snapshot %s): nothing to do", run_id, name, staged.snapshot_id)
        return _already(staged, run_id, staged=True)
    night = spark.read.parquet(*[Path(f).resolve().as_uri() for f in files])
    night_keys = night.select(*[c for c in KEYS if c in night.columns]).toArrow()  # a night's batch: small
    if night_keys.num_rows != dm.rows:
        raise ValueError(
            f"delta {delta_dir}: data/ holds {night_keys.num_rows} rows, its manifest says rows={dm.rows}"
        )
    for attempt in range(1, NIGHT_ATTEMPTS + 1):
        try:
            return _append_once(spark, table, night, night_keys, dm, delta_dir, run_id, t0, stage)
        except TableMoved as e:
            if attempt == NIGHT_ATTEMPTS:
                raise
            log.warning("night %s, attempt %d: %s; deduplicating against the new head", run_id, attempt, e)
    raise AssertionError("unreachable")


def _append_once(
    spark, table, night, night_keys, dm: Manifest, delta_dir: Path, run_id: str, t0: float, stage: bool
):
    """One attempt: dedup against the head snapshot, write the new rows, commit on exactly that head (else
    TableMoved, with this attempt's files deleted); staged: on the run's audit branch from that head."""
    base_sid = snapshot_id(table)  # pinned: the whole dedup reads this snapshot, whatever commits meanwhile
    hits = _published_hits(night, _base_keys(spark, table, base_sid))
    reasons = _reasons(night_keys, hits)
    appended = dm.rows - sum(reasons.values())
    t_dedup = time.perf_counter()
    paths = write_rows(_new_rows(spark, night, hits), appended, data_location(table, run_id), night.schema)
    t_write = time.perf_counter()
    summary = _summary(dm, delta_dir, table, base_sid, reasons, t_dedup - t0)
    summary["timings"] = {
        **dm.timings,
        "published_dedup": round(t_dedup - t0, 3),
        "write": round(t_write - t_dedup, 3),
    }
    try:
        committed = commit_version(table, paths, run_id, summary, mode="append", parent=base_sid, stage=stage)
    except TableMoved:
        for path in paths:  # nothing references them: delete now rather than leave orphans
            table.io.delete(path)
        raise
    log.info(
        "night %s -> table %s %s snapshot %s: %d of %d rows appended, rejected %s (base snapshot %s);"
        " dedup %.2f s,"
        " write %.2f s, commit %.2f s",
        run_id,
        table.name(),
        "staged" if stage else "main",
        committed.snapshot_id,
        appended,
        dm.rows,
        dict(reasons),
        base_sid,
        t_dedup - t0,
        t_write - t_dedup,
        time.perf_counter() - t_write,
    )
    return NightAppended(
        run_id,
        committed.snapshot_id,
        base_sid,
        dm.rows,
        appended,
        dict(sorted(reasons.items())),
        paths,
        committed.created,
        stage,
    )


def _already(snap, run_id: str, staged: bool = False) -> NightAppended:
    s = snap.summary
    stages = summary_value(s, "stages", [])
    last = stages[-1] if stages and stages[-1]["stage"] == STAGE else None
    base = summary_value(s, "base_snapshot_id")
    return NightAppended(
        run_id,
        snap.snapshot_id,
        int(base) if base is not None else None,
        last["rows_in"] if last else int(s.get("added-records", 0)),
        int(s.get("added-records", 0)),
        last["reasons"] if last else {},
        [],
        created=False,
        staged=staged,
    )


def _base_keys(spark, table, sid: int | None):
    """A DataFrame of the pinned snapshot's `id`, `text_hash` (only those columns are read), or None if
    empty."""
    from pyspark.sql.types import StringType, StructField, StructType

    if sid is None:
        return None
    cols = [c for c in KEYS if c in table.schema().column_names]
    paths = data_files(table, sid, columns=tuple(cols))
    if not paths:
        return None
    schema = StructType([StructField(c, StringType()) for c in cols])
    if all(p.startswith("file:") for p in paths):  # the JVM's parquet reader, column-pruned
        return spark.read.schema(schema).parquet(*paths).select(*cols)

    def read(part):  # a Python worker: the two columns of each file, through fsspec (s3 without hadoop-aws)
        import fsspec
        import pyarrow.parquet as pq

        for path in part:
            with fsspec.open(path, "rb") as f:
                t = pq.read_table(f, columns=[c for c in cols if c in pq.read_schema(f).names])
            yield from zip(
                *[t.column(c).to_pylist() if c in t.column_names else [None] * len(t) for c in cols]
            )

    rdd = spark.sparkContext.parallelize(
        paths, max(1, min(len(paths), spark.sparkContext.defaultParallelism))
    )
    return spark.createDataFrame(rdd.mapPartitions(read), schema)


def _published_hits(night, keys) -> dict[str, set[str]]:
    """Which of the night's ids and text hashes the table holds: {"id": ..., "text_hash": ...}. The night's
    keys (small) are broadcast into the scan of the table's (broadcast hash semi-joins: no shuffle, only hits
    return)."""
    from pyspark.sql import functions as F

    hits: dict[str, set[str]] = {c: set() for c in KEYS}
    if keys is None:
        return hits
    cols = [c for c in KEYS if c in keys.columns and c in night.columns]
    found = None
    for c in cols:
        side = (
            keys.select(F.col(c).alias("k"))
            .join(F.broadcast(night.select(F.col(c).alias("k"))), "k", "left_semi")
            .withColumn("key", F.lit(c))
        )
        found = side if found is None else found.unionByName(side)
    for row in found.collect() if found is not None else []:  # a set: no distinct (and its shuffle) needed
        hits[row["key"]].add(row["k"])
    return hits


def _reasons(night_keys, hits: dict[str, set[str]]) -> Counter:
    """Each night row's reason (an id hit wins over a text hit, so each row has one), counted."""
    import pyarrow as pa
    import pyarrow.compute as pc

    id_hit = pc.fill_null(pc.is_in(night_keys.column("id"), pa.array(sorted(hits["id"]), pa.string())), False)
    text_hit = pa.repeat(False, len(night_keys))
    if "text_hash" in night_keys.column_names:
        text_hit = pc.fill_null(
            pc.is_in(night_keys.column("text_hash"), pa.array(sorted(hits["text_hash"]), pa.string())), False
        )
    n_id = pc.sum(id_hit.cast(pa.int64())).as_py() or 0
    n_text = pc.sum(pc.and_(pc.invert(id_hit), text_hit).cast(pa.int64())).as_py() or 0
    return Counter({k: v for k, v in ((ID_PUBLISHED, n_id), (TEXT_PUBLISHED, n_text)) if v})


def _new_rows(spark, night, hits: dict[str, set[str]]):
    """The night minus its hits: broadcast hash anti-joins against the (small) hit sets."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    new = night
    for c in KEYS:
        if hits[c]:
            known = spark.createDataFrame(
                [(k,) for k in sorted(hits[c])], StructType([StructField(c, StringType())])
            )
            new = new.join(F.broadcast(known), c, "left_anti")
    return new.select(*night.columns)


def write_rows(new, rows: int, location: str, schema) -> list[str]:
    """The new rows as parquet under `location`, written by the workers (one file per partition, named by its
    index); their URIs.
    A night with no new row writes one empty file, so its run id is still committed (and not redone)."""
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    def write(batches):  # a worker: its partition's batches as one file (none for an empty partition)
        import itertools

        import fsspec
        import pyarrow as pa
        import pyarrow.parquet as pq

        batches = iter(batches)
        first = next(batches, None)
        if first is None:
            return
        from pyspark import TaskContext

        # named by partition, not at random (each attempt has its own folder already): the same night writes
        # files of the same names, so a mixture built on the table is reproducible (it hashes names + bytes)
        path, n = f"{location}/part-{TaskContext.get().partitionId():05d}.parquet", 0
        with fsspec.open(path, "wb") as out, pq.ParquetWriter(out, first.schema) as writer:
            for batch in itertools.chain([first], batches):
                writer.write_batch(batch)
                n += batch.num_rows
        yield pa.RecordBatch.from_pylist([{"path": path, "rows": n}])

    parts = max(1, math.ceil(rows / ROWS_PER_FILE))
    out = StructType([StructField("path", StringType()), StructField("rows", LongType())])
    written = [] if rows == 0 else new.coalesce(parts).mapInArrow(write, out).collect()
    if sum(r["rows"] for r in written) != rows:
        raise RuntimeError(
            f"night written to {location}: {sum(r['rows'] for r in written)} rows, expected {rows}"
        )
    paths = sorted(r["path"] for r in written)
    if not paths:  # Spark's empty-partition files carry no schema: write the night's own
        import fsspec
        import pyarrow.parquet as pq
        from pyspark.sql.pandas.types import to_arrow_schema

        paths = [f"{location}/part-empty.parquet"]
        with fsspec.open(paths[0], "wb") as f:
            pq.write_table(to_arrow_schema(schema).empty_table(), f)
    return paths


def _summary(
    dm: Manifest, delta_dir: Path, table, base_sid: int | None, reasons: Counter, seconds: float
) -> dict:
    """The snapshot's description: the night's manifest (its stages + published_dedup), base snapshot and
    rows."""
    n_dropped = sum(reasons.values())
    dedup = StageCounts(
        stage=STAGE,
        rows_in=dm.rows,
        rows_kept=dm.rows - n_dropped,
        rows_rejected=n_dropped,
        reasons=dict(sorted(reasons.items())),
        seconds=round(seconds, 3),
    )
    dedup.check()
    base_rows = int(table.metadata.snapshot_by_id(base_sid).summary["total-records"]) if base_sid else 0
    out = manifest_summary(dm)
    out.update(
        stages=[s.model_dump(exclude_none=True) for s in [*dm.stages, dedup]],
        rows=base_rows + dedup.rows_kept,
        rejected_rows=dm.rejected_rows + n_dropped,
        base_snapshot_id=base_sid,
        base_rows=base_rows,
        delta_version=dm.version,
        delta_path=str(delta_dir),
        delta_rows=dm.rows,
        appended_rows=dedup.rows_kept,
    )
    out.pop("base_version", None)
    return out
