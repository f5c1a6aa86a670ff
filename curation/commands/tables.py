"""`python -m curation tables ...`: datasets as Iceberg tables (curation/tables). The catalog and warehouse
come from --warehouse / --catalog-uri or PHI_ICEBERG_WAREHOUSE / PHI_ICEBERG_CATALOG_URI (see
curation/tables/catalog.py).

    tables import   --root DIR --table NAME   every version of a folder-contract dataset root, as snapshots
    tables versions --table NAME              the snapshot history (run id, operation, rows, current)
    tables rollback --table NAME --to REF     make a version (run id or snapshot id) current again (with the
                                              dataset root it mirrors: its CURRENT too, unless --table-only)
    tables remove-orphans --table NAME        delete data files no snapshot references (killed jobs' files)
    tables expire   --table NAME --keep N     retention: expire all but the newest N, current and pinned ones
    tables compact  --table NAME              rewrite small data files into large ones (same rows)
    tables pins     --table NAME              the pins (curation/tables/pins.py: what mixture builds read)
    tables pin      --table NAME --to REF --holder H    pin a version for H (e.g. run/<training run>)
    tables unpin    --table NAME (--holder H | --tag T) release pins
    tables publish  --table NAME --run-id R [--require-gate gate.json]
                                              write-audit-publish: fast-forward main to run R's staged
                                              snapshot (append --stage), tag it, drop its audit branch
    tables discard  --table NAME --run-id R   a failed audit: drop run R's staged snapshot (files -> orphans)
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tables", help="Iceberg tables: import a dataset root, list versions, roll back, clean up"
    )
    tsub = p.add_subparsers(dest="tables_command", required=True, metavar="ACTION")
    imp = _action(
        tsub, "import", "import every version of a folder-contract dataset root as snapshots", _import
    )
    imp.add_argument(
        "--root", required=True, metavar="DIR", help="dataset root (CURRENT + <version>/ folders)"
    )
    _action(tsub, "versions", "list the table's snapshots, oldest first", _versions)
    rb = _action(tsub, "rollback", "make a version current again (later ones stay in the history)", _rollback)
    rb.add_argument("--to", required=True, metavar="REF", help="run id (tag) or snapshot id")
    rb.add_argument(
        "--table-only",
        action="store_true",
        help="for a table a dataset root publishes to: move the table alone, not the root's CURRENT",
    )
    orph = _action(tsub, "remove-orphans", "delete data files no snapshot references", _remove_orphans)
    orph.add_argument(
        "--older-than-hours",
        type=float,
        default=24.0,
        help="only files last written before this many hours ago (default 24: spares running jobs)",
    )
    orph.add_argument("--dry-run", action="store_true", help="list, do not delete")
    exp = _action(tsub, "expire", "expire old snapshots (never the current nor a pinned one)", _expire)
    exp.add_argument("--keep", type=int, required=True, help="newest snapshots to keep")
    comp = _action(
        tsub, "compact", "rewrite the current version's small data files into large ones", _compact
    )
    comp.add_argument(
        "--target-rows", type=int, default=1_000_000, help="rows per rewritten file (default 1M)"
    )
    _action(tsub, "pins", "list the pinned snapshots", _pins)
    pin = _action(tsub, "pin", "pin a version so retention never expires it", _pin)
    pin.add_argument("--to", required=True, metavar="REF", help="run id (tag) or snapshot id")
    pin.add_argument("--holder", required=True, help="who depends on it, e.g. run/phi-mini-2026-12")
    pub = _action(tsub, "publish", "make a staged run (append --stage) the table's current version", _publish)
    pub.add_argument("--run-id", required=True, help="the staged run (its branch is audit/<run id>)")
    pub.add_argument(
        "--require-gate",
        metavar="GATE_JSON",
        help="refuse unless this gate verdict passed and names the staged snapshot",
    )
    dis = _action(tsub, "discard", "drop a staged run (a failed audit); its files become orphans", _discard)
    dis.add_argument("--run-id", required=True, help="the staged run")
    unpin = _action(tsub, "unpin", "release pins (of a holder, or one tag)", _unpin)
    who = unpin.add_mutually_exclusive_group(required=True)
    who.add_argument("--holder", help="release every pin of this holder")
    who.add_argument("--tag", help="release this pin tag")


def _action(tsub, name: str, help_: str, func) -> argparse.ArgumentParser:
    p = tsub.add_parser(name, help=help_)
    p.add_argument("--table", required=True, metavar="NAME", help="table name (in the configured namespace)")
    p.add_argument("--warehouse", help="local folder or s3://bucket/prefix (default: $PHI_ICEBERG_WAREHOUSE)")
    p.add_argument(
        "--catalog-uri",
        help="SQLAlchemy URL of the catalog (default: $PHI_ICEBERG_CATALOG_URI,"
        " else SQLite in a local warehouse)",
    )
    p.set_defaults(func=func)
    return p


def _warehouse(args: argparse.Namespace):
    from curation.tables import TablesConfig, Warehouse

    return Warehouse(TablesConfig.from_env(warehouse=args.warehouse, catalog_uri=args.catalog_uri))


def _import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from curation.tables.migrate import import_root

    if not Path(args.root).is_dir():
        raise FileNotFoundError(f"--root {args.root}: no such dataset root")
    for v in import_root(args.root, _warehouse(args), args.table):
        print(
            f"{v.version}  {v.mode:<9} snapshot {v.snapshot_id}  rows {v.rows}  files copied {v.files_copied}"
        )
    return 0


def _versions(args: argparse.Namespace) -> int:
    from curation.tables import versions
    from curation.tables.commit import audit_ref
    from curation.tables.wap import staged_runs

    table = _warehouse(args).table(args.table)
    for v in versions(table):
        mark = "*" if v["current"] else " "
        print(
            f"{mark} {v['snapshot_id']:>20}  {v['run_id'] or '-':<32} {v['operation']:<9}"
            f" rows {v['rows']:>10}"
            f"  files {v['files']:>6}  {v['committed_at']}"
        )
    for run_id, sid in staged_runs(table).items():
        print(f"S {sid:>20}  {run_id:<32} staged, awaiting audit: {audit_ref(run_id)}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from curation.tables.wap import publish_staged

    done = publish_staged(_warehouse(args).table(args.table), args.run_id, require_gate=args.require_gate)
    state = "published" if done.created else "already published"
    print(f"table {args.table}: run {done.run_id} {state}, current snapshot {done.snapshot_id}")
    return 0


def _discard(args: argparse.Namespace) -> int:
    from curation.tables.wap import discard_staged

    sid = discard_staged(_warehouse(args).table(args.table), args.run_id)
    what = f"staged snapshot {sid} dropped" if sid is not None else "nothing staged"
    print(f"table {args.table}: run {args.run_id}: {what}")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    """A table a dataset root publishes to (its writer, `phi.writer`) rolls back with the root, through
    `make_current`, so the table's current snapshot and the folder's CURRENT stay together."""
    from pathlib import Path

    from curation.contract import DatasetRoot
    from curation.tables import rollback, snapshot_id
    from curation.tables.catalog import ROOT_WRITER, WRITER_PROPERTY
    from curation.tables.publish import TableTarget
    from curation.tables.summary import RUN_ID

    warehouse = _warehouse(args)
    table = warehouse.table(args.table)
    writer = table.properties.get(WRITER_PROPERTY) or ""
    if args.table_only or not writer.startswith(ROOT_WRITER):
        sid = rollback(table, args.to)
        print(f"table {args.table}: current snapshot is now {sid} ({args.to})")
        return 0
    target = TableTarget(args.table, warehouse.config)
    root = DatasetRoot(Path(writer.removeprefix(ROOT_WRITER)), table=target)
    run_id = table.metadata.snapshot_by_id(snapshot_id(table, args.to)).summary.get(RUN_ID)
    if run_id is None or not (root.version_dir(run_id) / "manifest.json").is_file():
        raise FileNotFoundError(
            f"table {args.table} mirrors dataset root {root.root}, which has no version"
            f" {run_id or args.to!r}: nothing to roll its CURRENT back to"
            f" (--table-only moves the table alone)"
        )
    root.make_current(run_id)
    print(f"table {args.table} and dataset root {root.root}: current version is now {run_id}")
    return 0


def _remove_orphans(args: argparse.Namespace) -> int:
    import datetime as dt

    from curation.tables import remove_orphan_files

    removed = remove_orphan_files(
        _warehouse(args).table(args.table), dt.timedelta(hours=args.older_than_hours), dry_run=args.dry_run
    )
    for path in removed:
        print(path)
    print(f"{len(removed)} orphan file(s) {'found' if args.dry_run else 'removed'}")
    return 0


def _expire(args: argparse.Namespace) -> int:
    from curation.tables import expire_versions

    expired = expire_versions(_warehouse(args).table(args.table), keep=args.keep)
    print(f"table {args.table}: {len(expired)} snapshot(s) expired {expired}")
    return 0


def _pins(args: argparse.Namespace) -> int:
    from curation.tables.pins import pins

    found = pins(_warehouse(args).table(args.table))
    for tag, sid in found.items():
        print(f"{sid:>20}  {tag}")
    print(f"{len(found)} pin(s)")
    return 0


def _pin(args: argparse.Namespace) -> int:
    from curation.tables import snapshot_id
    from curation.tables.pins import pin

    table = _warehouse(args).table(args.table)
    print(pin(table, snapshot_id(table, args.to), args.holder))
    return 0


def _unpin(args: argparse.Namespace) -> int:
    from curation.tables.pins import unpin

    removed = unpin(_warehouse(args).table(args.table), holder=args.holder, tag=args.tag)
    print(f"{len(removed)} pin(s) removed: {removed}")
    return 0


def _compact(args: argparse.Namespace) -> int:
    from curation.tables.compact import compact

    done = compact(_warehouse(args).table(args.table), target_rows=args.target_rows)
    if done.snapshot_id is None:
        print(f"table {args.table}: nothing to compact")
    else:
        print(
            f"table {args.table}: {done.files_in} file(s) -> {done.files_out}, {done.rows} rows,"
            f" snapshot {done.snapshot_id} ({done.seconds:.1f} s)"
        )
    return 0
