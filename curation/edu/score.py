"""Scoring with the edu classifier on Spark: the `EduScore` curation step and standalone scoring of a
published dataset. Both run inside `mapInArrow`, load the model once per Python worker, and add

    edu_score  float64   expected score sum_k p(k) * k
    edu_int    int64     edu_score rounded, clipped to the model's classes
    edu_model  string    the model version that produced the score (every row records it)

With a threshold set, documents with edu_score < threshold are rejected (stage "edu", reason
`edu_score_below_threshold`); documents without text are rejected as `missing_text` (nothing to score).

Shipping: the driver resolves the model (a version id, a version folder, or the promoted one), checks its
hash, and ships model.bin and card.json to the executors under version-unique names
(`edu-<version>.bin` / `.card.json`; Spark refuses two different files with one name). Workers take the
shipped copies when present and fall back to the registry path (local mode, shared filesystems).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from curation.contract import (
    REJECT_FIELDS,
    DatasetRoot,
    Manifest,
    StageCounts,
    new_run_id,
)
from curation.edu.registry import CARD_FILE, ModelCard, ModelRef, ModelRegistry, verify_model_file
from curation.edu.scorer import EduScorer
from curation.steps.base import REJECT_DETAIL, DocBatch, Step

log = logging.getLogger(__name__)

STAGE = "edu"
BELOW_THRESHOLD = "edu_score_below_threshold"
MISSING_TEXT = "missing_text"
EDU_FIELDS = [
    pa.field("edu_score", pa.float64()),
    pa.field("edu_int", pa.int64()),
    pa.field("edu_model", pa.string()),
]
EDU_COLUMNS = [f.name for f in EDU_FIELDS]


class EduConfig(BaseModel):
    """The edu stage of the curation job (off by default: it needs a trained, promoted model)."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    model: str | None = None  # version id, version folder, or None = the registry's promoted model
    registry: str | None = None  # registry root; default $PHI_EDU_REGISTRY or <repo>/models/edu
    threshold: float | None = Field(
        None, allow_inf_nan=False
    )  # reject edu_score < threshold; None = score only


# ---- scoring columns (pure) -------------------------------------------------------------------------------


@dataclass
class EduColumns:
    score: list[float | None]
    int_: list[int | None]
    reason: list[str | None]
    detail: list[str | None]


def edu_columns(texts: Sequence[str | None], scorer: EduScorer, threshold: float | None) -> EduColumns:
    """Scores and reject decisions for a batch of raw texts (None where a text is missing)."""
    n = len(texts)
    out = EduColumns([None] * n, [None] * n, [None] * n, [None] * n)
    present = [i for i, t in enumerate(texts) if t and not t.isspace()]
    for i in set(range(n)) - set(present):
        out.reason[i], out.detail[i] = MISSING_TEXT, "document has no text to score"
    scores, ints = scorer.score([texts[i] for i in present])
    for i, s, k in zip(present, scores.tolist(), ints.tolist()):
        out.score[i], out.int_[i] = s, k
        if threshold is not None and s < threshold:
            out.reason[i], out.detail[i] = BELOW_THRESHOLD, f"edu_score={s:.3f} < {threshold}"
    return out


# ---- model on workers --------------------------------------------------------------------------------------

_SCORERS: dict[str, EduScorer] = {}


def shipped_names(version: str) -> tuple[str, str]:
    return f"edu-{version}.bin", f"edu-{version}.card.json"


def ship_model(spark, ref: ModelRef, work_dir: str | Path) -> None:
    """Copy model + card under version-unique names and addFile them (once per SparkContext)."""
    from curation.contract import link_or_copy
    from curation.steps.shipping import ship_once

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    model_name, card_name = shipped_names(ref.version)
    for src, name in ((ref.model_path, model_name), (ref.dir / CARD_FILE, card_name)):
        dst = work / name
        if not dst.exists():
            link_or_copy(src, dst)  # same filesystem: no copy of a large model
        ship_once(spark, dst)


def worker_scorer(model: str, registry: str | None) -> EduScorer:
    """The scorer for a pinned model, loaded once per Python worker process; prefers shipped copies."""
    from curation.spark import local_copy

    scorer = _SCORERS.get(model)
    if scorer is None:
        version = Path(model).name
        model_name, card_name = shipped_names(version)
        card_path, model_path = local_copy(card_name), local_copy(model_name)
        if os.path.isabs(card_path) and os.path.isfile(card_path) and os.path.isfile(model_path):
            ref = ModelRef(version, Path(model_path).parent, read_card_file(card_path))
            scorer = EduScorer(ref, model_path)
        else:
            scorer = EduScorer(ModelRegistry(registry).resolve(model))
        _SCORERS[model] = scorer
    return scorer


