"""The near-dedup band index as an append-only Iceberg table (issue 15): the alternative to the folder index
of curation/dedup/band_index.py, selected by `near_dedup.index_table` (catalog: the environment's,
curation/tables/catalog.py).

One row per indexed document, one table:

    id        string
    bands     list<int64>   the document's LSH band keys, position = band (what `band_rows` explodes)
    shingles  list<int64>   its distinct shingle hashes; null when the index is kept without verification
    seq       int64         the night that indexed it (base snapshot's sequence number + 1): orders entries

One table rather than a band table plus a shingles table: a night is ONE atomic snapshot (pyiceberg has no
multi-table commit, and an index whose bands landed without their shingles would verify nothing), and
parquet is columnar, so a reader of the bands never reads the shingles. One row per document rather than
one per (document, band): the id is stored once instead of `bands` times, and Spark explodes the keys on
read. Unpartitioned: a 5k-document night brings ~100k band keys, which hit every bucket of any band or key
partitioning, so partition pruning could not skip a file; the semi-join on the night's keys is the pruning.

A night appends only its kept documents, as one APPEND snapshot of the night's run id (`commit_version`:
idempotent per run id, committed only on the snapshot the night deduplicated against). The night reads the
table at a pinned snapshot (`near_dedup.index_table_ref`, a run id or snapshot id: the one describing the
base corpus version; default the current one; a retried run reads the parent of its own snapshot; a
compaction committed on top of the pinned snapshot holds the same rows, so the night reads and commits on it),
only the columns it needs, in Spark.

Re-submitted ids: the table keeps every entry (append-only). Only a re-crawled id with new text that
survives near-dedup gets a second entry (`append` then keeps the published text, see the "Known imprecision"
note in dags/lib/near_index.py). Its bands all take part in the candidate search, a superset of either
entry's candidates; verification uses the published document's shingle set (the oldest entry, lowest
`seq`: `append` always keeps the first published text), so a night's document is removed only for being
near a text the corpus holds. More candidates never lose a published document: old documents rank first
and are never removed.

Commit timing: with `index_commit: with_output` the step commits after the job's output is published (as the
folder index publishes). With `deferred` the job only writes the data files and records them in its
manifest (`near_dedup.index_commit`); `commit_staged` commits them later (the DAGs' publish, after the
gate). A run that never commits leaves the table unchanged; its files are orphans for `tables
remove-orphans`. Compaction (`tables compact`), expiry and rollback are the tables' own maintenance.

Rebuild: `build_from_corpus` indexes every document of a published corpus version as one OVERWRITE snapshot
tagged with the run id it is given (committed at once: it describes a corpus version already live). A night
planned on a table that does not describe its base corpus version (`near_dedup.index_table_rebuild_from`)
runs it first, inside the night's job, and deduplicates against the rebuilt snapshot.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow as pa

from curation.dedup.band_index import INDEX_DATASET, LoadedIndex, params_dict
from curation.dedup.minhash import LshParams, corpus_signatures

log = logging.getLogger(__name__)

#: Table property: the LSH parameters every row was computed with (checked at load).
LSH_PROPERTY = "phi.near-dedup.lsh"
#: Table property: "true" when rows carry shingle sets (verification possible).
SHINGLES_PROPERTY = "phi.near-dedup.shingles"
ROW_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("bands", pa.list_(pa.int64())),
        pa.field("shingles", pa.list_(pa.int64())),
        pa.field("seq", pa.int64()),
    ]
)


class BandTable:
    """Same driver interface as BandIndex (load / stage / publish / abort / build_from_corpus), but a night
    stages only its kept documents' rows (`append_only`)."""

    append_only = True

    def __init__(
        self,
        name: str,
        params: LshParams,
        ref: str | None = None,
        deferred: bool = False,
        warehouse=None,
        rebuild_from: str | Path | None = None,
    ):
        from curation.tables.catalog import Warehouse

        if rebuild_from is not None and ref is None:
            raise ValueError(f"band index table {name}: a rebuild needs the run id to commit it as (ref)")
        self.name, self.params, self.ref, self.deferred = name, params, ref, deferred
        self.rebuild_from = rebuild_from
        self.warehouse = warehouse or Warehouse()
        self._staged: dict | None = None  # written by `stage`, committed by `publish` (or commit_staged)

    # ---- reading ---------------------------------------------------------------------------------
    def base_snapshot(self, table, run_id: str) -> int | None:
        """The snapshot a run deduplicates against: the parent of its own snapshot when the run is already
        committed (a retry computes the same night again), else `ref` (default: the current snapshot)."""
        from curation.tables.commit import snapshot_for_run
        from curation.tables.read import snapshot_id

        done = snapshot_for_run(table, run_id)
        if done is not None and done.summary.operation.value == "append":
            return done.parent_snapshot_id
        return _past_compactions(table, snapshot_id(table, self.ref))

    def load(self, spark, run_id: str, need_shingles: bool) -> LoadedIndex:
        """The index at the pinned snapshot: bands (id, band, key) exploded from `bands`, and (with
        verification) (id, shingles, seq); one row per entry, so an id may appear more than once."""
        from pyspark.sql import functions as F

        if self.rebuild_from is not None:
            self.build_from_corpus(spark, self.rebuild_from, self.ref, need_shingles)
        table = self._table(create=False)
        sid = None if table is None else self.base_snapshot(table, run_id)
        if sid is None:
            log.info("band index table %s is empty: first incremental run", self.name)
            return LoadedIndex(None, None, None)
        self._check(table, need_shingles)
        rows = _read(spark, table, sid, ("id", "bands", "seq", *(("shingles",) if need_shingles else ())))
        bands = rows.select("id", F.posexplode("bands").alias("band", "key"))
        shingles = rows.select("id", "shingles", "seq") if need_shingles else None
        log.info("band index table %s: snapshot %s", self.name, sid)
        return LoadedIndex(str(sid), bands, shingles)

    def _check(self, table, need_shingles: bool) -> None:
        props = table.properties
        stored = json.loads(props[LSH_PROPERTY]) if LSH_PROPERTY in props else None
        wanted = params_dict(self.params)
        if stored != wanted:
            raise ValueError(
                f"band index table {self.name}: built with LSH parameters {stored}, this run uses {wanted};"
                f" rebuild the index or use the same near_dedup settings"
            )
        has = props.get(SHINGLES_PROPERTY) == "true"
        if has != need_shingles:
            raise ValueError(
                f"band index table {self.name}: rows {'carry' if has else 'have no'} shingle sets but"
                f" verification is {'on' if need_shingles else 'off'} (its appended rows would"
                f" {'lack them' if has else 'not match'}); rebuild it or set near_dedup.verify: {has}"
            )

    def _table(self, create: bool, with_shingles: bool = False, rebuild: bool = False):
        """The index table (None if missing and not `create`); a created or rebuilt one records the LSH
        parameters and whether rows carry shingles."""
        if not create:
            return self.warehouse.table(self.name) if self.warehouse.exists(self.name) else None
        table = self.warehouse.ensure(self.name, ROW_SCHEMA, writer="near-dedup band index")
        want = {
            LSH_PROPERTY: json.dumps(params_dict(self.params)),
            SHINGLES_PROPERTY: str(with_shingles).lower(),
        }
        if table.current_snapshot() is None or rebuild:
            if any(table.properties.get(k) != v for k, v in want.items()):
                with table.transaction() as tx:
                    tx.set_properties(**want)
                table.refresh()
        else:
            self._check(table, with_shingles)
        return table

    # ---- writing ---------------------------------------------------------------------------------
    def stage(self, spark, kept, run_id: str, parent: str | None, with_shingles: bool) -> dict:
        """Write the rows of `kept` (signature rows of the night's kept documents: id, bands, shingles)
        under the table's data/<run_id>/<attempt>/; returns the staged commit (also kept for `publish`)."""
        from curation.tables.commit import data_location

        table = self._table(create=True, with_shingles=with_shingles)
        parent_sid = int(parent) if parent is not None else None
        paths, rows = _write_rows(spark, table, kept, parent_sid, data_location(table, run_id))
        self._staged = {
            "table": self.warehouse.identifier(self.name),
            "run_id": run_id,
            "parent_snapshot_id": parent_sid,
            "files": paths,
            "documents": rows,
            "shingles": with_shingles,
            "mode": "append",
        }
        return self._staged

    def publish(self) -> int | None:
        """Commit what `stage` wrote (unless deferred: then the manifest's record is committed by
        `commit_staged` later). Returns the snapshot id."""
        if self._staged is None or self.deferred:
            if self._staged is not None:
                log.info(
                    "band index table %s: run %s staged, commit deferred", self.name, self._staged["run_id"]
                )
            return None
        staged, self._staged = self._staged, None
        return commit_staged(staged, self.warehouse)

    def abort(self) -> None:
        """The run failed: its staged files are referenced by nothing, delete them now."""
        if self._staged is not None:
            table = self.warehouse.table(self.name)
            for path in self._staged["files"]:
                table.io.delete(path)
            self._staged = None

    def build_from_corpus(
        self, spark, corpus_version_dir: str | Path, run_id: str, with_shingles: bool
    ) -> int:
        """Index every document of a published corpus version (a version folder or a table version
        `iceberg:<table>@<ref>`) as one OVERWRITE snapshot tagged `run_id` (idempotent: a run id already
        committed is not rebuilt). Returns its snapshot id."""
        from pyspark.sql import functions as F

        from curation.tables.commit import commit_version, data_location, snapshot_for_run

        table = self._table(create=True, with_shingles=with_shingles, rebuild=True)
        done = snapshot_for_run(table, run_id)
        if done is not None:
            return done.snapshot_id
        sigs = corpus_signatures(spark, corpus_version_dir, self.params, with_shingles)
        kept = sigs.where(F.col("n_shingles") > 0)
        paths, rows = _write_rows(spark, table, kept, None, data_location(table, run_id))
        log.warning(
            "band index table %s: rebuilt from %s (%d documents)", self.name, corpus_version_dir, rows
        )
        summary = _summary(self.params, None, rows, with_shingles) | {"rebuilt_from": str(corpus_version_dir)}
        return commit_version(table, paths, run_id, summary, mode="overwrite").snapshot_id


