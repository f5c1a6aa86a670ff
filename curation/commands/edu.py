"""`python -m curation edu train|evaluate|promote|list|score`: the educational-value classifier."""

from __future__ import annotations

import argparse
import json

from curation.cli_common import INPUT_HELP


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("edu", help="educational-value classifier: train, evaluate, promote, score")
    edu = p.add_subparsers(dest="edu_command", required=True, metavar="ACTION")

    def with_registry(q: argparse.ArgumentParser) -> argparse.ArgumentParser:
        q.add_argument(
            "--registry",
            metavar="DIR",
            help="model registry root (default $PHI_EDU_REGISTRY or <repo>/models/edu)",
        )
        return q

    t = with_registry(edu.add_parser("train", help="train on labels, evaluate on a held-out split, register"))
    t.add_argument(
        "--labels",
        action="append",
        default=[],
        metavar="PATH",
        help="label file (.jsonl[.gz]/.parquet/.csv with text + score|label|int_score) or a teacher "
        "label dataset from `synthesis label-edu`; repeatable",
    )
    t.add_argument(
        "--score-field", help="score column of the label files (default: first of score, label, int_score)"
    )
    t.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="PATH",
        help="reference-vs-random recipe: reference corpus (positives, score 1); repeatable",
    )
    t.add_argument("--random", metavar="PATH", help="web corpus to sample the negatives (score 0) from")
    t.add_argument("--reference-n", type=int, help="cap on reference positives (default: all)")
    t.add_argument(
        "--config", metavar="YAML", help="EduTrainConfig as YAML (fasttext params, split, threshold)"
    )
    t.add_argument("--threshold", type=float, help="override the config's threshold")
    t.add_argument("--max-score", type=int, help="override the config's max_score (e.g. 4 for FineWeb-C)")
    t.add_argument(
        "--human",
        metavar="JSONL",
        help="human binary quality labels for the agreement report "
        "(default: shared DCLM labels when present; 'none' to skip)",
    )
    t.add_argument("--promote", action="store_true", help="promote the new version right away")
    t.add_argument("--notes", help="free text for the model card")
    t.set_defaults(func=_train)

    e = with_registry(edu.add_parser("evaluate", help="evaluate a registered model on labels / human labels"))
    e.add_argument("--model", help="version id or folder (default: the promoted model)")
    e.add_argument("--labels", metavar="PATH", help="label file or teacher label dataset")
    e.add_argument("--score-field")
    e.add_argument("--max-score", type=int, default=5)
    e.add_argument(
        "--human", metavar="JSONL", help="human binary labels (default: shared DCLM labels; 'none')"
    )
    e.add_argument("--threshold", type=float, help="decision threshold (default: the model card's)")
    e.add_argument("--output", metavar="DIR", help="report folder (default: <version>/eval/<timestamp>)")
    e.set_defaults(func=_evaluate)

    pr = with_registry(edu.add_parser("promote", help="mark a version as the one scoring uses"))
    pr.add_argument("version")
    pr.set_defaults(func=_promote)

    ls = with_registry(edu.add_parser("list", help="registered versions and the promoted one"))
    ls.set_defaults(func=_list)

    s = with_registry(
        edu.add_parser("score", help="score a published dataset on Spark and publish the result")
    )
    s.add_argument("--input", required=True, metavar="PATH", help=INPUT_HELP)
    s.add_argument("--output", required=True, metavar="DIR", help="dataset root; lands in DIR/<run_id>/")
    s.add_argument("--model", help="version id or folder (default: the promoted model)")
    s.add_argument("--threshold", type=float, help="reject edu_score < threshold (default: keep all)")
    s.add_argument("--run-id")
    s.add_argument("--dataset", help="dataset name in the manifest (default: <input dataset>_edu)")
    s.add_argument("--master", help="Spark master (default: the active session, else local[*])")
    s.set_defaults(func=_score)


def _human(arg: str | None):
    from curation.edu.workflow import default_human_labels

    if arg == "none":
        return None
    return arg or default_human_labels()


