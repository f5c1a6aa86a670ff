"""Thresholds of the quality gates. Defaults are backstops: the curation config decides what a good
document is; the gate checks that the published data actually obeys it (and the contract)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class GateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # None: take the languages from the dataset's own manifest (config.langid.languages); empty: any.
    allowed_languages: list[str] | None = None
    min_chars: int = Field(1, ge=0)  # a kept document with no text is a bug upstream
    max_chars: int = Field(5_000_000, ge=1)
    lang_score_min: float = 0.0
    lang_score_max: float = 1.0
    edu_score_min: float = 0.0  # the FineWeb-Edu scale: 0..5
    edu_score_max: float = 5.0
    min_rows: int = Field(1, ge=0)
    # |realised_weight - target_weight| allowed per mixture source, and |sum(targets) - 1| per phase
    mixture_tolerance: float = Field(0.05, ge=0)
    mixture_sum_tolerance: float = Field(1e-3, ge=0)


def load_gate_config(path: str | Path | None) -> GateConfig:
    if path is None:
        return GateConfig()
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"gate config {p} does not exist")
    try:
        return GateConfig.model_validate(yaml.safe_load(p.read_text()) or {})
    except ValidationError as e:
        bad = "; ".join(
            f"{'.'.join(map(str, err['loc']))}: {err['msg']} (got {err.get('input')!r})" for err in e.errors()
        )
        raise ValueError(f"{p}: invalid gate config: {bad}") from None
