"""synthetic_data: recipes -> textbook-like synthetic data, generated in parallel shards, validated,
reviewed, published.

    plan -> generate[shard 0..n-1] (pool `teacher`) -> merge -> validate (GE `synthetic`)
         -> review_mode -> [prepare_review -> review (human)] -> apply_review -> publish (Asset `synthetic`)

- plan: validates the recipes YAML (the error names the file and field) and fans out `shards` shard specs.
- generate: one mapped task per shard runs `python -m synthesis run --recipes R --shard i/n`, which
  generates, checks, verifies (math answers, sandboxed code tests), near-dedups and decontaminates its
  disjoint share of the plan and publishes it as `$PHI_DATA_ROOT/synthetic/_shards/<version>/shard-i-of-n`.
  The `teacher` pool caps how many shards talk to the teacher server at once; a retried shard resumes
  from its teacher store (answers are not generated twice) and replaces its version.
- merge: `python -m synthesis merge` (pool `spark`), a Spark job: the shard versions become one contract
  version `_candidates/<version>` (stage counts summed). Each shard near-dedups within itself, so the merge
  runs curation's MinHash near-dedup (NearDedup) once more over the merged rows: near-duplicates split across
  shards become rejects (stage `near_dedup_cross_shard`, reason `near_duplicate_cross_shard`).
  Decontamination is per row and runs within each shard only.
- validate / publish: the `synthetic` suite; a failing gate leaves the candidate unpublished. Publishing
  emits the `synthetic` Asset (extra: version, path, rows) that mixture_build schedules on.
- review: a researcher sees the stage counts and `review_sample` random items per generator (Airflow's
  human-in-the-loop task, Browse -> Required Actions), approves or rejects publication and may flag item ids;
  flagged items become rejects (`reviewer_flagged`) and the decision, reviewer and time go into the version's
  manifest (synthesis/textbook/review.py). Rejecting publishes nothing. A review left unanswered for
  REVIEW_TIMEOUT_HOURS takes `review_on_timeout`. Unattended runs (the demo, CI) set `review_auto_approve`,
  and the manifest records that the review was skipped.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param, dag, get_current_context, task

from dags._common import (
    DEFAULT_ARGS,
    SPARK_POOL,
    SPARK_TIMEOUT,
    TEACHER_POOL,
    TEACHER_TIMEOUT,
    gate_and_publish,
    teacher_flags,
    teacher_params,
)
from dags.lib.assets import SYNTHETIC
from dags.lib.paths import dataset_root

#: how long a review waits for its researcher before `review_on_timeout` decides (the operator's timeout is
#: fixed at parse time, not a run param)
REVIEW_TIMEOUT_HOURS = 48
DEFAULT_RECIPES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "synthesis", "recipes.yaml"
)


# The tasks live at module level (decorated callables; calling them inside the @dag function instantiates
# them there), so the DAG function below is only the wiring.


@task(multiple_outputs=True)
def plan() -> dict:
    from dags.lib.paths import run_version
    from dags.lib.synthetic import SHARDS, check_recipes

    ctx = get_current_context()
    version = run_version(ctx)
    summary = check_recipes(ctx["params"]["recipes"])
    root = dataset_root("synthetic")
    return {
        "version": version,
        "root": str(root),
        "shards_root": str(root / SHARDS / version),
        "candidate_dir": str(root / "_candidates" / version),
        "recipes": summary,
    }


@task
def shard_specs() -> list[str]:
    from dags.lib.synthetic import shard_specs as specs

    return specs(get_current_context()["params"]["shards"])


@task(pool=TEACHER_POOL, execution_timeout=TEACHER_TIMEOUT)
def generate(spec: str, shards_root: str) -> str:
    from pathlib import Path

    from dags.lib.cli import run_module
    from dags.lib.synthetic import shard_run_id

    p = get_current_context()["params"]
    run_id = shard_run_id(spec)
    args = [
        "run",
        "--recipes",
        p["recipes"],
        "--output",
        shards_root,
        "--shard",
        spec,
        "--run-id",
        run_id,
        "--sandbox-workers",
        p["sandbox_workers"],
        "--no-progress",
    ]
    run_module("synthesis", args + teacher_flags(p))
    return str(Path(shards_root) / run_id)


@task(pool=SPARK_POOL, execution_timeout=SPARK_TIMEOUT)
def merge(shard_dirs: list[str], planned: dict) -> str:
    """`python -m synthesis merge`: a Spark job (cross-shard near-dedup on the executors)."""
    from pathlib import Path

    from dags.lib.cli import run_module
    from dags.lib.synthetic import merge_args

    candidates = Path(planned["candidate_dir"]).parent
    run_module("synthesis", merge_args(list(shard_dirs), candidates, planned["version"]))
    return str(candidates / planned["version"])


@task.branch
def review_mode() -> str | None:
    # unattended: skip the human steps; apply_review still runs (its trigger rule) and records the skip
    return None if get_current_context()["params"]["review_auto_approve"] else "prepare_review"


@task
def prepare_review(candidate_dir: str) -> str:
    from synthesis.textbook.review import review_body, review_sample

    sample = review_sample(candidate_dir, get_current_context()["params"]["review_sample"])
    return review_body(candidate_dir, sample)


@task(trigger_rule="none_failed_min_one_success")
def apply_review(candidate_dir: str) -> dict:
    from airflow.sdk.exceptions import AirflowSkipException

    from synthesis.textbook.review import apply_review as record
    from synthesis.textbook.review import decision_from_hitl

    ctx = get_current_context()
    params = ctx["params"]
    if params["review_auto_approve"]:
        m = record(candidate_dir, approved=True, reviewer="auto-approve", skipped=True)
    else:
        decision = decision_from_hitl(ctx["ti"].xcom_pull(task_ids="review"), params["review_on_timeout"])
        m = record(candidate_dir, **decision)
    if m.extra["review"]["decision"] != "approved":
        raise AirflowSkipException(
            f"review rejected by {m.extra['review']['reviewer']}: nothing is published"
        )
    return m.extra["review"]


def review_task() -> HITLOperator:
    """The researcher's decision (Approve/Reject, item ids to flag), shown the page prepare_review built."""
    return HITLOperator(
        task_id="review",
        subject="Publish this synthetic version?",
        options=["Approve", "Reject"],
        defaults=["Reject"],
        body="{{ ti.xcom_pull(task_ids='prepare_review') }}",
        params={"flag_ids": Param([], type="array", items={"type": "string"}, title="Item ids to reject")},
        response_timeout=timedelta(hours=REVIEW_TIMEOUT_HOURS),
    )


