"""`dag.test()` runs, each in a fresh interpreter, sharing one AIRFLOW_HOME (SQLite, migrated once), so
Airflow's global settings and ORM never leak into other tests (tests/dags/test_dags_run.py,
test_dags_chain.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from curation.paths import REPO_ROOT

RUNNER = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.models.asset import AssetEvent, AssetModel
from airflow.utils.session import create_session

dag_id, conf = sys.argv[1], json.loads(sys.argv[2])
bag = DagBag(dag_folder=sys.argv[3])
assert not bag.import_errors, bag.import_errors
run = bag.get_dag(dag_id).test(run_conf=conf)
tis = run.get_task_instances()
with create_session() as session:
    query = session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
    events = [e.extra for e in query.filter(AssetModel.name == "web_curated").order_by(AssetEvent.id)]
print("RESULT " + json.dumps({"state": str(run.state), "run_id": run.run_id, "events": events,
                              "tasks": {ti.task_id: str(ti.state) for ti in tis},
                              "tries": {ti.task_id: ti.try_number for ti in tis},
                              "xcom": {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in tis
                                       if str(ti.state) == "success"}}, default=str))
"""


def migrate_airflow_db(env: dict[str, str]) -> None:
    """`airflow db migrate` for the AIRFLOW_HOME in `env`; fails the test with its stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


class DagTest:
    """Call it with a DAG id and its conf: the run's state, run id, task states, tries, successful tasks'
    XComs, the `web_curated` Asset events so far, and its log (`log`). Data lives under `data`."""

    def __init__(self, home: Path, data: Path, **env: str):
        self.data = data
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "PHI_DATA_ROOT": str(data),
            "PHI_EDU_REGISTRY": str(data / "edu_models"),
            "GX_ANALYTICS_ENABLED": "false",
            **env,
        }
        migrate_airflow_db(self.env)

    @classmethod
    def with_spark(cls, tmp_path_factory, tables: bool = False, **env: str) -> DagTest:
        """Runs whose Spark jobs go to local[2] through `spark_default`, with nightly_refresh's deadline off
        (dag.test() cannot finish a run with a DeadlineAlert, see dags/nightly_refresh.py DEADLINE); `tables`:
        a table catalog (SQLite) in the data root's `_warehouse`. `root`: the web corpus's dataset root."""
        from curation.contract import DatasetRoot

        data = tmp_path_factory.mktemp("data")
        if tables:
            env = {"PHI_ICEBERG_WAREHOUSE": str(data / "_warehouse"), **env}
        run = cls(
            tmp_path_factory.mktemp("airflow"),
            data,
            AIRFLOW_CONN_SPARK_DEFAULT=json.dumps({"conn_type": "spark", "host": "local[2]"}),
            SPARK_MASTER="local[2]",
            SPARK_DRIVER_MEMORY="1g",
            PHI_NIGHTLY_DEADLINE_H="off",
            **env,
        )
        run.root = DatasetRoot(data / "web_curated")
        return run

    def __call__(self, dag_id: str, conf: dict, dags_folder: Path = REPO_ROOT / "dags", **env: str) -> dict:
        proc = subprocess.run(
            [sys.executable, "-c", RUNNER, dag_id, json.dumps(conf), str(dags_folder)],
            env={**self.env, "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder), **env},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
            cwd=REPO_ROOT,
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        assert proc.returncode == 0 and lines, (proc.stdout + proc.stderr)[-6000:]
        result = json.loads(lines[-1].removeprefix("RESULT "))
        result["log"] = proc.stdout + proc.stderr
        return result
