"""HTML -> main text. STUB (owned by the ingest+extract work)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from curation.steps.base import DocBatch, Step


class ExtractConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    extractor: Literal["trafilatura", "resiliparse"] = "trafilatura"
    max_html_bytes: int = 5_000_000


class Extract(Step):
    name = "extract"

    def __init__(self, cfg: ExtractConfig):
        self.cfg = cfg

    def apply(self, batch: DocBatch) -> None:
        raise NotImplementedError
