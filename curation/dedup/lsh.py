"""LSH banding on Spark: (band, key) buckets -> candidate edges -> optional exact-Jaccard verification.

A bucket holds the documents whose signatures agree on one whole band. Small buckets yield all their
pairs (so verification can judge each pair); a bucket over `max_bucket_pairs` members is boilerplate or a
large family, and yields one star edge per member to the bucket's smallest id instead, which keeps the
edge count linear in the bucket size. Without verification every bucket is turned into star edges: the
connected components are the same as with all pairs, at a fraction of the edges.

Incremental mode marks rows from the persisted index `_old`; only buckets and edges that touch at least
one new document matter (old documents were deduplicated against each other when they were published).
"""

from __future__ import annotations


def band_rows(signatures):
    """Signature rows -> (id, band, key), one row per band of every document that has shingles."""
    from pyspark.sql import functions as F

    return signatures.where(F.col("n_shingles") > 0).select("id", F.posexplode("bands").alias("band", "key"))


def bucket_members(bands):
    """(id, band, key, _old) rows -> the rows of buckets that can yield an edge (more than one member, at
    least one new), with the bucket's size and root (smallest id, and whether the root is old).

    One shuffle: a window over (band, key) sees each bucket whole, so size, root and the filter need no
    second pass (a groupBy would have to be joined back to the band rows). Window buffers spill to disk,
    so an oversized bucket costs disk, not memory. The result is usually a small fraction of the band
    rows: the caller persists it once and derives both kinds of edges from that copy."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("band", "key")
    return (
        bands.select(
            "id",
            "band",
            "key",
            "_old",
            F.count("*").over(w).alias("size"),
            F.min(F.struct("id", "_old")).over(w).alias("_root"),
            F.max(F.when(~F.col("_old"), 1).otherwise(0)).over(w).alias("has_new"),
        )
        .where((F.col("size") > 1) & (F.col("has_new") == 1))
        .select(
            "id",
            "band",
            "key",
            "_old",
            "size",
            F.col("_root.id").alias("root"),
            F.col("_root._old").alias("_root_old"),
        )
    )


def candidate_edges(members, max_bucket_pairs: int, all_pairs: bool):
    """Bucket members (see `bucket_members`) -> distinct candidate edges (a, b) with a < b.

    all_pairs=False: star edges for every bucket. all_pairs=True: all pairs for buckets up to
    `max_bucket_pairs` members, star edges for larger ones. Edges between two old documents are dropped.
    """
    from pyspark.sql import functions as F

    star_members = members if not all_pairs else members.where(F.col("size") > max_bucket_pairs)
    edges = (
        star_members.where(F.col("id") != F.col("root"))
        .where(~(F.col("_old") & F.col("_root_old")))
        .select(F.least("id", "root").alias("a"), F.greatest("id", "root").alias("b"))
    )
    if all_pairs:
        small = members.where(F.col("size") <= max_bucket_pairs).select("band", "key", "id", "_old")
        left = small.select("band", "key", F.col("id").alias("a"), F.col("_old").alias("_a_old"))
        right = small.select("band", "key", F.col("id").alias("b"), F.col("_old").alias("_b_old"))
        pairs = (
            left.join(right, ["band", "key"])
            .where(F.col("a") < F.col("b"))
            .where(~(F.col("_a_old") & F.col("_b_old")))
            .select("a", "b")
        )
        edges = edges.unionByName(pairs)
    return edges.distinct()


def jaccard_expr(left: str, right: str):
    """Exact Jaccard of two arrays of distinct shingle hashes, in Spark SQL (no Python UDF).

    Fine for a projection that is written out as is. A frame filtered on it must be materialised first
    (see `score_edges`): Spark pushes the filter below the projection and evaluates the expression there
    again, and `array_intersect` is the expensive part of verification."""
    from pyspark.sql import functions as F

    # both arrays hold distinct values, so |A u B| = |A| + |B| - |A n B|: one hash set per pair, not two
    inter = F.size(F.array_intersect(left, right))
    union = F.size(left) + F.size(right) - inter
    return F.when(union > 0, inter / union).otherwise(F.lit(0.0))


def pair_similarity(pairs, left: str, right: str, shingles, broadcast: bool):
    """Rows of `pairs` (unique on (left, right)) + `similarity`, the exact Jaccard of the two documents'
    shingle sets; `shingles` is (id, shingles). Pairs whose documents have no set are dropped.

    With `broadcast` the pairs (ids only, small next to the sets) are sent to every task and each side's
    sets are picked from `shingles` where they lie, without shuffling the whole table; only the picked
    sets meet in one shuffle. Without it (cluster scale) the same joins run as shuffles."""
    from pyspark.sql import functions as F

    hinted = F.broadcast(pairs) if broadcast else pairs
    ids = hinted.select(left, right)
    lhs = shingles.select(F.col("id").alias(left), F.col("shingles").alias("_sl")).join(hinted, left)
    rhs = shingles.select(F.col("id").alias(right), F.col("shingles").alias("_sr")).join(ids, right)
    return lhs.join(rhs, [left, right]).select(*pairs.columns, jaccard_expr("_sl", "_sr").alias("similarity"))


def score_edges(edges, shingles, broadcast: bool):
    """Candidate edges (a, b) -> (a, b, similarity). The caller materialises the result before filtering
    on `similarity` (see `jaccard_expr`)."""
    return pair_similarity(edges.select("a", "b"), "a", "b", shingles, broadcast)
