"""What every DAG shares: default args (retries with exponential backoff), pools, the Spark-submit
factory, the gate -> publish task group, and the curate -> validate -> report -> publish stages of a
curation run.

Only light imports here (Airflow's SDK, the Spark provider, path helpers): the DAG processor imports
this for every DAG file. Project logic is imported inside task bodies.
"""
from __future__ import annotations

import logging
import os
from datetime import timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Asset, TaskGroup, TriggerRule, task
from airflow.sdk.configuration import conf

from dags.lib.plan import CURATION_APP

log = logging.getLogger(__name__)

DEFAULT_ARGS = {
    "owner": "data",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,     # 30 s, 60 s, ... capped below
    "max_retry_delay": timedelta(minutes=10),
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

SPARK_CONN_ID = "spark_default"   # local[*] by default; spark://spark-master:7077 in compose


def spark_submit(task_id: str, argv, name: str) -> SparkSubmitOperator:
    """`python -m curation <argv>` through spark-submit on `spark_default`, in the `spark` pool."""
    return SparkSubmitOperator(
        task_id=task_id,
        conn_id=SPARK_CONN_ID,
        application=CURATION_APP,
        application_args=argv,
        name=name,
        pool=SPARK_POOL,
        driver_memory=os.environ.get("SPARK_DRIVER_MEMORY", "2g"),
        conf={"spark.ui.showConsoleProgress": "false"},
        # a retry re-runs the whole job into the same candidate version (replaced atomically), so
        # there is nothing to reconnect to
        durable=False,
    )


@task(retries=0)
def validate(candidate_dir: str, kind: str) -> dict:
    """The great-expectations gate; a failing gate fails the run (no retry: the data will not change)."""
    from airflow.sdk.exceptions import AirflowFailException

    from curation.quality_gates import run_gate

    result = run_gate(candidate_dir, kind=kind)
    log.info("%s", result.summary())
    if not result.success:
        raise AirflowFailException(result.summary())
    return {"evaluated": result.evaluated, "data_docs": result.docs_index}


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
def publish(candidate_dir: str, root: str, kind: str, near_index: dict | None = None, extra: dict | None = None,
            **context) -> dict:
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


def gate_and_publish(candidate_dir, root, asset: Asset, kind: str, *, near_index=None, extra=None,
                     with_report: bool = False) -> dict:
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


def curation_stages(plan, asset: Asset, kind: str = "web_curated") -> dict:
    """Create the curate, validate, report and publish tasks of one curation run.

    `plan` is the XCom of a plan task (dags.lib.plan.plan_curation, multiple_outputs). Returns the tasks
    by name so a DAG can wire them and insert stages between curate and validate.
    """
    curate = spark_submit("curate", plan["argv"], "phi-curation")
    stages = gate_and_publish(plan["candidate_dir"], plan["root"], asset, kind, near_index=plan["near_index"],
                              with_report=True)
    return {"curate": curate, **stages}
