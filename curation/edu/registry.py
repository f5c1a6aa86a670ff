"""The versioned model registry: one immutable folder per trained model, and a promoted pointer.

    <root>/                          default <repo>/models/edu (git-ignored), or $PHI_EDU_REGISTRY, or
                                     --registry
      PROMOTED                       text file: the version scoring uses when none is named
      <version>/
        model.bin                    the fasttext model
        card.json                    ModelCard: data hash, label sources and counts, params, metrics, ...
        README.md                    the card, readable
        eval/<name>/                 evaluation reports (report.json, report.md, *.png)

A version is built in a hidden staging folder and renamed into place, so a half-written model is never
visible. The card records the sha256 of model.bin: loading checks it, so a truncated or swapped file is a
clear error instead of a crash inside fasttext.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from curation.edu.normalize import NormalizationSpec
from curation.paths import REPO_ROOT

log = logging.getLogger(__name__)

MODEL_FILE = "model.bin"
CARD_FILE = "card.json"
PROMOTED_FILE = "PROMOTED"


def default_registry_root() -> Path:
    return Path(os.environ.get("PHI_EDU_REGISTRY", REPO_ROOT / "models" / "edu"))


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ModelCard(BaseModel):
    """Everything needed to reproduce, audit and correctly apply one trained model."""

    model_config = ConfigDict(extra="forbid")
    version: str
    created_at: str
    code_version: str
    model_file: str = MODEL_FILE
    model_sha256: str
    model_bytes: int
    classes: list[int]  # score values the model predicts (fasttext labels __label__<k>)
    threshold: float  # default decision: keep when edu_score >= threshold
    normalization: NormalizationSpec  # applied identically at score time
    readout: str = "expected_value"  # edu_score = sum_k p(k) * k ; edu_int = round(edu_score)
    label_sources: list[str]
    label_counts: dict[str, int]  # per score value, all usable labels
    label_source_counts: dict[str, int]  # per label_source (file:..., teacher:<model>, reference, random)
    label_rejects: dict[str, int] = Field(default_factory=dict)
    data_hash: str  # sha256 over the labelled rows used (train + validation)
    split: dict[str, Any]  # sizes, seed, fraction, how documents were assigned
    params: dict[str, Any]  # the full training config (fasttext hyper-parameters included)
    metrics: dict[str, Any] = Field(default_factory=dict)
    notes: str | None = None


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: its version, folder, model file and card."""

    version: str
    dir: Path
    card: ModelCard

    @property
    def model_path(self) -> Path:
        return self.dir / self.card.model_file


def read_card(version_dir: str | Path) -> ModelCard:
    path = Path(version_dir) / CARD_FILE
    if not path.is_file():
        raise FileNotFoundError(f"edu model {version_dir}: no {CARD_FILE} (not a registry version folder)")
    try:
        return ModelCard.model_validate_json(path.read_text())
    except (ValidationError, ValueError) as e:
        raise ValueError(f"edu model card {path} is invalid: {e}") from e


def verify_model_file(ref: ModelRef, path: str | Path | None = None) -> Path:
    """The model file (or a copy of it, e.g. shipped to a worker) exists and matches the card's hash."""
    p = Path(path) if path is not None else ref.model_path
    if not p.is_file():
        raise FileNotFoundError(f"edu model {ref.version}: model file {p} is missing")
    digest = file_sha256(p)
    if digest != ref.card.model_sha256:
        raise ValueError(
            f"edu model {ref.version}: model file {p} is corrupt or not this version's "
            f"(sha256 {digest[:12]}..., card says {ref.card.model_sha256[:12]}...)"
        )
    return p


def render_card_markdown(card: ModelCard) -> str:
    lines = [
        f"# Edu classifier {card.version}",
        "",
        f"- created: {card.created_at} (code {card.code_version})",
        f"- model: `{card.model_file}` ({card.model_bytes:,} bytes, sha256 `{card.model_sha256[:16]}…`)",
        f"- classes: {card.classes}; readout: {card.readout}; default threshold: {card.threshold}",
        f"- normalisation: `{card.normalization.model_dump_json()}`",
        f"- data hash: `{card.data_hash}`",
        f"- label sources: {', '.join(card.label_sources)}",
        f"- labels per score: {card.label_counts}; per source: {card.label_source_counts}",
        f"- rejected label rows: {card.label_rejects or 'none'}",
        f"- split: {card.split}",
        "",
        "## Parameters",
        "",
        "```json",
        json.dumps(card.params, indent=2, sort_keys=True),
        "```",
        "",
        "## Metrics",
        "",
        "```json",
        json.dumps(card.metrics, indent=2, sort_keys=True, default=str),
        "```",
    ]
    if card.notes:
        lines += ["", "## Notes", "", card.notes]
    return "\n".join(lines) + "\n"


class ModelRegistry:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_registry_root()

    # ---- writing ----
    def staging_dir(self) -> Path:
        path = self.root / f".staging-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True)
        return path

    def commit(self, staging: Path, card: ModelCard) -> ModelRef:
        """Write the card into a staging folder holding model.bin (and any reports) and move it into place
        as `<root>/<card.version>`. Versions are immutable: an existing version is an error."""
        final = self.root / card.version
        if final.exists():
            raise ValueError(f"edu model version {card.version} already exists in {self.root}")
        (staging / CARD_FILE).write_text(card.model_dump_json(indent=2))
        (staging / "README.md").write_text(render_card_markdown(card))
        os.rename(staging, final)
        log.info("registered edu model %s in %s", card.version, self.root)
        return ModelRef(card.version, final, card)

    def promote(self, version: str) -> ModelRef:
        ref = self.resolve(version)
        verify_model_file(ref)
        tmp = self.root / f".{PROMOTED_FILE}.{uuid.uuid4().hex[:8]}"
        tmp.write_text(ref.version + "\n")
        os.replace(tmp, self.root / PROMOTED_FILE)
        log.info("promoted edu model %s", ref.version)
        return ref

    def discard_staging(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    # ---- reading ----
    def versions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / CARD_FILE).is_file()
        )

    def promoted(self) -> str | None:
        pointer = self.root / PROMOTED_FILE
        return pointer.read_text().strip() if pointer.is_file() else None

    def resolve(self, spec: str | Path | None = None) -> ModelRef:
        """`spec` is a version id in this registry, a path to a version folder, or None / "promoted"."""
        if spec is None or str(spec) == "promoted":
            version = self.promoted()
            if version is None:
                raise FileNotFoundError(
                    f"no promoted edu model in {self.root}; train one and run "
                    f"`python -m curation edu promote VERSION`"
                )
            vdir = self.root / version
        elif Path(spec).is_dir() and (Path(spec) / CARD_FILE).is_file():
            vdir = Path(spec)
        else:
            vdir = self.root / str(spec)
            if not vdir.is_dir():
                known = ", ".join(self.versions()[-5:]) or "none"
                raise FileNotFoundError(
                    f"edu model version {spec!r} not found in {self.root} (latest: {known})"
                )
        card = read_card(vdir)
        return ModelRef(card.version, vdir, card)
