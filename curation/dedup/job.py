"""Standalone near-dedup over a published dataset: `python -m curation dedup --input DIR --output DIR`.

Reads `data/*.parquet` of the input version (a dataset root's CURRENT, or a version folder), or plain
parquet/JSONL files through the ingest readers (curation.ingest.inputs), runs the NearDedup step, and
publishes OUTPUT/<run_id>/ with the kept documents (same columns as the input),
rejects (input columns + reject_stage/reject_reason/reject_detail), duplicates/ and a manifest whose
counts reconcile. In incremental mode (`near_dedup.index_dir`) the band index is published only after
the output version is.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from curation.contract import REJECT_COLUMNS, DatasetRoot, Manifest, StageCounts, config_hash, new_run_id
from curation.dedup.near import DUPLICATES_DIR, REJECT_REASON, NearDedup
from curation.dedup.near_config import NearDedupConfig
from curation.ingest.inputs import resolve_input
from curation.ingest.plain import input_frame
from curation.progress import SparkProgress

log = logging.getLogger(__name__)


@dataclass
class DedupResult:
    manifest: Manifest
    version_dir: Path


def run_near_dedup(
    input_path: str | Path,
    output: str | Path,
    cfg: NearDedupConfig,
    run_id: str | None = None,
    spark=None,
    dataset: str | None = None,
    progress_interval: float | None = None,
) -> DedupResult:
    """`input_path`: a dataset version/root or plain parquet/JSONL files, a folder or a glob
    (curation.ingest.inputs); plain files add an `ingest` stage before near_dedup (and its rejects)."""
    from curation.spark import get_spark

    spark = spark or get_spark()
    source = resolve_input(input_path, spark)
    run_id = run_id or new_run_id()
    t_start = time.perf_counter()

    step = NearDedup(cfg, run_id)
    progress = SparkProgress(spark, f"curation dedup {run_id}", progress_interval)
    try:
        with progress, DatasetRoot(output).building(run_id) as build:
            staging = build.staging
            inp = input_frame(spark, source, staging / "_work", progress=progress)
            df = inp.frame
            for col in ("id", "text"):
                if col not in df.columns:
                    raise ValueError(f"input {inp.inputs[0]} has no `{col}` column (columns: {df.columns})")
            data_cols = [c for c in df.columns if c not in (*REJECT_COLUMNS, "reject_detail")]
            df = df.select(*data_cols)
            progress.phase(step.name)
            step.bind(spark, staging, run_id)
            kept, rejected = step.apply(df)
            kept.write.mode("overwrite").parquet(str(staging / "data"))
            rejects = rejected.select(*data_cols, *REJECT_COLUMNS, "reject_detail")
            if inp.rejects is not None:
                rejects = rejects.unionByName(inp.rejects, allowMissingColumns=True)
            rejects.write.mode("overwrite").parquet(str(staging / "rejects"))
            extra = step.write_extra(staging)
            progress.phase("count")
            counts, rows, n_rejected, n_dups = _dedup_counts(spark, staging, step, inp, t_start)
            shutil.rmtree(staging / "_work", ignore_errors=True)
            cfg_json = cfg.model_dump(mode="json")
            manifest = build.manifest(
                dataset=dataset or f"{inp.dataset}_near_dedup",
                inputs=inp.inputs,
                config={"near_dedup": cfg_json},
                config_hash=config_hash(cfg_json),
                stages=counts,
                rows=rows,
                rejected_rows=n_rejected,
                columns=data_cols,
                timings={"total": round(time.perf_counter() - t_start, 3)},
                extra={**extra, "duplicates_rows": n_dups, **inp.extra},
            )
        step.commit()
    except BaseException:
        step.abort()
        raise
    log.info("published %s: %d kept, %d near duplicates removed", build.final, rows, n_dups)
    return DedupResult(manifest=manifest, version_dir=build.final)


def _dedup_counts(spark, staging: Path, step: NearDedup, inp, t_start: float):
    """(stages, rows kept, rows rejected, near duplicates), counted from what was written: the input's
    stages (plain files: ingest) then near_dedup, whose rejects must equal the duplicates dataset."""
    from pyspark.sql import functions as F

    rows = spark.read.parquet(str(staging / "data")).count()
    all_rejects = spark.read.parquet(str(staging / "rejects"))
    n_rejected = all_rejects.count()
    n_near = all_rejects.filter(F.col("reject_stage") == step.name).count()
    n_dups = spark.read.parquet(str(staging / DUPLICATES_DIR)).count()
    if n_dups != n_near:
        raise RuntimeError(f"duplicates dataset has {n_dups} rows but rejects has {n_near} near duplicates")
    near = StageCounts(
        stage=step.name,
        rows_in=rows + n_near,
        rows_kept=rows,
        rows_rejected=n_near,
        reasons={REJECT_REASON: n_near} if n_near else {},
        seconds=round(time.perf_counter() - t_start, 3),
    )
    if near.rows_in != step.stats["documents_in"]:
        raise RuntimeError(
            f"read {step.stats['documents_in']} documents but wrote {rows} kept + {n_near} near duplicates"
        )
    return [*inp.stages, near], rows, n_rejected, n_dups
