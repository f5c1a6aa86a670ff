"""Quality heuristics: Gopher quality, Gopher repetition, C4 and FineWeb rules, one filter per family.

Each family is a `RuleFilter` step with its own config block; rejects name the rule
(`gopher_repetition:dup_line_frac`) and every signal a filter computes is an output column. The
filters of a batch share one `TextStats` per document, so words, lines and n-grams are built once.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from curation.steps.base import Step
from curation.steps.quality.c4 import C4Config, C4Quality
from curation.steps.quality.fineweb import FineWebConfig, FineWebQuality
from curation.steps.quality.gopher import (
    GopherQuality,
    GopherQualityConfig,
    GopherRepetition,
    GopherRepetitionConfig,
)


class QualityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gopher_quality: GopherQualityConfig = Field(default_factory=GopherQualityConfig)
    gopher_repetition: GopherRepetitionConfig = Field(default_factory=GopherRepetitionConfig)
    c4: C4Config = Field(default_factory=C4Config)
    fineweb: FineWebConfig = Field(default_factory=FineWebConfig)


def quality_steps(cfg: QualityConfig) -> list[Step]:
    """The enabled quality filters, in order: the cheap Gopher quality rules first (they drop most
    short/boilerplate pages before the costlier repetition rules see them), then repetition, C4, FineWeb."""
    steps: list[Step] = []
    if cfg.gopher_quality.enabled:
        steps.append(GopherQuality(cfg.gopher_quality))
    if cfg.gopher_repetition.enabled:
        steps.append(GopherRepetition(cfg.gopher_repetition))
    if cfg.c4.enabled:
        steps.append(C4Quality(cfg.c4))
    if cfg.fineweb.enabled:
        steps.append(FineWebQuality(cfg.fineweb))
    return steps


__all__ = [
    "C4Config",
    "C4Quality",
    "FineWebConfig",
    "FineWebQuality",
    "GopherQuality",
    "GopherQualityConfig",
    "GopherRepetition",
    "GopherRepetitionConfig",
    "QualityConfig",
    "quality_steps",
]