def read_card_file(path: str | Path) -> ModelCard:
    """A shipped card (same content as <version>/card.json, under a version-unique name)."""
    try:
        return ModelCard.model_validate_json(Path(path).read_text())
    except ValueError as e:
        raise ValueError(f"shipped edu model card {path} is invalid: {e}") from e


# ---- the curation step ------------------------------------------------------------------------------------


class EduScore(Step):
    """Curation stage "edu": scores active documents and, with a threshold, rejects the low ones."""

    name: ClassVar[str] = STAGE
    output_fields = EDU_FIELDS

    def __init__(self, cfg: EduConfig):
        self.cfg = cfg
        self._scorer: EduScorer | None = None

    def prepare_driver(self, spark, work_dir: str | Path) -> None:
        """Resolve and verify the model once on the driver, ship it, and pin it in the config.

        Pinning (setting cfg.model to the resolved version folder) matters: the pipeline serialises the
        config after this call and workers rebuild their steps from it, so they all load exactly this
        version even if someone promotes another one mid-run, and the run's manifest records it."""
        ref = ModelRegistry(self.cfg.registry).resolve(self.cfg.model)
        verify_model_file(ref)
        ship_model(spark, ref, work_dir)
        self.cfg.model = str(ref.dir.resolve())
        log.info("edu stage pinned to model %s (threshold %s)", ref.version, self.cfg.threshold)

    def manifest_extra(self) -> dict:
        """What the run's manifest records about this stage: the model version every score came from."""
        return {
            "edu": {
                "scored": True,
                "model": Path(self.cfg.model).name if self.cfg.model else None,
                "threshold": self.cfg.threshold,
            }
        }

    def setup(self) -> None:
        if self.cfg.model is None:  # run without a driver (plain Python): resolve here
            self.cfg.model = str(ModelRegistry(self.cfg.registry).resolve(None).dir.resolve())
        self._scorer = worker_scorer(self.cfg.model, self.cfg.registry)

    def apply(self, batch: DocBatch) -> None:
        if self._scorer is None:
            self.setup()
        active = list(batch.active())
        texts = batch["text"]
        cols = edu_columns([texts[i] for i in active], self._scorer, self.cfg.threshold)
        score, int_, model = batch.column("edu_score"), batch.column("edu_int"), batch.column("edu_model")
        for j, i in enumerate(active):
            score[i], int_[i] = cols.score[j], cols.int_[j]
            model[i] = self._scorer.version
            if cols.reason[j] is not None:
                batch.reject(i, self.name, cols.reason[j], cols.detail[j])


# ---- standalone scoring of a published dataset ------------------------------------------------------------


def scored_schema(schema: pa.Schema) -> pa.Schema:
    """Input columns (minus stale edu/reject columns) + edu columns + reject columns."""
    drop = set(EDU_COLUMNS) | {"reject_stage", "reject_reason", "reject_detail"}
    fields = [f for f in schema if f.name not in drop]
    return pa.schema([*fields, *EDU_FIELDS, *REJECT_FIELDS, REJECT_DETAIL])


