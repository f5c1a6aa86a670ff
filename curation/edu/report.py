"""The evaluation report on disk: report.json (every figure), report.md (readable), confusion.png and
histogram.png. Plots use matplotlib's Agg backend (no display on workers or CI)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def plot_confusion(confusion: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=100)
    ConfusionMatrixDisplay(np.asarray(confusion["matrix"]), display_labels=confusion["classes"]).plot(
        ax=ax, colorbar=False, cmap="Blues", values_format="d"
    )
    ax.set_xlabel("predicted edu_int")
    ax.set_ylabel("label")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_histogram(series: dict[str, Sequence[float]], threshold: float, path: Path, title: str) -> None:
    """edu_score distribution, one series per label value (or per human label)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    values = [np.asarray(v, dtype=float) for v in series.values()]
    lo = min((v.min() for v in values if len(v)), default=0.0)
    hi = max((v.max() for v in values if len(v)), default=1.0)
    bins = np.linspace(min(lo, threshold), max(hi, threshold) + 1e-9, 31)
    ax.hist(values, bins=bins, stacked=True, label=list(series.keys()))
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold}")
    ax.set_xlabel("edu_score")
    ax.set_ylabel("documents")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def by_label(labels: Sequence[int], scores: Sequence[float], prefix: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for lab, s in sorted(zip(labels, scores), key=lambda t: t[0]):
        out.setdefault(f"{prefix}{lab}", []).append(float(s))
    return out


def _fmt(v: Any) -> str:
    return "n/a" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def render_markdown(report: dict[str, Any], images: dict[str, str]) -> str:
    lines = [
        f"# Edu classifier evaluation: {report['model_version']}",
        "",
        f"- labels: {report.get('labels_source', 'n/a')}",
        f"- created: {report['created_at']}",
        "",
    ]
    m = report.get("labels")
    if m:
        b, base = m["binary"], m["baseline_majority"]
        lines += [
            "## Against the edu labels",
            "",
            "| metric | model | majority baseline |",
            "|---|---|---|",
            f"| macro-F1 | {_fmt(m['macro_f1'])} | {_fmt(base['macro_f1'])} (class {base['class']}) |",
            f"| accuracy | {_fmt(m['accuracy'])} | {_fmt(base['accuracy'])} |",
            f"| Spearman(edu_score, label) | {_fmt(m['spearman'])} | n/a |",
            f"| mean abs error | {_fmt(m['mean_abs_error'])} | |",
            (
                f"| binary F1 at {m['threshold']} (P / R) | {_fmt(b['f1'])} ({_fmt(b['precision'])} / "
                f"{_fmt(b['recall'])}) | |"
            ),
            "",
            f"Documents: {m['n']}; labels {m['label_counts']}; predictions {m['pred_counts']}.",
            "",
        ]
    h = report.get("human_agreement")
    if h:
        lines += [
            "## Agreement with DCLM human quality labels (binary quality, not edu: agreement only)",
            "",
            "| AUC | Spearman | keep rate | accuracy at threshold | mean score good / bad |",
            "|---|---|---|---|---|",
            (
                f"| {_fmt(h['auc'])} | {_fmt(h['spearman'])} | {_fmt(h['keep_rate'])} | "
                f"{_fmt(h['accuracy_at_threshold'])} | {_fmt(h['mean_score_human_good'])} / "
                f"{_fmt(h['mean_score_human_bad'])} |"
            ),
            "",
            f"Documents: {h['n']}.",
            "",
        ]
    for caption, file in images.items():
        lines += [f"![{caption}]({file})", ""]
    return "\n".join(lines)


def write_report(
    out_dir: str | Path,
    report: dict[str, Any],
    label_scores: tuple[Sequence[int], Sequence[float]] | None = None,
    human_scores: tuple[Sequence[int], Sequence[float]] | None = None,
) -> Path:
    """Write report.json, the plots and report.md into `out_dir`; returns the markdown path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images: dict[str, str] = {}
    version = report["model_version"]
    m = report.get("labels")
    if m and label_scores is not None:
        plot_confusion(m["confusion"], out / "confusion.png", f"{version}: confusion")
        images["confusion matrix"] = "confusion.png"
        plot_histogram(
            by_label(*label_scores, "label "),
            m["threshold"],
            out / "histogram.png",
            f"{version}: edu_score by label",
        )
        images["edu_score histogram by label"] = "histogram.png"
    h = report.get("human_agreement")
    if h and human_scores is not None:
        plot_histogram(
            by_label(*human_scores, "human "),
            h["threshold"],
            out / "histogram_human.png",
            f"{version}: edu_score by DCLM human label",
        )
        images["edu_score histogram by human quality label"] = "histogram_human.png"
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    md = out / "report.md"
    md.write_text(render_markdown(report, images))
    log.info("evaluation report written to %s", md)
    return md
