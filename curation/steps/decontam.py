"""Benchmark decontamination: drop documents that share word n-grams with a benchmark test item.

The driver builds the n-gram index once (`prepare_driver`), writes it under the run's work folder
and ships it to workers; each worker loads it once in `setup()`. Without Spark (or when nothing was
shipped) `setup()` loads `index_path` if given, else builds the index in-process.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from curation.decontam_index import (
    BenchmarkSource,
    DecontamIndex,
    default_benchmarks_dir,
    default_sources,
    sources_fingerprint,
)
from curation.spark import local_copy
from curation.steps.base import DocBatch, Step
from curation.steps.shipping import ship_once

log = logging.getLogger(__name__)


class DecontamConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    ngram_size: int = Field(13, ge=1)
    # a document is contaminated when it shares this many distinct n-grams with one item (or all of
    # the item's n-grams, for an item that has fewer)
    min_matches: int = Field(3, ge=1)
    max_items_per_ngram: int | None = 10  # n-grams in more items are boilerplate, not indexed
    benchmarks_dir: str | None = None  # relative source paths resolve here (default: shared data)
    sources: list[BenchmarkSource] = Field(default_factory=default_sources)
    extra_sources: list[BenchmarkSource] = Field(default_factory=list)  # user-supplied, added to `sources`
    index_path: str | None = None  # a prebuilt index (DecontamIndex.save) instead of building

    def all_sources(self) -> list[BenchmarkSource]:
        return [*self.sources, *self.extra_sources]

    def base_dir(self) -> Path:
        return Path(self.benchmarks_dir) if self.benchmarks_dir else default_benchmarks_dir()

    def index_file_name(self) -> str:
        fp = sources_fingerprint(
            self.all_sources(), self.ngram_size, self.max_items_per_ngram, self.base_dir()
        )
        return f"decontam-{fp}.npz"

    def build_index(self) -> DecontamIndex:
        return DecontamIndex.build(
            self.all_sources(), self.ngram_size, self.max_items_per_ngram, self.base_dir()
        )


class Decontaminate(Step):
    name = "decontam"
    output_fields: ClassVar[list[pa.Field]] = [pa.field("decontam_max_matches", pa.int64())]

    def __init__(self, cfg: DecontamConfig, index_path: str | None = None):
        self.cfg = cfg
        self.index_path = index_path or cfg.index_path
        self._index: DecontamIndex | None = None

    def prepare_driver(self, spark, work_dir) -> None:
        """Build (or check) the index on the driver so a bad source fails before any task, then ship it
        under a name derived from the config, which workers can compute from the config alone."""
        if self.index_path:
            index = DecontamIndex.load(self.index_path)
            path = Path(self.index_path)
        else:
            index = self.cfg.build_index()
            path = index.save(Path(work_dir) / self.cfg.index_file_name())
        self._check_ngram_size(index, path)
        self._index = index
        ship_once(spark, path)

    def setup(self) -> None:
        if self._index is not None:
            return
        if self.index_path:
            path = local_copy(self.index_path)
            self._index = DecontamIndex.load(path)
            self._check_ngram_size(self._index, path)
            return
        shipped = local_copy(self.cfg.index_file_name())
        if Path(shipped).is_file():
            self._index = DecontamIndex.load(shipped)
        else:
            log.info("no shipped decontamination index: building it in this process")
            self._index = self.cfg.build_index()
        log.info("decontamination index ready: %d items", len(self._index))

    def _check_ngram_size(self, index: DecontamIndex, path) -> None:
        if index.ngram_size != self.cfg.ngram_size:
            raise ValueError(
                f"decontamination index {path} uses {index.ngram_size}-grams but "
                f"decontam.ngram_size is {self.cfg.ngram_size}"
            )

    def apply(self, batch: DocBatch) -> None:
        self.setup()
        texts = batch["text"]
        matches_col = batch.column("decontam_max_matches")
        n = self.cfg.ngram_size
        for i in list(batch.active()):
            counts = self._index.overlaps(texts[i] or "")
            matches_col[i] = max(counts.values(), default=0)  # kept for audit of near misses
            m = self._index.match_counts(counts, self.cfg.min_matches)
            if m is not None:
                batch.reject(i, self.name, f"benchmark_overlap:{m.benchmark}", m.describe(n))
