"""Append a curated delta (a run over new inputs only) onto a published corpus version, giving the next
whole-corpus version: what nightly_refresh publishes.

    next version = base version's documents (all of them, unchanged)
                 + the delta's kept documents, minus those the base already holds (stage `published_dedup`)

Why the base is never trimmed: the nightly's new documents are deduplicated against what is published
(near duplicates already in the delta: nightly_refresh's curate job runs near-dedup against the corpus's
band index, which ranks published documents first and never removes them, curation/dedup/near.py and
dags/lib/near_index.py; exact duplicates here), so a night only ever adds documents. A delta document whose
`id` or normalized `text_hash` is already in the base is rejected (reasons `id_already_published`,
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
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.contract import (
    DatasetRoot,
    Manifest,
    StageCounts,
    VersionBuild,
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
    cols = [
        table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
        for f in schema
    ]
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


@dataclass
class _Inputs:
    """The two versions an append reads, checked: their folders, manifests, data files and the union
    schema."""

    delta_dir: Path
    dm: Manifest
    base_dir: Path | None
    bm: Manifest | None
    delta_files: list[Path]
    base_files: list[Path]
    schema: pa.Schema | None


def _read_inputs(delta: str | Path, base: str | Path | None) -> _Inputs:
    delta_dir = resolve_version_dir(delta)
    dm = Manifest.read(delta_dir)
    base_dir = resolve_version_dir(base) if base is not None else None
    bm = Manifest.read(base_dir) if base_dir is not None else None
    delta_files = list(iter_parquet_files(delta_dir))
    base_files = list(iter_parquet_files(base_dir)) if base_dir is not None else []
    if bm is not None and _rows(base_files) != bm.rows:
        raise ValueError(
            f"base version {base_dir}: data/ holds {_rows(base_files)} rows, manifest says {bm.rows}"
        )
    try:
        schemas = [s for s in (_schema(base_files), _schema(delta_files)) if s is not None]
        schema = pa.unify_schemas(schemas, promote_options="default") if schemas else None
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise ValueError(f"cannot append {delta_dir} to {base_dir}: column types differ ({e})") from e
    return _Inputs(delta_dir, dm, base_dir, bm, delta_files, base_files, schema)


def _delta_keys(delta_files: list[Path]) -> tuple[set[str], set[str]]:
    """The delta's ids and text hashes (a night's batch: small enough to hold)."""
    ids: set[str] = set()
    hashes: set[str] = set()
    for f in delta_files:
        keys = pq.read_table(f, columns=[c for c in ("id", "text_hash") if c in pq.read_schema(f).names])
        if "id" in keys.column_names:
            ids.update(keys.column("id").to_pylist())
        if "text_hash" in keys.column_names:
            hashes.update(h for h in keys.column("text_hash").to_pylist() if h is not None)
    return ids, hashes


class _Files:
    """The staging folder's data/ and rejects/ files, and how each got there (the manifest's `files`)."""

    def __init__(self, staging: Path, schema: pa.Schema | None):
        self.staging, self.schema = staging, schema
        self.how: Counter[str] = Counter()
        self._names: set[str] = set()
        (staging / "data").mkdir()
        (staging / "rejects").mkdir()

    def target(self, part: str, name: str, origin: str) -> Path:
        # part files of different runs have unique (uuid) names; prefix only on a clash
        if name in self._names:
            name = f"{origin}-{name}"
        self._names.add(name)
        return self.staging / part / name

    def carry(self, f: Path, dst: Path, side: str, table: pa.Table | None = None) -> None:
        """Hard-link an unchanged file; rewrite it to the union schema when its columns differ."""
        if _same_fields(f, self.schema):
            self.how[f"{side}_" + link_or_copy(f, dst)] += 1
        else:
            pq.write_table(_conform(table if table is not None else pq.read_table(f), self.schema), dst)
            self.how[f"{side}_rewritten"] += 1


def _split_published(
    table: pa.Table, hit_ids: set[str], hit_hashes: set[str], base_version: str
) -> tuple[pa.Table, pa.Table | None]:
    """(rows to keep, rows the base already holds with their reject columns, or None when there are none).
    An id hit wins over a text hit, so each dropped row has one reason."""
    id_hit = pc.fill_null(pc.is_in(table.column("id"), pa.array(sorted(hit_ids), pa.string())), False)
    text_hit = (
        pc.is_in(table.column("text_hash"), pa.array(sorted(hit_hashes), pa.string()))
        if "text_hash" in table.column_names
        else pa.repeat(False, len(table))
    )
    text_hit = pc.and_(pc.invert(id_hit), pc.fill_null(text_hit, False))
    drop = pc.or_(id_hit, text_hit)
    if not pc.any(drop).as_py():
        return table, None
    out = table.filter(drop)
    reason = pc.if_else(pc.filter(id_hit, drop), ID_PUBLISHED, TEXT_PUBLISHED)
    dropped = (
        out.append_column("reject_stage", pa.repeat(STAGE, len(out)).cast(pa.string()))
        .append_column("reject_reason", reason.cast(pa.string()))
        .append_column(
            "reject_detail",
            pa.repeat(f"already in published version {base_version}", len(out)).cast(pa.string()),
        )
    )
    return table.filter(pc.invert(drop)), dropped


def _append_delta(
    files: _Files, inp: _Inputs, hit_ids: set[str], hit_hashes: set[str]
) -> tuple[int, Counter[str], list[pa.Table]]:
    """The delta's documents minus what the base already holds: (rows kept, reasons, dropped tables)."""
    dropped_tables: list[pa.Table] = []
    reasons: Counter[str] = Counter()
    kept = 0
    for f in inp.delta_files:
        dst = files.target("data", f.name, inp.dm.version)
        table = None
        if hit_ids or hit_hashes:
            table = pq.read_table(f)
            table, dropped = _split_published(table, hit_ids, hit_hashes, inp.bm.version)
            if dropped is not None:
                reasons.update(dropped.column("reject_reason").to_pylist())
                dropped_tables.append(dropped)
                kept += len(table)
                if len(table):
                    pq.write_table(_conform(table, inp.schema), dst)
                files.how["delta_filtered"] += 1
                continue
        kept += pq.ParquetFile(f).metadata.num_rows
        files.carry(f, dst, "delta", table)
    return kept, reasons, dropped_tables


