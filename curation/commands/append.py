"""`python -m curation append`: add a night's curated delta (a `curation run` over the night's new inputs) to
the corpus.

    append --delta DIR --table NAME [--run-id ID]      Iceberg: one APPEND snapshot of the night's new rows
                                                      (deduplicated in Spark against the table's ids and text
                                                      hashes at its current snapshot;
                                                      curation/tables/nightly.py)
           [--stage]                                  ... staged on branch audit/<run id> for its gate, not
                                                      on main (write-audit-publish, curation/tables/wap.py)
    append --delta DIR --base DIR --output DIR --version V
                                                      folder contract: the next whole-corpus version
                                                      output/V = base + the new rows (curation/append.py)
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "append", help="append a night's curated delta to the corpus (Iceberg table or folder root)"
    )
    p.add_argument(
        "--delta", required=True, metavar="DIR", help="the night's curated version (folder or root)"
    )
    p.add_argument("--table", metavar="NAME", help="Iceberg table to append the night's new rows to")
    p.add_argument("--run-id", help="with --table: the snapshot's run id (default: the delta's version id)")
    p.add_argument(
        "--warehouse",
        help="with --table: local folder or s3://bucket/prefix (default: $PHI_ICEBERG_WAREHOUSE)",
    )
    p.add_argument(
        "--catalog-uri",
        help="with --table: SQLAlchemy URL of the catalog (default: $PHI_ICEBERG_CATALOG_URI,"
        " else SQLite in a local warehouse)",
    )
    p.add_argument(
        "--stage",
        action="store_true",
        help="with --table: write-audit-publish: commit the night on branch audit/<run id>, not main; gate"
        " iceberg:<table>@audit/<run id>, then `tables publish` (curation/tables/wap.py)",
    )
    p.add_argument("--master", help="with --table: Spark master (default: the active session, else local[*])")
    p.add_argument(
        "--base",
        metavar="DIR",
        help="folder contract: the published corpus version or root (omit for the first night)",
    )
    p.add_argument("--output", metavar="DIR", help="folder contract: dataset root the new version lands in")
    p.add_argument("--version", help="folder contract: the new version's id")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    folder = [o for o in ("base", "output", "version") if getattr(args, o)]
    if args.table and folder:
        raise ValueError(
            f"--table appends to an Iceberg table; --{', --'.join(folder)} belong to the folder"
            " contract: give one or the other"
        )
    if args.table:
        return _to_table(args)
    if not (args.output and args.version):
        raise ValueError("give --table NAME (Iceberg), or --output DIR and --version V (folder contract)")
    from curation.append import append_version

    final = append_version(args.delta, args.base, args.output, args.version)
    print(f"version {args.version} published -> {final}")
    return 0


def _to_table(args: argparse.Namespace) -> int:
    from curation.paths import TABLE_PREFIX
    from curation.spark import get_spark
    from curation.tables import TablesConfig, Warehouse
    from curation.tables.commit import audit_ref
    from curation.tables.nightly import append_night

    warehouse = Warehouse(TablesConfig.from_env(warehouse=args.warehouse, catalog_uri=args.catalog_uri))
    done = append_night(
        get_spark(master=args.master), args.delta, warehouse, args.table, run_id=args.run_id, stage=args.stage
    )
    where = f"staged as {TABLE_PREFIX}{args.table}@{audit_ref(done.run_id)}" if done.staged else "on main"
    if not done.created:
        print(
            f"night {done.run_id} is already in table {warehouse.identifier(args.table)} ({where}):"
            f" snapshot {done.snapshot_id}"
        )
        return 0
    rejected = ", ".join(f"{k} {v}" for k, v in done.rejected.items()) or "none"
    print(
        f"night {done.run_id} -> table {warehouse.identifier(args.table)} snapshot {done.snapshot_id}"
        f" (base {done.base_snapshot_id}, {where}): {done.delta_rows} rows = {done.appended} appended"
        f" + rejected {rejected}"
    )
    return 0
