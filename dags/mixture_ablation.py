"""mixture_ablation: a proxy-model ablation or a RegMix-style mixture search (training/ablation/), from
the UI.

    check -> route -> run_cpu | run_gpu -> report

- check (no retry): loads the YAML (`study_yaml`: an ablation, or a search - it names a `phase`) and fails
  with every problem listed, before anything is built.
- route: `tiny` proxies on the CPU run on the default queue (run_cpu); a larger preset or `device: cuda` runs
  on the GPU queue `$PHI_GPU_QUEUE` in the `gpu` pool (run_gpu), as pretrain's phases do.
- run_*: `python -m training ablate run|search YAML`, the same command as by hand. Resumable: a retry does not
  redo the arms (or samples) already trained.
- report: the report files and the results dataset (OUTPUT/results, queried by sql/ablation_arms.sql).
"""

from __future__ import annotations

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import Param, dag, get_current_context, task

from curation.paths import REPO_ROOT
from dags._common import DEFAULT_ARGS, GPU_POOL, GPU_QUEUE

COMMAND = (
    "set -euo pipefail; python -m training ablate {{ ti.xcom_pull(task_ids='check', key='kind') }} "
    '"{{ params.study_yaml }}"'
)


@dag(
    dag_id="mixture_ablation",
    schedule=None,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["mixture", "training", "gpu"],
    doc_md=__doc__,
    params={"study_yaml": Param(type="string", pattern=r"^\S+\.ya?ml$", title="Ablation or search YAML")},
)
def mixture_ablation():
    @task(multiple_outputs=True, retries=0)
    def check() -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from training.ablation.config import ConfigError, describe

        try:
            return describe(get_current_context()["params"]["study_yaml"])
        except (ConfigError, FileNotFoundError, ValueError) as e:
            raise AirflowFailException(str(e)) from None

    @task.branch
    def route(checked: dict) -> str:
        return "run_gpu" if checked["gpu"] else "run_cpu"

    run_cpu = BashOperator(task_id="run_cpu", bash_command=COMMAND, cwd=str(REPO_ROOT))
    run_gpu = BashOperator(
        task_id="run_gpu", bash_command=COMMAND, cwd=str(REPO_ROOT), pool=GPU_POOL, queue=GPU_QUEUE
    )

    @task(trigger_rule="none_failed_min_one_success")
    def report(checked: dict) -> dict:
        from training.ablation.results import latest_results

        return latest_results(checked["output"]) | {"kind": checked["kind"], "name": checked["name"]}

    checked = check()
    route(checked) >> [run_cpu, run_gpu] >> report(checked)


mixture_ablation()
