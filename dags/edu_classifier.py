"""edu_classifier: teacher labels -> a fasttext educational-value classifier -> promoted only when it beats
the promoted one -> the published web corpus scored with it.

    plan -> label (teacher, pool `teacher`) -> train -> evaluate (floors, then vs the incumbent) -> promote
         -> score (Spark) -> validate (GE `web_scored`) -> publish (Asset `web_edu`)

Schedule (the policy in dags/README.md): its own cadence, never because a night published. Weekly
(`PHI_EDU_RETRAIN_CRON`, default Sunday 05:00 UTC, after the nightly deadline), when new label files
arrive (an `edu_label_files` Asset event: a labelling tool or an operator posts it through the REST API),
or by hand; an AssetOrTimeSchedule combines the two.

- label: `python -m synthesis label-edu` samples `n` documents of the input corpus and has the teacher
  rate them 0-5 (embedded SmolLM2 on CPU by default; `backend`/`base_url` point it at vLLM). The label
  dataset lands in `$PHI_DATA_ROOT/edu_labels/<version>`; a retry resumes from its teacher store.
- train: `python -m curation edu train` (teacher labels, plus any `extra_labels` files) registers a
  model in the registry (`$PHI_EDU_REGISTRY`, else `$PHI_DATA_ROOT/edu_models`) with its held-out metrics on
  the card. The card's notes carry the run's version, so a retried train task finds the model it already
  registered instead of adding a second.
- evaluate (dags/lib/promotion.py): the card's held-out metrics against the floors given as params
  (`min_macro_f1`, ...; null = not checked); a model below a floor fails the run here (no retry: the model
  will not change). Then the incumbent (the promoted model): both models score the candidate's held-out
  split, and the candidate is promoted only if its `promotion_metric` beats the incumbent's by
  `promotion_margin`; otherwise the run stops here, skipped (the incumbent stays, nothing is rescored).
  The verdict, with both models' scores, is written beside the model (`eval/promotion-<version>.json`)
  and appended to the registry's `promotions.jsonl`.
- promote, then score the input corpus with exactly that model (`python -m curation edu score` through
  spark-submit) into a candidate, gate it and publish it as `web_edu` (Asset event extra: version, path, rows,
  model).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, get_current_context, task

from dags._common import (
    DEFAULT_ARGS,
    TEACHER_POOL,
    TEACHER_TIMEOUT,
    gate_and_publish,
    spark_submit,
    teacher_flags,
    teacher_params,
)
from dags.lib.assets import EDU_LABEL_FILES, EDU_MODEL, WEB_EDU
from dags.lib.paths import dataset_root
from dags.lib.table_store import corpus_reference

YAML = r"^\S+\.ya?ml$"
FLOOR = {"type": ["null", "number"], "minimum": -1.0, "maximum": 1.0}
RETRAIN_CRON = os.environ.get("PHI_EDU_RETRAIN_CRON") or "0 5 * * 0"


# The tasks are module-level decorated callables; the @dag function at the end only wires them (calling
# one inside it adds that task to the DAG).
@task(multiple_outputs=True)
def plan() -> dict:
    from curation.dataset_version import pin_dataset_version
    from dags.lib.paths import registry_root, run_version

    ctx = get_current_context()
    version = run_version(ctx)
    # labelled and scored: the same version (a folder, or a table's snapshot), whatever is published
    # meanwhile; fails here, clearly, when there is no corpus
    corpus = pin_dataset_version(ctx["params"]["input"])
    return {
        "version": version,
        "corpus": str(corpus),
        "registry": str(registry_root()),
        "labels_root": str(dataset_root("edu_labels")),
        "labels": str(dataset_root("edu_labels") / version),
    }


@task(pool=TEACHER_POOL, execution_timeout=TEACHER_TIMEOUT)
def label(planned: dict) -> str:
    from dags.lib.cli import run_module

    p = get_current_context()["params"]
    args = [
        "label-edu",
        "--input",
        planned["corpus"],
        "--output",
        planned["labels_root"],
        "--run-id",
        planned["version"],
        "--n",
        p["n"],
        "--seed",
        p["seed"],
        "--no-progress",
    ]
    if p["label_config"]:
        args += ["--config", p["label_config"]]
    run_module("synthesis", args + teacher_flags(p))
    return planned["labels"]


@task
def train(planned: dict, labels: str) -> str:
    from dags.lib.edu import train_for_run

    p = get_current_context()["params"]
    return train_for_run(
        planned["registry"], planned["version"], [labels, *p["extra_labels"]], config=p["train_config"]
    )


@task(retries=0)
def evaluate(planned: dict, model: str) -> dict:
    """The promotion decision (dags.lib.promotion): below a floor fails the run; not better than the
    incumbent by the margin skips the rest (the incumbent stays)."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from dags.lib.edu import FLOOR_METRICS
    from dags.lib.promotion import promotion_verdict

    p = get_current_context()["params"]
    verdict = promotion_verdict(
        planned["registry"],
        model,
        planned["version"],
        {k: p[k] for k in FLOOR_METRICS},
        [planned["labels"], *p["extra_labels"]],
        p["promotion_margin"],
        p["promotion_metric"],
    )
    if verdict["misses"]:
        raise AirflowFailException(f"edu model {model} is not promoted: " + "; ".join(verdict["misses"]))
    if not verdict["promotable"]:
        raise AirflowSkipException(
            f"edu model {model} is not promoted, the incumbent stays: {verdict['reason']}"
        )
    return verdict


