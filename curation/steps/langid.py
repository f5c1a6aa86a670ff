"""Language identification. STUB (owned by the langid+quality work)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from curation.steps.base import DocBatch, Step


class LangIdConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_path: str | None = None        # default: <models_dir>/lid.176.ftz
    languages: list[str] = ["en"]        # empty list keeps every language
    min_score: float = 0.65


class LanguageId(Step):
    name = "langid"

    def __init__(self, cfg: LangIdConfig):
        self.cfg = cfg

    def apply(self, batch: DocBatch) -> None:
        raise NotImplementedError
