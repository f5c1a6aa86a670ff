"""The synthetic_data DAG's logic: plan the shards of a `synthesis run`, and merge the shard versions
(each published by its own `synthesis run --shard i/n`) into one candidate version of the dataset
contract, which the `synthetic` gate validates before it is published.

Each shard near-dedups only its own rows, so the merge runs one more near-dedup over the merged set: a
pair split across two shards is caught there (stage `near_dedup_cross_shard`, reason
`near_duplicate_cross_shard`). Decontamination and the edu floor are per row and need no second pass.

Idempotent: shards publish under `<root>/_shards/<version>/shard-i-of-n` (a rerun of a shard replaces
it and its teacher store resumes), and the merge rebuilds `<root>/_candidates/<version>` from scratch.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import Counter
from pathlib import Path

log = logging.getLogger(__name__)

SHARDS = "_shards"
CROSS_SHARD_STAGE = "near_dedup_cross_shard"
CROSS_SHARD_REASON = "near_duplicate_cross_shard"


def shard_specs(count: int) -> list[str]:
    if count < 1:
        raise ValueError(f"shards must be >= 1, got {count}")
    return [f"{i}/{count}" for i in range(count)]


def shard_run_id(spec: str) -> str:
    i, n = spec.split("/")
    return f"shard-{i}-of-{n}"


def check_recipes(path: str | Path) -> dict:
    """Load and validate the recipes file (clear error naming the file and field); a summary for XCom."""
    from synthesis.textbook.recipes import load_recipes

    rs = load_recipes(path)
    return {"name": rs.name, "recipes": {r.name: r.n for r in rs.recipes}}


def _near_dedup_config(manifests):
    """The recipes' `postfilter.near_dedup` (every shard of a run carries the same recipes; a merge of shards
    whose settings differ is refused); defaults when the manifests carry no recipes (hand-made shards)."""
    from synthesis.textbook.recipes import NearDupConfig

    found = {repr(m.config.get("postfilter", {}).get("near_dedup")) for m in manifests}
    if len(found) > 1:
        raise ValueError(f"shards disagree on postfilter.near_dedup ({sorted(found)}): not one run's shards")
    conf = manifests[0].config.get("postfilter", {}).get("near_dedup") if manifests else None
    return NearDupConfig.model_validate(conf or {})


def cross_shard_near_dedup(tables: list, cfg) -> tuple[list, dict[str, tuple[str, str]], int]:
    """Near-duplicates across shards: the post-filter's own single-process MinHash-LSH + exact-Jaccard pass
    (synthesis.textbook.postfilter.near_duplicates, built on curation/dedup/minhash.py), run once over the
    merged rows. Survivors are chosen as in a shard: verified first, then not-applicable, then unverified,
    then by id. Returns the tables without the dropped rows, {id: (reason, detail)} of the drops, and the
    number of similar pairs.

    Why single-process: the synthetic set is the output of teacher calls (thousands to tens of thousands of
    rows per run, orders of magnitude below web), and each shard already ran this same pass in process.
    It scales linearly: measured on the shared 2-core dev box (load 5-7) with ~500-word rows, 20k rows 28 s /
    +1.0 GB peak RSS, 40k rows 58 s / +2.0 GB (~700 rows/s, ~50 KB per row). Past a few hundred thousand rows
    (~10+ GB in the merge task) run the Spark job over the merged candidate instead (`python -m curation
    dedup`, curation.dedup.job.run_near_dedup: MinHash-LSH + connected components on the cluster)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from synthesis.textbook.postfilter import near_duplicates

    rank = {True: 0, None: 1, False: 2}
    rows = []  # (rank, id, table index, row index)
    for t, table in enumerate(tables):
        ids = table.column("id").to_pylist()
        verified = (
            table.column("verified").to_pylist() if "verified" in table.column_names else [None] * len(ids)
        )
        rows += [(rank[v], i, t, r) for r, (i, v) in enumerate(zip(ids, verified))]
    if len({r[1] for r in rows}) != len(rows):
        raise ValueError("the shards share row ids: not disjoint shards of one plan")
    # one data file (one shard): its own post-filter already saw every pair, with the same deterministic LSH
    if len(tables) < 2 or len(rows) < 2 or not cfg.enabled:
        return tables, {}, 0
    rows.sort()
    texts = [tables[t].column("text")[r].as_py() for _, _, t, r in rows]
    drops, pairs = near_duplicates([i for _, i, _, _ in rows], texts, cfg)
    dropped = {rows[d.index][1]: (CROSS_SHARD_REASON, d.detail) for d in drops}
    if not dropped:
        return tables, {}, pairs
    drop_ids = pa.array(sorted(dropped), pa.string())
    kept = [t.filter(pc.invert(pc.is_in(t.column("id"), value_set=drop_ids))) for t in tables]
    return kept, dropped, pairs