@task(outlets=[EDU_MODEL], multiple_outputs=True)
def promote(planned: dict, verdict: dict, **context) -> dict:
    from curation.edu.registry import ModelRegistry
    from dags.lib.edu import score_plan

    ref = ModelRegistry(planned["registry"]).promote(verdict["model"])
    context["outlet_events"][EDU_MODEL].extra = {
        "version": ref.version,
        "path": str(ref.dir),
        "metrics": ref.card.metrics,
    }
    return score_plan(planned["registry"], ref.version, planned["corpus"], planned["version"])


@dag(
    dag_id="edu_classifier",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(RETRAIN_CRON, timezone="UTC"), assets=EDU_LABEL_FILES
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["edu", "teacher", "spark"],
    doc_md=__doc__,
    params={
        "input": Param(
            corpus_reference("web_curated", dataset_root("web_curated")),
            type="string",
            minLength=1,
            pattern=r"^\S+$",
            title="Corpus",
            description="dataset root (its CURRENT), version folder, or table version"
            " iceberg:<table>[@<run id | snapshot id>] to label and score",
        ),
        "n": Param(300, type="integer", minimum=8, maximum=1_000_000, title="Documents to label"),
        "seed": Param(0, type="integer", minimum=0, title="Sampling seed"),
        **teacher_params("the label config's"),
        "label_config": Param(None, type=["null", "string"], pattern=YAML, title="LabelEduConfig YAML"),
        "extra_labels": Param(
            [],
            type="array",
            items={"type": "string", "minLength": 1, "pattern": r"^\S+$"},
            title="More label files",
            description="human or earlier label files trained on "
            "together with the teacher labels (e.g. FineWeb-C's CSV)",
        ),
        "train_config": Param(None, type=["null", "string"], pattern=YAML, title="EduTrainConfig YAML"),
        "min_macro_f1": Param(0.15, **FLOOR, title="Floor: held-out macro F1"),
        "min_spearman": Param(0.0, **FLOOR, title="Floor: held-out Spearman"),
        "min_binary_f1": Param(None, **FLOOR, title="Floor: held-out binary F1 at the threshold"),
        "min_human_auc": Param(None, **FLOOR, title="Floor: AUC against human labels"),
        "promotion_metric": Param(
            "macro_f1",
            type="string",
            enum=["macro_f1", "spearman", "binary_f1"],
            title="Promotion: held-out metric compared with the incumbent's",
        ),
        "promotion_margin": Param(
            0.01,
            type="number",
            minimum=0.0,
            maximum=1.0,
            title="Promotion: how much the new model must beat the incumbent by",
        ),
    },
)
def edu_classifier():
    planned = plan()
    model = train(planned, label(planned))
    promoted = promote(planned, evaluate(planned, model))
    score = spark_submit("score", promoted["score_argv"], "phi-edu-score")
    stages = gate_and_publish(
        promoted["candidate_dir"], promoted["root"], WEB_EDU, "web_scored", extra={"model": promoted["model"]}
    )
    promoted >> score >> stages["validate"]


edu_classifier()
