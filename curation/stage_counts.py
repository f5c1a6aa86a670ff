"""The curation run's counting phase: per-stage counts chained from the rejects themselves, reconciled
against the records the readers produced, and the fixed-width table the CLI prints from them."""

from __future__ import annotations

from pathlib import Path

from curation.contract import StageCounts


def reconcile(order: list[str], rows_in: int, rejects: dict[tuple[str, str], int]) -> list[StageCounts]:
    """Chain per-stage counts: each stage receives what the previous one kept."""
    unknown = {stage for stage, _ in rejects} - set(order)
    if unknown:
        raise RuntimeError(f"rejects carry unknown stage(s) {sorted(unknown)}; known: {order}")
    counts, current = [], rows_in
    for stage in order:
        reasons = {r: n for (s, r), n in sorted(rejects.items()) if s == stage}
        rejected = sum(reasons.values())
        counts.append(
            StageCounts(
                stage=stage,
                rows_in=current,
                rows_kept=current - rejected,
                rows_rejected=rejected,
                reasons=reasons,
            )
        )
        current -= rejected
    return counts


def count_outputs(spark, staging: Path, order: list[str], seconds: dict[str, float], records_read: int):
    """Phase 4 (the manifest's numbers): rows kept, rows rejected, and per-stage counts chained from the
    rejects themselves, the first stage receiving `records_read` (counted as the readers produced them);
    `seconds` per stage (worker time for Python steps, driver time for frame steps). A row lost on the
    way (read but neither kept nor rejected) fails here, before anything is published."""
    rows = spark.read.parquet(str(staging / "data")).count()
    reject_counts = {
        (r["reject_stage"], r["reject_reason"]): r["count"]
        for r in spark.read.parquet(str(staging / "rejects"))
        .groupBy("reject_stage", "reject_reason")
        .count()
        .collect()
    }
    n_rejected = sum(reject_counts.values())
    if records_read != rows + n_rejected:
        raise RuntimeError(
            f"counts do not reconcile: the readers produced {records_read} rows but the outputs"
            f" hold {rows} kept + {n_rejected} rejected = {rows + n_rejected}; nothing published"
        )
    counts = reconcile(order, records_read, reject_counts)
    for c in counts:
        c.seconds = round(seconds.get(c.stage, 0.0), 3) or None
    return rows, n_rejected, counts


def summary_table(counts: list[StageCounts]) -> str:
    """A fixed-width table of per-stage counts for the CLI and logs."""
    lines = [f"{'stage':<20}{'in':>10}{'kept':>10}{'rejected':>10}  top reasons"]
    for c in counts:
        top = ", ".join(f"{r}={n}" for r, n in sorted(c.reasons.items(), key=lambda kv: -kv[1])[:3])
        lines.append(f"{c.stage:<20}{c.rows_in:>10}{c.rows_kept:>10}{c.rows_rejected:>10}  {top}")
    return "\n".join(lines)