@dag(
    dag_id="synthetic_data",
    schedule=None,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["synthesis", "teacher"],
    doc_md=__doc__,
    params={
        "recipes": Param(DEFAULT_RECIPES, type="string", pattern=r"^\S+\.ya?ml$", title="Recipes YAML"),
        "shards": Param(2, type="integer", minimum=1, maximum=256, title="Shards (parallel generate tasks)"),
        **teacher_params("the recipe file's"),
        "sandbox_workers": Param(
            2, type="integer", minimum=1, maximum=64, title="Parallel code-test sandboxes"
        ),
        "review_auto_approve": Param(
            False, type="boolean", title="Skip the researcher review (unattended runs)"
        ),
        "review_sample": Param(
            3, type="integer", minimum=0, maximum=200, title="Review sample per generator"
        ),
        "review_on_timeout": Param(
            "reject", type="string", enum=["reject", "approve"], title="Decision when the review times out"
        ),
    },
)
def synthetic_data():
    planned = plan()
    specs = shard_specs()
    planned >> specs
    shards = generate.partial(shards_root=planned["shards_root"]).expand(spec=specs)
    merged = merge(shards, planned)
    gated = gate_and_publish(merged, planned["root"], SYNTHETIC, "synthetic")
    # the researcher's review sits between the gate and publication: a rejection skips publish
    applied = apply_review(merged)
    gated["validate"] >> review_mode() >> prepare_review(merged) >> review_task() >> applied
    gated["validate"] >> applied >> gated["publish"]


synthetic_data()
