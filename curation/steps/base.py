"""The step interface: each curation step does one job on a batch of documents.

Python steps run inside Spark's `mapInArrow` (see curation/pipeline.py): an Arrow batch is turned into
a `DocBatch` (columns as Python lists) once, every configured step runs over it in order, and it is
turned back into Arrow once. A step never sees rows an earlier step rejected, and it rejects a row by
recording its own stage name and a short categorical reason (detail is free text for audit).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from curation.contract import REJECT_FIELDS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

#: Free-text detail for a reject (e.g. the id a duplicate was kept as, the offending value).
REJECT_DETAIL = pa.field("reject_detail", pa.string())


class DocBatch:
    """A batch of documents as a dict of equal-length Python lists, plus reject bookkeeping."""

    def __init__(self, columns: dict[str, list]):
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"ragged batch: column lengths {sorted(lengths)}")
        self.columns = columns
        self.n = lengths.pop() if lengths else 0
        for f in (*REJECT_FIELDS, REJECT_DETAIL):
            self.columns.setdefault(f.name, [None] * self.n)

    @classmethod
    def from_arrow(cls, batch: pa.RecordBatch | pa.Table) -> DocBatch:
        return cls(batch.to_pydict())

    def to_arrow(self, schema: pa.Schema) -> pa.RecordBatch:
        """Columns in `schema` order; columns the batch lacks are filled with nulls."""
        arrays = []
        for f in schema:
            values = self.columns.get(f.name)
            arrays.append(pa.array(values if values is not None else [None] * self.n, type=f.type))
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    def __getitem__(self, name: str) -> list:
        return self.columns[name]

    def column(self, name: str, default: Any = None) -> list:
        """The named column, created (filled with `default`) if missing."""
        if name not in self.columns:
            self.columns[name] = [default] * self.n
        return self.columns[name]

    def active(self) -> Iterator[int]:
        """Indices of rows no step has rejected yet."""
        stages = self.columns["reject_stage"]
        return (i for i in range(self.n) if stages[i] is None)

    def reject(self, i: int, stage: str, reason: str, detail: str | None = None) -> None:
        self.columns["reject_stage"][i] = stage
        self.columns["reject_reason"][i] = reason
        self.columns["reject_detail"][i] = detail


class DriverHooks:
    """What `curation.pipeline.run` does with every step on the driver, in this order. Each hook is a no-op
    here; a step overrides the ones it needs. The pipeline calls all of them on every step (Python and frame
    steps alike), so a step's extension points are these methods and nothing else.

    1. `prepare_driver(spark, work_dir)`: before any worker starts (build an index, ship a model file
       under `work_dir`, the run's scratch folder inside the staging folder, removed before publishing).
    2. `bind(spark, staging, run_id)`: frame steps only, just before `apply`; `staging` is the version's
       staging folder, for side outputs (near dedup's duplicates audit).
    3. `manifest_extra()` and `write_extra(staging)`: after data/ and rejects/ are written; both return a
       dict merged into the manifest's `extra` (the edu model version; near dedup's counts, after staging
       its band index).
    4. `commit()`: after the version is published: side outputs go live only once the corpus has
       (near dedup publishes its band index).
    5. `abort()`: instead of `commit` when anything failed (the staging folder is removed by the
       pipeline; the step drops what it staged or cached elsewhere).
    """

    def prepare_driver(self, spark, work_dir: Path) -> None:
        """Driver-side preparation before workers start."""

    def bind(self, spark, staging: Path, run_id: str) -> None:
        """Frame steps: the session and staging folder `apply` and `write_extra` use."""

    def manifest_extra(self) -> dict[str, Any]:
        return {}

    def write_extra(self, staging: Path) -> dict[str, Any]:
        return {}

    def commit(self) -> None:
        """The version is published."""

    def abort(self) -> None:
        """The run failed; nothing was published."""


class Step(DriverHooks, ABC):
    """One job over a DocBatch. Subclasses set `name` (the stage recorded on rejects) and declare the
    columns they add in `output_fields`, so the pipeline can tell Spark the output schema up front."""

    name: ClassVar[str]
    output_fields: ClassVar[list[pa.Field]] = []

    def setup(self) -> None:
        """Load models or indexes. Called once per worker process before the first batch."""

    @abstractmethod
    def apply(self, batch: DocBatch) -> None:
        """Mutate `batch` in place: fill output columns and reject rows for this stage."""

    def fields(self) -> list[pa.Field]:
        return list(self.output_fields)


class FrameStep(DriverHooks, ABC):
    """A Spark-level step over the DataFrame of rows every Python step kept (dedup needs all rows at once).
    `apply` returns (kept, rejected): `rejected` has the input columns plus `reject_stage` (= `name`),
    `reject_reason` and `reject_detail`. Driver hooks: see DriverHooks."""

    name: ClassVar[str]

    @abstractmethod
    def apply(self, df: DataFrame) -> tuple[DataFrame, DataFrame]: ...


class DocFilter(Step):
    """A step that looks at one document's text at a time and either keeps it or names a reason.

    `evaluate` returns (reason or None, signals); signals land in the columns named by `output_fields`
    so every rule's inputs are kept for audit, for kept and rejected rows alike.
    """

    @abstractmethod
    def evaluate(self, text: str) -> tuple[str | None, dict[str, Any]]: ...

    def apply(self, batch: DocBatch) -> None:
        texts = batch["text"]
        outs = {f.name: batch.column(f.name) for f in self.fields()}
        for i in list(batch.active()):
            reason, signals = self.evaluate(texts[i] or "")
            for k, v in signals.items():
                if k in outs:
                    outs[k][i] = v
            if reason is not None:
                batch.reject(i, self.name, reason)


class StepTimer:
    """Wall time per step inside a worker, summed over batches (reported in the manifest)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, step: Step, batch: DocBatch) -> None:
        t0 = time.perf_counter()
        step.apply(batch)
        self.seconds[step.name] = self.seconds.get(step.name, 0.0) + time.perf_counter() - t0
