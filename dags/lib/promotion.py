"""Promotion of a newly trained edu model: it must clear the floors on its own card AND beat the promoted
(incumbent) model by a margin on the same held-out evaluation, or the incumbent stays.

"The same held-out evaluation" is the candidate's validation split, rebuilt from the run's label files
exactly as training split them (same label reading and de-duplication, same normalisation, seed and
fraction: curation.edu.train.split_side), and both models score it. Comparing the two cards' own
figures would compare two different validation sets. The incumbent may have been trained on some of
these documents (an earlier run's labels), which can only flatter it: the rule errs towards keeping it.

The verdict, with both models' held-out scores, is written beside the candidate
(`eval/promotion-<run>.json`) and appended to the registry's `promotions.jsonl`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from dags.lib.edu import check_floors

#: metrics a promotion may be decided on (all: higher is better)
METRICS = ("macro_f1", "spearman", "binary_f1")


def heldout_labels(label_files: list[str], card):
    """The candidate's validation split, rebuilt from its label files with its card's training config."""
    import pyarrow as pa

    from curation.edu.labels import LabelSet, combine, read_labels
    from curation.edu.normalize import normalize_batch
    from curation.edu.train import EduTrainConfig, split_side

    cfg = EduTrainConfig.model_validate({k: v for k, v in card.params.items() if k != "train_seconds"})
    labels = combine(
        [read_labels(p, None, cfg.max_score) for p in label_files],
        key=lambda t: normalize_batch([t], cfg.normalization)[0],
    )
    normalized = normalize_batch(labels.texts, cfg.normalization)
    side = [bool(n) and split_side(n, cfg.seed, cfg.validation_fraction) for n in normalized]
    held = LabelSet(labels.table.filter(pa.array(side)), labels.sources)
    if not len(held):
        raise ValueError(f"the held-out split of {label_files} is empty: cannot compare models")
    return held


def heldout_scores(ref, held) -> dict:
    """One model's figures on the held-out labels (same metric code as its card's)."""
    from curation.edu.evaluate import label_metrics
    from curation.edu.scorer import EduScorer

    scores, ints = EduScorer(ref).score(held.texts)
    m = label_metrics(held.scores, scores, ints, ref.card.threshold)
    return {"n": m["n"], "macro_f1": m["macro_f1"], "spearman": m["spearman"], "binary_f1": m["binary"]["f1"]}


def _number(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not math.isnan(v) else None


def promotion_verdict(
    registry: str | Path,
    model: str,
    run: str,
    floors: dict[str, float | None],
    label_files: list[str],
    margin: float,
    metric: str = "macro_f1",
) -> dict:
    """Floors first (a model below them fails: `misses`), then the incumbent: promotable only when the
    candidate's held-out `metric` >= the incumbent's + `margin` on the same split. No incumbent yet (or
    the candidate already is it): the floors decide."""
    from curation.edu.registry import ModelRegistry

    if metric not in METRICS:
        raise ValueError(f"promotion metric {metric!r}; known: {list(METRICS)}")
    reg = ModelRegistry(registry)
    ref = reg.resolve(model)
    incumbent = reg.promoted()
    misses = check_floors(ref.card.metrics, floors)
    verdict = {
        "model": model,
        "run": run,
        "floors": floors,
        "metrics": ref.card.metrics,
        "misses": misses,
        "incumbent": incumbent,
        "metric": metric,
        "margin": margin,
        "heldout": None,
    }
    beats, reason = not misses, "; ".join(misses) or "clears the floors; no incumbent"
    if incumbent is not None and incumbent != model:
        held = heldout_labels(label_files, ref.card)
        scores = {model: heldout_scores(ref, held), incumbent: heldout_scores(reg.resolve(incumbent), held)}
        verdict["heldout"] = {"label_files": list(label_files), "n": len(held), "scores": scores}
        new, old = _number(scores[model][metric]), _number(scores[incumbent][metric])
        gain = None if new is None or old is None else new - old
        verdict["gain"] = gain
        if not misses:
            beats = gain is not None and gain >= margin
            reason = (
                f"held-out {metric}: {model} {new} vs incumbent {incumbent} {old} "
                f"(gain {gain}, margin {margin})"
            )
    verdict.update(promotable=beats and not misses, reason=reason)
    out = ref.dir / "eval" / f"promotion-{run}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(verdict, indent=2))
    with open(reg.root / "promotions.jsonl", "a") as f:
        f.write(json.dumps(verdict) + "\n")
    return verdict
