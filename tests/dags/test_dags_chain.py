"""`dag.test()` runs for part 2 of the DAGs on real components: a bad mixture YAML fails the first task of
mixture_build with every problem listed, and an injected failure in the edu train step is retried without
registering a second model. Each run is a fresh interpreter with its own AIRFLOW_HOME (SQLite, migrated
once per module), as in test_dags_run.py."""

from __future__ import annotations

import textwrap

import pytest
from dagtest_helpers import DagTest

from curation.paths import REPO_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    return DagTest(tmp_path_factory.mktemp("airflow"), tmp_path_factory.mktemp("data"))


def test_bad_mixture_yaml_fails_the_first_task_with_every_problem(airflow, tmp_path):
    bad = tmp_path / "bad-mixture.yaml"
    bad.write_text(
        textwrap.dedent("""\
        name: bad
        seq_len: -5
        registry: nowhere.yaml
        phases:
          - name: phase1
            tokens: 1000
            sources:
              - name: web
                dataset: /no/such/dataset
                weight: 0.5
                colour: blue
        """)
    )
    result = airflow("mixture_build", {"mixture_yaml": str(bad)})
    assert result["state"] == "failed"
    assert result["tasks"]["validate"] == "failed", result["log"][-4000:]
    assert result["tries"]["validate"] == 1  # no retry: a YAML does not fix itself
    assert {result["tasks"][t] for t in ("plan", "build", "validate_build", "publish")} == {"upstream_failed"}
    log = result["log"]
    # the task's error lists every problem, each with file, line and YAML path
    assert "problem(s) in mixture" in log
    for needle in ("bad-mixture.yaml:2", "seq_len", "colour", "registry"):
        assert needle in log, needle
    assert not (airflow.data / "mixtures").exists()  # nothing was planned or built


RETRY_DAG = '''
"""Test DAG: the edu_classifier train step (dags.lib.edu.train_for_run), crashing once after the model was
registered (injected), retried at once."""
import os
from datetime import timedelta

from airflow.sdk import dag, get_current_context, task


@dag(dag_id="train_retry", schedule=None, default_args={"retries": 1, "retry_delay": timedelta(0)})
def train_retry():
    @task
    def train() -> dict:
        from dags.lib.edu import model_for_run, train_for_run

        ctx = get_current_context()
        registry, labels = os.environ["RETRY_REGISTRY"], os.environ["RETRY_LABELS"]
        model = train_for_run(registry, "v-retry", [labels], human="none")
        if ctx["ti"].try_number == 1 and os.environ.get("RETRY_INJECT_FAILURE") == "1":
            raise RuntimeError("injected failure after the model was registered")
        return {"model": model, "try": ctx["ti"].try_number, "again": model_for_run(registry, "v-retry")}

    train()


train_retry()
'''


def test_injected_failure_is_retried_without_a_duplicate_model(airflow, tmp_path, shared_data):
    from curation.edu.registry import ModelRegistry, read_card
    from dags.lib.edu import run_tag

    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "train_retry.py").write_text(RETRY_DAG)
    registry = tmp_path / "registry"
    labels = shared_data / "edu_labels_finewebc_danish" / "fineweb-c_danish.csv"
    result = airflow(
        "train_retry",
        {},
        dags_folder=folder,
        RETRY_REGISTRY=str(registry),
        RETRY_LABELS=str(labels),
        RETRY_INJECT_FAILURE="1",
        PYTHONPATH=str(REPO_ROOT),
    )
    assert result["state"] == "success" and result["tasks"] == {"train": "success"}, result["log"][-4000:]
    assert result["tries"]["train"] == 2
    assert "injected failure after the model was registered" in result["log"]
    out = result["xcom"]["train"]
    assert out["try"] == 2 and out["model"] == out["again"]
    reg = ModelRegistry(registry)
    assert reg.versions() == [out["model"]]  # trained once, registered once
    assert read_card(reg.root / out["model"]).notes == run_tag("v-retry")
    assert not [p for p in reg.root.iterdir() if p.name.startswith(".staging")]
