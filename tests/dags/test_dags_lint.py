"""Lint for Airflow 2-isms in the DAGs: ruff's AIR3 rule family (Airflow 3 migration rules)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from curation.paths import REPO_ROOT


def ruff(*args: str, cwd=REPO_ROOT) -> subprocess.CompletedProcess:
    exe = shutil.which("ruff")
    if exe is None:
        pytest.fail("ruff not found; install the dev extra")
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=cwd, timeout=60, check=False)


def test_ruff_has_the_air3_rules():
    proc = ruff("rule", "--all", "--output-format", "json")
    import json

    codes = {r["code"] for r in json.loads(proc.stdout) if r.get("code")}
    assert {"AIR301", "AIR302", "AIR311", "AIR312"} <= codes


def test_dags_have_no_airflow2_isms():
    proc = ruff("check", "--preview", "--select", "AIR3", "--no-cache", "dags/")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_lint_catches_an_airflow2_dag(tmp_path):
    (tmp_path / "old_dag.py").write_text(
        "from datetime import datetime\n"
        "from airflow import DAG\n"
        "from airflow.operators.python import PythonOperator\n"
        "with DAG('old', schedule_interval='@daily', start_date=datetime(2024, 1, 1)) as dag:\n"
        "    PythonOperator(task_id='t', python_callable=print)\n"
    )
    proc = ruff(
        "check",
        "--preview",
        "--select",
        "AIR3",
        "--no-cache",
        "--output-format",
        "json",
        str(tmp_path / "old_dag.py"),
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    import json

    found = {(v["code"], v["location"]["row"]) for v in json.loads(proc.stdout)}
    assert ("AIR301", 4) in found  # schedule_interval was removed in Airflow 3
    assert ("AIR311", 4) in found and ("AIR312", 5) in found
