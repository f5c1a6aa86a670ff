"""Merge the shard versions of one `synthesis run` into one candidate version of the dataset contract, as a
Spark job (`python -m synthesis merge`, run by the synthetic_data DAG's merge task).

Each shard near-dedups only its own rows, so the merge runs one more near-dedup over the merged set: a pair
split across two shards is caught there (stage `near_dedup_cross_shard`, reason
`near_duplicate_cross_shard`). It is curation's own near-dedup (curation.dedup.near.NearDedup: MinHash-LSH,
exact-Jaccard verification, connected components, on the executors), configured from the recipes'
`postfilter.near_dedup`; the survivor of a cluster is chosen as in a shard's post-filter: verified first,
then not-applicable, then unverified, then by id. The driver sees parquet footers and counts, never rows,
so synthetic data scales like web data. Decontamination and the edu floor are per row and need no second
pass.

The candidate is built through `DatasetRoot.building` (a fresh staging folder renamed into place; a failure
anywhere leaves the previous candidate of this version as it was): the shards' rejects files side by side,
the kept rows under data/, the cross-shard rejects under rejects/ and NearDedup's audit under duplicates/.
Counts reconcile: rows in (the shards' data rows, from their footers) = kept + near-duplicate rejects.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import Counter
from pathlib import Path

log = logging.getLogger(__name__)

CROSS_SHARD_STAGE = "near_dedup_cross_shard"
CROSS_SHARD_REASON = "near_duplicate_cross_shard"
RANK = "_verified_rank"  # survivor order of a cluster, dropped before anything is written


def near_dedup_config(manifests):
    """The recipes' `postfilter.near_dedup` (every shard of a run carries the same recipes; a merge of shards
    whose settings differ is refused); defaults when the manifests carry no recipes (hand-made shards)."""
    from synthesis.textbook.recipes import NearDupConfig

    found = {repr(m.config.get("postfilter", {}).get("near_dedup")) for m in manifests}
    if len(found) > 1:
        raise ValueError(f"shards disagree on postfilter.near_dedup ({sorted(found)}): not one run's shards")
    conf = manifests[0].config.get("postfilter", {}).get("near_dedup") if manifests else None
    return NearDupConfig.model_validate(conf or {})


def curation_config(cfg):
    """The recipes' NearDupConfig as curation's NearDedupConfig: same shingles, permutations, bands and
    threshold, verification on, the post-filter's survivor rule."""
    from curation.dedup.near_config import NearDedupConfig

    return NearDedupConfig(
        enabled=cfg.enabled,
        ngram=cfg.ngram,
        num_perm=cfg.num_perm,
        bands=cfg.bands,
        rows=cfg.rows,
        seed=cfg.seed,
        threshold=cfg.threshold,
        verify=True,
        keep_order=[f"{RANK} asc"],  # then `id asc`, always appended
    )


def summed_stages(manifests: list) -> list:
    """The shards' stage counts summed per stage, in the first shard's stage order (each shard's chain
    holds, so the sum's does)."""
    from curation.contract import StageCounts

    order = [s.stage for s in manifests[0].stages] if manifests else []
    stages = []
    for name in order:
        rows = [s for m in manifests for s in m.stages if s.stage == name]
        reasons: Counter = Counter()
        for s in rows:
            reasons.update(s.reasons)
        stages.append(
            StageCounts(
                stage=name,
                rows_in=sum(s.rows_in for s in rows),
                rows_kept=sum(s.rows_kept for s in rows),
                rows_rejected=sum(s.rows_rejected for s in rows),
                reasons=dict(reasons),
            )
        )
    return stages


def shards_extra(manifests: list) -> dict:
    """Per shard version, for the merged manifest's extra: its rows and its teacher's model, backend and
    totals."""
    return {
        m.version: {
            "rows": m.rows,
            **{k: m.extra.get(k) for k in ("teacher_model", "teacher_backend", "totals")},
        }
        for m in manifests
    }