def commit_staged(staged: dict, warehouse=None) -> int:
    """Commit a staged night (BandTable.stage's record, or a manifest's `near_dedup.index_commit`) as one
    APPEND snapshot of its run id, only on the snapshot it was deduplicated against or a compaction of it
    (`TableMoved` otherwise). A run id already committed is a no-op and its freshly staged files are
    deleted."""
    from curation.tables.catalog import Warehouse
    from curation.tables.commit import commit_version

    warehouse = warehouse or Warehouse()
    table = warehouse.table(staged["table"])
    params = json.loads(table.properties[LSH_PROPERTY])
    shingles = staged.get("shingles", table.properties.get(SHINGLES_PROPERTY) == "true")
    summary = _summary(params, staged["parent_snapshot_id"], staged["documents"], shingles)
    # a compaction committed since the night read its parent holds the same rows: commit on top of it
    parent = _past_compactions(table, staged["parent_snapshot_id"])
    done = commit_version(table, staged["files"], staged["run_id"], summary, mode="append", parent=parent)
    if not done.created:  # a retried run's fresh files (a promote retried with one record keeps its own)
        from curation.tables.read import data_files

        committed = set(data_files(table, done.snapshot_id))
        for path in set(staged["files"]) - committed:
            table.io.delete(path)
    log.info(
        "band index table %s: run %s -> snapshot %s", staged["table"], staged["run_id"], done.snapshot_id
    )
    return done.snapshot_id


