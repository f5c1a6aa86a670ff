"""The mixture_ablation DAG: it loads (no import errors, no heavy top-level imports), passes the project's DAG
lint (ruff AIR3), routes tiny CPU proxies to the default queue and larger ones to the GPU queue/pool, and its
first task lists every problem of a bad study YAML."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from test_dags_lint import ruff

from curation.paths import REPO_ROOT

DAG_FILE = REPO_ROOT / "dags" / "mixture_ablation.py"
HEAVY = ("torch", "duckdb", "pandas", "matplotlib", "sklearn", "pyspark")


@pytest.fixture(scope="module")
def parsed(tmp_path_factory) -> dict:
    code = f"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
before = set(sys.modules)
bag = DagBag(dag_folder={str(DAG_FILE)!r})
dag = bag.dags.get("mixture_ablation")
heavy = sorted(m for m in set(sys.modules) - before if m.split('.')[0] in {HEAVY!r})
tasks = {{t.task_id: {{"queue": t.queue, "pool": t.pool, "down": sorted(t.downstream_task_ids)}}
         for t in dag.tasks}} if dag else {{}}
from dags._common import GPU_QUEUE
print(json.dumps({{"errors": {{k: str(v) for k, v in bag.import_errors.items()}}, "tasks": tasks,
                  "heavy": heavy, "gpu_queue": GPU_QUEUE,
                  "params": sorted(dag.params.keys()) if dag else []}}))
"""
    home = tmp_path_factory.mktemp("airflow")
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "GX_ANALYTICS_ENABLED": "false",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
    }
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **env},
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_dag_loads_thin_and_routes_proxies_by_size(parsed):
    assert parsed["errors"] == {}
    assert parsed["heavy"] == []
    tasks = parsed["tasks"]
    assert set(tasks) == {"check", "route", "run_cpu", "run_gpu", "report"}
    assert tasks["route"]["down"] == ["run_cpu", "run_gpu"]
    assert tasks["run_gpu"]["queue"] == parsed["gpu_queue"] and tasks["run_gpu"]["pool"] == "gpu"
    assert tasks["run_cpu"]["pool"] != "gpu"
    assert parsed["params"] == ["study_yaml"]


def test_the_dag_passes_the_project_lint():
    proc = ruff("check", "--preview", "--select", "AIR3", "--no-cache", str(DAG_FILE))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_routes_and_lists_every_problem(tmp_path):
    from training.ablation.config import ConfigError, describe

    study = {
        "name": "s",
        "output": "out",
        "tokenizer": "tok",
        "base": "base.yaml",
        "arms": [
            {"name": "a"},
            {"name": "b", "variations": [{"phase": "phase1", "source": "web", "scale_weight": 2}]},
        ],
        "tokens": {"phase1": 4096},
    }
    (tmp_path / "abl.yaml").write_text(yaml.safe_dump(study))
    assert describe(tmp_path / "abl.yaml") == {
        "kind": "ablation",
        "name": "s",
        "gpu": False,
        "arms": 2,
        "output": str((tmp_path / "out").resolve()),
    }
    (tmp_path / "big.yaml").write_text(yaml.safe_dump(study | {"proxy": {"preset": "125m"}}))
    assert describe(tmp_path / "big.yaml")["gpu"] is True
    (tmp_path / "search.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "s",
                "output": "o",
                "tokenizer": "t",
                "base": "b.yaml",
                "phase": "phase1",
                "samples": 3,
                "tokens": {"phase1": 1},
                "regressor": "forest",
            }
        )
    )
    with pytest.raises(ConfigError) as e:
        describe(tmp_path / "search.yaml")
    assert "samples" in str(e.value) and "regressor" in str(e.value) and "2 problem(s)" in str(e.value)
