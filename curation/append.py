"""Append a curated delta (a run over new inputs only) onto a published corpus version, giving the next
whole-corpus version: what nightly_refresh publishes.

    next version = base version's documents (all of them, unchanged)
                 + the delta's kept documents, minus those the base already holds (stage `published_dedup`)

Why the base is never trimmed: the nightly's new documents are deduplicated against what is published
(near duplicates already in the delta: nightly_refresh's curate job runs near-dedup against the corpus's
band index, which ranks published documents first and never removes them, curation/dedup/near.py and
dags/lib/near_index.py; exact duplicates here), so a night only ever adds documents. A delta document whose `id` or
normalized `text_hash` is already in the base is rejected (reasons `id_already_published`,
`text_already_published`) instead of entering the corpus twice; the corpus gate checks both are unique.

No old data is copied: the base's parquet files are hard-linked into the new version (os.link; a copy
only where the filesystem refuses, e.g. across devices). Sharing inodes is safe because published files
are never modified in place (every writer builds a new staging folder), and deleting an old version
leaves the files of the versions linked from it intact. A file is rewritten only when its schema differs
from the union of base and delta columns (e.g. the first night scored with an edu model: older files
gain null edu columns), so that readers taking one file's footer as the schema see every column.

Manifest: the delta's stage counts plus `published_dedup`, `base_version`/`base_rows`, and
`rows = base_rows + kept` (Manifest.check enforces it); `rejected_rows` counts the delta's rejects only
(the base's rejects stay with the base version). Works on the driver with pyarrow: the delta's keys are
held in memory (a night's batch), the base is only streamed (its `id`/`text_hash` columns).
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.contract import (
    DatasetRoot,
    Manifest,
    StageCounts,
    iter_parquet_files,
    link_or_copy,
    resolve_version_dir,
)

log = logging.getLogger(__name__)

STAGE = "published_dedup"
ID_PUBLISHED = "id_already_published"
TEXT_PUBLISHED = "text_already_published"
REJECT_COLS = ("reject_stage", "reject_reason", "reject_detail")


def _rows(files: list[Path]) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def _schema(files: list[Path]) -> pa.Schema | None:
    schemas = [pq.read_schema(f) for f in files]
    if not schemas:
        return None
    return pa.unify_schemas([s.remove_metadata() for s in schemas], promote_options="default")


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Columns in `schema`'s order; missing ones as nulls."""
    cols = [table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
            for f in schema]
    return pa.Table.from_arrays(cols, schema=schema)


def _same_fields(path: Path, schema: pa.Schema) -> bool:
    have = pq.read_schema(path).remove_metadata()
    return {(f.name, f.type) for f in have} == {(f.name, f.type) for f in schema}


def _published_hits(base_files: list[Path], ids: set[str], hashes: set[str]) -> tuple[set[str], set[str]]:
    """Which of the delta's ids / text hashes the base already holds (base streamed column-wise)."""
    hit_ids: set[str] = set()
    hit_hashes: set[str] = set()
    for f in base_files:
        pf = pq.ParquetFile(f)
        cols = [c for c in ("id", "text_hash") if c in pf.schema_arrow.names]
        for batch in pf.iter_batches(columns=cols, batch_size=65_536):
            if "id" in cols:
                hit_ids.update(i for i in batch.column("id").to_pylist() if i in ids)
            if "text_hash" in cols and hashes:
                hit_hashes.update(h for h in batch.column("text_hash").to_pylist() if h in hashes)
    return hit_ids, hit_hashes


