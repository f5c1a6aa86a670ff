"""`python -m curation prune`: delete old versions of a dataset root (operators only; no DAG prunes a corpus,
since mixtures pin corpus versions). Keeps the newest K and always the CURRENT version."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prune", help="delete the oldest versions of a dataset root beyond the newest K (never CURRENT)"
    )
    p.add_argument(
        "--root", required=True, metavar="DIR", help="dataset root (holds CURRENT and <version>/ folders)"
    )
    p.add_argument(
        "--keep", required=True, type=int, metavar="K", help="how many of the newest versions to keep (>= 1)"
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from curation.contract import DatasetRoot
    from curation.contract_prune import prune_versions

    if not Path(args.root).is_dir():
        raise FileNotFoundError(f"--root {args.root}: no such dataset root")
    removed = prune_versions(args.root, args.keep)
    for v in removed:
        print(f"removed  {v}")
    root = DatasetRoot(args.root)
    print(f"\n{len(removed)} version(s) removed; kept {root.versions()} (CURRENT {root.current()})")
    return 0
