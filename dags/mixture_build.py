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

from dags._common import DEFAULT_ARGS
from dags._common import validate as gate
from dags.lib.assets import MIXTURE, SYNTHETIC, WEB_CURATED, WEB_EDU

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
        from dags.lib.paths import run_version
        from dags.lib.train import plan_build

        ctx = get_current_context()
        return plan_build(ctx["params"]["mixture_yaml"], checked["name"], run_version(ctx))

    @task
    def build(planned: dict) -> str:
        from dags.lib.cli import run_module

        p = get_current_context()["params"]
        run_module("training", ["mixture", "build", p["mixture_yaml"], "--output", planned["build_dir"],
                                "--workers", p["workers"]])
        return planned["build_dir"]

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
    gate.override(task_id="validate_build")(built, "mixture") >> publish(planned)


mixture_build()
