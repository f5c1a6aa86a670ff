"""Quality heuristics: Gopher quality, Gopher repetition, C4 and FineWeb rules, one filter per family.

Each family is a `RuleFilter` step with its own config block; rejects name the rule
(`gopher_repetition:dup_line_frac`) and every signal a filter computes is an output column. The
filters of a batch share one `TextStats` per document, so words, lines and n-grams are built once.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field, create_model

from curation.steps.base import Step
from curation.steps.quality.c4 import C4Config, C4Quality
from curation.steps.quality.fineweb import FineWebConfig, FineWebQuality
from curation.steps.quality.gopher import (
    GopherQuality,
    GopherQualityConfig,
    GopherRepetition,
    GopherRepetitionConfig,
)
from curation.steps.quality.rule_filter import FilterConfig

#: The quality filters: config key -> config class (whose `build()` makes the step), in pipeline order: the
#: cheap Gopher quality rules first (they drop most short/boilerplate pages before the costlier repetition
#: rules see them), then repetition, C4, FineWeb. Adding a filter: its module (a FilterConfig + a RuleFilter)
#: and one line here; QualityConfig and quality_steps follow.
QUALITY_FILTERS: dict[str, type[FilterConfig]] = {
    "gopher_quality": GopherQualityConfig,
    "gopher_repetition": GopherRepetitionConfig,
    "c4": C4Config,
    "fineweb": FineWebConfig,
}

#: The `quality` block of the curation config: one field per registered filter, each defaulting to its config.
QualityConfig = create_model(
    "QualityConfig",
    __config__=ConfigDict(extra="forbid"),
    __module__=__name__,
    **{key: (cls, Field(default_factory=cls)) for key, cls in QUALITY_FILTERS.items()},
)


def quality_steps(cfg: QualityConfig) -> list[Step]:
    """The enabled quality filters, in registry order, each built by its config."""
    blocks = (getattr(cfg, key) for key in QUALITY_FILTERS)
    return [block.build() for block in blocks if block.enabled]


__all__ = [
    "QUALITY_FILTERS",
    "C4Config",
    "C4Quality",
    "FilterConfig",
    "FineWebConfig",
    "FineWebQuality",
    "GopherQuality",
    "GopherQualityConfig",
    "GopherRepetition",
    "GopherRepetitionConfig",
    "QualityConfig",
    "quality_steps",
]
