"""`python -m training mixture validate|plan|build|report`: the researcher's mixture YAML, end to end."""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mixture", help="validate, plan and build a data mixture (YAML -> packed token shards)"
    )
    msub = p.add_subparsers(dest="mixture_command", required=True, metavar="ACTION")

    v = msub.add_parser(
        "validate", help="check a mixture YAML; lists every problem with its YAML path and line"
    )
    v.add_argument("file")
    v.set_defaults(func=validate_main)

    pl = msub.add_parser("plan", help="dry run: per phase/source available and assigned tokens, epochs")
    pl.add_argument("file")
    pl.add_argument("--plot", metavar="PNG", help="write a stacked-bar plot of the plan")
    pl.add_argument("--json", action="store_true", help="print the plan as JSON instead of a table")
    pl.set_defaults(func=plan_main)

    b = msub.add_parser("build", help="tokenize, blend and pack the mixture into DIR (incremental)")
    b.add_argument("file")
    b.add_argument("--output", required=True, metavar="DIR")
    b.add_argument(
        "--workers",
        type=int,
        default=1,
        help="tokenizer processes (1: in-process, the Rust encoder still uses every core)",
    )
    b.set_defaults(func=build_main)

    r = msub.add_parser("report", help="run a SQL report (sql/mixture_<name>.sql) over built mixtures")
    r.add_argument("name", help="composition | tokens_by_source | tokens_by_domain | tokens_by_edu | compare")
    r.add_argument("--build", required=True, metavar="DIR")
    r.add_argument("--other", metavar="DIR", help="second build (for `compare`)")
    r.set_defaults(func=report_main)


def _invalid_mixture_exits_1(
    action: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """An invalid mixture prints every problem (file, YAML path, line) on stdout and exits 1, instead of the
    CLI's one-line `error:` and exit 2 that a MixtureValidationError (a ValueError) would otherwise get."""

    @functools.wraps(action)
    def run(args: argparse.Namespace) -> int:
        from training.mixture.validate import MixtureValidationError

        try:
            return action(args)
        except MixtureValidationError as e:
            print(e)
            return 1

    return run


@_invalid_mixture_exits_1
def validate_main(args: argparse.Namespace) -> int:
    from training.mixture.validate import check_mixture

    cm = check_mixture(args.file)
    print(f"{args.file}: valid ({len(cm.config.phases)} phase(s), {len(cm.resolved)} source(s))")
    return 0


@_invalid_mixture_exits_1
def plan_main(args: argparse.Namespace) -> int:
    from training.mixture.plan import plan_table, plot_plan
    from training.mixture.validate import check_mixture

    cm = check_mixture(args.file)
    if args.json:
        print(json.dumps([p.to_dict() for p in cm.plans], indent=2))
    else:
        print(plan_table(cm.plans))
    if args.plot:
        print(f"plot: {plot_plan(cm.plans, args.plot)}")
    return 0


@_invalid_mixture_exits_1
def build_main(args: argparse.Namespace) -> int:
    from training.mixture.build import build
    from training.mixture.build_summary import summary

    print(summary(build(args.file, args.output, workers=args.workers)))
    return 0


def report_main(args: argparse.Namespace) -> int:
    from training.mixture.report import format_table, run_report

    print(format_table(run_report(args.name, args.build, args.other)))
    return 0
