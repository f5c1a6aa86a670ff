"""Run a kind's suite on a dataset version with great-expectations 1.x, build Data Docs, and refuse to
publish a version whose gate failed.

GE objects live in a fresh ephemeral context per run (nothing shared between runs or processes); the
Data Docs site of the run is written next to the verdict (`gate.json`) in `docs_dir`, by default
`<version>/quality/`, so the evidence travels with the version it judged.

Document datasets are validated on Spark by default (engine "spark": great-expectations' Spark data
source over the version's parquet files, text length and hash computed on the executors, only metrics and
a few sample values reach the driver), so the gating process's memory does not grow with the corpus.
Engine "pandas" reads the projection into this process (the former path; kept as the reference and for
callers without a JVM). A mixture build is a handful of rows from its manifest.json: always pandas.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from curation.contract import DatasetRoot, Manifest
from curation.dataset_version import open_dataset_version
from curation.quality_gates.config import GateConfig
from curation.quality_gates.frames import (
    documents_frame,
    fingerprint,
    is_spark_frame,
    mixture_frame,
    read_spark_documents,
    spark_documents,
)
from curation.quality_gates.result import Failure, GateFailed, GateResult
from curation.quality_gates.suites import SUITES

log = logging.getLogger(__name__)

GATE_FILE = "gate.json"
ENGINES = ("spark", "pandas")
DEFAULT_ENGINE = "spark"


def quiet_gx():
    """Import great_expectations without its import-time noise (pitfall P13: hundreds of
    'Skipping registering function' lines when imported after Airflow) and without analytics."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    for name in ("great_expectations", "great_expectations.expectations.registry"):
        logging.getLogger(name).setLevel(logging.WARNING)
    import great_expectations as gx

    return gx


def _kind_of(dataset_dir: Path, manifest: Manifest | None, kind: str | None) -> str:
    kind = kind or (manifest.dataset if manifest else None)
    if kind not in SUITES:
        raise ValueError(
            f"{dataset_dir}: no quality suite for dataset kind {kind!r}; known: {sorted(SUITES)}"
        )
    return kind


def _failures(validation_results) -> tuple[int, list[Failure]]:
    evaluated, failures = 0, []
    for vr in validation_results:
        for r in vr.results:
            evaluated += 1
            if r.success:
                continue
            conf = r.expectation_config
            res = r.result or {}
            exc = r.exception_info or {}
            error = exc.get("exception_message") if exc.get("raised_exception") else None
            failures.append(
                Failure(
                    expectation=conf.type,
                    column=conf.kwargs.get("column"),
                    kwargs={k: v for k, v in conf.kwargs.items() if k != "batch_id"},
                    unexpected_count=res.get("unexpected_count"),
                    sample=list(res.get("partial_unexpected_list") or [])[:10],
                    observed=res.get("observed_value"),
                    error=error,
                )
            )
    return evaluated, failures


def validate_frame(
    frame,  # a pandas or Spark DataFrame
    kind: str,
    cfg: GateConfig | None = None,
    manifest: Manifest | None = None,
    docs_dir: str | Path | None = None,
    name: str = "dataset",
) -> tuple[int, list[Failure], str | None]:
    """Validate a frame (pandas, or a Spark DataFrame validated on Spark) with the kind's suite; build Data
    Docs into docs_dir when given."""
    gx = quiet_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    cfg = cfg or GateConfig()
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    tag = uuid.uuid4().hex[:8]
    spark = is_spark_frame(frame)
    # the Spark source persists the (text-free) frame in executor storage: each expectation is a Spark
    # job over it, and the parquet files are read once
    source = (
        ctx.data_sources.add_spark(f"{kind}-{tag}") if spark else ctx.data_sources.add_pandas(f"{kind}-{tag}")
    )
    batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole")
    suite = ctx.suites.add(gx.ExpectationSuite(name=kind))
    for expectation in SUITES[kind](cfg, manifest, list(frame.columns)):
        suite.add_expectation(expectation)
    definition = ctx.validation_definitions.add(
        gx.ValidationDefinition(name=f"{kind}-{tag}", data=batch, suite=suite)
    )
    actions, docs_index = [], None
    if docs_dir is not None:
        site_dir = Path(docs_dir) / "data_docs"
        ctx.add_data_docs_site(
            site_name="run",
            site_config={
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(site_dir),
                },
            },
        )
        actions.append(gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=["run"]))
        docs_index = str(site_dir / "index.html")
    checkpoint = ctx.checkpoints.add(
        gx.Checkpoint(
            name=f"gate-{tag}",
            validation_definitions=[definition],
            actions=actions,
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 10},
        )
    )
    try:
        outcome = checkpoint.run(batch_parameters={"dataframe": frame})
    finally:
        if spark:
            frame.unpersist()
    evaluated, failures = _failures(outcome.run_results.values())
    return evaluated, failures, docs_index


def _documents(files: list[Path], engine: str, frame):
    """What the documents suite validates: the caller's frame (a Spark one projected lazily), else the
    version's data `files` read by `engine`."""
    if engine not in ENGINES:
        raise ValueError(f"gate engine must be one of {ENGINES}, got {engine!r}")
    if frame is not None:
        return spark_documents(frame) if is_spark_frame(frame) else frame
    if engine == "spark":
        from curation.spark import get_spark

        df = read_spark_documents(get_spark("phi-gate"), files)
        if df is not None:
            return spark_documents(df)
    # pandas, or no data file at all (nothing to read: an empty frame, which the row-count and schema
    # expectations fail with their usual names)
    return documents_frame(files)