def cross_shard_rejects(tables: list, dropped: dict[str, tuple[str, str]]):
    """The rows `cross_shard_near_dedup` dropped, taken from the shards' `tables` with the reject columns
    added (stage `near_dedup_cross_shard`, the reason and detail `dropped` holds per id)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rej = pa.concat_tables(
        [t.filter(pc.is_in(t.column("id"), value_set=pa.array(sorted(dropped)))) for t in tables],
        promote_options="default",
    )
    ids = rej.column("id").to_pylist()
    return (
        rej.append_column("reject_stage", pa.array([CROSS_SHARD_STAGE] * len(ids), pa.string()))
        .append_column("reject_reason", pa.array([dropped[i][0] for i in ids], pa.string()))
        .append_column("reject_detail", pa.array([dropped[i][1] for i in ids], pa.string()))
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


def merge_shards(shard_dirs: list[str | Path], candidate_root: str | Path, version: str) -> Path:
    """One contract version from the shard versions: their rejects files side by side, their data minus the
    near-duplicates across shards (recorded in `rejects/` with stage `near_dedup_cross_shard`), stage counts
    summed per stage (each shard's chain holds, so the sum's does) plus the cross-shard stage, the shards
    listed in `extra`."""
    import pyarrow.parquet as pq

    from curation.contract import DatasetRoot, Manifest, StageCounts, iter_parquet_files

    shard_dirs = [Path(d) for d in shard_dirs]
    manifests = [Manifest.read(d) for d in shard_dirs]
    # built under a fresh staging name and renamed into place (the gate publishes it, so no CURRENT here):
    # a failure anywhere leaves the previous candidate of this version as it was and no staging behind
    with DatasetRoot(candidate_root).building(version, set_current=False, clean="own") as build:
        staging = build.staging
        (staging / "data").mkdir()
        (staging / "rejects").mkdir()
        for d in shard_dirs:
            for f in iter_parquet_files(d, "rejects"):
                shutil.copy2(f, staging / "rejects" / f"{d.name}-{f.name}")
        # the data files are read (not copied) so the cross-shard near-duplicates can be taken out
        data_files = [(d, f) for d in shard_dirs for f in iter_parquet_files(d, "data")]
        names = [f"{d.name}-{f.name}" for d, f in data_files]
        tables = [pq.read_table(f) for _, f in data_files]
        t0 = time.perf_counter()
        nd_cfg = _near_dedup_config(manifests)
        kept, dropped, pairs = cross_shard_near_dedup(tables, nd_cfg)
        seconds = time.perf_counter() - t0
        for name, table in zip(names, kept):
            pq.write_table(table, staging / "data" / name)
        if dropped:  # the dropped rows with the shards' reject columns, in one file of their own
            pq.write_table(
                cross_shard_rejects(tables, dropped), staging / "rejects" / f"{CROSS_SHARD_STAGE}.parquet"
            )
        stages = summed_stages(manifests)
        rows_in = sum(t.num_rows for t in tables)
        stages.append(
            StageCounts(
                stage=CROSS_SHARD_STAGE,
                rows_in=rows_in,
                rows_kept=rows_in - len(dropped),
                rows_rejected=len(dropped),
                reasons={CROSS_SHARD_REASON: len(dropped)} if dropped else {},
                seconds=round(seconds, 3),
            )
        )
        log.info(
            "merge %s: %d shards, %d rows, %d near-duplicates across shards (%d similar pairs)",
            version,
            len(shard_dirs),
            rows_in,
            len(dropped),
            pairs,
        )
        conf = {
            "shards": [m.version for m in manifests],
            "shard_configs": [m.config_hash for m in manifests],
            "near_dedup_cross_shard": nd_cfg.model_dump(mode="json"),
        }
        build.manifest(
            dataset="synthetic",
            inputs=[str(d) for d in shard_dirs],
            config=conf,
            stages=stages,
            rows=rows_in - len(dropped),
            rejected_rows=sum(m.rejected_rows for m in manifests) + len(dropped),
            columns=manifests[0].columns if manifests else [],
            extra={
                "shards": shards_extra(manifests),
                "near_dedup_cross_shard": {"dropped": len(dropped), "similar_pairs": pairs},
            },
        )
    return build.final
