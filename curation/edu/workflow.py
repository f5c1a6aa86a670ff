"""The edu classifier's end-to-end actions, used by the CLI and the DAGs: train -> evaluate -> register,
evaluate a registered model, promote. I/O lives here; the pieces it calls are pure."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

from curation.contract import code_version, new_run_id, now_iso
from curation.edu.evaluate import human_agreement, label_metrics
from curation.edu.labels import LabelSet, read_label_file
from curation.edu.registry import ModelCard, ModelRef, ModelRegistry, file_sha256
from curation.edu.report import write_report
from curation.edu.scorer import EduScorer
from curation.edu.train import EduTrainConfig, train
from curation.paths import shared_data_dir

log = logging.getLogger(__name__)


def default_human_labels() -> Path | None:
    """The DCLM human quality labels from the shared data, when present."""
    p = shared_data_dir() / "quality_labels_dclm_human" / "majority_data_disputed.jsonl"
    return p if p.is_file() else None


def read_human_labels(path: str | Path) -> LabelSet:
    return read_label_file(path, score_field="label", max_score=1)


def evaluate(
    scorer: EduScorer,
    labels: LabelSet | None,
    human: LabelSet | None,
    threshold: float,
    out_dir: str | Path,
    labels_source: str,
    majority_class: int | None = None,
) -> dict[str, Any]:
    """Score the labelled documents (and the human-labelled ones), compute metrics, write the report."""
    report: dict[str, Any] = {
        "model_version": scorer.version,
        "created_at": now_iso(),
        "labels_source": labels_source,
    }
    label_scores = human_scores = None
    if labels is not None and len(labels):
        s, i = scorer.score(labels.texts)
        report["labels"] = label_metrics(labels.scores, s, i, threshold, majority_class)
        label_scores = (labels.scores, s.tolist())
    if human is not None and len(human):
        s, _ = scorer.score(human.texts)
        report["human_agreement"] = human_agreement(human.scores, s, threshold)
        report["human_agreement"]["source"] = human.sources
        human_scores = (human.scores, s.tolist())
    write_report(out_dir, report, label_scores, human_scores)
    return report


def train_and_register(
    labels: LabelSet,
    cfg: EduTrainConfig,
    registry: ModelRegistry,
    human_labels: str | Path | None = None,
    notes: str | None = None,
) -> ModelRef:
    """Train on `labels`, evaluate on the held-out split (and against human labels), register the
    version with its card and report. Returns the new (not yet promoted) model."""
    version = new_run_id("edu-")
    staging = registry.staging_dir()
    try:
        result = train(labels, cfg, staging)
        card = ModelCard(
            version=version,
            created_at=now_iso(),
            code_version=code_version(),
            model_sha256=file_sha256(result.model_path),
            model_bytes=result.model_path.stat().st_size,
            classes=sorted(set(result.train.column("score").to_pylist())),
            threshold=cfg.threshold,
            normalization=cfg.normalization,
            label_sources=labels.sources,
            label_counts={str(k): v for k, v in labels.counts().items()},
            label_source_counts=dict(Counter(labels.table.column("label_source").to_pylist())),
            label_rejects=labels.rejects,
            data_hash=result.data_hash,
            split={
                "train": result.train.num_rows,
                "validation": result.validation.num_rows,
                "train_rows_written": result.train_rows_written,
                "seed": cfg.seed,
                "validation_fraction": cfg.validation_fraction,
                "by": "seeded sha1 of the normalised text (document-level)",
            },
            params={**cfg.model_dump(mode="json"), "train_seconds": round(result.seconds, 2)},
            notes=notes,
        )
        ref = ModelRef(version, staging, card)
        scorer = EduScorer(ref)
        train_counts = Counter(result.train.column("score").to_pylist())
        human = read_human_labels(human_labels) if human_labels else None
        val = LabelSet(result.validation, labels.sources)
        report = evaluate(
            scorer,
            val,
            human,
            cfg.threshold,
            staging / "eval" / "validation",
            "held-out validation split",
            majority_class=train_counts.most_common(1)[0][0],
        )
        card.metrics = {
            "validation": _headline(report.get("labels")),
            "human_agreement": _headline(report.get("human_agreement")),
        }
        return registry.commit(staging, card)
    except BaseException:
        registry.discard_staging(staging)
        raise


def _headline(m: dict[str, Any] | None) -> dict[str, Any] | None:
    """The figures worth a glance on the card (the full report sits in eval/)."""
    if m is None:
        return None
    keys = (
        "n",
        "macro_f1",
        "accuracy",
        "spearman",
        "mean_abs_error",
        "auc",
        "keep_rate",
        "accuracy_at_threshold",
        "threshold",
    )
    out = {k: m[k] for k in keys if k in m}
    if "binary" in m:
        out["binary_f1"] = m["binary"]["f1"]
        out["baseline_macro_f1"] = m["baseline_majority"]["macro_f1"]
    return out
