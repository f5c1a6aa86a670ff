"""`python -m synthesis merge --output ROOT --version V SHARD_DIR...`: one candidate version
`ROOT/<V>` from the shard versions of one `synthesis run --shard i/n` (synthesis/merge.py): a Spark job
whose cross-shard near-dedup is curation's. The synthetic_data DAG's merge task runs exactly this."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "merge",
        help="merge shard versions into one candidate (cross-shard near-dedup on Spark)",
        description=__doc__,
    )
    p.add_argument("shards", nargs="+", type=Path, metavar="SHARD_DIR", help="published shard versions")
    p.add_argument("--output", required=True, type=Path, help="candidates root (e.g. ROOT/_candidates)")
    p.add_argument("--version", required=True, help="version id of the merged candidate")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from curation.contract import Manifest
    from synthesis.merge import merge_shards

    final = merge_shards(args.shards, args.output, args.version)
    m = Manifest.read(final)
    cross = m.stages[-1]
    print(f"{'shards':<28}{len(args.shards)}")
    print(f"{'rows in':<28}{cross.rows_in}")
    print(f"{'near duplicates dropped':<28}{cross.rows_rejected}")
    print(f"{'rows kept':<28}{m.rows}")
    print(f"\ncandidate: {final}")
    return 0