def base_ref(
    table, run_id: str, params: LshParams, verify: bool, rebuilt_from: str | None = None
) -> tuple[str | None, str | None]:
    """Which version of `table` a night on corpus version `run_id` reads: `(ref, None)` when the table's
    head (past compactions) describes that corpus version (its snapshot of `run_id`, or a rebuild from
    `rebuilt_from` that an earlier attempt committed) with the night's LSH parameters and with shingle sets
    iff `verify`, as its commit recorded them (so a rebuild that died between setting the table's properties
    and committing its rows is caught); else `(None, why)`."""
    from curation.tables.compact import described_snapshot
    from curation.tables.summary import RUN_ID, summary_value

    name = ".".join(table.name())
    head = table.current_snapshot()
    if head is None:
        return None, f"the band index table {name} has no snapshot yet"
    described = described_snapshot(table, head)
    s, run = described.summary, described.summary.get(RUN_ID)
    rebuild = rebuilt_from is not None and summary_value(s, "rebuilt_from") == rebuilt_from
    if run != run_id and not rebuild:
        return None, (
            f"the band index table {name}'s head is snapshot {head.snapshot_id} (run {run}), which does not"
            f" describe corpus version {run_id}"
        )
    stored = summary_value(s, "lsh")
    if stored != params_dict(params):
        return None, (
            f"the band index table {name} was built with LSH parameters {stored}, this run uses"
            f" {params_dict(params)}"
        )
    has = summary_value(s, "shingles", table.properties.get(SHINGLES_PROPERTY) == "true")
    if has != verify:
        rows = "carry no shingle sets (built with verify off)" if verify else "carry shingle sets"
        on_off = "on" if verify else "off"
        return None, f"the band index table {name}'s rows {rows} but verification is {on_off}"
    return run, None


