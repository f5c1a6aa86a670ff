"""Connected components on Spark: the large-star / small-star algorithm (Kiveris et al., SoCC 2014).

Input: an undirected edge frame (a, b) of string node ids. Each round runs large-star then small-star;
both only ever point nodes at smaller ids, so the edge set shrinks towards stars around each component's
minimum id; once the edges form such stars the components are known. Only scalar counts reach the driver.
"""

from __future__ import annotations

import logging

from curation.dedup.frames import checkpoint, release

log = logging.getLogger(__name__)


def _undirected(edges):
    from pyspark.sql import functions as F

    return edges.select("a", "b").union(edges.select(F.col("b").alias("a"), F.col("a").alias("b")))


def large_star(edges):
    """For each node u with min neighbourhood id m (u included): link every larger neighbour v > u to m."""
    from pyspark.sql import functions as F

    both = _undirected(edges)
    mins = both.groupBy("a").agg(F.min("b").alias("m")).withColumn("m", F.least("m", "a"))
    return (
        both.join(mins, "a")
        .where(F.col("b") > F.col("a"))
        .select(F.col("b").alias("a"), F.col("m").alias("b"))
        .distinct()
    )


def small_star(edges):
    """For each node u with smaller neighbours N: link u and every v in N to min(N)."""
    from pyspark.sql import functions as F

    down = (
        edges.select(F.greatest("a", "b").alias("a"), F.least("a", "b").alias("b")).where("a != b").distinct()
    )
    mins = down.groupBy("a").agg(F.min("b").alias("m"))
    moved = (
        down.join(mins, "a")
        .where(F.col("b") != F.col("m"))
        .select(F.col("b").alias("a"), F.col("m").alias("b"))
    )
    return moved.union(mins.select("a", F.col("m").alias("b"))).distinct()


def _is_star_forest(edges) -> bool:
    """Edges all point from a larger to a smaller id (every round's output does). They form stars around
    each component's minimum, i.e. the algorithm has converged, iff no node has two outgoing edges and no
    edge target has an outgoing edge. Checking this instead of "the round changed nothing" saves the
    final confirmation round."""
    from pyspark.sql import functions as F

    out = edges.groupBy("a").agg(F.count("*").alias("deg"))
    forked = out.where(F.col("deg") > 1).select("a")
    chained = edges.select(F.col("b").alias("a")).join(out, "a", "left_semi")
    return forked.union(chained).limit(1).count() == 0


def connected_components(edges, max_iterations: int = 40):
    """(a, b) edges -> (id, cluster_id) for every node on an edge; cluster_id is the component's min id.

    Returns (frame, rounds); the frame is checkpointed (the caller releases it, see frames.py). Each round
    is checkpointed and the previous one released, so a round reads the last round's rows from executor
    storage and its plan stays one round deep. The input itself may already be stars (pairs only): then
    no round runs. Raises RuntimeError naming the limit if it has not converged by then.
    """
    from pyspark.sql import functions as F

    current = checkpoint(
        edges.select(F.greatest("a", "b").alias("a"), F.least("a", "b").alias("b")).where("a != b").distinct()
    )
    rounds = 0
    while not _is_star_forest(current):
        if rounds == max_iterations:
            release(current)
            raise RuntimeError(
                f"connected components did not converge in max_cc_iterations={max_iterations} rounds"
            )
        rounds += 1
        nxt = checkpoint(small_star(large_star(current)))
        release(current)
        current = nxt
        log.info("connected components: round %d done", rounds)
    # every edge is (member, component min); roots map to themselves
    roots = current.select(F.col("b").alias("id"), F.col("b").alias("cluster_id")).distinct()
    comps = checkpoint(
        current.select(F.col("a").alias("id"), F.col("b").alias("cluster_id")).unionByName(roots)
    )
    release(current)
    return comps, rounds
