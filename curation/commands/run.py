"""`python -m curation run`: the curation job end to end."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="ingest crawl files and publish a clean, exact-deduplicated corpus")
    p.add_argument("--input", action="append", required=True, metavar="GLOB",
                   help="input file, folder or glob (local path, hdfs://, or object storage s3a:// / s3:// read through s3fs); repeatable")
    p.add_argument("--output", required=True, metavar="DIR", help="dataset root; the run lands in DIR/<run_id>/")
    p.add_argument("--config", metavar="YAML", help="curation config (defaults when omitted)")
    p.add_argument("--run-id", help="version id; rerunning the same id replaces that version")
    p.add_argument("--master", help="Spark master (default: the active session, else local[*])")
    p.add_argument("--note", action="append", default=[], metavar="TEXT",
                   help="a note for the manifest's extra.notes (e.g. why a stage was skipped); repeatable")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from curation.config import load_config
    from curation.pipeline import run, summary_table
    from curation.spark import get_spark

    cfg = load_config(args.config)
    spark = get_spark(master=args.master)
    result = run(args.input, args.output, cfg, run_id=args.run_id, spark=spark, notes=args.note)
    m = result.manifest
    print(summary_table(result.counts))
    print(f"\n{m.rows} documents kept, {m.rejected_rows} rejected -> {result.version_dir}")
    return 0
