"""`python -m curation run`: the curation job end to end."""

from __future__ import annotations

import argparse
import sys

from curation.progress import add_progress_argument


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="ingest crawl files and publish a clean, exact-deduplicated corpus",
        epilog="exit status: 0 published; 2 bad input or usage (e.g. a glob that matches nothing, a"
        " parquet file without a 'text' column), one 'error:' line; 3 the run kept no"
        " document, so nothing was published and CURRENT is unchanged (--allow-empty"
        " publishes the empty version)",
    )
    p.add_argument(
        "--input",
        action="append",
        required=True,
        metavar="GLOB",
        help="input file, folder or glob (local path, hdfs://, or object storage s3a:// / s3:// read "
        "through s3fs); repeatable",
    )
    p.add_argument(
        "--output", required=True, metavar="DIR", help="dataset root; the run lands in DIR/<run_id>/"
    )
    p.add_argument("--config", metavar="YAML", help="curation config (defaults when omitted)")
    p.add_argument("--run-id", help="version id; rerunning the same id replaces that version")
    p.add_argument("--master", help="Spark master (default: the active session, else local[*])")
    p.add_argument(
        "--note",
        action="append",
        default=[],
        metavar="TEXT",
        help="a note for the manifest's extra.notes (e.g. why a stage was skipped); repeatable",
    )
    p.add_argument(
        "--allow-empty",
        action="store_true",
        help="publish (and make CURRENT) a version even when the run kept no document",
    )
    p.add_argument(
        "--table",
        metavar="NAME",
        help="the Iceberg table the version is also published to (a snapshot tagged with the run id; rejects"
        " to NAME_rejects). Without it, the table named after the --output folder when PHI_ICEBERG_WAREHOUSE"
        " or PHI_ICEBERG_CATALOG_URI is set (every published dataset does this: curation/tables/publish.py)",
    )
    p.add_argument(
        "--warehouse",
        help="with --table: local folder or s3://bucket/prefix (default: $PHI_ICEBERG_WAREHOUSE)",
    )
    p.add_argument(
        "--catalog-uri",
        help="with --table: SQLAlchemy URL of the catalog (default: $PHI_ICEBERG_CATALOG_URI,"
        " else SQLite in a local warehouse)",
    )
    add_progress_argument(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from curation.config import load_config
    from curation.contract import DatasetRoot
    from curation.pipeline import EXIT_EMPTY_RUN, EmptyRunError, run, summary_table
    from curation.spark import get_spark
    from curation.tables.publish import live_table_line

    table = _table_target(args)
    cfg = load_config(args.config)
    spark = get_spark(master=args.master)
    try:
        result = run(
            args.input,
            args.output,
            cfg,
            run_id=args.run_id,
            spark=spark,
            notes=args.note,
            allow_empty=args.allow_empty,
            progress_interval=args.progress_interval,
            table=table,
        )
    except EmptyRunError as e:
        print(f"nothing published: {e}", file=sys.stderr)
        return EXIT_EMPTY_RUN
    m = result.manifest
    print(summary_table(result.counts))
    print(f"\n{m.rows} documents kept, {m.rejected_rows} rejected -> {result.version_dir}")
    line = live_table_line(DatasetRoot(args.output, table=table), m.version)
    if line:
        print(line)
    return 0


def _table_target(args: argparse.Namespace):
    """--table [--warehouse --catalog-uri] as the output root's table; None: the configured default."""
    if args.table is None:
        if args.warehouse or args.catalog_uri:
            raise ValueError("--warehouse / --catalog-uri name the catalog of --table NAME: give --table too")
        return None
    from curation.tables import TablesConfig
    from curation.tables.publish import TableTarget

    config = TablesConfig.from_env(warehouse=args.warehouse, catalog_uri=args.catalog_uri)
    return TableTarget(args.table, config)