def footer_rows(files: list[Path]) -> int:
    """Rows of the shards' data files from their parquet footers (no data read); a file that is not
    parquet fails here, naming it, before any Spark job starts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    total = 0
    for f in files:
        try:
            total += pq.read_metadata(f).num_rows
        except (pa.ArrowInvalid, OSError) as e:
            raise pa.ArrowInvalid(f"{f}: not a readable parquet file: {e}") from e
    return total


def _move_parts(src: Path, dest: Path, prefix: str) -> int:
    """Move the non-empty parquet files Spark wrote under `src` into `dest` as `<prefix>-<name>`; returns
    the rows moved (footers). `src` is removed."""
    import pyarrow.parquet as pq

    rows = 0
    for f in sorted(src.glob("*.parquet")):
        n = pq.read_metadata(f).num_rows
        if n:
            f.rename(dest / f"{prefix}-{f.name}")
            rows += n
    shutil.rmtree(src)
    return rows


def cross_shard_near_dedup(spark, files: list[Path], staging: Path, cfg, version: str) -> tuple[int, dict]:
    """Run NearDedup over the shards' data files; write the kept rows to `staging/data`, the dropped ones
    (reject columns added) into `staging/rejects`. Returns (rows dropped, NearDedup's stats)."""
    from pyspark.sql import functions as F

    from curation.dedup.near import DUPLICATES_DIR, NearDedup

    df = spark.read.option("mergeSchema", "true").parquet(*map(str, files))
    columns = list(df.columns)
    if "verified" in columns:
        rank = F.when(F.col("verified"), 0).when(F.col("verified").isNull(), 1).otherwise(2)
    else:
        rank = F.lit(1)
    step = NearDedup(curation_config(cfg), run_id=version)
    try:
        step.bind(spark, staging, version)
        kept, rejected = step.apply(df.withColumn(RANK, rank))
        kept.select(*columns).write.parquet(str(staging / "data"))
        # the detail names the survivor and the pair's exact Jaccard, from NearDedup's duplicates audit
        audit = spark.read.parquet(str(staging / DUPLICATES_DIR)).select(
            F.col("doc_id").alias("id"), "kept_id", "similarity"
        )
        detail = F.format_string("cluster of %s; Jaccard %.3f with %s", "kept_id", "similarity", "kept_id")
        tmp = staging / f"_{CROSS_SHARD_STAGE}"
        rejected.join(audit, "id").select(
            *columns,
            F.lit(CROSS_SHARD_STAGE).alias("reject_stage"),
            F.lit(CROSS_SHARD_REASON).alias("reject_reason"),
            detail.alias("reject_detail"),
        ).write.parquet(str(tmp))
        dropped = _move_parts(tmp, staging / "rejects", CROSS_SHARD_STAGE)
        stats = step.write_extra(staging)[step.name]
        step.commit()  # no band index here: a no-op
    except BaseException:
        step.abort()
        raise
    return dropped, stats


def _copy_data(files: list[tuple[Path, Path]], staging: Path) -> None:
    for d, f in files:
        shutil.copy2(f, staging / "data" / f"{d.name}-{f.name}")


def merge_shards(shard_dirs: list, candidate_root, version: str, spark=None) -> Path:
    """One contract version from the shard versions: their rejects files side by side, their data minus the
    near-duplicates across shards (recorded in `rejects/` with stage `near_dedup_cross_shard`), stage counts
    summed per stage (each shard's chain holds, so the sum's does) plus the cross-shard stage, the shards
    listed in `extra`. A single shard (its own post-filter saw every pair) or near-dedup disabled: the
    data files are copied, no Spark job."""
    from curation.contract import DatasetRoot, Manifest, StageCounts, iter_parquet_files

    shard_dirs = [Path(d) for d in shard_dirs]
    manifests = [Manifest.read(d) for d in shard_dirs]
    nd_cfg = near_dedup_config(manifests)
    data_files = [(d, f) for d in shard_dirs for f in iter_parquet_files(d, "data")]
    rows_in = footer_rows([f for _, f in data_files])
    stats: dict = {}
    with DatasetRoot(candidate_root).building(version, set_current=False, clean="own") as build:
        staging = build.staging
        (staging / "rejects").mkdir()
        for d in shard_dirs:
            for f in iter_parquet_files(d, "rejects"):
                shutil.copy2(f, staging / "rejects" / f"{d.name}-{f.name}")
        t0 = time.perf_counter()
        if len(shard_dirs) < 2 or rows_in < 2 or not nd_cfg.enabled:
            (staging / "data").mkdir()
            _copy_data(data_files, staging)
            dropped = 0
        else:
            from curation.spark import get_spark

            spark = spark or get_spark("phi-synthetic-merge")
            dropped, stats = cross_shard_near_dedup(
                spark, [f for _, f in data_files], staging, nd_cfg, version
            )
        kept = sum(m.num_rows for m in _footers(staging / "data"))
        if kept + dropped != rows_in:
            raise RuntimeError(f"merge {version}: {rows_in} rows in but {kept} kept + {dropped} rejected")
        stages = summed_stages(manifests)
        stages.append(
            StageCounts(
                stage=CROSS_SHARD_STAGE,
                rows_in=rows_in,
                rows_kept=kept,
                rows_rejected=dropped,
                reasons={CROSS_SHARD_REASON: dropped} if dropped else {},
                seconds=round(time.perf_counter() - t0, 3),
            )
        )
        pairs = stats.get("verified_pairs", 0)
        log.info(
            "merge %s: %d shards, %d rows, %d near-duplicates across shards (%d similar pairs)",
            version,
            len(shard_dirs),
            rows_in,
            dropped,
            pairs,
        )
        build.manifest(
            dataset="synthetic",
            inputs=[str(d) for d in shard_dirs],
            config={
                "shards": [m.version for m in manifests],
                "shard_configs": [m.config_hash for m in manifests],
                "near_dedup_cross_shard": nd_cfg.model_dump(mode="json"),
            },
            stages=stages,
            rows=kept,
            rejected_rows=sum(m.rejected_rows for m in manifests) + dropped,
            columns=manifests[0].columns if manifests else [],
            extra={
                "shards": shards_extra(manifests),
                "near_dedup_cross_shard": {"dropped": dropped, "similar_pairs": pairs, **stats},
            },
        )
    return build.final


def _footers(folder: Path):
    import pyarrow.parquet as pq

    return [pq.read_metadata(f) for f in sorted(folder.glob("*.parquet"))]
