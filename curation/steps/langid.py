"""Language identification with fasttext's lid.176 model (the one CCNet, RefinedWeb and FineWeb use).

The compressed `lid.176.ftz` is put in `<models_dir>` by `make setup`; `model_path` may point at the full
`lid.176.bin` instead. The driver ships the model file to workers once (`prepare_driver`); each worker
loads it once in `setup()` and classifies a whole batch in one `predict` call.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from curation.paths import models_dir, require_file
from curation.spark import local_copy
from curation.steps.base import DocBatch, Step
from curation.steps.shipping import ship_once

log = logging.getLogger(__name__)

_LANG_CODE = re.compile(r"^[a-z]{2,3}$")
_LABEL_PREFIX = "__label__"


class LangIdConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_path: str | None = None  # default: <models_dir>/lid.176.ftz
    languages: list[str] = ["en"]  # ISO 639 codes as lid.176 writes them; empty list keeps every language
    min_score: float = Field(0.65, ge=0.0, le=1.0)  # FineWeb uses 0.65 for English

    @field_validator("languages")
    @classmethod
    def _codes_look_like_lid176_labels(cls, langs: list[str]) -> list[str]:
        bad = [code for code in langs if not _LANG_CODE.match(code)]
        if bad:
            raise ValueError(
                f"languages {bad} are not lid.176 codes (2-3 lowercase letters, e.g. 'en', 'de')"
            )
        return langs

    def resolved_model_path(self) -> Path:
        return Path(self.model_path) if self.model_path else models_dir() / "lid.176.ftz"


def load_fasttext_model(path: str | Path):
    """Load a fasttext model, failing with a message that names the file and how to get a good one."""
    import fasttext

    # fasttext prints a deprecation notice on every load_model; it is noise in worker logs
    fasttext.FastText.eprint = lambda *args, **kwargs: None
    p = require_file(path, "fasttext language-ID model", "run `make setup` (or set langid.model_path)")
    try:
        return fasttext.load_model(str(p))
    except ValueError as e:
        raise ValueError(
            f"language-ID model {p} is not a valid fasttext model ({e}); "
            f"run `make setup` to restore lid.176.ftz or point langid.model_path at lid.176.bin"
        ) from e


def predict_languages(model, texts: list[str]) -> list[tuple[str, float]]:
    """(language code, probability) of the top label for each text. fasttext reads one line per text,
    so newlines become spaces, as the reference pipelines do."""
    labels, probs = model.predict([t.replace("\n", " ") for t in texts], k=1)
    return [(lab[0][len(_LABEL_PREFIX) :], min(1.0, float(p[0]))) for lab, p in zip(labels, probs)]


class LanguageId(Step):
    name = "langid"
    output_fields: ClassVar[list[pa.Field]] = [
        pa.field("lang", pa.string()),
        pa.field("lang_score", pa.float64()),
    ]

    def __init__(self, cfg: LangIdConfig):
        self.cfg = cfg
        self._model = None
        self._allowed = frozenset(cfg.languages)

    def prepare_driver(self, spark, work_dir) -> None:
        """Check the model on the driver (fail before any task starts) and ship it to workers."""
        path = require_file(
            self.cfg.resolved_model_path(),
            "fasttext language-ID model",
            "run `make setup` (or set langid.model_path)",
        )
        ship_once(spark, path)

    def setup(self) -> None:
        if self._model is None:
            path = local_copy(str(self.cfg.resolved_model_path()))
            self._model = load_fasttext_model(path)
            log.info("loaded language-ID model %s", path)

    def apply(self, batch: DocBatch) -> None:
        self.setup()
        texts = batch["text"]
        langs, scores = batch.column("lang"), batch.column("lang_score")
        rows = []
        for i in batch.active():
            if texts[i] and texts[i].strip():
                rows.append(i)
            else:
                batch.reject(i, self.name, "empty_text", "no text to identify")
        if not rows:
            return
        for i, (lang, score) in zip(rows, predict_languages(self._model, [texts[i] for i in rows])):
            langs[i], scores[i] = lang, score
            if self._allowed and lang not in self._allowed:
                batch.reject(
                    i,
                    self.name,
                    "lang_not_allowed",
                    f"lang={lang} score={score:.3f} not in {sorted(self._allowed)}",
                )
            elif score < self.cfg.min_score:
                batch.reject(
                    i,
                    self.name,
                    "lang_score_below_min",
                    f"lang={lang} score={score:.3f} < {self.cfg.min_score}",
                )
