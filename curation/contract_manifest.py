"""The manifest of a dataset version and the read side of a dataset root's layout (see curation/contract.py,
which re-exports these names: import them from there). A module of its own, importing nothing of the project,
because the table layer (curation/tables) reads manifests and versions while `DatasetRoot`, which publishes
to tables, sits above it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field


class StageCounts(BaseModel):
    """Per-stage bookkeeping: rows_in == rows_kept + rows_rejected must hold."""

    stage: str
    rows_in: int
    rows_kept: int
    rows_rejected: int
    reasons: dict[str, int] = Field(default_factory=dict)
    seconds: float | None = None

    def check(self) -> None:
        if self.rows_in != self.rows_kept + self.rows_rejected:
            raise ValueError(
                f"stage {self.stage!r}: rows_in={self.rows_in} != kept {self.rows_kept}"
                f" + rejected {self.rows_rejected}"
            )
        if sum(self.reasons.values()) != self.rows_rejected:
            raise ValueError(
                f"stage {self.stage!r}: reasons sum to {sum(self.reasons.values())},"
                f" rejected={self.rows_rejected}"
            )


class Manifest(BaseModel):
    dataset: str  # e.g. web_curated, web_dedup, synthetic, mixture
    version: str  # run id
    created_at: str
    code_version: str
    inputs: list[str]
    config: dict[str, Any]
    config_hash: str
    stages: list[StageCounts] = Field(default_factory=list)
    rows: int  # rows in data/
    rejected_rows: int = 0  # rows in rejects/
    columns: list[str] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)
    # An incremental version (nightly refresh) is the whole corpus: the documents of `base_version`
    # (base_rows of them, carried over unchanged) plus what this run's stages kept from its new inputs.
    # The stages count only the new inputs (the delta); rows = base_rows + the last stage's kept rows.
    base_version: str | None = None
    base_rows: int = 0

    def check(self) -> None:
        """Stages chain (each stage's input is the previous stage's kept rows) and totals reconcile."""
        for s in self.stages:
            s.check()
        for prev, cur in zip(self.stages, self.stages[1:]):
            if cur.rows_in != prev.rows_kept:
                raise ValueError(
                    f"stage {cur.stage!r} received {cur.rows_in} rows but {prev.stage!r}"
                    f" kept {prev.rows_kept}"
                )
        if self.base_rows and self.base_version is None:
            raise ValueError(f"base_rows={self.base_rows} without a base_version")
        if self.stages:
            if self.base_rows + self.stages[-1].rows_kept != self.rows:
                base = (
                    f" + {self.base_rows} from base version {self.base_version}" if self.base_version else ""
                )
                raise ValueError(
                    f"last stage kept {self.stages[-1].rows_kept}{base} but dataset has {self.rows}"
                )
            rejected = sum(s.rows_rejected for s in self.stages)
            if rejected != self.rejected_rows:
                raise ValueError(f"stages rejected {rejected} but rejects dataset has {self.rejected_rows}")

    def write(self, version_dir: str | Path) -> Path:
        path = Path(version_dir) / "manifest.json"
        path.write_text(self.model_dump_json(indent=2))
        return path

    @classmethod
    def read(cls, version_dir: str | Path) -> Manifest:
        path = Path(version_dir) / "manifest.json"
        if not path.is_file():
            raise FileNotFoundError(f"no manifest.json in {version_dir}: not a published dataset version")
        return cls.model_validate_json(path.read_text())


def published_versions(root: str | os.PathLike) -> list[str]:
    """The published versions of dataset root `root` (folders with a manifest.json, not `_`/`.`), sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith((".", "_")) and (p / "manifest.json").is_file()
    )


def current_version(root: str | os.PathLike) -> str | None:
    """The version dataset root `root`'s CURRENT names, or None."""
    pointer = Path(root) / "CURRENT"
    return pointer.read_text().strip() if pointer.is_file() else None


def iter_parquet_files(version_dir: str | os.PathLike, part: str = "data") -> Iterator[Path]:
    yield from sorted((Path(version_dir) / part).glob("*.parquet"))
