"""Near-duplicate removal as a Spark frame step: signatures -> LSH candidates -> (verification) ->
connected components -> one survivor per component by the keep rule.

Used two ways: as the pipeline's frame step after exact dedup (`python -m curation run` with
`near_dedup.enabled`), and standalone over a published dataset (`python -m curation dedup`, see
curation/dedup/job.py). Intermediate frames (signatures, bucket members, edges, candidate shingles,
components) are checkpointed in executor storage (curation/dedup/frames.py) so each is computed once, without
a parquet round trip; the duplicates audit is written under the run's staging folder. The driver only ever
sees counts.

A FrameStep (curation/steps/base.py documents the driver hooks): it uses `bind` (the staging folder for the
duplicates audit), `write_extra` (stages the next band index in incremental mode: a folder's next version, or
the table's night of kept rows, whose staged files it records; returns the counts for the manifest), `commit`
(publishes that index once the corpus is published) and `abort`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import ClassVar

from curation.dedup.band_index import BandIndex
from curation.dedup.band_table import published_entries
from curation.dedup.exact import sort_columns
from curation.dedup.frames import checkpoint, release
from curation.dedup.minhash import LshParams, compute_signatures
from curation.dedup.near_config import NearDedupConfig
from curation.steps.base import FrameStep

log = logging.getLogger(__name__)

DUPLICATES_DIR = "duplicates"
REJECT_REASON = "near_duplicate"


def lsh_params(cfg: NearDedupConfig) -> LshParams:
    return LshParams(num_perm=cfg.num_perm, bands=cfg.bands, rows=cfg.rows, seed=cfg.seed, ngram=cfg.ngram)


def check_unique_ids(signatures, where: str) -> tuple[int, int]:
    """One pass: fail naming repeated or null ids; return (documents, documents without shingles)."""
    from pyspark.sql import functions as F

    per_id = signatures.groupBy("id").agg(
        F.count("*").alias("count"), F.sum(F.when(F.col("n_shingles") == 0, 1).otherwise(0)).alias("empty")
    )
    summary = per_id.agg(
        F.sum("count").alias("n"),
        F.sum("empty").alias("empty"),
        F.sum(F.when((F.col("count") > 1) | F.col("id").isNull(), 1).otherwise(0)).alias("bad"),
    ).first()
    if not summary["bad"]:
        return summary["n"] or 0, summary["empty"] or 0
    bad = per_id.where((F.col("count") > 1) | F.col("id").isNull()).limit(5).collect()
    if any(r["id"] is None for r in bad):
        raise ValueError(f"near dedup needs an `id` on every row but {where} has rows with a null `id`")
    if bad:
        shown = ", ".join(f"{r['id']!r} x{r['count']}" for r in bad)
        raise ValueError(f"near dedup needs unique ids but {where} has repeated `id` values: {shown}")


def _band_index(cfg: NearDedupConfig, params: LshParams):
    """The persisted index of incremental mode: a folder (`index_dir`), an Iceberg table (`index_table`),
    or None (the input is deduplicated alone)."""
    if cfg.index_table:
        from curation.dedup.band_table import BandTable

        return BandTable(
            cfg.index_table,
            params,
            ref=cfg.index_table_ref,
            deferred=cfg.index_commit == "deferred",
            rebuild_from=cfg.index_table_rebuild_from,
        )
    return BandIndex(cfg.index_dir, params) if cfg.index_dir else None


class NearDedup(FrameStep):
    """Spark-level step: drop near-duplicates, keep one document per cluster."""

    name: ClassVar[str] = "near_dedup"

    def __init__(self, cfg: NearDedupConfig, run_id: str | None = None):
        self.cfg = cfg
        self.params = lsh_params(cfg)
        self.run_id = run_id
        self.spark = None
        self.staging: Path | None = None
        self.index = _band_index(cfg, self.params)
        # the table stages only the night's rows, the folder a whole version
        self._append_only = getattr(self.index, "append_only", False)
        self.stats: dict = {}
        self._cached: list = []  # frames persisted by apply(), released by write_extra() / abort()

    # ---- driver hooks ----------------------------------------------------------------------------
    def bind(self, spark, staging: Path, run_id: str | None = None) -> None:
        self.spark, self.staging = spark, Path(staging)
        self.run_id = run_id or self.run_id or self.staging.name

    def write_extra(self, staging: Path) -> dict:
        """Stage the next band index (incremental mode) and return the counts for the manifest."""
        if self.index is not None:
            t0 = time.perf_counter()
            if self._append_only:  # the table: the night's kept rows only
                self.stats["index_commit"] = self.index.stage(
                    self.spark, self._next_index_rows, self.run_id, self._index_parent, self.cfg.verify
                )
            else:
                bands, shingles = self._next_index_bands, self._next_index_shingles
                self.index.stage(self.spark, bands, shingles, self.run_id, self._index_parent)
            self.stats["index_seconds"] = round(time.perf_counter() - t0, 3)
        self._release(*self._cached)
        return {self.name: dict(self.stats)}

    def commit(self) -> None:
        if self.index is not None:
            self.index.publish()

    def abort(self) -> None:
        self._release(*self._cached)
        if self.index is not None:
            self.index.abort()

    # ---- the step ----------------------------------------------------------------------------------
    def apply(self, df):
        """df -> (kept, rejected); duplicates audit rows are written to <staging>/duplicates. The phases
        below run in this order; the driver only ever sees their counts."""
        if self.spark is None:
            raise RuntimeError("NearDedup.bind(spark, staging) must be called before apply()")
        t_start = time.perf_counter()
        sigs, n_in, n_empty = self._sign(df, t_start)
        new_bands, all_bands, loaded = self._bands(sigs, n_in)
        edges, scored, shingles, bcast = self._edges(all_bands, sigs, loaded)
        comps = self._components(edges, scored)
        dups = self._audit(df, comps, shingles, bcast, t_start, n_in, n_empty)
        if self.index is not None:
            self._plan_next_index(new_bands, sigs, dups, loaded)
        return self._split(df, dups)

    # ---- the phases of apply -------------------------------------------------------------------------
    def _sign(self, df, t_start: float):
        """1. signatures, computed once and kept in executor storage for the whole step. With verification on,
        the same Python pass also emits each document's distinct shingle hashes: a second Python pass over
        the candidate documents' text (the earlier design, when intermediates went through parquet) cost
        ~10 s at 100k documents against ~3 s for carrying the sets in the checkpoint."""
        sigs = self._persist(compute_signatures(df, self.params, self.cfg.verify))
        n_in, n_empty = check_unique_ids(sigs, "the input")
        self._lap("sign", t_start)
        log.info(
            "near dedup: %d documents signed (%d without words, never candidates) in %.1fs",
            n_in,
            n_empty,
            time.perf_counter() - t_start,
        )
        return sigs, n_in, n_empty

    def _bands(self, sigs, n_in: int):
        """2. bands of the batch, plus the persisted index in incremental mode. Returns (the batch's bands,
        every band row with `_old` marking index rows, the loaded index or None)."""
        from pyspark.sql import functions as F

        cfg = self.cfg
        new_bands = self._band_rows(sigs)
        all_bands = new_bands.withColumn("_old", F.lit(False))
        self._index_parent = None
        loaded = None
        if self.index is not None:
            loaded = self.index.load(self.spark, self.run_id, cfg.verify)
            self._index_parent = loaded.version
            if loaded.bands is not None:
                # only index rows sharing a bucket with the batch can matter: a semi-join on the batch's
                # keys (broadcast while small) reads the index without shuffling all of it
                keys = new_bands.select("band", "key").distinct()
                if n_in * cfg.bands <= cfg.broadcast_max_ids:
                    keys = F.broadcast(keys)
                old_bands = loaded.bands.join(keys, ["band", "key"], "left_semi").join(
                    sigs.select("id"), "id", "left_anti"
                )  # re-submitted ids: the batch wins
                if self._append_only:  # an id indexed twice may share a bucket
                    old_bands = old_bands.select("id", "band", "key").distinct()
                all_bands = all_bands.unionByName(
                    old_bands.select("id", "band", "key").withColumn("_old", F.lit(True))
                )
        return new_bands, all_bands, loaded

    def _edges(self, all_bands, sigs, loaded):
        """3. candidate edges -> verified edges. One shuffle of the band rows finds the multi-member buckets;
        that small copy is persisted and both edge kinds come from it. Returns (edges, the scored pairs
        holding them when verifying, the shingle sets, whether candidate ids are broadcast)."""
        from pyspark.sql import functions as F

        from curation.dedup.lsh import bucket_members, candidate_edges, score_edges

        cfg = self.cfg
        shingles = sigs.select("id", "shingles") if cfg.verify else None
        t0 = t3 = time.perf_counter()
        members = self._persist(bucket_members(all_bands))
        edges = self._persist(candidate_edges(members, cfg.max_bucket_pairs, all_pairs=cfg.verify))
        self.stats["candidate_pairs"] = edges.count()
        self._release(members)
        t0 = self._lap("buckets_and_edges", t0)
        # candidate pairs (ids only) are broadcast while small, so the shingle sets are read where they
        # lie in the signature checkpoint; the index's sets (incremental mode) are picked once
        bcast = self.stats["candidate_pairs"] <= cfg.broadcast_max_ids
        scored = None
        if cfg.verify:
            if self._index_parent is not None:  # old documents the batch re-submits: the batch's copy wins
                ids = (
                    edges.select(F.col("a").alias("id"))
                    .union(edges.select(F.col("b").alias("id")))
                    .distinct()
                )
                old_sh = loaded.shingles.join(F.broadcast(ids) if bcast else ids, "id", "left_semi").join(
                    sigs.select("id"), "id", "left_anti"
                )
                if "seq" in old_sh.columns:  # the table index: an id indexed twice is verified as published
                    old_sh = published_entries(old_sh)
                old_sh = self._persist(old_sh)
                shingles = shingles.unionByName(old_sh)
            # scored once and materialised, then filtered (a filter on the expression would evaluate it twice)
            scored = self._persist(score_edges(edges, shingles, bcast))
            verified = scored.where(F.col("similarity") >= cfg.threshold)
            self.stats["verified_pairs"] = verified.count()
            self._release(edges)
            edges = verified  # its rows stay in `scored`'s checkpoint until the components are done
            self._lap("verification", t0)
        log.info(
            "near dedup: %s in %.1fs",
            {k: v for k, v in self.stats.items() if k.endswith("pairs")},
            time.perf_counter() - t3,
        )
        return edges, scored, shingles, bcast

    def _components(self, edges, scored):
        """4. connected components of the (verified) edges."""
        from curation.dedup.components import connected_components

        t0 = time.perf_counter()
        comps, rounds = connected_components(edges, self.cfg.max_cc_iterations)
        self._cached.append(comps)
        self._release(edges, scored)
        self.stats["cc_rounds"] = rounds
        log.info("near dedup: components in %d rounds, %.1fs", rounds, time.perf_counter() - t0)
        self._lap("components", t0)
        return comps

    def _audit(self, df, comps, shingles, bcast: bool, t_start: float, n_in: int, n_empty: int):
        """5. keep rule -> duplicates audit dataset (removed documents only), written under the staging folder
        and read back (the kept/rejected joins read the materialised copy)."""
        from pyspark.sql import functions as F

        t0 = time.perf_counter()
        dups = self._duplicates(df, comps, shingles, bcast)
        dups_path = self.staging / DUPLICATES_DIR
        dups.write.mode("overwrite").parquet(str(dups_path))
        dups = self.spark.read.parquet(str(dups_path))
        self._release(*self._cached[1:])  # all but the signatures (the next index reads them)
        dup_counts = dups.agg(
            F.count("*").alias("n"), F.countDistinct("cluster_id").alias("clusters")
        ).first()
        n_removed = dup_counts["n"]
        self._lap("keep_rule_and_audit", t0)
        self.stats.update(
            documents_in=n_in,
            documents_without_words=n_empty,
            removed=n_removed,
            clusters=dup_counts["clusters"],
            seconds=round(time.perf_counter() - t_start, 3),
        )
        log.info("near dedup: %d of %d documents removed as near duplicates", n_removed, n_in)
        return dups

    def _plan_next_index(self, new_bands, sigs, dups, loaded) -> None:
        """6. the next index: old entries + kept batch documents (staged in write_extra)."""
        from pyspark.sql import functions as F

        removed_ids = dups.select(F.col("doc_id").alias("id"))
        if self._append_only:  # the table: only the night's kept documents
            kept = sigs.where(F.col("n_shingles") > 0).join(removed_ids, "id", "left_anti")
            self._next_index_rows = kept.select("id", "bands", "shingles")
            return
        kept_bands = new_bands.join(removed_ids, "id", "left_anti")
        self._next_index_bands = (
            kept_bands
            if self._index_parent is None
            else kept_bands.unionByName(
                loaded.bands.join(sigs.select("id"), "id", "left_anti").select("id", "band", "key")
            )
        )
        self._next_index_shingles = None
        if self.cfg.verify:
            kept_sh = (
                sigs.where(F.col("n_shingles") > 0)
                .select("id", "shingles")
                .join(removed_ids, "id", "left_anti")
            )
            self._next_index_shingles = (
                kept_sh
                if self._index_parent is None
                else kept_sh.unionByName(loaded.shingles.join(sigs.select("id"), "id", "left_anti"))
            )

    def _split(self, df, dups):
        """7. kept / rejected frames (joins against the materialised duplicates)."""
        from pyspark.sql import functions as F

        kept = df.join(dups.select(F.col("doc_id").alias("id")), "id", "left_anti").select(*df.columns)
        rejected = (
            df.join(dups.select(F.col("doc_id").alias("id"), "kept_id"), "id")
            .withColumn("reject_stage", F.lit(self.name))
            .withColumn("reject_reason", F.lit(REJECT_REASON))
            .withColumn("reject_detail", F.concat(F.lit("kept "), F.col("kept_id")))
            .drop("kept_id")
        )
        return kept, rejected

    # ---- helpers -----------------------------------------------------------------------------------
    def _lap(self, stage: str, since: float) -> float:
        """Record the seconds of one stage (manifest `near_dedup.stage_seconds`); returns now."""
        now = time.perf_counter()
        self.stats.setdefault("stage_seconds", {})[stage] = round(now - since, 3)
        return now

    def _persist(self, frame):
        """Compute `frame` now and keep its rows in executor storage until released (see frames.py):
        the step reads each intermediate more than once. No parquet round trip."""
        frame = checkpoint(frame)
        self._cached.append(frame)
        return frame

    def _release(self, *frames) -> None:
        for frame in frames:
            if frame is not None and any(frame is c for c in self._cached):
                release(frame)
                self._cached = [c for c in self._cached if c is not frame]

    @staticmethod
    def _band_rows(sigs):
        from curation.dedup.lsh import band_rows

        return band_rows(sigs)

    def _duplicates(self, df, comps, shingles, broadcast: bool):
        """Rank each cluster by the keep rule; every non-first batch document is a duplicate.

        Index documents (incremental mode) are already published, so they rank first and are never removed.
        """
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        from curation.dedup.lsh import pair_similarity

        keyed = df.select("id", *[c for c in self._keep_columns(df) if c != "id"]).withColumn(
            "_new", F.lit(True)
        )
        members = comps.join(keyed, "id", "left").withColumn("_old", F.col("_new").isNull())
        order = [F.col("_old").desc(), *sort_columns(members, self.cfg.keep_order)]
        w = Window.partitionBy("cluster_id").orderBy(*order)
        ranked = members.withColumn("_rank", F.row_number().over(w)).withColumn(
            "kept_id", F.first("id").over(w)
        )
        dups = ranked.where((F.col("_rank") > 1) & ~F.col("_old")).select(
            F.col("id").alias("doc_id"), "cluster_id", "kept_id"
        )
        if shingles is None:
            return dups.withColumn("similarity", F.lit(None).cast("double"))
        # fewer rows than candidate pairs, so broadcast whenever the candidates were
        dups = self._persist(dups)
        return pair_similarity(dups, "doc_id", "kept_id", shingles, broadcast)

    def _keep_columns(self, df) -> list[str]:
        cols = [spec.split()[0] for spec in self.cfg.keep_order]
        return [c for c in dict.fromkeys(cols) if c in df.columns]
