"""Materialise a Spark frame once, in executor storage, with its lineage cut; release it explicitly.

Near-dedup reads most intermediates (signatures, bucket members, edges, shingles, each components round)
more than once. `persist()` keeps the rows but not the plan short: every later query re-plans the whole
chain of cached relations, and on Spark 4 with AQE that planning grew to tens of seconds per query by the
components stage (measured: one convergence check over 6,655 edges took 46 s on top of persisted frames,
0.5 s on top of a local checkpoint). `localCheckpoint` stores the rows in the block manager (memory,
spilling to disk) and restarts the plan from them. Like cached blocks, they are lost with their executor,
which fails the job rather than giving a wrong answer.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def checkpoint(frame):
    """The frame's rows, computed now (one Spark job), as a new frame whose plan starts from them."""
    return frame.localCheckpoint(eager=True)


def release(frame) -> None:
    """Drop the blocks of a frame returned by `checkpoint` now (otherwise Spark's context cleaner frees
    them only once the JVM garbage-collects the RDD)."""
    if frame is None:
        return
    try:
        frame._jdf.queryExecution().logical().rdd().unpersist(False)
    except Exception as exc:  # noqa: BLE001 -- not a checkpointed frame / not classic Spark: the cleaner frees it
        log.debug("could not release frame blocks: %s", exc)
