"""The curation job's configuration: one pydantic model per step, composed here, loaded from YAML."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from curation.dedup.near_config import NearDedupConfig
from curation.edu.score import EduConfig
from curation.ingest import IngestConfig
from curation.steps.decontam import DecontamConfig
from curation.steps.extract import ExtractConfig
from curation.steps.langid import LangIdConfig
from curation.steps.quality import QualityConfig


class ExactDedupConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    # Which copy survives: sort keys applied within each group of identical texts, first row kept.
    keep_order: list[str] = ["date asc", "id asc"]


class CurationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    extract: ExtractConfig = Field(default_factory=ExtractConfig)
    langid: LangIdConfig = Field(default_factory=LangIdConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    decontam: DecontamConfig = Field(default_factory=DecontamConfig)
    exact_dedup: ExactDedupConfig = Field(default_factory=ExactDedupConfig)
    near_dedup: NearDedupConfig = Field(default_factory=NearDedupConfig)
    edu: EduConfig = Field(default_factory=EduConfig)  # off by default: needs a trained, promoted model
    output_partitions: int | None = None  # files per output part; None = as Spark produced them


class ConfigError(ValueError):
    """A config file that does not validate; the message names the file and each bad field."""


def load_config(path: str | Path | None) -> CurationConfig:
    if path is None:
        return CurationConfig()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from e
    try:
        return CurationConfig.model_validate(raw)
    except ValidationError as e:
        lines = [f"{p}: {len(e.errors())} invalid field(s):"]
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"])
            lines.append(f"  {loc}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("\n".join(lines)) from None
