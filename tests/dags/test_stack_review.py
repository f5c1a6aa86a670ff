"""The researcher review of synthetic_data on the real stack (tests/stack_fixtures.py): a run stops at its
human-in-the-loop task; the answer goes through Airflow's hitlDetails REST endpoint (dags/client.py).
Rejecting publishes nothing; approving publishes, and a flagged item becomes a `reviewer_flagged` reject row.

Two runs of a one-recipe plan on the embedded teacher, triggered at once: `max_active_runs=1` queues the
second until the first is answered, so the first is rejected and the second approved.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
import yaml

from curation.contract import DatasetRoot, Manifest
from curation.paths import REPO_ROOT

pytestmark = [pytest.mark.stack, pytest.mark.slow]
DAG = "synthetic_data"


def wait_for_review(api, run_id: str, timeout_s: float = 900) -> dict:
    """The run's pending review request, once the review task waits for input."""
    deadline = time.monotonic() + timeout_s
    while True:
        states = {t: ti["state"] for t, ti in api.tasks(DAG, run_id).items()}
        if states.get("review") == "awaiting_input":
            pending = api.reviews(DAG, run_id)
            if pending:
                return pending[0]
        run = api.run(DAG, run_id)
        assert run["state"] not in ("success", "failed"), (run["state"], states)
        assert time.monotonic() < deadline, f"no review after {timeout_s} s: {states}"
        time.sleep(3)


def client_cli(*args: str, stack) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dags.client", *args],
        check=False,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "AIRFLOW_API_URL": stack.api_url},
    )


@pytest.fixture(scope="module")
def runs(stack, api, tmp_path_factory) -> list[str]:
    """Two runs of the demo's textbook recipe alone (4 items, one shard), review required."""
    demo = yaml.safe_load((REPO_ROOT / "configs" / "demo" / "synthetic.yaml").read_text())
    demo["recipes"] = [dict(r, n=4) for r in demo["recipes"] if r["generator"] == "textbook"]
    recipes = tmp_path_factory.mktemp("review") / "recipes.yaml"
    recipes.write_text(yaml.safe_dump(demo))
    conf = {
        "recipes": str(recipes),
        "shards": 1,
        "sandbox_workers": 1,
        "review_auto_approve": False,
        "review_sample": 3,
    }
    return [api.trigger(DAG, conf)["dag_run_id"] for _ in range(2)]


def test_rejecting_the_review_publishes_nothing(stack, api, runs):
    first, second = runs
    request = wait_for_review(api, first)
    assert api.run(DAG, second)["state"] == "queued"  # max_active_runs=1: it waits for this answer
    assert request["options"] == ["Approve", "Reject"] and request["response_received"] is False
    assert "### Sample" in request["body"] and re.search(r"\*\*\S+\*\*", request["body"]), request["body"]
    listed = client_cli("reviews", "--dag", DAG, stack=stack)  # what a researcher reads in a terminal
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert f"## {DAG} {first} review: Publish this synthetic version?" in listed.stdout
    assert request["body"] in listed.stdout and second not in listed.stdout
    answer = api.respond(DAG, first, "review", ["Reject"], {"flag_ids": []})
    assert answer["chosen_options"] == ["Reject"]
    run = api.wait(DAG, first, timeout_s=300)
    states = {t: ti["state"] for t, ti in api.tasks(DAG, first).items()}
    assert run["state"] == "success", states
    assert (states["review"], states["apply_review"], states["publish"]) == ("success", "skipped", "skipped")
    root = DatasetRoot(stack.datasets / "synthetic")
    assert root.current() is None and root.versions() == []
    assert [e for e in api.asset_events("synthetic") if e["source_run_id"] == first] == []
    candidates = [Manifest.read(p) for p in (root.root / "_candidates").iterdir() if p.is_dir()]
    assert [m.extra["review"]["decision"] for m in candidates] == ["rejected"]
    assert candidates[0].extra["review"]["reviewer"] == stack.admin_user


def test_approving_publishes_and_a_flag_becomes_a_reject_row(stack, api, runs):
    _, second = runs
    request = wait_for_review(api, second)
    flagged = re.findall(r"\*\*(\S+)\*\*", request["body"])[0]  # an item of the sample the researcher sees
    cli = client_cli("review", DAG, second, "--approve", "--flag", flagged, stack=stack)
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert json.loads(cli.stdout)["params_input"] == {"flag_ids": [flagged]}
    run = api.wait(DAG, second, timeout_s=300)
    states = {t: ti["state"] for t, ti in api.tasks(DAG, second).items()}
    assert run["state"] == "success" and states["publish"] == "success", states
    assert api.reviews(DAG, second) == []  # answered: no longer pending
    root = DatasetRoot(stack.datasets / "synthetic")
    vdir = root.version_dir(root.current())
    m = Manifest.read(vdir)
    m.check()
    review = m.extra["review"]
    assert (review["decision"], review["reviewer"], review["flagged"], review["skipped"]) == (
        "approved",
        stack.admin_user,
        [flagged],
        False,
    )
    rejects = pq.read_table(vdir / "rejects").to_pylist()
    assert [(r["id"], r["reject_reason"]) for r in rejects if r["reject_stage"] == "review"] == [
        (flagged, "reviewer_flagged")
    ]
    kept = pq.read_table(vdir / "data").column("id").to_pylist()
    assert flagged not in kept and len(kept) == m.rows
    assert m.stages[-1].stage == "review" and m.stages[-1].rows_in == m.rows + 1
    event = api.asset_events("synthetic")[-1]
    assert event["source_run_id"] == second and event["extra"]["rows"] == m.rows
