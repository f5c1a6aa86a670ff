"""The curation job: crawl files in, a clean exact-deduplicated corpus out (plus rejects and a manifest).

Shape of the job on Spark:
  1. list input files (Hadoop glob where the JVM has the filesystem, else fsspec: local paths, s3a://, s3://
     alike); a path that matches nothing fails
  2. one `mapInArrow` pass, one file per task: read records (ingest) and run every Python step
     (extract -> langid -> quality filters -> decontam -> text hash) on Arrow batches
  3. the pass is materialised once to parquet under the staging folder, then Spark-level steps
     (exact dedup, near dedup) run on the surviving rows
  4. kept rows -> data/, every rejected row -> rejects/, per-stage counts from the rejects themselves,
     manifest written last, folder renamed into place
Nothing proportional to the corpus reaches the driver: it sees file names and (stage, reason) counts.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from curation import ingest
from curation.config import CurationConfig
from curation.contract import (
    DOC_FIELDS,
    REJECT_FIELDS,
    DatasetRoot,
    Manifest,
    StageCounts,
    new_run_id,
)
from curation.dedup.exact import ExactDedup, TextHash
from curation.ingest.listing import list_input_files
from curation.progress import SparkProgress
from curation.spark import DictSum

# the run's counting phase lives in curation.stage_counts; reconcile and summary_table are re-exported
# (`x as x`): the CLI commands and the tests import them from here
from curation.stage_counts import count_outputs
from curation.stage_counts import reconcile as reconcile
from curation.stage_counts import summary_table as summary_table
from curation.steps.base import REJECT_DETAIL, DocBatch, DriverHooks, FrameStep, Step, StepTimer

log = logging.getLogger(__name__)


# ---- the Python steps -------------------------------------------------------------------------------


def build_python_steps(cfg: CurationConfig) -> list[Step]:
    """The per-document steps in pipeline order (each reads what the previous ones wrote)."""
    from curation.steps.decontam import Decontaminate
    from curation.steps.extract import Extract
    from curation.steps.langid import LanguageId
    from curation.steps.quality import quality_steps

    steps: list[Step] = [Extract(cfg.extract), LanguageId(cfg.langid), *quality_steps(cfg.quality)]
    if cfg.decontam.enabled:
        steps.append(Decontaminate(cfg.decontam))
    if cfg.edu.enabled:
        from curation.edu.score import EduScore

        steps.append(EduScore(cfg.edu))
    steps.append(TextHash())
    return steps


def processed_schema(steps: list[Step]) -> pa.Schema:
    fields = list(DOC_FIELDS)
    seen = {f.name for f in fields}
    for step in steps:
        for f in step.fields():
            if f.name not in seen:
                fields.append(f)
                seen.add(f.name)
    return pa.schema([*fields, *REJECT_FIELDS, REJECT_DETAIL])


_WORKER_STEPS: dict[str, list[Step]] = {}


def _worker_steps(cfg_json: str) -> list[Step]:
    """Steps built and set up once per Python worker (models load once, not once per batch)."""
    steps = _WORKER_STEPS.get(cfg_json)
    if steps is None:
        steps = build_python_steps(CurationConfig.model_validate_json(cfg_json))
        for s in steps:
            s.setup()
        _WORKER_STEPS[cfg_json] = steps
    return steps


def process_files(
    paths_and_formats: Iterator[tuple[str, str]],
    cfg_json: str,
    schema: pa.Schema,
    timer: StepTimer | None = None,
    records_read: dict[str, int] | None = None,
    flagged: dict[str, int] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Read each file and run every Python step over its batches. Pure Python, usable without Spark.

    `records_read` gets, per file, the rows its reader produced (documents and ingest rejects), counted
    here and not from the outputs: the manifest checks them against what the stages account for.
    `flagged` gets, per flag (e.g. invalid_utf8), the documents kept with that caveat."""
    cfg = CurationConfig.model_validate_json(cfg_json)
    steps = _worker_steps(cfg_json)
    timer = timer or StepTimer()
    for path, fmt in paths_and_formats:
        if records_read is not None:
            records_read.setdefault(path, 0)
        flags: Counter[str] = Counter()
        for raw in ingest.read_documents(path, fmt, cfg.ingest, flags):
            if records_read is not None:
                records_read[path] += raw.num_rows
            batch = DocBatch.from_arrow(raw)
            for step in steps:
                timer.run(step, batch)
            yield batch.to_arrow(schema)
        if flagged is not None:
            for flag, n in flags.items():
                flagged[f"{flag}:{path}"] = flagged.get(f"{flag}:{path}", 0) + n


class EmptyRunError(RuntimeError):
    """The run kept no document: nothing is published (the CLI exits with EXIT_EMPTY_RUN)."""


#: `curation run` exit status when the run kept no document and published nothing (see EmptyRunError)
EXIT_EMPTY_RUN = 3


