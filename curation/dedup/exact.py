"""Exact dedup: hash of normalized text, one survivor per hash chosen by a deterministic keep rule."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import TYPE_CHECKING, ClassVar

import pyarrow as pa

from curation.steps.base import DocBatch, FrameStep, Step

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_WS = re.compile(r"\s+")


def normalize_for_hash(text: str) -> str:
    """Unicode NFKC, case-folded (so "ß" and "SS" agree), whitespace collapsed: copies that differ only in
    case or layout collide."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def normalized_text_hash(text: str) -> str:
    return hashlib.sha1(normalize_for_hash(text).encode("utf-8", "surrogatepass")).hexdigest()


class TextHash(Step):
    """Adds `text_hash` to every active row (never rejects): the key exact dedup groups by."""

    name: ClassVar[str] = "text_hash"
    output_fields = [pa.field("text_hash", pa.string())]

    def apply(self, batch: DocBatch) -> None:
        texts, out = batch["text"], batch.column("text_hash")
        for i in batch.active():
            out[i] = normalized_text_hash(texts[i] or "")


def sort_columns(df: DataFrame, keep_order: list[str]):
    """Turn ["date asc", "edu_score desc"] into Spark sort expressions (nulls last), skipping columns
    the frame does not have; `id asc` is always the final tie-breaker so the choice is deterministic."""
    from pyspark.sql import functions as F

    exprs = []
    for spec in [*keep_order, "id asc"]:
        parts = spec.split()
        col, direction = parts[0], (parts[1].lower() if len(parts) > 1 else "asc")
        if direction not in ("asc", "desc"):
            raise ValueError(f"keep_order entry {spec!r}: direction must be asc or desc")
        if col not in df.columns:
            continue
        exprs.append(F.col(col).asc_nulls_last() if direction == "asc" else F.col(col).desc_nulls_last())
    return exprs


class ExactDedup(FrameStep):
    """Spark-level step: within each `text_hash` group keep the first row by `keep_order`."""

    name: ClassVar[str] = "exact_dedup"

    def __init__(self, keep_order: list[str]):
        self.keep_order = keep_order

    def apply(self, df: DataFrame) -> tuple[DataFrame, DataFrame]:
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        w = Window.partitionBy("text_hash").orderBy(*sort_columns(df, self.keep_order))
        ranked = df.withColumn("_rank", F.row_number().over(w)).withColumn("_kept_id", F.first("id").over(w))
        kept = ranked.filter("_rank = 1").drop("_rank", "_kept_id")
        rejected = (
            ranked.filter("_rank > 1")
            .withColumn("reject_stage", F.lit(self.name))
            .withColumn("reject_reason", F.lit("exact_duplicate"))
            .withColumn("reject_detail", F.concat(F.lit("kept "), F.col("_kept_id")))
            .drop("_rank", "_kept_id")
        )
        return kept, rejected
