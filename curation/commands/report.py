"""`python -m curation report`: the per-run HTML report (DuckDB queries from sql/, matplotlib plots)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="render the HTML report of a dataset version (sql/*.sql over DuckDB)")
    p.add_argument(
        "--input",
        required=True,
        metavar="DIR",
        help="dataset version folder, a dataset root (its CURRENT version), or a table version"
        " iceberg:<table>[@<run id | snapshot id>] (the configured catalog)",
    )
    p.add_argument("--output", metavar="DIR", help="report folder (default: <version>/report)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from curation.reports import build_report

    result = build_report(args.input, args.output)
    for s in result.sections:
        status = f"skipped ({s.skipped})" if s.skipped else f"{s.rows} rows" + (" + plot" if s.plot else "")
        print(f"{s.name:<32}{status}")
    print(f"\nreport: {result.html}")
    return 0
