"""The mixture YAML schema (pydantic, unknown keys rejected) and a YAML loader that keeps line numbers.

A mixture is an ordered list of phases; each phase has a token budget and weighted sources. A source names
a dataset (a path/glob, or a name from the dataset registry) plus an optional DuckDB `WHERE` filter over its
columns, a weight (the phase's weights sum to 1) and a repetition cap (`max_epochs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # used in folder names (phase dirs, heldout/<source>)
DEFAULT_EOS = "<|endoftext|>"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrainTokenizer(Strict):
    """Train a byte-level BPE on a sample of the phase-1 sources."""

    vocab_size: int = Field(ge=512, le=1 << 20)
    sample_documents: int = Field(default=20_000, gt=0)
    min_frequency: int = Field(default=2, ge=1)


class TokenizerConfig(Strict):
    """Exactly one of `path` (a folder with tokenizer.json, e.g. the teacher's) or `train`."""

    path: str | None = None
    train: TrainTokenizer | None = None
    eos_token: str = DEFAULT_EOS

    @model_validator(mode="after")
    def _one_of(self) -> TokenizerConfig:
        if (self.path is None) == (self.train is None):
            raise ValueError("give exactly one of `path` (a tokenizer folder) or `train` (vocab_size, ...)")
        return self


class SourceConfig(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    dataset: str = Field(
        min_length=1
    )  # path, glob, dataset root/version folder, registry name, iceberg:<table>
    version: str | None = None  # registry name / dataset root: default CURRENT; iceberg: run id or
    # snapshot id, default the current snapshot
    filter: str | None = None  # DuckDB SQL boolean expression over the dataset's columns
    # The edu model version the filter's `edu_score`/`edu_int` assume: a build refuses a corpus whose
    # documents were scored by another model (training/mixture/pins.py). Unpinned, the scores must come
    # from one model, whichever it is.
    edu_model: str | None = None
    weight: float
    max_epochs: float = Field(default=1.0, gt=0)

    @field_validator("version", mode="before")
    @classmethod
    def _snapshot_id(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v  # an unquoted snapshot id

    @field_validator("weight")
    @classmethod
    def _positive(cls, v: float) -> float:
        if not v > 0:
            raise ValueError(f"weight must be > 0, got {v} (remove the source to drop it)")
        return v


class PhaseConfig(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    tokens: int = Field(gt=0)  # the phase's training token budget
    sources: list[SourceConfig] = Field(min_length=1)


class MixtureConfig(Strict):
    name: str = Field(min_length=1)
    seed: int = 0
    seq_len: int = Field(gt=0)
    tokenizer: TokenizerConfig
    phases: list[PhaseConfig] = Field(min_length=1)
    registry: str | None = None  # datasets.yaml mapping names to dataset roots (relative to this file)
    # Fraction of each source's documents held out for the trainer's per-source eval. Chosen by a hash of
    # (seed, document id), so one document is held out in every source that contains it (no cross-phase leak).
    heldout_fraction: float = Field(default=0.01, ge=0, lt=0.5)
    shard_tokens: int = Field(default=1 << 26, gt=0)
    # Used by `plan`/`validate` before any tokenizer exists (bytes of UTF-8 text per token).
    chars_per_token_estimate: float = Field(default=4.0, gt=0)
    # Whether a build of this mixture by the mixture_build DAG asks for a pretraining run (the pretrain DAG
    # schedules on that request only); off, pretraining starts by hand.
    auto_pretrain: bool = False


# ---- YAML with line numbers ------------------------------------------------------------------------


def format_path(loc: tuple[Any, ...]) -> str:
    """('phases', 1, 'sources', 2, 'weight') -> 'phases[1].sources[2].weight'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"


class LoadedYaml:
    """The parsed data plus the line (1-based) of every mapping key and sequence item, by path."""

    def __init__(self, text: str, file: str):
        self.text, self.file = text, file
        self.lines: dict[tuple, int] = {}
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f":{mark.line + 1}" if mark is not None else ""
            raise ValueError(f"{file}{where}: not valid YAML: {getattr(e, 'problem', e)}") from None
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: yaml.Node, loc: tuple) -> None:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                self.lines[loc + (key.value,)] = key.start_mark.line + 1
                self._walk(value, loc + (key.value,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, loc + (i,))

    def line(self, loc: tuple) -> int | None:
        """Line of `loc`, or of its nearest ancestor present in the file (e.g. a missing required key)."""
        loc = tuple(loc)
        while loc not in self.lines and loc:
            loc = loc[:-1]
        return self.lines.get(loc)


def load_yaml(path: str | Path) -> LoadedYaml:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"mixture file {p} does not exist")
    return LoadedYaml(p.read_text(), str(p))
