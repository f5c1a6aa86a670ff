"""Apply a trained edu model to texts: normalise exactly as at training time, predict, read out the score.

Readout: edu_score = sum_k p(k) * k over the model's classes (the expected score under fasttext's softmax),
edu_int = edu_score rounded half up. The expected value keeps the ordinal information a 0-5 rubric has
(a page torn between 2 and 4 scores 3, not whichever of the two won by a hair), and gives a continuous
score so the keep threshold can move without retraining.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from curation.edu.normalize import normalize_batch
from curation.edu.registry import ModelRef, verify_model_file

log = logging.getLogger(__name__)

LABEL_PREFIX = "__label__"


def load_fasttext(path: str | Path, what: str):
    """fasttext.load_model with a clear error instead of fasttext's bare message."""
    import fasttext

    fasttext.FastText.eprint = lambda *a, **k: None  # silence the "load_model does not return" notice
    try:
        return fasttext.load_model(str(path))
    except (ValueError, RuntimeError, MemoryError) as e:
        raise ValueError(f"{what}: cannot load fasttext model {path}: {e}") from e


class EduScorer:
    """A loaded edu model. Build it once per process (loading verifies the file against its card)."""

    def __init__(self, ref: ModelRef, model_path: str | Path | None = None):
        self.ref = ref
        self.version = ref.version
        self.spec = ref.card.normalization
        path = verify_model_file(ref, model_path)
        self.model = load_fasttext(path, f"edu model {ref.version}")
        labels = self.model.get_labels()
        try:
            self._value = {lab: float(lab[len(LABEL_PREFIX) :]) for lab in labels}
        except ValueError as e:
            raise ValueError(f"edu model {ref.version}: labels {labels} are not {LABEL_PREFIX}<score>") from e
        self.classes = sorted(int(v) for v in self._value.values())
        log.info("loaded edu model %s (%s, classes %s)", ref.version, path, self.classes)

    def predict_normalized(self, normalized: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(edu_score float64, edu_int int64) for already-normalised single-line texts."""
        if not normalized:
            return np.zeros(0), np.zeros(0, dtype=np.int64)
        labels, probs = self.model.predict(list(normalized), k=-1)
        value = self._value
        scores = np.empty(len(normalized))
        for i, (labs, ps) in enumerate(zip(labels, probs)):
            # fasttext adds 1e-5 to each probability before the log; renormalise so the weights sum to 1
            scores[i] = sum(p * value[lab] for lab, p in zip(labs, ps)) / ps.sum()
        return scores, self.to_int(scores)

    def to_int(self, scores: np.ndarray) -> np.ndarray:
        return np.clip(np.floor(scores + 0.5), self.classes[0], self.classes[-1]).astype(np.int64)

    def score(self, texts: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
        """Raw texts -> (edu_score, edu_int); the normalisation is the card's, as at training time."""
        return self.predict_normalized(normalize_batch(texts, self.spec))
