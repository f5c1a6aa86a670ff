"""Benchmark decontamination by n-gram overlap. STUB (owned by the decontamination work)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from curation.steps.base import DocBatch, Step


class DecontamConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True


class Decontaminate(Step):
    name = "decontam"

    def __init__(self, cfg: DecontamConfig, index_path: str | None = None):
        self.cfg = cfg
        self.index_path = index_path

    def apply(self, batch: DocBatch) -> None:
        raise NotImplementedError
