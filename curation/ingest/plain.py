"""An input of `curation dedup` / `curation edu score` as a Spark frame of documents, whatever it is
(see curation.ingest.inputs): a contract version is read as it is; plain parquet / JSONL files go through the
ingest readers in one `mapInArrow` pass (a file per task), materialised once under the caller's work folder,
and become an `ingest` stage (rows in = records read per file, kept, rejected by reason) and its rejects,
which the output version carries so that its manifest reconciles from the records read."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from curation.contract import DOC_COLUMNS, DOC_FIELDS, REJECT_FIELDS, StageCounts
from curation.ingest.config import STAGE, IngestConfig
from curation.ingest.inputs import DatasetInput
from curation.spark import DictSum
from curation.steps.base import REJECT_DETAIL

log = logging.getLogger(__name__)

PLAIN_SCHEMA = pa.schema([*DOC_FIELDS, *REJECT_FIELDS, REJECT_DETAIL])


@dataclass
class InputFrame:
    """Documents to process (`frame`), and for plain files the ingest stage and its rejects."""

    frame: object  # pyspark DataFrame
    dataset: str  # the input's dataset name: its manifest's, "plain" for plain files
    inputs: list[str]  # what the output manifest's `inputs` records
    stages: list[StageCounts] = field(default_factory=list)
    rejects: object | None = None  # pyspark DataFrame of ingest rejects (DOC + reject columns)
    extra: dict = field(default_factory=dict)

    @property
    def rows(self) -> int | None:
        """Documents in `frame` when known without a Spark job (plain: the ingest stage's kept rows)."""
        return self.stages[-1].rows_kept if self.stages else self.extra.get("input_rows")


def input_frame(
    spark, source: DatasetInput, work: Path, cfg: IngestConfig | None = None, progress=None
) -> InputFrame:
    """The input's documents; plain files are read into `work` (the caller deletes it before publishing)."""
    if not source.is_plain:
        m = source.manifest()
        return InputFrame(
            spark.read.parquet(str(source.version_dir / "data")),
            m.dataset,
            [str(source.version_dir)],
            extra={"input_dataset": m.dataset, "input_version": m.version, "input_rows": m.rows},
        )
    return read_plain(spark, source, work, cfg or IngestConfig(), progress)


def read_plain(spark, source: DatasetInput, work: Path, cfg: IngestConfig, progress=None) -> InputFrame:
    """Plain files through the ingest readers, one task per file; counted from what was written and checked
    against the records each reader produced."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    from curation import ingest

    cfg_json = cfg.model_dump_json()
    read_acc = spark.sparkContext.accumulator({}, DictSum())
    names = PLAIN_SCHEMA.names

    def _map(batches):
        icfg = IngestConfig.model_validate_json(cfg_json)
        read: dict[str, int] = {}
        for b in batches:
            for path, fmt in zip(b.column("path").to_pylist(), b.column("format").to_pylist()):
                read.setdefault(path, 0)
                for raw in ingest.read_documents(path, fmt, icfg):
                    read[path] += raw.num_rows
                    yield raw.select(names)
        read_acc.add(read)

    if progress is not None:
        progress.phase(
            "read plain input",
            total=len(source.files),
            done=lambda: len(read_acc.value),
            docs=lambda: sum(read_acc.value.values()),
        )
    t0 = time.perf_counter()
    files = list(source.files)
    files_df = spark.createDataFrame(
        spark.sparkContext.parallelize(files, max(1, len(files))), "path string, format string"
    )
    out = work / "plain_input"
    files_df.mapInArrow(_map, from_arrow_schema(PLAIN_SCHEMA)).write.mode("overwrite").parquet(str(out))
    seconds = time.perf_counter() - t0
    rows = spark.read.parquet(str(out))
    docs = rows.filter(F.col("reject_stage").isNull()).select(*DOC_COLUMNS)
    rejects = rows.filter(F.col("reject_stage").isNotNull())
    reasons = {r["reject_reason"]: r["count"] for r in rejects.groupBy("reject_reason").count().collect()}
    kept = docs.count()
    read = dict(sorted(read_acc.value.items()))
    stage = StageCounts(
        stage=STAGE,
        rows_in=sum(read.values()),
        rows_kept=kept,
        rows_rejected=sum(reasons.values()),
        reasons=dict(sorted(reasons.items())),
        seconds=round(seconds, 3),
    )
    if stage.rows_in != kept + stage.rows_rejected:
        raise RuntimeError(
            f"input {source.reference}: the readers produced {stage.rows_in} records but {kept} documents"
            f" + {stage.rows_rejected} rejects were written"
        )
    log.info(
        "input %s: %d file(s), %d records read, %d documents, %d rejected in %.1fs",
        source.reference,
        len(files),
        stage.rows_in,
        kept,
        stage.rows_rejected,
        seconds,
    )
    extra = {"input_files": len(files), "ingest": {"records_read": stage.rows_in, "files": read}}
    return InputFrame(docs, "plain", [source.reference], [stage], rejects, extra)