def append_version(
    delta: str | Path, base: str | Path | None, output: str | Path, version: str, extra: dict | None = None
) -> Path:
    """Publish `output/<version>` = `base` (a version folder or root; None = no corpus yet) + `delta`.

    `output` is a dataset root (nightly_refresh: `<corpus>/_candidates`, gated and then renamed into
    the corpus root). Rerunning with the same arguments rebuilds the same version (replaced atomically).
    `extra` is merged into the manifest's extra (nightly_refresh: the near-dedup band index it used).
    """
    t0 = time.perf_counter()
    inp = _read_inputs(delta, base)
    dm, bm = inp.dm, inp.bm
    # the delta's keys (small) against the base's, streamed
    ids, hashes = _delta_keys(inp.delta_files)
    hit_ids, hit_hashes = _published_hits(inp.base_files, ids, hashes) if inp.base_files else (set(), set())

    # own leftovers only: what else sits in `output` (other candidates) is not this run's to remove
    with DatasetRoot(output).building(version, clean="own") as build:
        files = _Files(build.staging, inp.schema)
        for f in inp.base_files:  # the published corpus, carried over
            files.carry(f, files.target("data", f.name, bm.version), "base")
        kept, reasons, dropped_tables = _append_delta(files, inp, hit_ids, hit_hashes)
        for f in iter_parquet_files(inp.delta_dir, "rejects"):  # the delta's own rejects (immutable: link)
            link_or_copy(f, files.target("rejects", f.name, dm.version))
        if dropped_tables:
            rejects = pa.concat_tables(dropped_tables, promote_options="permissive")
            pq.write_table(rejects, build.staging / "rejects" / f"part-{STAGE}-{version}.parquet")
        n_dropped = sum(reasons.values())
        manifest = _describe(build, inp, reasons, files.how, t0, extra)
        if manifest.rows != manifest.base_rows + kept:
            raise RuntimeError(
                f"appended version holds {manifest.rows} rows, expected {manifest.base_rows} + {kept}"
            )
    log.info(
        "version %s = base %s (%d rows) + %d new of delta %s (%d already published); files %s",
        version,
        manifest.base_version,
        manifest.base_rows,
        kept,
        dm.version,
        n_dropped,
        dict(files.how),
    )
    return build.final


def _describe(
    build: VersionBuild, inp: _Inputs, reasons: Counter[str], how: Counter[str], t0: float, extra: dict | None
) -> Manifest:
    """The appended version's manifest: the delta's stages plus `published_dedup`, rows counted on disk."""
    dm, bm = inp.dm, inp.bm
    n_dropped = sum(reasons.values())
    delta_kept = dm.stages[-1].rows_kept if dm.stages else dm.rows
    stages = [
        *dm.stages,
        StageCounts(
            stage=STAGE,
            rows_in=delta_kept,
            rows_kept=delta_kept - n_dropped,
            rows_rejected=n_dropped,
            reasons=dict(sorted(reasons.items())),
            seconds=round(time.perf_counter() - t0, 3),
        ),
    ]
    return build.manifest(
        dataset=dm.dataset,
        inputs=dm.inputs,
        config=dm.config,
        config_hash=dm.config_hash,
        stages=stages,
        rows=_rows(list(iter_parquet_files(build.staging))),
        rejected_rows=dm.rejected_rows + n_dropped,
        columns=inp.schema.names if inp.schema else dm.columns,
        timings={**dm.timings, "append": round(time.perf_counter() - t0, 3)},
        base_version=bm.version if bm else None,
        base_rows=bm.rows if bm else 0,
        extra={
            **dm.extra,
            "delta": {
                "version": dm.version,
                "path": str(inp.delta_dir),
                "rows_in": dm.stages[0].rows_in if dm.stages else dm.rows,
                "rows_kept": delta_kept - n_dropped,
            },
            "files": dict(sorted(how.items())),
            **(extra or {}),
        },
    )
