"""The production stack for real (`python -m dags.stack`): Airflow 3 on the machine's Postgres and Redis with
Celery workers, a Spark standalone cluster, driven over the REST API v2 and in a headless browser.

One stack for the session (tests/stack_fixtures.py: brought up fresh, shared with the other stack tests); the
last test here takes it down and checks that nothing is left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from urllib.parse import quote

import httpx
import pyarrow.parquet as pq
import pytest
from stack_fixtures import stack_cli

from curation.contract import DatasetRoot, Manifest
from curation.paths import REPO_ROOT

pytestmark = [pytest.mark.stack, pytest.mark.slow]
SCREENSHOTS = REPO_ROOT / "out" / "stack" / "screenshots"


def satisfied_by(expression: dict | None, asset: str) -> bool:
    """Whether a serialized asset schedule (`asset_expression` of /dags/{id}/details) fires on an event of
    `asset` alone: `all` needs every operand, `any` one; aliases and other assets are not updated."""
    if not expression:
        return False
    if "asset" in expression:
        return expression["asset"]["name"] == asset
    if "all" in expression:
        return all(satisfied_by(e, asset) for e in expression["all"])
    if "any" in expression:
        return any(satisfied_by(e, asset) for e in expression["any"])
    return False


@pytest.fixture(scope="module")
def consumers(api) -> list[str]:
    """The DAGs the current schedules say a web_curated event alone starts, from the serialized DAGs."""
    api.wait_for_dag("web_curation")
    dag_ids = [d["dag_id"] for d in api.get("/dags", limit=100)["dags"]]
    return sorted(
        d for d in dag_ids if satisfied_by(api.get(f"/dags/{d}/details")["asset_expression"], "web_curated")
    )


@pytest.fixture(scope="module")
def runs(stack, api, consumers, shared_data, tmp_path_factory):
    """Two web_curation runs triggered over REST at once: a small real crawl file (publishes), and the
    planted bad dataset (whirlwind.warc.gz: one Aragonese page, so nothing is kept and the gate fails).
    The consumers are unpaused first so that the publication can start them."""
    for dag_id in consumers:
        api.set_paused(dag_id, False)
    config = tmp_path_factory.mktemp("conf") / "curation.yaml"
    config.write_text("output_partitions: 2\n")
    samples = shared_data / "warc_commoncrawl_samples"
    good = api.trigger(
        "web_curation",
        {
            "input_globs": [str(samples / "dolma-sample-0000.warc.gz")],
            "crawl_id": "CC-MAIN-2024-22",
            "config_path": str(config),
        },
    )
    # mode replace: the candidate holds the bad input alone. Appended to the good corpus (the default, issue
    # 14) it would be that corpus plus nothing, a legitimate version the gate passes
    bad = api.trigger(
        "web_curation", {"input_globs": [str(samples / "whirlwind.warc.gz")], "mode": "replace"}
    )
    return {
        "good": api.wait("web_curation", good["dag_run_id"], timeout_s=900),
        "bad": api.wait("web_curation", bad["dag_run_id"], timeout_s=900),
    }


def test_stack_is_up_and_healthy(stack):
    status = subprocess.run(
        [sys.executable, "-m", "dags.stack", "status"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    state = json.loads(status.stdout)
    assert {n for n, s in state["services"].items() if s["alive"]} == {
        "spark-master",
        "spark-worker-1",
        "spark-worker-2",
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
        "celery-default",
        "celery-gpu",
    }
    assert state["airflow_health"] == {
        "metadatabase": "healthy",
        "scheduler": "healthy",
        "triggerer": "healthy",
        "dag_processor": "healthy",
    }
    assert state["spark_alive_workers"] == 2
    assert state["up_seconds"] > 0


def test_pools_come_from_the_compose_file(api):
    wanted = {
        name: p["slots"] for name, p in json.loads((REPO_ROOT / "docker" / "pools.json").read_text()).items()
    }
    pools = {p["name"]: p["slots"] for p in api.get("/pools")["pools"]}
    assert {name: pools.get(name) for name in wanted} == wanted


def test_web_curation_runs_on_the_spark_cluster(stack, api, runs):
    run = runs["good"]
    tasks = api.tasks("web_curation", run["dag_run_id"])
    assert run["state"] == "success", {t: ti["state"] for t, ti in tasks.items()}
    assert {t: ti["state"] for t, ti in tasks.items()} == {
        t: "success"
        for t in ("writer_lock", "plan", "curate", "append", "validate", "report", "publish", "writer_unlock")
    }
    # the curate application ran on the standalone master, with an executor on each of the two workers
    master = httpx.get(f"{stack.spark_ui_url}/json/").json()
    apps = [a for a in master["completedapps"] if a["name"] == "phi-curation" and a["state"] == "FINISHED"]
    assert apps, master["completedapps"]
    hosts_by_app = {a["id"]: set() for a in apps}
    for worker in master["workers"]:
        body = httpx.get(f"{worker['webuiaddress']}/json/").json()
        for ex in body["finishedexecutors"]:
            hosts_by_app.setdefault(ex["appid"], set()).add(worker["id"])
    assert any(len(hosts_by_app[a["id"]]) == 2 for a in apps), hosts_by_app
    assert "spark://127.0.0.1" in api.log("web_curation", run["dag_run_id"], "curate")
    # the published version reconciles: stage chain, parquet rows, the asset event's row count
    root = DatasetRoot(stack.datasets / "web_curated")
    vdir = root.version_dir(root.current())
    manifest = Manifest.read(vdir)
    manifest.check()
    assert manifest.rows > 0 and pq.read_table(vdir / "data").num_rows == manifest.rows
    last = manifest.stages[-1]
    assert manifest.stages[0].rows_in == last.rows_kept + sum(s.rows_rejected for s in manifest.stages)
    event = api.asset_events("web_curated")[-1]
    assert event["source_run_id"] == run["dag_run_id"]
    assert event["extra"] == {"version": manifest.version, "path": str(vdir), "rows": manifest.rows}
    # and it went live as a snapshot of table web_curated in the stack's catalog on PostgreSQL
    from curation.tables import TablesConfig, Warehouse, read_arrow, snapshot_id

    catalog = TablesConfig(warehouse=str(stack.warehouse), catalog_uri=stack.iceberg_catalog_uri)
    table = Warehouse(catalog).table("web_curated")
    assert snapshot_id(table) == snapshot_id(table, manifest.version)
    ids = read_arrow(table, manifest.version, columns=("id",)).column("id").to_pylist()
    assert sorted(ids) == sorted(pq.read_table(vdir / "data", columns=["id"]).column("id").to_pylist())


def test_publishing_starts_the_downstream_dags(api, runs, consumers):
    """The scheduler creates one asset-triggered run per consumer (and none elsewhere), each triggered by
    the event of our publish. They are then stopped: what they compute is their own DAGs' tests' business."""
    event = next(
        e for e in api.asset_events("web_curated") if e["source_run_id"] == runs["good"]["dag_run_id"]
    )
    deadline = time.monotonic() + 120
    while {r["dag_id"] for r in api.asset_events("web_curated")[-1]["created_dagruns"]} != set(consumers):
        assert time.monotonic() < deadline, api.asset_events("web_curated")[-1]
        time.sleep(2)
    event = next(e for e in api.asset_events("web_curated") if e["id"] == event["id"])
    created = {r["dag_id"]: r["run_id"] for r in event["created_dagruns"]}
    assert sorted(created) == consumers and consumers, created
    triggered = [r for r in api.runs("~", run_type="asset_triggered")]
    assert sorted(r["dag_id"] for r in triggered) == consumers
    for dag_id, run_id in created.items():
        events = api.triggering_events(dag_id, run_id)
        assert [(e["id"], e["source_run_id"]) for e in events] == [(event["id"], runs["good"]["dag_run_id"])]
        api.set_paused(dag_id, True)
        if api.run(dag_id, run_id)["state"] not in ("success", "failed"):
            api.request("PATCH", f"/dags/{dag_id}/dagRuns/{quote(run_id)}", json={"state": "failed"})


def test_a_failed_gate_is_a_failed_task_and_publishes_nothing(stack, api, runs):
    run = runs["bad"]
    tasks = {t: ti["state"] for t, ti in api.tasks("web_curation", run["dag_run_id"]).items()}
    assert run["state"] == "failed"
    assert tasks == {
        "writer_lock": "success",
        "plan": "success",
        "curate": "success",
        "append": "success",
        "validate": "failed",
        "report": "success",
        "publish": "upstream_failed",
        "writer_unlock": "success",
    }
    log = api.log("web_curation", run["dag_run_id"], "validate")
    assert "quality gate web_curated on" in log and "FAILED" in log
    assert "expect_table_row_count_to_be_between" in log
    assert [e for e in api.asset_events("web_curated") if e["source_run_id"] == run["dag_run_id"]] == []
    root = DatasetRoot(stack.datasets / "web_curated")
    assert len(root.versions()) == 1  # only the good run's version
    left = [p for p in (root.root / "_candidates").iterdir() if p.is_dir()]  # the good one was renamed away
    assert len(left) == 1 and json.loads((left[0] / "quality" / "gate.json").read_text())["success"] is False


def test_the_ui_shows_the_dags_and_a_run_grid(stack, api, runs):
    """What an operator sees, signed in through the UI's own login form: the DAG list, and one run's grid."""
    from dags.service.browser import Browser, login

    run_id = runs["good"]["dag_run_id"]
    dag_ids = [d["dag_id"] for d in api.get("/dags", limit=100)["dags"]]
    with Browser(height=1200) as browser:
        login(browser, stack.api_url, stack.admin_user, api.password)
        browser.goto(f"{stack.api_url}/dags")
        browser.wait_for(f"document.body.innerText.includes('{dag_ids[-1]}')", what="the DAG list")
        listed = browser.text()
        dags_png = browser.screenshot(SCREENSHOTS / "dags.png")
        browser.goto(f"{stack.api_url}/dags/web_curation/runs/{quote(run_id)}")
        browser.wait_for("document.body.innerText.includes('publish')", what="the run's grid")
        browser.wait_for("document.body.innerText.includes('Success')", what="the run's state")
        grid = browser.text()
        run_png = browser.screenshot(SCREENSHOTS / "run_grid.png")
    assert all(d in listed for d in dag_ids) and "Sign in" not in listed
    assert run_id in grid and all(t in grid for t in ("plan", "curate", "validate", "report", "publish"))
    for png in (dags_png, run_png):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


@pytest.mark.stack_last
def test_stack_down_leaves_no_process_running(stack):
    from dags.service import health
    from dags.service.processes import Service, marked, pid_alive, stack_pids

    state = json.loads(stack.state_file.read_text())
    services = [Service(**s) for s in state["services"]]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    before = stack_pids(services, state["run_id"])
    assert len(before) > len(services) and marked(state["run_id"]), before  # daemons and their children
    down = stack_cli("down", env=env)
    assert down.returncode == 0, down.stderr[-3000:]
    assert stack_pids(services, state["run_id"]) == []
    assert not any(pid_alive(pid) for pid in before)
    assert (
        health.busy_ports(
            [stack.api_port, stack.spark_master_port, stack.spark_ui_port, *stack.worker_log_ports]
        )
        == []
    )
    assert not stack.state_file.exists()
