"""The local production stack, measured: bring-up time, a web_curation run triggered over REST vs the same run
through `dag.test()`, the scheduler's trigger-to-first-task latency, and the stack's peak memory.

    source scripts/env.sh && PYTHONPATH=$PWD python bench/stack.py [--input FILE] [--skip-dag-test]

Brings a fresh stack up (its datasets in a temp dir), runs once, brings it down; then runs the same DAG run
in one process with `dag.test()` (SQLite, `spark_default` = local[2]: the cluster's two cores). Peak memory is
the sum of the resident sizes of every process of the stack (the marked process tree: Airflow, Celery task
processes, spark-submit drivers, Spark daemons and executors), sampled every 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from curation.paths import shared_data_dir
from dags.client import AirflowClient
from dags.service.config import StackConfig, ensure_secrets
from dags.service.processes import Service, pss_bytes, rss_bytes, stack_pids

ROOT = Path(__file__).resolve().parent.parent

DAG_TEST = """
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[3])
t0 = time.monotonic()
run = bag.get_dag(sys.argv[1]).test(run_conf=json.loads(sys.argv[2]))
print("RESULT", json.dumps({"state": str(run.state), "seconds": time.monotonic() - t0}))
"""


def ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


class PeakRss(threading.Thread):
    def __init__(self, state: dict):
        super().__init__(daemon=True)
        self.services = [Service(**s) for s in state["services"]]
        self.run_id, self.stop = state["run_id"], threading.Event()
        self.peak_rss = self.peak_pss = self.peak_procs = 0

    def run(self):
        while not self.stop.is_set():
            pids = stack_pids(self.services, self.run_id)
            self.peak_rss = max(self.peak_rss, rss_bytes(pids))
            self.peak_pss = max(self.peak_pss, pss_bytes(pids))
            self.peak_procs = max(self.peak_procs, len(pids))
            time.sleep(0.5)


def stack_run(conf: dict, env: dict) -> dict:
    up_t0 = time.monotonic()
    up = subprocess.run(
        [sys.executable, "-m", "dags.stack", "up", "--fresh"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if up.returncode != 0:
        raise SystemExit(up.stderr[-3000:])
    up_wall = time.monotonic() - up_t0
    cfg = StackConfig.from_env(env)
    state = json.loads(cfg.state_file.read_text())
    sampler = PeakRss(state)
    sampler.start()
    try:
        idle_rss = rss_bytes(stack_pids(sampler.services, state["run_id"]))
        api = AirflowClient(cfg.api_url, cfg.admin_user, ensure_secrets()["PHI_STACK_ADMIN_PASSWORD"])
        api.wait_for_dag("web_curation")
        t0 = time.time()
        run = api.trigger("web_curation", conf)
        done = api.wait("web_curation", run["dag_run_id"], poll_s=0.5)
        wall = time.time() - t0
        tis = api.tasks("web_curation", run["dag_run_id"])
        first = min(tis.values(), key=lambda ti: ts(ti["start_date"]))
        out = {
            "up_seconds": state["up_seconds"],
            "up_wall_seconds": round(up_wall, 1),
            "state": done["state"],
            "trigger_to_success_s": round(wall, 1),
            "trigger_to_first_task_queued_s": round(ts(first["queued_when"]) - t0, 2),
            "trigger_to_first_task_start_s": round(ts(first["start_date"]) - t0, 2),
            "task_seconds": {t: round(ti["duration"] or 0, 1) for t, ti in tis.items()},
            "idle_rss_mib": round(idle_rss / 2**20),
        }
    finally:
        sampler.stop.set()
        sampler.join()
        subprocess.run([sys.executable, "-m", "dags.stack", "down"], cwd=ROOT, env=env, check=False)
    out.update(
        peak_rss_mib=round(sampler.peak_rss / 2**20),
        peak_pss_mib=round(sampler.peak_pss / 2**20),
        peak_processes=sampler.peak_procs,
    )
    return out


def dag_test_run(conf: dict, home: Path, data: Path) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "PHI_DATA_ROOT": str(data),
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        "SPARK_MASTER": "local[2]",
        "SPARK_DRIVER_MEMORY": "1g",
        "GX_ANALYTICS_ENABLED": "false",
    }
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, check=True
    )
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", DAG_TEST, "web_curation", json.dumps(conf), str(ROOT / "dags")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - t0
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        raise SystemExit((proc.stdout + proc.stderr)[-3000:])
    result = json.loads(line[-1].removeprefix("RESULT "))
    return {
        "state": result["state"],
        "dag_test_s": round(result["seconds"], 1),
        "process_wall_s": round(wall, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--input", default=str(shared_data_dir() / "warc_commoncrawl_samples" / "dolma-sample-0000.warc.gz")
    )
    p.add_argument("--skip-dag-test", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="phi-bench-stack-") as tmp:
        tmp = Path(tmp)
        config = tmp / "curation.yaml"
        config.write_text("output_partitions: 2\n")
        conf = {"input_globs": [args.input], "crawl_id": "CC-MAIN-2024-22", "config_path": str(config)}
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PHI_STACK_DATA_ROOT": str(tmp / "stack-data")}
        result = {"input": args.input, "stack": stack_run(conf, env)}
        if not args.skip_dag_test:
            result["dag_test"] = dag_test_run(conf, tmp / "airflow-home", tmp / "dagtest-data")
    out = ROOT / "bench" / "out" / "stack.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
