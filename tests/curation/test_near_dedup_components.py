"""Near-dedup building blocks on Spark: 64-bit band keys, bucket edges (all pairs vs star for an
oversized bucket), connected components to convergence (chains, cycles, pairs-only input), and the
checkpoint/release helper the step uses for its intermediates."""

from __future__ import annotations

import numpy as np
import pytest
from test_near_dedup_helpers import fixture_docs

from curation.dedup.minhash import shingle_hashes_batch
from curation.dedup.near import lsh_params
from curation.dedup.near_config import NearDedupConfig

pytestmark = pytest.mark.slow


def test_band_hashes_agree_exactly_when_the_band_bytes_agree():
    params = lsh_params(NearDedupConfig())
    texts = [d["text"] for d in fixture_docs()[:30]]
    texts += [texts[0].upper(), texts[1] + " one extra closing sentence for the last shingles"]
    sig = params.signatures(*shingle_hashes_batch(texts, params.ngram))
    keys, raw = params.band_hashes(sig), params.band_keys(sig)
    assert keys.dtype == np.int64 and keys.shape == (len(texts), params.bands)
    for i in range(len(texts)):
        for j in range(len(texts)):
            for b in range(params.bands):
                assert (keys[i, b] == keys[j, b]) == (raw[i, b].tobytes() == raw[j, b].tobytes())
    assert np.array_equal(keys, params.band_hashes(sig.copy()))  # a pure function of the values


def _edges(spark, pairs):
    return spark.createDataFrame(pairs, "a string, b string")


def _components(spark, pairs, max_iterations=40):
    from curation.dedup.components import connected_components
    from curation.dedup.frames import release

    comps, rounds = connected_components(_edges(spark, pairs), max_iterations)
    out = {r["id"]: r["cluster_id"] for r in comps.collect()}
    release(comps)
    return out, rounds


def test_components_of_chains_cycles_and_stars(spark):
    pairs = [
        ("e", "d"),
        ("d", "c"),
        ("c", "b"),
        ("b", "a"),  # a chain, fed from its far end
        ("x3", "x1"),
        ("x1", "x2"),
        ("x2", "x3"),  # a cycle
        ("m", "q"),
        ("m", "r"),
        ("m", "p"),  # a star around a non-minimum
        ("k", "k"),
    ]  # a self loop is no edge
    comps, rounds = _components(spark, pairs)
    assert comps == {
        **dict.fromkeys("abcde", "a"),
        **dict.fromkeys(["x1", "x2", "x3"], "x1"),
        **dict.fromkeys("mpqr", "m"),
    }
    assert rounds >= 1


def test_pairs_only_input_needs_no_round(spark):
    comps, rounds = _components(spark, [("b", "a"), ("c", "d")])
    assert comps == {"a": "a", "b": "a", "c": "c", "d": "c"} and rounds == 0


def test_components_give_up_at_the_iteration_limit(spark):
    with pytest.raises(RuntimeError, match="max_cc_iterations=1"):
        _components(spark, [(f"n{i}", f"n{i + 1}") for i in range(30)], max_iterations=1)


def test_oversized_bucket_gets_star_edges_small_bucket_all_pairs(spark):
    from pyspark.sql import functions as F

    from curation.dedup.lsh import bucket_members, candidate_edges

    rows = [(i, 0, 7) for i in ("d", "b", "a", "c")] + [(i, 1, 9) for i in ("z", "y", "x")] + [("s", 2, 5)]
    bands = spark.createDataFrame(rows, "id string, band int, key long").withColumn("_old", F.lit(False))
    members = bucket_members(bands)
    edges = {(r["a"], r["b"]) for r in candidate_edges(members, max_bucket_pairs=3, all_pairs=True).collect()}
    assert edges == {
        ("a", "b"),
        ("a", "c"),
        ("a", "d"),  # 4 members > 3: star on the smallest id
        ("x", "y"),
        ("x", "z"),
        ("y", "z"),
    }  # 3 members: every pair; "s" alone: none
    stars = {
        (r["a"], r["b"]) for r in candidate_edges(members, max_bucket_pairs=3, all_pairs=False).collect()
    }
    assert stars == {("a", "b"), ("a", "c"), ("a", "d"), ("x", "y"), ("x", "z")}


def test_checkpoint_release_frees_the_blocks(spark):
    from curation.dedup.frames import checkpoint, release

    jsc = spark.sparkContext._jsc.sc()
    before = jsc.getPersistentRDDs().size()
    frame = checkpoint(spark.range(100))
    assert jsc.getPersistentRDDs().size() == before + 1 and frame.count() == 100
    release(frame)
    assert jsc.getPersistentRDDs().size() == before
