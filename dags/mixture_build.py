"""mixture_build: a mixture YAML -> validated plan -> tokenized, packed shards per phase -> gated -> Asset
`mixture`.

    validate -> plan (skip when built already) -> build -> validate_build (GE `mixture`) -> publish
            -> request_pretrain (only with `auto_pretrain: true`)

- validate (first task, no retry): `training.mixture.validate.check_mixture`; a bad YAML fails this task
  with the full list of problems, each with its YAML path and line, before anything is read or written.
  It includes the pins (training/mixture/pins.py): a filter on `edu_score` against a corpus scored by a
  model other than the source's pinned `edu_model` (or, unpinned, by several models) is refused.
- plan: the per-phase/source token plan (table in the log, JSON + stacked-bar PNG beside the builds), and
  the build's input versions (the resolved version folder of every source + the YAML's text). A mixture
  is built once per distinct set of input versions: when a published build of the same inputs exists
  (`<name>/_inputs/<key>.json`), the run skips from here (param `force` rebuilds anyway). So the two
  corpus events of one night, or a nightly web_curated event for a mixture that pins its versions, do not
  build twice.
- build: `python -m training mixture build` into `$PHI_DATA_ROOT/mixtures/<name>/<version>`; the build
  swaps its output in atomically, so a retry replaces a half-done build.
- validate_build / publish: the `mixture` suite (realised vs target weights within tolerance, no empty
  source); publish points `<name>/CURRENT` at the build and emits the `mixture` Asset (extra: version,
  path, name, tokens) and records the build's input versions.
- request_pretrain: emits the `pretrain_request` Asset (the pretrain DAG's schedule) only when the mixture
  says `auto_pretrain: true`; otherwise it is skipped and pretraining starts by hand.

Scheduled on the corpus Assets (`web_curated`, `web_edu`, `synthetic`): a new version of an input the
default mixture reads (param `mixture_yaml`, default `$PHI_MIXTURE_YAML` or configs/mixtures/tiny.yaml)
builds it once. A researcher triggers it by hand with their own YAML.
"""

from __future__ import annotations

import os

from airflow.sdk import Param, dag, get_current_context, task

from dags._common import DEFAULT_ARGS, SPARK_TIMEOUT
from dags._common import validate as gate
from dags.lib.assets import MIXTURE, PRETRAIN_REQUEST, SYNTHETIC, WEB_CURATED, WEB_EDU

DEFAULT_MIXTURE = os.environ.get("PHI_MIXTURE_YAML") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "mixtures", "tiny.yaml"
)


# The tasks are module-level decorated callables; the @dag function at the end only wires them (calling
# one inside it adds that task to the DAG).
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
    return {
        "name": cm.config.name,
        "phases": [p.name for p in cm.config.phases],
        "sources": len(cm.resolved),
    }


@task(multiple_outputs=True)
def plan(checked: dict) -> dict:
    from airflow.sdk.exceptions import AirflowSkipException

    from dags.lib.paths import run_version
    from dags.lib.train import plan_build

    ctx = get_current_context()
    planned = plan_build(ctx["params"]["mixture_yaml"], checked["name"], run_version(ctx))
    if planned["built"] and not ctx["params"]["force"]:
        raise AirflowSkipException(
            f"mixture {checked['name']} was built from these input versions already: "
            f"{planned['built']} (inputs {planned['inputs_key']}); force=true rebuilds"
        )
    return planned


@task(execution_timeout=SPARK_TIMEOUT)
def build(planned: dict) -> str:
    from dags.lib.cli import run_module

    p = get_current_context()["params"]
    run_module(
        "training",
        [
            "mixture",
            "build",
            p["mixture_yaml"],
            "--output",
            planned["build_dir"],
            "--workers",
            p["workers"],
        ],
    )
    return planned["build_dir"]


@task(outlets=[MIXTURE])
def publish(planned: dict, **context) -> dict:
    import json
    from pathlib import Path

    from curation.contract import DatasetRoot
    from dags.lib.train import record_inputs

    manifest = json.loads((Path(planned["build_dir"]) / "manifest.json").read_text())
    DatasetRoot(planned["root"]).set_current(planned["version"])
    record_inputs(planned["root"], planned["inputs_key"], planned["inputs"], planned["version"])
    info = {
        "version": planned["version"],
        "path": planned["build_dir"],
        "name": planned["name"],
        "tokens": {p["name"]: p["tokens"] for p in manifest["phases"]},
    }
    context["outlet_events"][MIXTURE].extra = info
    return info


@task(outlets=[PRETRAIN_REQUEST])
def request_pretrain(planned: dict, published: dict, **context) -> dict:
    """The opt-in: only a mixture with `auto_pretrain: true` starts a pretraining run."""
    from airflow.sdk.exceptions import AirflowSkipException

    if not planned["auto_pretrain"]:
        raise AirflowSkipException(f"mixture {planned['name']} does not set auto_pretrain: pretrain by hand")
    context["outlet_events"][PRETRAIN_REQUEST].extra = published
    return published


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
        "force": Param(False, type="boolean", title="Rebuild even if these input versions were built"),
    },
)
def mixture_build():
    planned = plan(validate())
    built = build(planned)
    published = publish(planned)
    gate.override(task_id="validate_build")(built, "mixture") >> published
    request_pretrain(planned, published)


mixture_build()
