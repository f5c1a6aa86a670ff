"""The synthetic_data DAG's logic: plan the shards of a `synthesis run`; the merge of the shard versions
(each published by its own `synthesis run --shard i/n`) into one candidate version, which the `synthetic`
gate validates before it is published, is `python -m synthesis merge` (synthesis/merge.py: a Spark job
whose cross-shard near-dedup is curation's NearDedup; `merge_shards` is re-exported here for callers in
process).

Idempotent: shards publish under `<root>/_shards/<version>/shard-i-of-n` (a rerun of a shard replaces
it and its teacher store resumes), and the merge rebuilds `<root>/_candidates/<version>` from scratch.
"""

from __future__ import annotations

from pathlib import Path

from synthesis.merge import CROSS_SHARD_REASON, CROSS_SHARD_STAGE, merge_shards

SHARDS = "_shards"
__all__ = ["CROSS_SHARD_REASON", "CROSS_SHARD_STAGE", "SHARDS", "merge_shards", "merge_args"]


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


def merge_args(shard_dirs: list[str], candidate_root: str | Path, version: str) -> list[str]:
    """`python -m synthesis merge` arguments of the DAG's merge task."""
    return ["merge", "--output", str(candidate_root), "--version", version, *map(str, shard_dirs)]