@dataclass
class RunResult:
    manifest: Manifest
    version_dir: Path
    counts: list[StageCounts] = field(default_factory=list)


def stage_order(cfg: CurationConfig, steps: list[Step], frame_steps: list) -> list[str]:
    names = ["ingest", *[s.name for s in steps], *[s.name for s in frame_steps]]
    return list(dict.fromkeys(names))


def build_frame_steps(
    cfg: CurationConfig, run_id: str, extra: list[FrameStep] | None = None
) -> list[FrameStep]:
    """The Spark-level steps in pipeline order: exact dedup, near dedup, then any the caller adds."""
    steps: list[FrameStep] = []
    if cfg.exact_dedup.enabled:
        steps.append(ExactDedup(cfg.exact_dedup.keep_order))
    if cfg.near_dedup.enabled:
        from curation.dedup.near import NearDedup

        steps.append(NearDedup(cfg.near_dedup, run_id))
    return [*steps, *(extra or [])]


def run(
    inputs: list[str],
    output: str | Path,
    cfg: CurationConfig | None = None,
    run_id: str | None = None,
    spark=None,
    frame_steps: list[FrameStep] | None = None,
    dataset: str = "web_curated",
    notes: list[str] | None = None,
    allow_empty: bool = False,
    progress_interval: float | None = None,
    table=None,
) -> RunResult:
    """Run the curation job and publish `output/<run_id>/` atomically. Returns the manifest. Every step's
    driver hooks (curation.steps.base.DriverHooks) are called here, in their documented order. `notes` (e.g.
    why a stage was skipped) are kept in the manifest's extra["notes"]. A run that keeps no document raises
    EmptyRunError and publishes nothing (CURRENT stays where it was) unless `allow_empty`. Progress lines
    every `progress_interval` s (curation.progress: $PHI_PROGRESS_INTERVAL or 30; 0 = none). `table`: the
    output root's Iceberg table (`DatasetRoot`'s; None = the configured default)."""
    from curation.spark import get_spark

    cfg = cfg or CurationConfig()
    run_id = run_id or new_run_id()
    spark = spark or get_spark()
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    steps = build_python_steps(cfg)
    frames = build_frame_steps(cfg, run_id, frame_steps)
    hooked: list[DriverHooks] = [*steps, *frames]
    progress = SparkProgress(spark, f"curation run {run_id}", progress_interval)
    try:
        with progress, DatasetRoot(output, table=table).building(run_id) as build:
            staging = build.staging
            files = input_files(spark, inputs, cfg, run_id)
            for step in hooked:  # build indexes, ship model files, before workers start
                step.prepare_driver(spark, staging / "_work")
            processed, worker_seconds, records_read, flagged = python_pass(
                spark, cfg, steps, files, staging / "_work" / "processed", timings, progress
            )
            active, rejected = frame_pass(spark, run_id, staging, processed, frames, timings, progress)
            data_cols = write_outputs(cfg, staging, processed, active, rejected, timings, progress)
            step_extra = steps_extra(hooked, staging)
            read = dict(sorted(records_read.value.items()))
            rows, n_rejected, counts = count_outputs(
                spark,
                staging,
                stage_order(cfg, steps, frames),
                {**timings, **worker_seconds.value},
                sum(read.values()),
            )
            if rows == 0 and not allow_empty:
                raise _empty_run(run_id, output, sum(read.values()), len(files), n_rejected)
            shutil.rmtree(staging / "_work", ignore_errors=True)
            timings["total"] = time.perf_counter() - t_start
            manifest = build.manifest(
                dataset=dataset,
                inputs=list(inputs),
                config=cfg.model_dump(mode="json"),
                stages=counts,
                rows=rows,
                rejected_rows=n_rejected,
                columns=data_cols,
                timings={k: round(v, 3) for k, v in timings.items()},
                extra={
                    **ingest_extra(files, read, flagged.value),
                    **step_extra,
                    **({"notes": list(notes)} if notes else {}),
                },
            )
        for step in hooked:  # side outputs (near dedup's band index) go live only after the corpus
            step.commit()
    except BaseException:
        for step in hooked:
            step.abort()
        raise
    log.info("published %s: %d kept, %d rejected", build.final, rows, n_rejected)
    return RunResult(manifest=manifest, version_dir=build.final, counts=counts)


def _empty_run(run_id: str, output: str | Path, records: int, files: int, rejected: int) -> EmptyRunError:
    return EmptyRunError(
        f"run {run_id} kept no document ({records} records read from {files} file(s), {rejected} rejected):"
        f" nothing published, {output} CURRENT unchanged ({DatasetRoot(output).current()}); allow_empty"
        f" (--allow-empty) publishes an empty version"
    )


def input_files(spark, inputs: list[str], cfg: CurationConfig, run_id: str) -> list[tuple[str, str]]:
    """The input files and their formats; a parquet file of the wrong schema fails here, in one line, not in
    a task's Java trace."""
    files = list_input_files(spark, inputs, cfg.ingest.format)
    for path, fmt in files:
        if fmt == "parquet":
            ingest.check_parquet_schema(path)
    log.info("run %s: %d input file(s)", run_id, len(files))
    return files


