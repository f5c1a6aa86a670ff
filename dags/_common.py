"""What every DAG shares: default args (retries with exponential backoff, a timeout on every task, an alert
on every final failure), pools, the Spark-submit factory, the gate -> publish task group, the writer lease
of a corpus, and the curate -> validate -> report -> publish stages of a curation run.

Only light imports here (Airflow's SDK, the Spark provider, path helpers): the DAG processor imports
this for every DAG file. Project logic is imported inside task bodies.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Asset, Param, TaskGroup, TriggerRule, task
from airflow.sdk.configuration import conf

from dags.lib.alerts import AlertNotifier
from dags.lib.plan import CURATION_APP
from synthesis.teacher.registry import BACKEND_KINDS

log = logging.getLogger(__name__)


def _hours(name: str, default: float) -> timedelta:
    return timedelta(hours=float(os.environ.get(name) or default))


# Every task is bounded: a hung Spark job, teacher or torchrun is killed (then retried / alerted) instead
# of holding its pool slot forever. The heavy kinds get their own bound; everything else the default.
TASK_TIMEOUT = _hours("PHI_TASK_TIMEOUT_H", 1)
SPARK_TIMEOUT = _hours("PHI_SPARK_TIMEOUT_H", 4)
TEACHER_TIMEOUT = _hours("PHI_TEACHER_TIMEOUT_H", 8)
GPU_TIMEOUT = _hours("PHI_GPU_TIMEOUT_H", 72)

DEFAULT_ARGS = {
    "owner": "data",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,  # 30 s, 60 s, ... capped below
    "max_retry_delay": timedelta(minutes=10),
    "execution_timeout": TASK_TIMEOUT,
    "on_failure_callback": AlertNotifier("task_failed"),  # after the last retry (dags/lib/alerts.py)
}

# Pools cap concurrent use of the shared engines; docker/pools.json creates them (airflow-init).
SPARK_POOL, TEACHER_POOL, GPU_POOL = "spark", "teacher", "gpu"
POOLS = {
    SPARK_POOL: (2, "spark-submit jobs running at once on the Spark cluster"),
    TEACHER_POOL: (4, "concurrent batches sent to the teacher LLM server (vLLM)"),
    GPU_POOL: (1, "tasks holding the GPU (training, local inference)"),
}

# Celery queue of the tasks that need the GPU (torchrun phases): in compose the `trainer` service is a
# Celery worker consuming only this queue (PHI_GPU_QUEUE=gpu there), so GPU work never lands on the
# generic airflow-worker. Unset (local runs, dag.test) it is Airflow's default queue: nothing changes.
GPU_QUEUE = os.environ.get("PHI_GPU_QUEUE") or conf.get("operators", "default_queue", fallback="default")

SPARK_CONN_ID = "spark_default"  # local[*] by default; spark://spark-master:7077 in compose


def spark_submit(task_id: str, argv, name: str) -> SparkSubmitOperator:
    """`python -m curation <argv>` through spark-submit on `spark_default`, in the `spark` pool."""
    return SparkSubmitOperator(
        task_id=task_id,
        conn_id=SPARK_CONN_ID,
        application=CURATION_APP,
        application_args=argv,
        name=name,
        pool=SPARK_POOL,
        execution_timeout=SPARK_TIMEOUT,
        driver_memory=os.environ.get("SPARK_DRIVER_MEMORY", "2g"),
        conf={"spark.ui.showConsoleProgress": "false"},
        # a retry re-runs the whole job into the same candidate version (replaced atomically), so
        # there is nothing to reconnect to
        durable=False,
    )


@task(retries=0)
def validate(candidate_dir: str, kind: str) -> dict:
    """The great-expectations gate, exactly as an engineer runs it: `python -m curation gate` (on Spark:
    the suite runs where the data lies, so this worker's memory does not grow with the corpus). A failing
    gate fails the run (no retry: the data will not change); its verdict stays in `quality/gate.json`."""
    from curation.contract import resolve_version_dir
    from curation.quality_gates.frames import fingerprint
    from curation.quality_gates.gate import GATE_FILE

    saved = resolve_version_dir(candidate_dir) / "quality" / GATE_FILE
    result = run_gate_cli(
        ["gate", "--input", candidate_dir, "--kind", kind],
        saved,
        fresh=lambda verdict: verdict.fingerprint == fingerprint(verdict.dataset_dir),
    )
    return {"evaluated": result.evaluated, "data_docs": result.docs_index}


def run_gate_cli(argv: list[str], verdict_path, fresh):
    """`python -m curation <argv>` (a gate) as the validate tasks run it. A FAILED verdict (exit 1, and
    `fresh(verdict)`: the file at `verdict_path` is this run's, not an earlier attempt's) fails the run
    without retry; any other failure (a broken input, Spark down) raises with the command's output tail.
    Returns the verdict (a GateResult), logged."""
    from airflow.sdk.exceptions import AirflowFailException

    from curation.quality_gates.result import GateResult
    from dags.lib.cli import CommandFailed, run_module

    try:
        run_module("curation", argv)
    except CommandFailed as e:
        verdict = GateResult.read(verdict_path) if e.returncode == 1 and verdict_path.is_file() else None
        if verdict is not None and fresh(verdict):
            raise AirflowFailException(verdict.summary()) from None  # the gate's own verdict: FAILED
        raise  # the gate could not run: the error and its output tail
    result = GateResult.read(verdict_path)
    log.info("%s", result.summary())
    return result


@task(trigger_rule=TriggerRule.ALL_DONE)
def report(candidate_dir: str) -> str:
    """Runs after the gate whatever its verdict (the report shows it); skips only without data."""
    from pathlib import Path

    from airflow.sdk.exceptions import AirflowSkipException

    from curation.reports import build_report

    if not (Path(candidate_dir) / "manifest.json").is_file():
        raise AirflowSkipException(f"no curated candidate at {candidate_dir}: nothing to report on")
    result = build_report(candidate_dir)
    log.info("report: %s", result.html.as_uri())
    return str(result.html)


@task
def publish(
    candidate_dir: str,
    root: str,
    kind: str,
    near_index: dict | None = None,
    extra: dict | None = None,
    **context,
) -> dict:
    """Publish only a version whose gate passed (then the band index the run staged, when it is a curation
    run: `near_index` given); the task's Asset event's extra says which version it is."""
    from airflow.sdk.exceptions import AirflowFailException

    from curation.contract import Manifest
    from curation.quality_gates import GateFailed, publish_gated
    from dags.lib.near_index import publish_with_index

    try:
        if near_index is None:
            final = publish_gated(candidate_dir, root, kind=kind)
        else:
            final = publish_with_index(candidate_dir, root, kind, near_index)
    except GateFailed as e:
        raise AirflowFailException(str(e)) from e
    manifest = Manifest.read(final)
    info = {"version": manifest.version, "path": str(final), "rows": manifest.rows, **(extra or {})}
    for asset in context["task"].outlets:
        context["outlet_events"][asset].extra = info
    log.info("published %s (%d rows)", final, manifest.rows)
    return info


def gate_and_publish(
    candidate_dir, root, asset: Asset, kind: str, *, near_index=None, extra=None, with_report: bool = False
) -> dict:
    """validate (GE suite `kind`) [-> report] -> publish (Asset `asset`), as one task group whose task ids
    stay `validate`, `report`, `publish`. Returns the tasks by name."""
    with TaskGroup("gate_and_publish", prefix_group_id=False):
        gate = validate(candidate_dir, kind)
        tasks = {"validate": gate}
        if with_report:
            tasks["report"] = report(candidate_dir)
        pub = publish.override(outlets=[asset])(candidate_dir, root, kind, near_index, extra)
        tasks["publish"] = pub
        if with_report:
            gate >> tasks["report"] >> pub
        gate >> pub  # explicit: publish needs the gate's success, not only the report's
    return tasks


# The writer lease (dags/lib/lock.py): how long a run waits for another run of the same corpus to publish,
# and after how long an abandoned lease is broken (longer than any plan -> publish can take).
LEASE_WAIT = _hours("PHI_WRITER_LEASE_WAIT_H", 1)
LEASE_TTL = _hours("PHI_WRITER_LEASE_TTL_H", 12)


@task(execution_timeout=LEASE_WAIT + timedelta(minutes=5), retries=0)
def writer_lock(root: str, **context) -> dict:
    """Setup: wait for, then hold, the corpus's writer lease (one writer per corpus)."""
    from airflow.sdk.exceptions import AirflowFailException

    from dags.lib.lock import CorpusBusy, WriterLock

    holder = f"{context['dag'].dag_id}/{context['run_id']}"
    try:
        return WriterLock(root).acquire(holder, ttl=LEASE_TTL, wait=LEASE_WAIT)
    except CorpusBusy as e:
        raise AirflowFailException(str(e)) from e


@task(trigger_rule=TriggerRule.ALL_DONE_SETUP_SUCCESS)
def writer_unlock(root: str, **context) -> bool:
    """Teardown: give the lease back, whatever happened between plan and publish."""
    from dags.lib.lock import WriterLock

    return WriterLock(root).release(f"{context['dag'].dag_id}/{context['run_id']}")


def writer_lease(root, first, last):
    """Hold `root`'s writer lease around the tasks from `first` to `last`: writer_lock (setup) >> first,
    last >> writer_unlock (teardown). Returns (lock, unlock)."""
    lock = writer_lock(str(root))
    unlock = writer_unlock(str(root))
    lock >> first
    last >> unlock
    unlock.as_teardown(setups=lock)
    return lock, unlock


@task
def append(planned: dict) -> str:
    """The next whole-corpus candidate of an incremental run: its base version (hard-linked; none in
    web_curation's mode replace) + the run's new documents (dags.lib.plan.append_candidate)."""
    from airflow.sdk.exceptions import AirflowFailException

    from dags.lib.plan import CurrentMoved, append_candidate

    try:
        return str(append_candidate(planned))
    except CurrentMoved as e:
        raise AirflowFailException(str(e)) from e


def curation_stages(plan, asset: Asset, kind: str = "web_curated") -> dict:
    """Create the curate, validate, report and publish tasks of one curation run.

    `plan` is the XCom of a plan task (dags.lib.plan.plan_curation, multiple_outputs). Returns the tasks
    by name so a DAG can wire them and insert stages between curate and validate.
    """
    curate = spark_submit("curate", plan["argv"], "phi-curation")
    stages = gate_and_publish(
        plan["candidate_dir"], plan["root"], asset, kind, near_index=plan["near_index"], with_report=True
    )
    return {"curate": curate, **stages}


def teacher_params(configured: str) -> dict[str, Param]:
    """The teacher a run may name without a YAML edit: backend, endpoint and served model (empty = what
    `configured`, the run's config file, says). The backend enum is the registry's."""
    return {
        "backend": Param(
            None,
            type=["null", "string"],
            enum=[None, *BACKEND_KINDS],
            title="Teacher backend",
            description=f"empty = {configured} teacher",
        ),
        "base_url": Param(
            None, type=["null", "string"], pattern=r"^https?://\S+$", title="Teacher URL (openai_http)"
        ),
        "model": Param(
            None,
            type=["null", "string"],
            minLength=1,
            title="Teacher model",
            description=f"empty = {configured}, or the one model $TEACHER_BASE_URL serves",
        ),
    }


def teacher_flags(params: dict) -> list[str]:
    """The synthesis CLI flags of the teacher params a run set (teacher_params)."""
    flags: list[str] = []
    for flag, key in (("--backend", "backend"), ("--base-url", "base_url"), ("--model", "model")):
        if params[key]:
            flags += [flag, params[key]]
    return flags
