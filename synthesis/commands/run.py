"""`python -m synthesis run --recipes YAML --output DIR [--shard i/n] [--backend ...]`: textbook-like
synthetic data from recipes (see synthesis/textbook/pipeline.py and configs/synthesis/recipes.yaml).

Rerunning the same command resumes: teacher answers already in DIR/_work/teacher-shard-*.sqlite are reused and
the version is rebuilt. With --shard i/n, n workers generate disjoint parts of the plan; each publishes
DIR/<name>-<hash>-shard-i-of-n/. Backend flags override the recipe file's `teacher:` section."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from synthesis.commands.generate import add_backend_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="generate, verify, dedup and publish synthetic textbook data from recipes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--recipes", required=True, type=Path, help="recipes YAML (configs/synthesis/recipes.yaml)"
    )
    p.add_argument("--output", required=True, type=Path, help="synthetic dataset root")
    p.add_argument("--shard", help="i/n: generate only this worker's disjoint share of the plan")
    p.add_argument("--run-id", help="version id (default: <name>-<config hash>[-shard-i-of-n])")
    p.add_argument("--sandbox-workers", type=int, default=2, help="code tests run in parallel")
    add_backend_options(p)
    p.set_defaults(func=run)


def load(args: argparse.Namespace):
    from synthesis.commands.generate import teacher_config
    from synthesis.textbook.recipes import load_recipes

    rs = load_recipes(args.recipes)
    teacher = teacher_config(rs.teacher.model_dump(mode="json", exclude_none=True), args, source=args.recipes)
    return rs.model_copy(update={"teacher": teacher})


def run(args: argparse.Namespace) -> int:
    from synthesis.teacher.backends.base import TeacherBackendError
    from synthesis.textbook.pipeline import run_synthesis
    from synthesis.textbook.plan import Shard

    logging.getLogger("httpx").setLevel(logging.WARNING)
    shard = Shard.parse(args.shard)
    rs = load(args)
    try:
        result = run_synthesis(
            rs,
            args.output,
            recipes_path=args.recipes,
            shard=shard,
            run_id=args.run_id,
            progress=not args.no_progress,
            sandbox_workers=args.sandbox_workers,
        )
    except TeacherBackendError as e:
        raise ValueError(str(e)) from None
    print(
        f"{'recipe':<28}{'in shard':>9}{'generated':>10}{'parsed':>7}{'checked':>9}{'verified':>9}"
        f"{'kept':>6}  "
        f"{'distinct3':>9} {'neardup':>8} {'topics':>8}"
    )
    for name, r in result.report["recipes"].items():
        d = r["diversity"]
        print(
            f"{name:<28}{r['in_shard']:>9}{r['generated']:>10}{r['parsed']:>7}{r['passed_checks']:>9}{r['verified']:>9}"
            f"{r['kept']:>6}  {d['distinct_3gram_ratio']!s:>9} {d['near_dup_rate']!s:>8} "
            f"{d['topics_kept']:>3}/{d['topics_available']:<4}"
        )
    for st in result.manifest.stages:
        print(
            f"  {st.stage:<11} in {st.rows_in:>5}  kept {st.rows_kept:>5}  dropped {st.rows_rejected:>4} "
            f"{st.reasons or ''}"
        )
    print(f"-> {result.version_dir} (report.md beside the data)")
    return 0
