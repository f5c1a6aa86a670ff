"""`python -m synthesis label-edu --input DATASET --output DIR [--n N] [--config YAML] [backend flags]`:
teacher labels for the edu classifier (see synthesis/label_edu.py). Rerunning the same command resumes:
answers already in DIR/teacher.sqlite are not generated again. Train on the result with
`python -m curation edu train --labels DIR`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import yaml
from pydantic import ValidationError

from synthesis.commands.generate import add_backend_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "label-edu",
        help="rate sampled documents 0-5 for educational value with the teacher",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--input",
        required=True,
        type=Path,
        help="curated dataset (root or version), a table version iceberg:<table>[@<run id | snapshot id>],"
        " or a .parquet/.jsonl[.gz]/.csv file with `text`",
    )
    p.add_argument(
        "--output", required=True, type=Path, help="label dataset root; the run lands in DIR/<run_id>/"
    )
    p.add_argument("--config", type=Path, help="YAML LabelEduConfig (teacher:, n:, seed:, structured:, ...)")
    p.add_argument("--n", type=int, help="documents to label (overrides the config)")
    p.add_argument("--seed", type=int, help="sampling seed (overrides the config)")
    p.add_argument("--structured", action="store_true", help="ask for schema-constrained JSON answers")
    p.add_argument("--store", type=Path, help="teacher result store (default DIR/teacher.sqlite)")
    p.add_argument("--run-id", help="version id of the published label dataset")
    add_backend_options(p)
    p.set_defaults(func=run)


def load_config(args: argparse.Namespace):
    from synthesis.commands.generate import teacher_config
    from synthesis.label_edu import LabelEduConfig

    raw = {}
    if args.config:
        if not args.config.is_file():
            raise FileNotFoundError(f"label-edu config {args.config} does not exist")
        raw = yaml.safe_load(args.config.read_text()) or {}
    overrides = {k: v for k, v in (("n", args.n), ("seed", args.seed)) if v is not None}
    if args.structured:
        overrides["structured"] = True
    try:
        cfg = LabelEduConfig.model_validate({**raw, **overrides})
    except ValidationError as e:
        bad = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        raise ValueError(f"label-edu config {args.config or '(defaults)'}: {bad}") from None
    # backend flags override the config's teacher section, exactly as in `synthesis generate`
    teacher = teacher_config(cfg.teacher.model_dump(mode="json", exclude_none=True), args, source=args.config)
    return cfg.model_copy(update={"teacher": teacher})


def run(args: argparse.Namespace) -> int:
    from synthesis.label_edu import run_label_edu
    from synthesis.teacher.backends.base import TeacherBackendError

    logging.getLogger("httpx").setLevel(logging.WARNING)
    cfg = load_config(args)
    try:
        result = run_label_edu(
            args.input, args.output, cfg, store=args.store, run_id=args.run_id, progress=not args.no_progress
        )
    except TeacherBackendError as e:
        raise ValueError(str(e)) from None
    m = result.manifest
    stage = m.stages[0]
    print(result.report.summary())
    print(
        f"{'documents':<24}{stage.rows_in:>8}\n"
        f"{'labelled':<24}{stage.rows_kept:>8}  scores {m.extra['score_counts']}"
    )
    print(f"{'unusable':<24}{stage.rows_rejected:>8}  {stage.reasons or ''}")
    print(
        f"{'teacher':<24}{m.extra['teacher_model']} ({m.extra['teacher_backend']}), "
        f"prompt {m.extra['prompt_version']}"
    )
    print(f"-> {result.version_dir}\ntrain: python -m curation edu train --labels {args.output}")
    return 0
