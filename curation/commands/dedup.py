"""`python -m curation dedup`: near-duplicate removal over a published dataset (optionally incremental)."""

from __future__ import annotations

import argparse

from curation.cli_common import INPUT_HELP
from curation.progress import add_progress_argument


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dedup", help="MinHash-LSH near-duplicate removal of a published dataset")
    p.add_argument("--input", required=True, metavar="PATH", help=INPUT_HELP)
    p.add_argument(
        "--output", required=True, metavar="DIR", help="dataset root; the run lands in DIR/<run_id>/"
    )
    p.add_argument(
        "--config",
        metavar="YAML",
        help="curation config; its `near_dedup` section is used (defaults when omitted)",
    )
    p.add_argument(
        "--index",
        metavar="DIR",
        help="incremental mode: band index of the published corpus (overrides near_dedup.index_dir)",
    )
    p.add_argument("--run-id", help="version id; rerunning the same id replaces that version")
    p.add_argument("--master", help="Spark master (default: the active session, else local[*])")
    add_progress_argument(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from curation.config import load_config
    from curation.dedup.job import run_near_dedup
    from curation.pipeline import summary_table
    from curation.spark import get_spark

    cfg = load_config(args.config).near_dedup
    if args.index:
        cfg = cfg.model_copy(update={"index_dir": args.index})
    spark = get_spark(master=args.master)
    result = run_near_dedup(
        args.input,
        args.output,
        cfg,
        run_id=args.run_id,
        spark=spark,
        progress_interval=args.progress_interval,
    )
    m = result.manifest
    print(summary_table(m.stages))
    stats = m.extra.get("near_dedup", {})
    print(
        f"\n{m.rows} documents kept, {m.stages[-1].rows_rejected} near duplicates removed"
        f" ({stats.get('clusters', 0)} clusters, {stats.get('candidate_pairs', 0)} candidate pairs,"
        f" {stats.get('verified_pairs', 'n/a')} verified) -> {result.version_dir}"
    )
    return 0
