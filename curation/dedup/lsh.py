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

    return (signatures.where(F.col("n_shingles") > 0)
            .select("id", F.posexplode("bands").alias("band", "key")))


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
    return (bands.select("id", "band", "key", "_old", F.count("*").over(w).alias("size"),
                         F.min(F.struct("id", "_old")).over(w).alias("_root"),
                         F.max(F.when(~F.col("_old"), 1).otherwise(0)).over(w).alias("has_new"))
            .where((F.col("size") > 1) & (F.col("has_new") == 1))
            .select("id", "band", "key", "_old", "size", F.col("_root.id").alias("root"),
                    F.col("_root._old").alias("_root_old")))


def candidate_edges(members, max_bucket_pairs: int, all_pairs: bool):
    """Bucket members (see `bucket_members`) -> distinct candidate edges (a, b) with a < b.

    all_pairs=False: star edges for every bucket. all_pairs=True: all pairs for buckets up to
    `max_bucket_pairs` members, star edges for larger ones. Edges between two old documents are dropped.
    """
    from pyspark.sql import functions as F

    star_members = members if not all_pairs else members.where(F.col("size") > max_bucket_pairs)
    edges = (star_members.where(F.col("id") != F.col("root"))
             .where(~(F.col("_old") & F.col("_root_old")))
             .select(F.least("id", "root").alias("a"), F.greatest("id", "root").alias("b")))
    if all_pairs:
        small = members.where(F.col("size") <= max_bucket_pairs).select("band", "key", "id", "_old")
        left = small.select("band", "key", F.col("id").alias("a"), F.col("_old").alias("_a_old"))
        right = small.select("band", "key", F.col("id").alias("b"), F.col("_old").alias("_b_old"))
        pairs = (left.join(right, ["band", "key"]).where(F.col("a") < F.col("b"))
                 .where(~(F.col("_a_old") & F.col("_b_old"))).select("a", "b"))
        edges = edges.unionByName(pairs)
    return edges.distinct()


def jaccard_expr(left: str, right: str):
    """Exact Jaccard of two arrays of distinct shingle hashes, in Spark SQL (no Python UDF)."""
    from pyspark.sql import functions as F

    # both arrays hold distinct values, so |A u B| = |A| + |B| - |A n B|: one hash set per pair, not two
    inter = F.size(F.array_intersect(left, right))
    union = F.size(left) + F.size(right) - inter
    return F.when(union > 0, inter / union).otherwise(F.lit(0.0))


def verify_edges(edges, shingles, threshold: float):
    """Keep the candidate edges whose documents' exact shingle Jaccard is >= threshold.

    `shingles` is (id, shingles). Returns (a, b, similarity).
    """
    from pyspark.sql import functions as F

    sa = shingles.select(F.col("id").alias("a"), F.col("shingles").alias("_sa"))
    sb = shingles.select(F.col("id").alias("b"), F.col("shingles").alias("_sb"))
    scored = edges.join(sa, "a").join(sb, "b").select("a", "b", jaccard_expr("_sa", "_sb").alias("similarity"))
    return scored.where(F.col("similarity") >= threshold)