def _train(args: argparse.Namespace) -> int:
    import yaml
    from pydantic import ValidationError

    from curation.edu.labels import combine, read_labels, reference_vs_random
    from curation.edu.normalize import normalize_batch
    from curation.edu.registry import ModelRegistry
    from curation.edu.train import EduTrainConfig
    from curation.edu.workflow import train_and_register

    raw = {}
    if args.config:
        try:
            with open(args.config) as f:
                raw = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ValueError(f"edu train config {args.config}: {e}") from e
    overrides = {
        k: v for k, v in (("threshold", args.threshold), ("max_score", args.max_score)) if v is not None
    }
    try:
        cfg = EduTrainConfig.model_validate({**raw, **overrides})
    except ValidationError as e:
        bad = "; ".join(
            f"{'.'.join(map(str, x['loc']))}: {x['msg']} (got {x.get('input')!r})" for x in e.errors()
        )
        raise ValueError(f"edu train config {args.config or '(defaults)'}: {bad}") from None
    if not args.labels and not args.reference:
        raise ValueError("give --labels and/or --reference with --random")
    if bool(args.reference) != bool(args.random):
        raise ValueError("the reference-vs-random recipe needs both --reference and --random")
    sets = [read_labels(p, args.score_field, cfg.max_score) for p in args.labels]
    if args.reference:
        sets.append(reference_vs_random(args.reference, args.random, args.reference_n, cfg.seed))
    labels = combine(sets, key=lambda t: normalize_batch([t], cfg.normalization)[0])
    registry = ModelRegistry(args.registry)
    ref = train_and_register(labels, cfg, registry, _human(args.human), notes=args.notes)
    if args.promote:
        registry.promote(ref.version)
    print(json.dumps(ref.card.metrics, indent=2))
    print(f"\nregistered {ref.version} -> {ref.dir}{' (promoted)' if args.promote else ''}")
    print(f"report: {ref.dir / 'eval' / 'validation' / 'report.md'}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from curation.contract import new_run_id
    from curation.edu.labels import read_labels
    from curation.edu.registry import ModelRegistry
    from curation.edu.scorer import EduScorer
    from curation.edu.workflow import evaluate, read_human_labels

    ref = ModelRegistry(args.registry).resolve(args.model)
    human_path = _human(args.human)
    if not args.labels and not human_path:
        raise ValueError("nothing to evaluate against: give --labels and/or --human")
    labels = read_labels(args.labels, args.score_field, args.max_score) if args.labels else None
    human = read_human_labels(human_path) if human_path else None
    out = args.output or ref.dir / "eval" / new_run_id("eval-")
    report = evaluate(
        EduScorer(ref),
        labels,
        human,
        args.threshold if args.threshold is not None else ref.card.threshold,
        out,
        args.labels or "none",
    )
    print(json.dumps({k: v for k, v in report.items() if k in ("labels", "human_agreement")}, indent=2))
    print(f"\nreport: {out}/report.md")
    return 0


def _promote(args: argparse.Namespace) -> int:
    from curation.edu.registry import ModelRegistry

    ref = ModelRegistry(args.registry).promote(args.version)
    print(f"promoted {ref.version} ({ref.dir})")
    return 0


def _list(args: argparse.Namespace) -> int:
    from curation.edu.registry import ModelRegistry, read_card

    reg = ModelRegistry(args.registry)
    promoted = reg.promoted()
    print(f"{'version':<36}{'labels':>8}  {'macro-F1':>8}  {'AUC(human)':>10}  sources")
    for v in reg.versions():
        card = read_card(reg.root / v)
        val = card.metrics.get("validation") or {}
        hum = card.metrics.get("human_agreement") or {}
        n = sum(card.label_counts.values())
        mark = " *" if v == promoted else ""
        print(
            f"{v + mark:<36}{n:>8}  {val.get('macro_f1', 'n/a')!s:>8}  {hum.get('auc', 'n/a')!s:>10}  "
            f"{', '.join(card.label_source_counts)}"
        )
    print(f"\npromoted: {promoted or 'none'} (registry {reg.root})")
    return 0


def _score(args: argparse.Namespace) -> int:
    from curation.edu.score import score_dataset
    from curation.pipeline import summary_table
    from curation.spark import get_spark

    spark = get_spark("phi-edu-score", master=args.master)
    result = score_dataset(
        spark, args.input, args.output, args.model, args.registry, args.threshold, args.run_id, args.dataset
    )
    m = result.manifest
    print(summary_table(m.stages))
    print(
        f"\nmodel {m.extra['edu_model_version']}: {m.rows} kept, {m.rejected_rows} rejected"
        f" -> {result.version_dir}"
    )
    return 0
