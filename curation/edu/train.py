"""fasttext supervised training of the edu classifier, with a document-level train/validation split.

Model choice: one fasttext label per integer score (`__label__0` .. `__label__5`) trained with the softmax
loss, read out as the expected score sum_k p(k)*k (see curation/edu/scorer.py). fasttext has no regression
loss, and a plain 6-class argmax throws away that the classes are ordered; a binary "edu vs not" model
would fix the threshold at training time. Softmax over the score classes gives a proper distribution
(the `ova` loss would not: its per-class sigmoids need not sum to one), so its expected value is a
calibrated-enough ordinal score, FineWeb-Edu style, that can be thresholded anywhere.

The split is by document: a document's side is decided by a seeded hash of its *normalised* text, so
copies that normalise alike always land on the same side (they were de-duplicated in labels.combine).
Training is single-threaded, seeded and runs in a fresh process (see fasttext_subprocess.py), so the same
labels and config give the same model bytes.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from curation.edu.fasttext_subprocess import train_supervised
from curation.edu.labels import LabelSet
from curation.edu.normalize import NormalizationSpec, normalize_batch
from curation.edu.scorer import LABEL_PREFIX

log = logging.getLogger(__name__)


class FastTextParams(BaseModel):
    """fasttext.train_supervised hyper-parameters (names as fasttext spells them)."""

    model_config = ConfigDict(extra="forbid")
    lr: float = Field(0.5, gt=0)  # small label sets need a high rate (see card metrics)
    epoch: int = Field(25, ge=1)
    dim: int = Field(32, ge=2)
    wordNgrams: int = Field(2, ge=1)  # word bigrams, as DCLM
    minCount: int = Field(1, ge=1)
    minn: int = Field(0, ge=0)  # no char n-grams: word features only, small and fast
    maxn: int = Field(0, ge=0)
    bucket: int = Field(100_000, ge=1000)  # hashed bigram buckets; size of the model is ~bucket*dim*4 bytes
    loss: Literal["softmax"] = "softmax"  # the expected-value readout needs a normalised distribution
    thread: int = Field(1, ge=1)  # 1 = reproducible; more threads race on the shared weights


class EduTrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fasttext: FastTextParams = Field(default_factory=FastTextParams)
    normalization: NormalizationSpec = Field(default_factory=NormalizationSpec)
    seed: int = 0
    validation_fraction: float = Field(0.2, gt=0, lt=1)
    threshold: float = 3.0  # FineWeb-Edu keeps score >= 3; stored as the model's default
    max_score: int = Field(5, ge=1)  # labels above are rejected at ingestion
    # Copy rare-class training rows until each class has at least this share of the largest class
    # (0 = off). Edu labels are heavily skewed to low scores; without it the expected score collapses
    # towards the majority class (on FineWeb-C Danish: binary F1 at 1.0 0.30 -> 0.44). Validation is never
    # resampled.
    oversample_to: float = Field(0.5, ge=0, le=1)


@dataclass
class TrainResult:
    model_path: Path
    train: pa.Table  # labelled rows (id, text, score, label_source) used for training
    validation: pa.Table  # held-out rows
    data_hash: str
    seconds: float
    train_rows_written: int  # after oversampling


def split_side(normalized: str, seed: int, fraction: float) -> bool:
    """True when the document goes to validation: a seeded hash of the normalised text in [0, 1)."""
    h = hashlib.sha1(f"{seed}|{normalized}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < fraction


def data_hash(table: pa.Table) -> str:
    """sha256 over the sorted (score, text sha1) pairs: same labelled documents <=> same hash."""
    rows = sorted(
        f"{s}\t{hashlib.sha1(t.encode('utf-8', 'surrogatepass')).hexdigest()}"
        for s, t in zip(table.column("score").to_pylist(), table.column("text").to_pylist())
    )
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def oversample(scores: list[int], share: float, seed: int) -> list[int]:
    """Row indices with rare classes repeated up to `share` of the largest class count."""
    idx = np.arange(len(scores))
    if share <= 0:
        return idx.tolist()
    rng = np.random.default_rng(seed)
    arr = np.asarray(scores)
    target = int(share * max(np.bincount(arr)))
    extra = []
    for k in np.unique(arr):
        members = idx[arr == k]
        if len(members) < target:
            extra.append(rng.choice(members, target - len(members), replace=True))
    out = np.concatenate([idx, *extra]) if extra else idx
    rng.shuffle(out)
    return out.tolist()


def write_fasttext_file(path: Path, normalized: list[str], scores: list[int], order: list[int]) -> int:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{LABEL_PREFIX}{scores[i]} {normalized[i]}\n" for i in order)
    return len(order)


def train(
    labels: LabelSet, cfg: EduTrainConfig, work_dir: str | Path, keep_train_file: bool = False
) -> TrainResult:
    """Split, write the fasttext training file (`work_dir/train.txt`), train, save `work_dir/model.bin`."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    normalized = normalize_batch(labels.texts, cfg.normalization)
    scores = labels.scores
    nonempty = [i for i, t in enumerate(normalized) if t]
    if len(nonempty) < len(normalized):
        log.warning(
            "%d labelled texts are empty after normalisation; not used", len(normalized) - len(nonempty)
        )
    val_mask = [split_side(normalized[i], cfg.seed, cfg.validation_fraction) for i in nonempty]
    val_idx = [i for i, v in zip(nonempty, val_mask) if v]
    train_idx = [i for i, v in zip(nonempty, val_mask) if not v]
    if len({scores[i] for i in train_idx}) < 2:
        raise ValueError(
            f"training needs at least two score classes; train split has "
            f"{sorted({scores[i] for i in train_idx})} ({len(train_idx)} rows)"
        )
    if not val_idx:
        raise ValueError(
            f"validation split is empty ({len(nonempty)} rows, fraction {cfg.validation_fraction})"
        )

    train_scores = [scores[i] for i in train_idx]
    order = oversample(train_scores, cfg.oversample_to, cfg.seed)
    train_file = work / "train.txt"
    written = write_fasttext_file(train_file, [normalized[i] for i in train_idx], train_scores, order)
    log.info(
        "training on %d rows (%d written after oversampling), validating on %d; classes %s",
        len(train_idx),
        written,
        len(val_idx),
        sorted(set(train_scores)),
    )

    t0 = time.perf_counter()
    model_path = work / "model.bin"
    train_supervised(train_file, model_path, {"seed": cfg.seed, **cfg.fasttext.model_dump()})
    seconds = time.perf_counter() - t0
    log.info("trained in %.1fs -> %s (%d bytes)", seconds, model_path, model_path.stat().st_size)
    if not keep_train_file:  # the labels are recoverable from their sources; the card keeps their hash
        train_file.unlink()

    def take(idx):
        return labels.table.take(pa.array(idx, type=pa.int64()))

    used = take(nonempty)
    return TrainResult(model_path, take(train_idx), take(val_idx), data_hash(used), seconds, written)
