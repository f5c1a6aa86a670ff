"""The embedded default (`make demo` -> scripts/demo.sh -> dags.lib.demo): the whole chain through the real
DAGs with `dag.test()`, on the shared sample data, end to end (~15 minutes on a 2-core box)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from curation.contract import DatasetRoot, Manifest
from curation.paths import REPO_ROOT

pytestmark = pytest.mark.slow

CHAIN = ["web_curation", "edu_classifier", "synthetic_data", "mixture_build", "pretrain"]


def test_demo_runs_the_whole_chain(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "dags.lib.demo", "--out", str(out)],
        cwd=REPO_ROOT,
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=2400,
        check=False,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert f"report: {out / 'report.html'}" in proc.stdout
    runs = json.loads((out / "runs.json").read_text())["runs"]
    assert [r["dag_id"] for r in runs] == CHAIN
    # the demo is unattended: synthetic_data's researcher review is auto-approved, so its two human steps
    # are skipped by design (apply_review records the skip in the manifest); every other task succeeds
    review_steps = {("synthetic_data", "prepare_review"), ("synthetic_data", "review")}
    for r in runs:
        assert r["state"] == "success", r
        for task_id, state in r["tasks"].items():
            assert state == ("skipped" if (r["dag_id"], task_id) in review_steps else "success"), (task_id, r)
    synthetic_root = DatasetRoot(out / "data" / "synthetic")
    synthetic = Manifest.read(synthetic_root.root / synthetic_root.current())
    assert synthetic.extra["review"]["skipped"] is True
    assert synthetic.extra["review"]["decision"] == "approved"
    data = out / "data"
    # each stage published into its root, and the next stage consumed it
    for root in ("web_curated", "web_edu", "synthetic", "mixtures/demo"):
        assert (data / root / "CURRENT").is_file(), root
    mixture = data / "mixtures" / "demo" / (data / "mixtures" / "demo" / "CURRENT").read_text().strip()
    manifest = json.loads((mixture / "manifest.json").read_text())
    sources = {s["name"] for p in manifest["phases"] for s in p["sources"]}
    assert {"web", "synthetic", "web_edu_high", "web_replay"} == sources
    assert json.loads((mixture / "quality" / "gate.json").read_text())["success"] is True
    (run,) = list((data / "pretrain").iterdir())
    steps = [json.loads(line).get("global_step") for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(s for s in steps if s is not None) >= 60  # 40 phase-1 + 20 phase-2 steps (tiny-cpu.yaml)
    page = (out / "report.html").read_text()
    assert all(d in page for d in CHAIN) and "(missing)" not in page
    # the embedded catalog: every root's live version is its table's current snapshot, with the same rows
    from curation.tables import TablesConfig, Warehouse, snapshot_id

    tables = Warehouse(TablesConfig(warehouse=str(data / "_warehouse")))
    for root in ("web_curated", "web_edu", "synthetic"):
        live = DatasetRoot(data / root).current()
        table = tables.table(root)
        assert snapshot_id(table) == snapshot_id(table, live), root
        rows = int(table.current_snapshot().summary["total-records"])
        assert rows == Manifest.read(data / root / live).rows, root
    assert "Iceberg tables" in page and "web_curated" in page
