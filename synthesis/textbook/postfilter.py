"""Post-filters over the verified set: MinHash near-dedup within the set, benchmark decontamination, and
optional edu scoring. Each returns which rows it drops and why; the pipeline records them as rejects.

Near-dedup reuses the curation near-dedup's shingling and MinHash/LSH code (curation/dedup/minhash.py) in
process. Decontamination reuses the curation DecontamIndex (GSM8K test, HumanEval, MMLU test, MBPP by
default).

Memory is bounded by one shard, never by the version: `run_synthesis` calls these on its own shard's
surviving candidates only (about sum of the recipes' `n` / the shard count rows, whose texts the shard
already holds from generation and verification), and the near-dedup adds per row its distinct shingle
hashes (8 bytes per shingle, about one per word), a `num_perm` x 4-byte signature and its band keys; the
decontamination index and the edu model are fixed-size. Pairs split across shards are the merge's job
(synthesis/merge.py, curation's near-dedup on Spark). So a bigger set takes more shards (`--shard i/n`),
not a bigger worker.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from curation.decontam_index import (
    DecontamIndex,
    default_benchmarks_dir,
    default_sources,
    sources_fingerprint,
)
from curation.dedup.minhash import LshParams, distinct_per_doc, shingle_hashes_batch
from curation.paths import REPO_ROOT
from synthesis.textbook.recipes import DecontamFilterConfig, EduFilterConfig, NearDupConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Drop:
    index: int
    reason: str
    detail: str


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)  # the smaller index (= higher priority) is the root


def near_duplicates(ids: list[str], texts: list[str], cfg: NearDupConfig) -> tuple[list[Drop], int]:
    """Rows to drop as near-duplicates (exact shingle Jaccard >= threshold, transitively), keeping the
    first row of each cluster: callers order rows by priority (verified first). Returns (drops, pairs)."""
    if not cfg.enabled or len(texts) < 2:
        return [], 0
    params = LshParams(cfg.num_perm, cfg.bands, cfg.rows, cfg.seed, cfg.ngram)
    h64, offsets = shingle_hashes_batch(texts, cfg.ngram)
    keys = params.band_keys(params.signatures(h64, offsets))
    values, set_off = distinct_per_doc(h64, offsets)
    sets = [values[set_off[i] : set_off[i + 1]] for i in range(len(texts))]
    buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
    for i in range(len(texts)):
        if len(sets[i]):
            for b in range(cfg.bands):
                buckets[(b, keys[i, b].tobytes())].append(i)
    candidates = {
        (a, b)
        for members in buckets.values()
        if len(members) > 1
        for x, a in enumerate(members)
        for b in members[x + 1 :]
    }
    uf = _UnionFind(len(texts))
    best: dict[int, tuple[int, float]] = {}
    pairs = 0
    for a, b in sorted(candidates):
        inter = len(np.intersect1d(sets[a], sets[b], assume_unique=True))
        jac = inter / (len(sets[a]) + len(sets[b]) - inter)
        if jac >= cfg.threshold:
            pairs += 1
            uf.union(a, b)
            if b not in best or jac > best[b][1]:
                best[b] = (a, jac)
    drops = []
    for i in range(len(texts)):
        root = uf.find(i)
        if root != i:
            partner, jac = best.get(i, (root, float("nan")))
            drops.append(
                Drop(i, "near_duplicate", f"cluster of {ids[root]}; Jaccard {jac:.3f} with {ids[partner]}")
            )
    log.info(
        "near-dedup: %d rows, %d candidate pairs, %d similar pairs, %d dropped",
        len(texts),
        len(candidates),
        pairs,
        len(drops),
    )
    return drops, pairs


def load_decontam_index(cfg: DecontamFilterConfig) -> DecontamIndex:
    """The configured index, or the default benchmarks' index built once and cached under .cache/decontam/."""
    if cfg.index_path:
        return DecontamIndex.load(cfg.index_path)
    sources, base = default_sources(), default_benchmarks_dir()
    cache = (
        REPO_ROOT
        / ".cache"
        / "decontam"
        / f"synthesis-{sources_fingerprint(sources, cfg.ngram_size, 10, base)}.npz"
    )
    if cache.is_file():
        return DecontamIndex.load(cache)
    log.info("building the benchmark decontamination index (cached at %s)", cache)
    index = DecontamIndex.build(sources, ngram_size=cfg.ngram_size, max_items_per_ngram=10, base_dir=base)
    index.save(cache)
    return index


def contaminated(
    texts: list[str], cfg: DecontamFilterConfig, index: DecontamIndex | None = None
) -> list[Drop]:
    if not cfg.enabled or not texts:
        return []
    index = index or load_decontam_index(cfg)
    drops = []
    for i, text in enumerate(texts):
        m = index.match(text, cfg.min_matches)
        if m is not None:
            drops.append(Drop(i, f"benchmark_overlap:{m.benchmark}", m.describe(index.ngram_size)))
    log.info("decontamination: %d of %d rows overlap a benchmark item", len(drops), len(texts))
    return drops


def edu_scores(texts: list[str], cfg: EduFilterConfig) -> tuple[np.ndarray, list[Drop]]:
    """Edu classifier scores for every row, and the rows under `min_score` (when set)."""
    from curation.edu.registry import ModelRegistry
    from curation.edu.scorer import EduScorer

    ref = ModelRegistry(cfg.registry).resolve(cfg.model)  # a version, a version folder, or None = promoted
    scores, _ = EduScorer(ref).score(texts)
    drops = (
        []
        if cfg.min_score is None
        else [
            Drop(i, "edu_below_min", f"edu_score {s:.2f} < {cfg.min_score}")
            for i, s in enumerate(scores)
            if s < cfg.min_score
        ]
    )
    return scores, drops