def _past_compactions(table, sid: int | None) -> int | None:
    """The head when every snapshot after `sid` is a compaction (same rows, other files: reading and
    committing on the head is the same night), else `sid`."""
    from curation.tables.commit import ancestors
    from curation.tables.compact import MAINTENANCE

    head = table.current_snapshot()
    for snap in ancestors(table, head):
        if snap.snapshot_id == sid:
            return head.snapshot_id
        if snap.summary[MAINTENANCE] != "compact":
            break
    return sid


def published_entries(shingles):
    """(id, shingles, seq) rows, several per re-submitted id -> one per id, the published document's (the
    oldest entry); run on the few candidate ids only (a shuffle of those rows, not of the index)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    first = F.row_number().over(Window.partitionBy("id").orderBy(F.col("seq").asc()))
    return shingles.withColumn("_n", first).where(F.col("_n") == 1).select("id", "shingles")


def _summary(params, parent: int | None, documents: int, shingles: bool) -> dict:
    """What a commit records about its rows: checked by `base_ref` (the table's properties can run ahead of
    its rows when a rebuild dies before its commit)."""
    lsh = params if isinstance(params, dict) else params_dict(params)
    return {
        "dataset": INDEX_DATASET,
        "lsh": lsh,
        "shingles": shingles,
        "base_snapshot_id": parent,
        "documents": documents,
    }


def _write_rows(spark, table, kept, parent: int | None, location: str) -> tuple[list[str], int]:
    """`kept` signature rows as index rows (seq = the parent's sequence number + 1) written under `location`
    by the workers; (file URIs, rows)."""
    from pyspark.sql import functions as F

    from curation.tables.nightly import write_rows

    parent_snap = table.metadata.snapshot_by_id(parent) if parent is not None else None
    seq = (parent_snap.sequence_number or 0) + 1 if parent_snap is not None else 1
    rows = kept.select(
        F.col("id").cast("string"),
        F.col("bands").cast("array<bigint>"),
        F.col("shingles").cast("array<bigint>"),
        F.lit(seq).cast("bigint").alias("seq"),
    )
    count = rows.count()
    return write_rows(rows, count, location, rows.schema), count


def _read(spark, table, sid: int, columns: tuple[str, ...]):
    """Columns `columns` of snapshot `sid`'s data files (scan planning: files no snapshot references are
    never read), as a DataFrame: the JVM's parquet reader on a local warehouse, Python workers through
    fsspec elsewhere (s3:// without hadoop-aws)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    from curation.tables.read import data_files

    schema = from_arrow_schema(pa.schema([ROW_SCHEMA.field(c) for c in columns]))
    paths = data_files(table, sid, columns=columns)
    if all(p.startswith("file:") for p in paths):
        return spark.read.schema(schema).parquet(*paths).select(*columns)

    def read(part):
        import fsspec
        import pyarrow.parquet as pq

        for path in part:
            with fsspec.open(path, "rb") as f:
                yield from pq.read_table(f, columns=list(columns)).to_pylist()

    rdd = spark.sparkContext.parallelize(
        paths, max(1, min(len(paths), spark.sparkContext.defaultParallelism))
    )
    return spark.createDataFrame(rdd.mapPartitions(read), schema)
