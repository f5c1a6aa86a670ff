"""Evaluation metrics for the edu classifier (pure functions over label and score arrays).

- against edu labels (validation split, or any label set): macro-F1 and accuracy of edu_int, the
  confusion matrix, F1 of the binary keep decision (edu_score >= threshold vs label >= threshold),
  Spearman between edu_score and the label, and the majority-class baseline for the same documents;
- against the DCLM human quality labels: AUC of edu_score and accuracy of the keep decision. Those labels
  judge "good pretraining text", not educational value, so this is agreement, not ground truth.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np


def _finite(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 4)


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rho, None when either side is constant (undefined)."""
    from scipy.stats import spearmanr

    if len(set(a)) < 2 or len(set(b)) < 2:
        return None
    return _finite(spearmanr(a, b).statistic)


def label_metrics(
    labels: Sequence[int],
    edu_score: Sequence[float],
    edu_int: Sequence[int],
    threshold: float,
    majority_class: int | None = None,
) -> dict[str, Any]:
    """Metrics of predictions against integer edu labels. `majority_class` (from the training split)
    gives the baseline; by default the majority of `labels` itself."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score

    y = np.asarray(labels, dtype=np.int64)
    pred = np.asarray(edu_int, dtype=np.int64)
    score = np.asarray(edu_score, dtype=np.float64)
    if len(y) == 0:
        raise ValueError("no labelled documents to evaluate")
    classes = sorted(set(y.tolist()) | set(pred.tolist()))
    majority = majority_class if majority_class is not None else Counter(y.tolist()).most_common(1)[0][0]
    base = np.full_like(y, majority)
    y_bin, pred_bin = y >= threshold, score >= threshold
    kw = {"zero_division": 0}
    return {
        "n": len(y),
        "label_counts": {str(k): int(v) for k, v in sorted(Counter(y.tolist()).items())},
        "pred_counts": {str(k): int(v) for k, v in sorted(Counter(pred.tolist()).items())},
        "macro_f1": _finite(f1_score(y, pred, labels=classes, average="macro", **kw)),
        "accuracy": _finite(accuracy_score(y, pred)),
        "spearman": spearman(y.tolist(), score.tolist()),
        "mean_abs_error": _finite(float(np.mean(np.abs(score - y)))),
        "threshold": threshold,
        "binary": {
            "positives_true": int(y_bin.sum()),
            "positives_pred": int(pred_bin.sum()),
            "f1": _finite(f1_score(y_bin, pred_bin, **kw)),
            "precision": _finite(precision_score(y_bin, pred_bin, **kw)),
            "recall": _finite(recall_score(y_bin, pred_bin, **kw)),
        },
        "confusion": {
            "classes": classes,
            "matrix": confusion_matrix(y, pred, labels=classes).tolist(),
        },  # rows = label
        "baseline_majority": {
            "class": int(majority),
            "macro_f1": _finite(f1_score(y, base, labels=classes, average="macro", **kw)),
            "accuracy": _finite(accuracy_score(y, base)),
        },
    }


def human_agreement(human: Sequence[int], edu_score: Sequence[float], threshold: float) -> dict[str, Any]:
    """Agreement of edu_score with binary human quality labels (1 = good): AUC, accuracy of the keep
    decision at the threshold, and rates. Not ground truth for educational value."""
    from sklearn.metrics import accuracy_score, roc_auc_score

    y = np.asarray(human, dtype=np.int64)
    score = np.asarray(edu_score, dtype=np.float64)
    if set(y.tolist()) - {0, 1}:
        raise ValueError(f"human labels must be 0/1, got values {sorted(set(y.tolist()))}")
    keep = score >= threshold
    return {
        "n": len(y),
        "human_positive_rate": _finite(float(y.mean())),
        "auc": _finite(roc_auc_score(y, score)) if len(set(y.tolist())) == 2 else None,
        "spearman": spearman(y.tolist(), score.tolist()),
        "threshold": threshold,
        "keep_rate": _finite(float(keep.mean())),
        "accuracy_at_threshold": _finite(accuracy_score(y, keep.astype(np.int64))),
        "mean_score_human_good": _finite(float(score[y == 1].mean())) if (y == 1).any() else None,
        "mean_score_human_bad": _finite(float(score[y == 0].mean())) if (y == 0).any() else None,
    }