def score_arrow_batch(
    batch: pa.RecordBatch, scorer: EduScorer, threshold: float | None, schema: pa.Schema
) -> pa.RecordBatch:
    """Append the edu and reject columns to an Arrow batch; only `text` is converted to Python."""
    cols = edu_columns(batch.column("text").to_pylist(), scorer, threshold)
    stage = [STAGE if r is not None else None for r in cols.reason]
    added = {
        "edu_score": pa.array(cols.score, pa.float64()),
        "edu_int": pa.array(cols.int_, pa.int64()),
        "edu_model": pa.array([scorer.version] * batch.num_rows, pa.string()),
        "reject_stage": pa.array(stage, pa.string()),
        "reject_reason": pa.array(cols.reason, pa.string()),
        "reject_detail": pa.array(cols.detail, pa.string()),
    }
    arrays = [added[f.name] if f.name in added else batch.column(f.name) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def score_frame(df, ref: ModelRef, threshold: float | None, registry: str | None = None):
    """The scoring pass as a lazy DataFrame (input columns + edu + reject columns). The model must have
    been shipped (`ship_model`) if executors do not see the registry's filesystem."""
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    if "text" not in df.columns:
        raise ValueError(f"cannot score: input has no `text` column (columns: {df.columns})")
    stale = [c for c in df.columns if c in EDU_COLUMNS or c.startswith("reject_")]
    if stale:
        df = df.drop(*stale)
    schema = scored_schema(to_arrow_schema(df.schema))
    model = str(ref.dir.resolve())

    def _map(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        scorer = worker_scorer(model, registry)
        for b in batches:
            yield score_arrow_batch(b, scorer, threshold, schema)

    return df.mapInArrow(_map, from_arrow_schema(schema))


def split_scored(
    spark, scored_path: Path, staging: Path, more_rejects=None
) -> tuple[list[str], int, dict[str, int]]:
    """Write the scored rows at `scored_path` into the version being built: kept rows (without the reject
    columns) to data/, the rest (and `more_rejects`, e.g. a plain input's ingest rejects) to rejects/.
    Returns the data columns, the rows kept and the edu stage's rejects per reason, counted from what was
    written."""
    from pyspark.sql import functions as F

    scored = spark.read.parquet(str(scored_path))
    data_cols = [c for c in scored.columns if c not in ("reject_stage", "reject_reason", "reject_detail")]
    scored.filter(F.col("reject_stage").isNull()).select(*data_cols).write.mode("overwrite").parquet(
        str(staging / "data")
    )
    rejects = scored.filter(F.col("reject_stage").isNotNull())
    if more_rejects is not None:
        rejects = rejects.unionByName(more_rejects, allowMissingColumns=True)
    rejects.write.mode("overwrite").parquet(str(staging / "rejects"))
    rows = spark.read.parquet(str(staging / "data")).count()
    written = spark.read.parquet(str(staging / "rejects")).filter(F.col("reject_stage") == STAGE)
    reasons = {r["reject_reason"]: r["count"] for r in written.groupBy("reject_reason").count().collect()}
    return data_cols, rows, reasons


@dataclass
class ScoreResult:
    manifest: Manifest
    version_dir: Path


def score_dataset(
    spark,
    input_path: str | Path,
    output: str | Path,
    model: str | None = None,
    registry: str | None = None,
    threshold: float | None = None,
    run_id: str | None = None,
    dataset: str | None = None,
) -> ScoreResult:
    """Score a published dataset version, or plain parquet/JSONL files (curation.ingest.inputs: an `ingest`
    stage comes first), and publish `output/<run_id>/` with the contract: kept rows in data/, rows below the
    threshold (or without text) in rejects/, a manifest naming the model version."""
    from curation.ingest.inputs import resolve_input
    from curation.ingest.plain import input_frame

    t_start = time.perf_counter()
    source = resolve_input(input_path, spark)
    ref = ModelRegistry(registry).resolve(model)
    verify_model_file(ref)
    run_id = run_id or new_run_id()
    with DatasetRoot(output).building(run_id) as build:
        staging = build.staging
        ship_model(spark, ref, staging / "_work" / "model")
        inp = input_frame(spark, source, staging / "_work")
        scored_path = staging / "_work" / "scored"
        t0 = time.perf_counter()
        score_frame(inp.frame, ref, threshold, registry).write.mode("overwrite").parquet(str(scored_path))
        score_seconds = time.perf_counter() - t0
        data_cols, rows, reasons = split_scored(spark, scored_path, staging, inp.rejects)
        rejected = sum(reasons.values())
        in_rejected = sum(s.rows_rejected for s in inp.stages)
        shutil.rmtree(staging / "_work", ignore_errors=True)
        cfg = {
            "model": ref.version,
            "model_dir": str(ref.dir),
            "threshold": threshold,
            "model_sha256": ref.card.model_sha256,
            "normalization": ref.card.normalization.model_dump(),
        }
        manifest = build.manifest(
            dataset=dataset or f"{inp.dataset}_edu",
            inputs=inp.inputs,
            config=cfg,
            stages=[
                *inp.stages,
                StageCounts(
                    stage=STAGE,
                    rows_in=rows + rejected,
                    rows_kept=rows,
                    rows_rejected=rejected,
                    reasons=dict(sorted(reasons.items())),
                    seconds=round(score_seconds, 3),
                ),
            ],
            rows=rows,
            rejected_rows=rejected + in_rejected,
            columns=data_cols,
            timings={"score": round(score_seconds, 3), "total": round(time.perf_counter() - t_start, 3)},
            extra={"edu_model_version": ref.version, **inp.extra},
        )
        if rows + rejected != inp.rows:
            raise RuntimeError(f"scored {rows + rejected} rows but input {inp.inputs[0]} has {inp.rows}")
    log.info(
        "edu-scored %s with %s: %d kept, %d rejected -> %s",
        inp.inputs[0],
        ref.version,
        rows,
        rejected,
        build.final,
    )
    return ScoreResult(manifest, build.final)
