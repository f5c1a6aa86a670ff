"""Quality heuristics (Gopher quality, Gopher repetition, C4, FineWeb). STUB (owned by the langid+quality work)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from curation.steps.base import Step


class QualityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


def quality_steps(cfg: QualityConfig) -> list[Step]:
    """The enabled quality filters, in order."""
    return []