@dataclass(frozen=True)
class _Target:
    """What a gate reads and how its verdict names it."""

    source: Path | list[Path]  # a mixture build folder, or a document version's data files
    manifest: Manifest | None
    kind: str
    version: str
    label: str  # the verdict's dataset_dir
    docs_dir: Path  # default home of gate.json and Data Docs
    fingerprint: str  # of what was read (publish checks it is unchanged)


def _target(dataset: str | Path, kind: str | None) -> _Target:
    """A mixture build folder, a version folder / dataset root, or a table version (`iceberg:<table>[@v]`)."""
    if kind == "mixture":
        build = Path(dataset)
        return _Target(build, None, kind, build.name, str(build), build / "quality", fingerprint(build))
    v = open_dataset_version(dataset)
    kind = _kind_of(Path(v.label), v.manifest, kind)
    # a snapshot never changes: its label (table@snapshot id) is its fingerprint
    fp = fingerprint(v.folder) if v.folder is not None else v.label
    return _Target(v.data_files, v.manifest, kind, v.manifest.version, v.label, v.quality_dir, fp)


def run_gate(
    dataset: str | Path,
    kind: str | None = None,
    cfg: GateConfig | None = None,
    docs_dir: str | Path | None = None,
    frame=None,
    engine: str = DEFAULT_ENGINE,
) -> GateResult:
    """Validate a dataset version: a version folder, a dataset root, a mixture build folder, or a table
    version `iceberg:<table>[@<run id | snapshot id>]` (its snapshot's files, its manifest from the
    snapshot summary; curation/tables/version.py).

    `engine` ("spark" by default, or "pandas") chooses how a document dataset is read (module docstring).
    `frame` lets a caller that already holds the data skip reading the parquet files: a Spark
    DataFrame of the version's documents (validated on Spark), or a pandas frame in the layout of
    frames.documents_frame. The verdict is written to `<docs_dir>/gate.json` and Data Docs to
    `<docs_dir>/data_docs/` (default: the version's quality/, out/tables/<table>@<snapshot>/quality for a
    table version).
    """
    t = _target(dataset, kind)
    if t.kind == "mixture":
        frame = mixture_frame(t.source) if frame is None else frame
    else:
        frame = _documents(t.source, engine, frame)
    docs_dir = Path(docs_dir) if docs_dir is not None else t.docs_dir
    evaluated, failures, docs_index = validate_frame(frame, t.kind, cfg, t.manifest, docs_dir, name=t.version)
    result = GateResult(
        kind=t.kind,
        dataset_dir=t.label,
        version=t.version,
        success=not failures,
        evaluated=evaluated,
        failures=failures,
        docs_index=docs_index,
        fingerprint=t.fingerprint,
    )
    result.write(docs_dir / GATE_FILE)
    (log.info if result.success else log.warning)("%s", result.summary())
    return result


def require_passed(
    version_dir: str | Path,
    kind: str | None = None,
    cfg: GateConfig | None = None,
    engine: str = DEFAULT_ENGINE,
) -> GateResult:
    """The verdict for exactly these files: reuse gate.json when its fingerprint still matches,
    otherwise validate again. Raises GateFailed when the data does not pass."""
    version_dir = Path(version_dir)
    saved = version_dir / "quality" / GATE_FILE
    result = None
    if saved.is_file():
        previous = GateResult.read(saved)
        if previous.fingerprint == fingerprint(version_dir) and (kind is None or previous.kind == kind):
            result = previous
    if result is None:
        result = run_gate(version_dir, kind=kind, cfg=cfg, engine=engine)
    if not result.success:
        raise GateFailed(result)
    return result


def publish_gated(
    candidate_dir: str | Path,
    root: str | Path,
    kind: str | None = None,
    cfg: GateConfig | None = None,
    set_current: bool = True,
    engine: str = DEFAULT_ENGINE,
) -> Path:
    """Publish a finished candidate version into `root` only if its quality gate passes.

    The candidate is a complete version folder (manifest written) outside the root's visible versions,
    e.g. `<root>/_candidates/<run_id>`; publishing renames it to `<root>/<run_id>` atomically and (with
    `set_current`) makes it live: the root's table snapshot, then CURRENT (`DatasetRoot.make_current`).
    Calling it again after success returns the published folder and commits nothing new (retries are safe).
    """
    candidate, dataset_root = Path(candidate_dir), DatasetRoot(root)
    if not (candidate / "manifest.json").is_file():
        version = candidate.name
        published = dataset_root.version_dir(version)
        if (published / "manifest.json").is_file():
            log.info("version %s already published at %s", version, published)
            if set_current:  # also reconciles the table snapshot of a publish that failed after the rename
                dataset_root.make_current(version)
            return published
        raise FileNotFoundError(
            f"candidate {candidate} has no manifest.json and {published} is not published"
        )
    result = require_passed(candidate, kind=kind, cfg=cfg, engine=engine)
    dataset_root.root.mkdir(parents=True, exist_ok=True)
    final = dataset_root.publish(candidate, result.version, set_current=set_current)
    log.info("published %s (gate passed: %d expectations)", final, result.evaluated)
    return final
