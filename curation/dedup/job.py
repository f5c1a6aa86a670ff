"""Standalone near-dedup over a published dataset: `python -m curation dedup --input DIR --output DIR`.

Reads `data/*.parquet` of the input version (a dataset root's CURRENT, or a version folder), runs the
NearDedup step, and publishes OUTPUT/<run_id>/ with the kept documents (same columns as the input),
rejects (input columns + reject_stage/reject_reason/reject_detail), duplicates/ and a manifest whose
counts reconcile. In incremental mode (`near_dedup.index_dir`) the band index is published only after
the output version is.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from curation.contract import (
    REJECT_COLUMNS,
    DatasetRoot,
    Manifest,
    StageCounts,
    config_hash,
    iter_parquet_files,
    new_run_id,
    resolve_version_dir,
)
from curation.dedup.near import DUPLICATES_DIR, REJECT_REASON, NearDedup
from curation.dedup.near_config import NearDedupConfig

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
) -> DedupResult:
    from curation.spark import get_spark

    version_dir = resolve_version_dir(input_path)
    if not any(iter_parquet_files(version_dir)):
        raise FileNotFoundError(f"input {version_dir} has no data/*.parquet")
    in_manifest = Manifest.read(version_dir)
    run_id = run_id or new_run_id()
    spark = spark or get_spark()
    t_start = time.perf_counter()

    step = NearDedup(cfg, run_id)
    try:
        with DatasetRoot(output).building(run_id) as build:
            staging = build.staging
            df = spark.read.parquet(str(version_dir / "data"))
            for col in ("id", "text"):
                if col not in df.columns:
                    raise ValueError(
                        f"input {version_dir}/data has no `{col}` column (columns: {df.columns})"
                    )
            data_cols = [c for c in df.columns if c not in (*REJECT_COLUMNS, "reject_detail")]
            df = df.select(*data_cols)
            step.bind(spark, staging, run_id)
            kept, rejected = step.apply(df)
            kept.write.mode("overwrite").parquet(str(staging / "data"))
            rejected.select(*data_cols, *REJECT_COLUMNS, "reject_detail").write.mode("overwrite").parquet(
                str(staging / "rejects")
            )
            extra = step.write_extra(staging)

            rows = spark.read.parquet(str(staging / "data")).count()
            n_rejected = spark.read.parquet(str(staging / "rejects")).count()
            n_dups = spark.read.parquet(str(staging / DUPLICATES_DIR)).count()
            if n_dups != n_rejected:
                raise RuntimeError(f"duplicates dataset has {n_dups} rows but rejects has {n_rejected}")
            counts = [
                StageCounts(
                    stage=step.name,
                    rows_in=rows + n_rejected,
                    rows_kept=rows,
                    rows_rejected=n_rejected,
                    reasons={REJECT_REASON: n_rejected} if n_rejected else {},
                    seconds=round(time.perf_counter() - t_start, 3),
                )
            ]
            if counts[0].rows_in != step.stats["documents_in"]:
                raise RuntimeError(
                    f"read {step.stats['documents_in']} documents but wrote {rows} kept"
                    f" + {n_rejected} rejected"
                )
            cfg_json = cfg.model_dump(mode="json")
            manifest = build.manifest(
                dataset=dataset or f"{in_manifest.dataset}_near_dedup",
                inputs=[str(version_dir)],
                config={"near_dedup": cfg_json},
                config_hash=config_hash(cfg_json),
                stages=counts,
                rows=rows,
                rejected_rows=n_rejected,
                columns=data_cols,
                timings={"total": round(time.perf_counter() - t_start, 3)},
                extra={**extra, "duplicates_rows": n_dups, "input_version": in_manifest.version},
            )
        step.commit()
    except BaseException:
        step.abort()
        raise
    log.info("published %s: %d kept, %d near duplicates removed", build.final, rows, n_rejected)
    return DedupResult(manifest=manifest, version_dir=build.final)
