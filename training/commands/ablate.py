"""`python -m training ablate run ABLATION.yaml` / `ablate search SEARCH.yaml`: proxy-model ablations and
RegMix-style mixture search (training/ablation/)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ablate", help="compare mixtures with tiny proxy models; search mixture weights (RegMix)"
    )
    asub = p.add_subparsers(dest="ablate_command", required=True, metavar="ACTION")
    r = asub.add_parser("run", help="build, train and evaluate every arm x seed (resumable), then the report")
    r.add_argument("file", help="ablation YAML")
    r.set_defaults(func=run_main)
    s = asub.add_parser(
        "search", help="sample mixtures, train a proxy per sample, fit weights -> loss, propose"
    )
    s.add_argument("file", help="search YAML")
    s.set_defaults(func=search_main)


def _exits_1_on_config_error(action):
    def run(args: argparse.Namespace) -> int:
        from training.ablation.config import ConfigError
        from training.mixture.validate import MixtureValidationError

        try:
            return action(args)
        except (ConfigError, MixtureValidationError) as e:
            print(e)
            return 1

    return run


@_exits_1_on_config_error
def run_main(args: argparse.Namespace) -> int:
    from training.ablation.runner import run_ablation

    report = run_ablation(args.file)
    print(report.summary())
    return 0


@_exits_1_on_config_error
def search_main(args: argparse.Namespace) -> int:
    from training.ablation.search import run_search

    print(run_search(args.file).summary())
    return 0
