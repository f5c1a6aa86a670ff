"""`python -m training run CONFIG [--phase phase1|phase2|all]`; under torchrun each rank runs the same
command: `torchrun --nproc_per_node=N -m training run CONFIG`."""

from __future__ import annotations

import argparse
import os

from training.config import PHASES, load_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="pretrain: phase 1 then phase 2 (resumes from the latest checkpoint)")
    p.add_argument("config", help="run config YAML (configs/train/*.yaml)")
    p.add_argument(
        "--phase",
        choices=[*PHASES, "all"],
        default="all",
        help="phase2 starts from phase 1's final checkpoint (default: all phases in the config)",
    )
    p.add_argument("--out-dir", help="override the config's out_dir")
    p.add_argument(
        "--fail-at-step",
        type=int,
        default=None,
        help="fault injection for resume tests: SIGKILL the process after this global step, "
        "before that step's checkpoint",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from training.trainer import run

    cfg = load_config(args.config, {"out_dir": args.out_dir} if args.out_dir else None)
    phases = [p for p in PHASES if p in cfg.phases] if args.phase == "all" else [args.phase]
    metrics = run(cfg, phases, fail_at_step=args.fail_at_step)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one summary
        print(f"metrics: {metrics}\nreport:  {cfg.out_dir / 'report.png'}")
    return 0
