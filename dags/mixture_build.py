"""mixture_build: a mixture YAML -> validated plan -> tokenized, packed shards per phase -> gated -> Asset `mixture`.

    validate -> plan -> build -> validate_build (GE `mixture`) -> publish

- validate (first task, no retry): `training.mixture.validate.check_mixture`; a bad YAML fails this task
  with the full list of problems, each with its YAML path and line, before anything is read or written.
- plan: the per-phase/source token plan (table in the log, JSON + stacked-bar PNG beside the builds).
- build: `python -m training mixture build` into `$PHI_DATA_ROOT/mixtures/<name>/<version>`; the build
  swaps its output in atomically, so a retry replaces a half-done build.
- validate_build / publish: the `mixture` suite (realised vs target weights within tolerance, no empty
  source); publish points `<name>/CURRENT` at the build and emits the `mixture` Asset (extra: version,
  path, name, tokens) that pretrain schedules on.

Scheduled on the corpus Assets (`web_curated`, `web_edu`, `synthetic`): any new version rebuilds the
default mixture (param `mixture_yaml`, default `$PHI_MIXTURE_YAML` or configs/mixtures/tiny.yaml). A
researcher triggers it by hand with their own YAML.
"""
from __future__ import annotations

import os

from airflow.sdk import Param, dag, get_current_context, task

from dags._common import DEFAULT_ARGS, WEB_CURATED
from dags.lib.assets import MIXTURE, SYNTHETIC, WEB_EDU

DEFAULT_MIXTURE = os.environ.get("PHI_MIXTURE_YAML") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "mixtures", "tiny.yaml")


@dag(
    dag_id="mixture_build",
    schedule=(WEB_CURATED | WEB_EDU | SYNTHETIC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["mixture", "training"],
    doc_md=__doc__,
    params={
        "mixture_yaml": Param(DEFAULT_MIXTURE, type="string", pattern=r"^\S+\.ya?ml$", title="Mixture YAML"),
        "workers": Param(1, type="integer", minimum=1, maximum=64, title="Tokenizer processes"),
    },
)
def mixture_build():
    @task(retries=0)
    def validate() -> dict:
        """Fail first, with every problem listed (a YAML will not fix itself on retry)."""
        from airflow.sdk.exceptions import AirflowFailException

        from training.mixture.validate import MixtureValidationError, check_mixture

        path = get_current_context()["params"]["mixture_yaml"]
        try:
            cm = check_mixture(path)
        except (MixtureValidationError, FileNotFoundError) as e:
            raise AirflowFailException(str(e)) from None
        return {"name": cm.config.name, "phases": [p.name for p in cm.config.phases],
                "sources": len(cm.resolved)}

    @task(multiple_outputs=True)
    def plan(checked: dict) -> dict:
        import json
        import logging

        from dags.lib.plan import version_id
        from dags.lib.train import mixture_root
        from training.mixture.plan import plan_table, plot_plan
        from training.mixture.validate import check_mixture

        ctx = get_current_context()
        version = version_id(ctx["run_id"], ctx.get("logical_date") or ctx["dag_run"].run_after)
        cm = check_mixture(ctx["params"]["mixture_yaml"])
        logging.getLogger(__name__).info("mixture plan:\n%s", plan_table(cm.plans))
        root = mixture_root(checked["name"])
        plans = root / "_plans" / version
        plans.mkdir(parents=True, exist_ok=True)
        (plans / "plan.json").write_text(json.dumps([p.to_dict() for p in cm.plans], indent=2))
        plot_plan(cm.plans, plans / "plan.png")
        return {"version": version, "name": checked["name"], "root": str(root), "build_dir": str(root / version),
                "plan": str(plans / "plan.json")}

    @task
    def build(planned: dict) -> str:
        from dags.lib.cli import run_module

        p = get_current_context()["params"]
        run_module("training", ["mixture", "build", p["mixture_yaml"], "--output", planned["build_dir"],
                                "--workers", p["workers"]])
        return planned["build_dir"]

    @task(retries=0)
    def validate_build(build_dir: str) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from curation.quality_gates import run_gate

        result = run_gate(build_dir, kind="mixture")
        if not result.success:
            raise AirflowFailException(result.summary())
        return {"evaluated": result.evaluated, "data_docs": result.docs_index}

    @task(outlets=[MIXTURE])
    def publish(planned: dict, **context) -> dict:
        import json
        from pathlib import Path

        from curation.contract import DatasetRoot

        manifest = json.loads((Path(planned["build_dir"]) / "manifest.json").read_text())
        DatasetRoot(planned["root"]).set_current(planned["version"])
        info = {"version": planned["version"], "path": planned["build_dir"], "name": planned["name"],
                "tokens": {p["name"]: p["tokens"] for p in manifest["phases"]}}
        context["outlet_events"][MIXTURE].extra = info
        return info

    planned = plan(validate())
    built = build(planned)
    validate_build(built) >> publish(planned)


mixture_build()
