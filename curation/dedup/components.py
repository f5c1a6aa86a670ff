"""Connected components on Spark: the large-star / small-star algorithm (Kiveris et al., SoCC 2014).

Input: an undirected edge frame (a, b) of string node ids. Each round runs large-star then small-star;
both only ever point nodes at smaller ids, so the edge set shrinks towards stars around each component's
minimum id. A round that leaves the edge set unchanged means convergence. Every round is written to
parquet and read back, so the query plan (and the lineage a failure would recompute) stays one round deep.
Only scalar counts reach the driver.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


def _undirected(edges):
    from pyspark.sql import functions as F

    return edges.select("a", "b").union(edges.select(F.col("b").alias("a"), F.col("a").alias("b")))


def large_star(edges):
    """For each node u with min neighbourhood id m (u included): link every larger neighbour v > u to m."""
    from pyspark.sql import functions as F

    both = _undirected(edges)
    mins = both.groupBy("a").agg(F.min("b").alias("m")).withColumn("m", F.least("m", "a"))
    return (both.join(mins, "a").where(F.col("b") > F.col("a"))
            .select(F.col("b").alias("a"), F.col("m").alias("b")).distinct())


def small_star(edges):
    """For each node u with smaller neighbours N: link u and every v in N to min(N)."""
    from pyspark.sql import functions as F

    down = edges.select(F.greatest("a", "b").alias("a"), F.least("a", "b").alias("b")).where("a != b").distinct()
    mins = down.groupBy("a").agg(F.min("b").alias("m"))
    moved = down.join(mins, "a").where(F.col("b") != F.col("m")).select(F.col("b").alias("a"), F.col("m").alias("b"))
    return moved.union(mins.select("a", F.col("m").alias("b"))).distinct()


def connected_components(spark, edges, work_dir: str | Path, max_iterations: int = 40):
    """(a, b) edges -> (id, cluster_id) for every node on an edge; cluster_id is the component's min id.

    Returns (frame, rounds). Raises RuntimeError naming the limit if it has not converged by then.
    """
    from pyspark.sql import functions as F

    work = Path(work_dir)
    current = edges.select("a", "b").where("a != b").distinct()
    path = work / "round-000"
    current.write.mode("overwrite").parquet(str(path))
    current = spark.read.parquet(str(path))
    for rnd in range(1, max_iterations + 1):
        nxt = small_star(large_star(current))
        path = work / f"round-{rnd:03d}"
        nxt.write.mode("overwrite").parquet(str(path))
        nxt = spark.read.parquet(str(path))
        # one job: is any edge in only one of the two rounds?
        changed = (current.withColumn("_prev", F.lit(True))
                   .join(nxt.withColumn("_next", F.lit(True)), ["a", "b"], "full_outer")
                   .where(F.col("_prev").isNull() | F.col("_next").isNull()).limit(1).count())
        shutil.rmtree(work / f"round-{rnd - 1:03d}", ignore_errors=True)
        current = nxt
        log.info("connected components: round %d %s", rnd, "converged" if not changed else "changed")
        if not changed:
            # converged: every edge is (member, component min); roots map to themselves
            members = current.groupBy("a").agg(F.min("b").alias("cluster_id")).withColumnRenamed("a", "id")
            roots = current.select(F.col("b").alias("id"), F.col("b").alias("cluster_id"))
            return members.unionByName(roots).distinct(), rnd
    raise RuntimeError(f"connected components did not converge in max_cc_iterations={max_iterations} rounds")