def append_version(delta: str | Path, base: str | Path | None, output: str | Path, version: str,
                   extra: dict | None = None) -> Path:
    """Publish `output/<version>` = `base` (a version folder or root; None = no corpus yet) + `delta`.

    `output` is a dataset root (nightly_refresh: `<corpus>/_candidates`, gated and then renamed into
    the corpus root). Rerunning with the same arguments rebuilds the same version (replaced atomically).
    `extra` is merged into the manifest's extra (nightly_refresh: the near-dedup band index it used).
    """
    t0 = time.perf_counter()
    delta_dir = resolve_version_dir(delta)
    dm = Manifest.read(delta_dir)
    base_dir = resolve_version_dir(base) if base is not None else None
    bm = Manifest.read(base_dir) if base_dir is not None else None
    delta_files = list(iter_parquet_files(delta_dir))
    base_files = list(iter_parquet_files(base_dir)) if base_dir is not None else []
    if bm is not None and _rows(base_files) != bm.rows:
        raise ValueError(f"base version {base_dir}: data/ holds {_rows(base_files)} rows, manifest says {bm.rows}")
    try:
        schemas = [s for s in (_schema(base_files), _schema(delta_files)) if s is not None]
        schema = pa.unify_schemas(schemas, promote_options="default") if schemas else None
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise ValueError(f"cannot append {delta_dir} to {base_dir}: column types differ ({e})") from e

    # the delta's keys (a night's batch: small) against the base's, streamed
    ids: set[str] = set()
    hashes: set[str] = set()
    for f in delta_files:
        keys = pq.read_table(f, columns=[c for c in ("id", "text_hash") if c in pq.read_schema(f).names])
        if "id" in keys.column_names:
            ids.update(keys.column("id").to_pylist())
        if "text_hash" in keys.column_names:
            hashes.update(h for h in keys.column("text_hash").to_pylist() if h is not None)
    hit_ids, hit_hashes = _published_hits(base_files, ids, hashes) if base_files else (set(), set())

    # own leftovers only: what else sits in `output` (other candidates) is not this run's to remove
    with DatasetRoot(output).building(version, clean="own") as build:
        staging = build.staging
        (staging / "data").mkdir()
        (staging / "rejects").mkdir()
        how: Counter[str] = Counter()
        names: set[str] = set()

        def target(part: str, name: str, origin: str) -> Path:
            # part files of different runs have unique (uuid) names; prefix only on a clash
            if name in names:
                name = f"{origin}-{name}"
            names.add(name)
            return staging / part / name

        for f in base_files:  # the published corpus, carried over
            dst = target("data", f.name, bm.version)
            if _same_fields(f, schema):
                how["base_" + link_or_copy(f, dst)] += 1
            else:
                pq.write_table(_conform(pq.read_table(f), schema), dst)
                how["base_rewritten"] += 1

        dropped_tables, reasons = [], Counter()
        kept = 0
        for f in delta_files:  # the new documents, minus what the base already holds
            dst = target("data", f.name, dm.version)
            table = None
            if hit_ids or hit_hashes:
                table = pq.read_table(f)
                id_hit = pc.is_in(table.column("id"), pa.array(sorted(hit_ids), pa.string()))
                text_hit = pc.is_in(table.column("text_hash"), pa.array(sorted(hit_hashes), pa.string())) \
                    if "text_hash" in table.column_names else pa.repeat(False, len(table))
                id_hit = pc.fill_null(id_hit, False)
                text_hit = pc.and_(pc.invert(id_hit), pc.fill_null(text_hit, False))
                drop = pc.or_(id_hit, text_hit)
                if pc.any(drop).as_py():
                    out = table.filter(drop)
                    reason = pc.if_else(pc.filter(id_hit, drop), ID_PUBLISHED, TEXT_PUBLISHED)
                    reasons.update(reason.to_pylist())
                    dropped_tables.append(out.append_column("reject_stage", pa.repeat(STAGE, len(out)).cast(pa.string()))
                                          .append_column("reject_reason", reason.cast(pa.string()))
                                          .append_column("reject_detail", pa.repeat(
                                              f"already in published version {bm.version}", len(out)).cast(pa.string())))
                    table = table.filter(pc.invert(drop))
                    kept += len(table)
                    if len(table):
                        pq.write_table(_conform(table, schema), dst)
                    how["delta_filtered"] += 1
                    continue
            kept += pq.ParquetFile(f).metadata.num_rows
            if _same_fields(f, schema):
                how["delta_" + link_or_copy(f, dst)] += 1
            else:
                pq.write_table(_conform(table if table is not None else pq.read_table(f), schema), dst)
                how["delta_rewritten"] += 1

        for f in iter_parquet_files(delta_dir, "rejects"):  # the delta's own rejects (immutable: link)
            link_or_copy(f, target("rejects", f.name, dm.version))
        n_dropped = sum(reasons.values())
        if dropped_tables:
            rejects = pa.concat_tables(dropped_tables, promote_options="permissive")
            pq.write_table(rejects, staging / "rejects" / f"part-{STAGE}-{version}.parquet")

        delta_kept = dm.stages[-1].rows_kept if dm.stages else dm.rows
        stages = [*dm.stages, StageCounts(stage=STAGE, rows_in=delta_kept, rows_kept=delta_kept - n_dropped,
                                          rows_rejected=n_dropped, reasons=dict(sorted(reasons.items())),
                                          seconds=round(time.perf_counter() - t0, 3))]
        rows = _rows(list(iter_parquet_files(staging)))
        manifest = build.manifest(
            dataset=dm.dataset,
            inputs=dm.inputs, config=dm.config, config_hash=dm.config_hash, stages=stages, rows=rows,
            rejected_rows=dm.rejected_rows + n_dropped, columns=schema.names if schema else dm.columns,
            timings={**dm.timings, "append": round(time.perf_counter() - t0, 3)},
            base_version=bm.version if bm else None, base_rows=bm.rows if bm else 0,
            extra={**dm.extra, "delta": {"version": dm.version, "path": str(delta_dir), "rows_in": dm.stages[0].rows_in
                                         if dm.stages else dm.rows, "rows_kept": delta_kept - n_dropped},
                   "files": dict(sorted(how.items())), **(extra or {})})
        if rows != manifest.base_rows + kept:
            raise RuntimeError(f"appended version holds {rows} rows, expected {manifest.base_rows} + {kept}")
    log.info("version %s = base %s (%d rows) + %d new of delta %s (%d already published); files %s",
             version, manifest.base_version, manifest.base_rows, kept, dm.version, n_dropped, dict(how))
    return build.final