def steps_extra(hooked: list[DriverHooks], staging: Path) -> dict:
    """What the steps add to the manifest's extra (e.g. the edu stage's model version, near dedup's audit
    and staged band index), the side files they write into `staging` included."""
    extra: dict = {}
    for step in hooked:
        extra.update(step.manifest_extra())
        extra.update(step.write_extra(staging))
    return extra


def ingest_extra(files: list[tuple[str, str]], read: dict[str, int], flagged: dict[str, int]) -> dict:
    """The manifest's extra about reading: files listed, records read per file, flagged documents."""
    return {
        "input_files": len(files),
        "ingest": {
            "records_read": sum(read.values()),
            "files": read,
            "flagged": dict(sorted(flagged.items())),
        },
    }


def python_pass(
    spark,
    cfg: CurationConfig,
    steps: list[Step],
    files: list[tuple[str, str]],
    out: Path,
    timings: dict[str, float],
    progress: SparkProgress | None = None,
):
    """Phase 1: one `mapInArrow` pass (a file per task) reads every file and runs every Python step;
    materialised once to parquet at `out`. Returns the processed frame (rejected rows included, marked)
    and the accumulators of per-step worker seconds, of records read per file and of flagged documents
    per `flag:file`. `progress` shows files done (a file is one task; its records count when it ends)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    cfg_json = cfg.model_dump_json()
    schema = processed_schema(steps)
    timer_acc = spark.sparkContext.accumulator({}, DictSum())
    read_acc = spark.sparkContext.accumulator({}, DictSum())
    flag_acc = spark.sparkContext.accumulator({}, DictSum())

    def _map(batches):
        timer = StepTimer()
        read: dict[str, int] = {}
        flagged: dict[str, int] = {}
        pairs = (
            (p, f)
            for b in batches
            for p, f in zip(b.column("path").to_pylist(), b.column("format").to_pylist())
        )
        yield from process_files(pairs, cfg_json, schema, timer, read, flagged)
        timer_acc.add(timer.seconds)
        read_acc.add(read)
        flag_acc.add(flagged)

    if progress is not None:
        progress.phase(
            "read + python steps",
            total=len(files),
            done=lambda: len(read_acc.value),
            docs=lambda: sum(read_acc.value.values()),
        )
    t0 = time.perf_counter()
    files_df = spark.createDataFrame(
        spark.sparkContext.parallelize(files, max(1, len(files))), "path string, format string"
    )
    files_df.mapInArrow(_map, from_arrow_schema(schema)).write.mode("overwrite").parquet(str(out))
    timings["read_and_python_steps"] = time.perf_counter() - t0
    log.info("python steps done in %.1fs", timings["read_and_python_steps"])
    return spark.read.parquet(str(out)), timer_acc, read_acc, flag_acc


def frame_pass(
    spark,
    run_id: str,
    staging: Path,
    processed,
    frame_steps: list[FrameStep],
    timings: dict[str, float],
    progress: SparkProgress | None = None,
):
    """Phase 2: the Spark-level steps over the rows the Python steps kept. Returns (active frame,
    list of rejected frames with the processed columns: the Python pass's first)."""
    from pyspark.sql import functions as F

    rejected = [processed.filter(F.col("reject_stage").isNotNull())]
    active = processed.filter(F.col("reject_stage").isNull())
    for fstep in frame_steps:
        if progress is not None:
            progress.phase(fstep.name)
        t0 = time.perf_counter()
        fstep.bind(spark, staging, run_id)
        active, dropped = fstep.apply(active)
        rejected.append(dropped.select(*processed.columns))
        timings[fstep.name] = time.perf_counter() - t0
    return active, rejected


def write_outputs(
    cfg: CurationConfig,
    staging: Path,
    processed,
    active,
    rejected: list,
    timings: dict[str, float],
    progress: SparkProgress | None = None,
) -> list[str]:
    """Phase 3: kept rows -> data/ (without the reject columns), every rejected row -> rejects/.
    Returns the data columns. (The counting phase follows: `progress` is left there.)"""
    if progress is not None:
        progress.phase("write data/ and rejects/")
    t0 = time.perf_counter()
    data_cols = [c for c in processed.columns if c not in ("reject_stage", "reject_reason", "reject_detail")]
    writer = active.select(*data_cols)
    if cfg.output_partitions:
        writer = writer.repartition(cfg.output_partitions)
    writer.write.mode("overwrite").parquet(str(staging / "data"))
    all_rejects = rejected[0]
    for r in rejected[1:]:
        all_rejects = all_rejects.unionByName(r)
    all_rejects.write.mode("overwrite").parquet(str(staging / "rejects"))
    timings["write"] = time.perf_counter() - t0
    if progress is not None:
        progress.phase("count")
    return data_cols
