"""pretrain: phase 1 -> phase 2 of the Phi-3-style decoder on a built mixture, through torchrun.

    plan -> phase1 (torchrun, pool `gpu`, queue $PHI_GPU_QUEUE) -> phase2 (same)
         -> report (Asset `pretrained`)

- plan: which mixture build to train on (the `mixture` param; else the triggering `mixture` Asset
  event's path; else the config's `mixture:`), and the effective run config (the given YAML with that
  mixture and `out_dir = $PHI_DATA_ROOT/pretrain/<version>`), validated with a clear error.
- phase1 / phase2: `torchrun --standalone --nproc_per_node=N -m training run CONFIG --phase phaseK` in a
  BashOperator, on the Celery queue `$PHI_GPU_QUEUE` (`dags._common.GPU_QUEUE`). In compose that is `gpu`,
  consumed only by the `trainer` service (profile `gpu`): an Airflow Celery worker in the CUDA trainer
  image, so torchrun runs in the trainer container on its GPUs; plan and report stay on the generic
  worker. Without the variable (local runs, dag.test) the phases use the default queue. phase 2 starts
  from phase 1's final checkpoint; a retried phase resumes from its latest checkpoint in the run's out_dir.
- report: the trainer's metrics and plot; emits the `pretrained` Asset.

Started by hand, or by a `pretrain_request` Asset event, which mixture_build emits only for a mixture that
opts in with `auto_pretrain: true` (the policy in dags/README.md): never as a side effect of a corpus
refresh.
"""

from __future__ import annotations

import os

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import Param, dag, get_current_context, task

from curation.paths import REPO_ROOT
from dags._common import DEFAULT_ARGS, GPU_POOL, GPU_QUEUE, GPU_TIMEOUT
from dags.lib.assets import PRETRAIN_REQUEST, PRETRAINED

DEFAULT_CONFIG = os.environ.get("PHI_TRAIN_CONFIG") or str(REPO_ROOT / "configs" / "train" / "tiny-cpu.yaml")
TORCHRUN = (
    "set -euo pipefail; torchrun --standalone --nproc_per_node={{ params.nproc_per_node }} "
    "-m training run \"{{ ti.xcom_pull(task_ids='plan', key='config') }}\" --phase %s"
)


@dag(
    dag_id="pretrain",
    schedule=[PRETRAIN_REQUEST],
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["training", "gpu"],
    doc_md=__doc__,
    params={
        "train_config": Param(
            DEFAULT_CONFIG, type="string", pattern=r"^\S+\.ya?ml$", title="Run config YAML"
        ),
        "mixture": Param(
            None,
            type=["null", "string"],
            pattern=r"^\S+$",
            title="Mixture build",
            description="build folder or mixture root (its CURRENT); empty = the Asset event's",
        ),
        "nproc_per_node": Param(1, type="integer", minimum=1, maximum=64, title="Processes (GPUs) per node"),
    },
)
def pretrain():
    @task(multiple_outputs=True, retries=0)
    def plan() -> dict:
        import yaml

        from dags.lib.paths import dataset_root, run_version
        from dags.lib.train import effective_train_config, resolve_mixture

        ctx = get_current_context()
        p = ctx["params"]
        version = run_version(ctx)
        event_path = None
        for events in (ctx.get("triggering_asset_events") or {}).values():
            for event in events:
                event_path = (event.extra or {}).get("path") or event_path
        with open(p["train_config"]) as f:
            raw = yaml.safe_load(f) or {}
        mixture = resolve_mixture(
            p["mixture"], event_path, raw.get("mixture") if isinstance(raw, dict) else None
        )
        out_dir = dataset_root("pretrain") / version
        config = effective_train_config(p["train_config"], mixture, out_dir)
        return {"version": version, "config": str(config), "out_dir": str(out_dir), "mixture": str(mixture)}

    planned = plan()
    phase1, phase2 = (
        BashOperator(
            task_id=phase,
            bash_command=TORCHRUN % phase,
            cwd=str(REPO_ROOT),
            pool=GPU_POOL,
            queue=GPU_QUEUE,
            execution_timeout=GPU_TIMEOUT,
        )
        for phase in ("phase1", "phase2")
    )

    @task(outlets=[PRETRAINED])
    def report(planned: dict, **context) -> dict:
        from pathlib import Path

        out = Path(planned["out_dir"])
        info = {
            "version": planned["version"],
            "path": str(out),
            "mixture": planned["mixture"],
            "files": sorted(str(p.relative_to(out)) for p in out.glob("*") if p.is_file()),
        }
        context["outlet_events"][PRETRAINED].extra = info
        return info

    planned >> phase1 >> phase2 >> report(planned)


pretrain()
