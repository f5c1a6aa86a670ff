"""`python -m curation gate`: the great-expectations quality gate of a dataset version, as the DAGs'
`validate` task runs it. Exit status: 0 passed, 1 failed (the failing expectations are printed), 2 a user
error (no such version, unknown kind, bad gate config)."""

from __future__ import annotations

import argparse

from curation.quality_gates import KINDS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gate", help="validate a dataset version with its quality suite (Data Docs + gate.json)"
    )
    p.add_argument(
        "--input",
        required=True,
        metavar="DIR",
        help="dataset version folder, a dataset root (its CURRENT version), a mixture build folder, or a"
        " table version iceberg:<table>[@<run id | snapshot id>] (the configured catalog)",
    )
    p.add_argument("--kind", choices=KINDS, help="suite to run (default: the manifest's dataset)")
    p.add_argument(
        "--engine",
        choices=("spark", "pandas"),
        default="spark",
        help="spark (default): validate where the data lies, memory independent of the corpus size; "
        "pandas: read the text-free columns into this process (small datasets)",
    )
    p.add_argument("--config", metavar="YAML", help="gate thresholds (curation.quality_gates.GateConfig)")
    p.add_argument(
        "--docs-dir", metavar="DIR", help="where gate.json and data_docs/ go (default <version>/quality)"
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from curation.quality_gates import run_gate
    from curation.quality_gates.config import load_gate_config

    cfg = load_gate_config(args.config)
    result = run_gate(args.input, kind=args.kind, cfg=cfg, docs_dir=args.docs_dir, engine=args.engine)
    print(result.summary())
    return 0 if result.success else 1
