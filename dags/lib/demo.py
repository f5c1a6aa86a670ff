"""`make demo`: the whole chain, in-process through Airflow, on the shared sample data.

    web_curation (near-dedup on) -> edu_classifier (SmolLM2 teacher labels -> fasttext -> promote -> score)
    -> synthetic_data (tiny demo recipes) -> mixture_build (configs/demo/mixture.yaml) -> pretrain (tiny, CPU)
    -> one HTML page linking every stage's report

Each DAG runs with `dag.test()` on SQLite in a throwaway AIRFLOW_HOME (`<out>/airflow`), with demo-sized
params; a stage's output reaches the next through params (paths read from the published versions). The
DAGs, CLIs and packages are the production ones: only inputs and params are small.

    python -m dags.lib.demo [--out out/demo] [--keep] [--only DAG ...]

PHI_DEMO_CURATION_CONFIG replaces configs/demo/curation.yaml (the curation config of the first stage).
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from curation.paths import REPO_ROOT

log = logging.getLogger("demo")
DEMO = REPO_ROOT / "configs" / "demo"


def shared_data() -> Path:
    return Path(os.environ.get("PHI_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def setup_env(out: Path) -> dict[str, str]:
    """The environment every stage sees; set before Airflow is imported (it reads AIRFLOW_HOME at import)."""
    env = {
        "AIRFLOW_HOME": str(out / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        "SPARK_MASTER": "local[2]",
        "SPARK_DRIVER_MEMORY": os.environ.get("SPARK_DRIVER_MEMORY", "1g"),
        "PHI_DATA_ROOT": str(out / "data"),
        # the embedded catalog (SQLite in the warehouse folder): every version that goes live is also a
        # snapshot of its Iceberg table (curation/tables/publish.py)
        "PHI_ICEBERG_WAREHOUSE": str(out / "data" / "_warehouse"),
        "PHI_EDU_REGISTRY": str(out / "data" / "edu_models"),
        "GX_ANALYTICS_ENABLED": "false",
        "PHI_SHARED_DATA": str(shared_data()),
    }
    os.environ.update(env)
    return env


def stage_conf(data: Path) -> list[tuple[str, dict]]:
    """The DAG runs in order, with demo-sized params (paths resolved when the stage starts)."""
    shared = shared_data()
    return [
        (
            "web_curation",
            {
                "input_globs": [
                    str(shared / "warc_commoncrawl_samples" / "dolma-sample-000*.warc.gz"),
                    str(shared / "webtext_cc2019_dolma_sample" / "*.jsonl.gz"),
                ],
                "config_path": os.environ.get("PHI_DEMO_CURATION_CONFIG") or str(DEMO / "curation.yaml"),
            },
        ),
        (
            "edu_classifier",
            {
                "input": str(data / "web_curated"),
                "label_config": str(DEMO / "label-edu.yaml"),
                "n": 16,
                # 16 teacher labels alone cannot train a classifier: the shared FineWeb-C human labels
                # join them
                "extra_labels": [str(shared / "edu_labels_finewebc_danish" / "fineweb-c_danish.csv")],
                "min_macro_f1": 0.2,
                "min_spearman": 0.2,
            },
        ),
        (
            "synthetic_data",
            {
                "recipes": str(DEMO / "synthetic.yaml"),
                "shards": 2,
                "sandbox_workers": 1,
                "review_auto_approve": True,
            },
        ),
        ("mixture_build", {"mixture_yaml": str(DEMO / "mixture.yaml")}),
        (
            "pretrain",
            {
                "train_config": str(REPO_ROOT / "configs" / "train" / "tiny-cpu.yaml"),
                "mixture": str(data / "mixtures" / "demo"),
                "nproc_per_node": 1,
            },
        ),
    ]


def migrate(env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{proc.stderr[-3000:]}")


def run_dag(bag, dag_id: str, conf: dict) -> dict:
    t0 = time.perf_counter()
    dag = bag.get_dag(dag_id)
    if dag is None:
        raise RuntimeError(f"DAG {dag_id} not found; import errors: {bag.import_errors}")
    run = dag.test(run_conf=conf)
    tasks = {
        f"{ti.task_id}[{ti.map_index}]" if ti.map_index >= 0 else ti.task_id: str(ti.state)
        for ti in run.get_task_instances()
    }
    return {
        "dag_id": dag_id,
        "state": str(run.state),
        "run_id": run.run_id,
        "tasks": tasks,
        "seconds": round(time.perf_counter() - t0, 1),
        "conf": conf,
    }


def current(root: Path) -> Path | None:
    pointer = root / "CURRENT"
    return root / pointer.read_text().strip() if pointer.is_file() else None


def tables_html() -> str:
    """The Iceberg tables the run published to (the environment's catalog): each table's versions."""
    from curation.tables import TablesConfig, Warehouse, versions

    wh = Warehouse(TablesConfig.from_env())
    names = sorted(".".join(t[1:]) for t in wh.catalog.list_tables(wh.config.namespace))
    rows = []
    for name in names:
        vs = versions(wh.table(name))
        current = next((v for v in vs if v["current"]), None)
        history = ", ".join(f"{v['run_id']} ({v['operation']}, {v['rows']} rows)" for v in vs)
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td>{len(vs)}</td>"
            f"<td>{html.escape(str(current and current['run_id']))}</td><td><small>{html.escape(history)}"
            f"</small></td></tr>"
        )
    return (
        f"<h2>Iceberg tables ({html.escape(wh.config.warehouse)})</h2><table><tr><th>table</th>"
        f"<th>versions</th><th>current</th><th>history</th></tr>{''.join(rows)}</table>"
    )


def write_report(out: Path, data: Path, runs: list[dict], total: float) -> Path:
    """One page: each DAG run (task states, wall time) and links to what its stage wrote."""
    from curation.reports import build_report

    links: dict[str, list[tuple[str, Path]]] = {}
    web = current(data / "web_curated")
    if web:
        links["web_curation"] = [
            ("curation report", web / "report" / "report.html"),
            ("quality gate (Data Docs)", web / "quality" / "data_docs" / "index.html"),
        ]
    edu = current(data / "web_edu")
    registry = data / "edu_models"
    promoted = (registry / "PROMOTED").read_text().strip() if (registry / "PROMOTED").is_file() else None
    if edu:
        try:
            rep = build_report(edu)  # the scored corpus: the report adds the edu-score histogram
            links["edu_classifier"] = [("scored corpus report (edu histogram)", rep.html)]
        except Exception as e:  # noqa: BLE001 - the report is a convenience: say why it is missing
            log.warning("report of %s failed: %s", edu, e)
            links["edu_classifier"] = []
        links["edu_classifier"] += [("scored corpus gate", edu / "quality" / "data_docs" / "index.html")]
    if promoted:
        links.setdefault("edu_classifier", []).append(
            ("promoted model card", registry / promoted / "README.md")
        )
        links["edu_classifier"] += [
            (f"promotion verdict {p.name}", p)
            for p in sorted((registry / promoted / "eval").glob("promotion-*.json"))
        ]
    syn = current(data / "synthetic")
    if syn:
        links["synthetic_data"] = [
            ("merged synthetic manifest", syn / "manifest.json"),
            ("gate (Data Docs)", syn / "quality" / "data_docs" / "index.html"),
        ]
        links["synthetic_data"] += [
            (f"shard report {p.parent.name}", p)
            for p in sorted((data / "synthetic" / "_shards").glob("*/*/report.md"))
        ]
    mix = current(data / "mixtures" / "demo")
    if mix:
        links["mixture_build"] = [
            ("build manifest", mix / "manifest.json"),
            ("gate (Data Docs)", mix / "quality" / "data_docs" / "index.html"),
        ]
        links["mixture_build"] += [
            ("plan plot", p) for p in sorted((data / "mixtures" / "demo" / "_plans").glob("*/plan.png"))
        ]
    runs_dir = data / "pretrain"
    if runs_dir.is_dir():
        for run in sorted(runs_dir.iterdir()):
            links.setdefault("pretrain", []).extend(
                (f"{run.name}: {p.name}", p)
                for p in (run / "report.png", run / "metrics.jsonl")
                if p.exists()
            )
    rows = []
    for r in runs:
        items = "".join(
            f'<li><a href="{html.escape(p.as_uri())}">{html.escape(name)}</a>'
            f"{'' if p.exists() else ' (missing)'}</li>"
            for name, p in links.get(r["dag_id"], [])
        )
        tasks = ", ".join(f"{t}: {s}" for t, s in r["tasks"].items())
        rows.append(
            f"<h2>{r['dag_id']} — {r['state']} ({r['seconds']} s)</h2><p><small>{html.escape(tasks)}</small>"
            f"</p><pre>{html.escape(json.dumps(r['conf'], indent=1))}</pre><ul>{items}</ul>"
        )
    page = out / "report.html"
    page.write_text(
        f"<!doctype html><meta charset=utf-8><title>phi-data demo</title><h1>phi-data demo</h1>"
        f"<p>whole chain in {total:.0f} s; data under {html.escape(str(data))}</p>{''.join(rows)}"
        f"{tables_html()}"
    )
    (out / "runs.json").write_text(json.dumps({"seconds": round(total, 1), "runs": runs}, indent=2))
    return page


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dags.lib.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO_ROOT / "out" / "demo"), help="everything the demo writes")
    ap.add_argument("--keep", action="store_true", help="keep earlier data (default: start from scratch)")
    ap.add_argument("--only", nargs="*", help="run only these DAGs (debugging)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    out = Path(args.out).resolve()
    if not args.keep:
        for sub in ("airflow", "data"):
            shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    env = setup_env(out)
    t0 = time.perf_counter()
    if not (out / "airflow" / "airflow.db").is_file():
        migrate(env)
    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # STACK-NOTES P13
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    runs = []
    data = out / "data"
    for dag_id, conf in stage_conf(data):
        if args.only and dag_id not in args.only:
            continue
        log.info("=== %s %s", dag_id, json.dumps(conf))
        result = run_dag(bag, dag_id, conf)
        runs.append(result)
        log.info("=== %s: %s in %.0f s %s", dag_id, result["state"], result["seconds"], result["tasks"])
        if result["state"] != "success":
            page = write_report(out, data, runs, time.perf_counter() - t0)
            print(f"\nDEMO FAILED at {dag_id}: {result['tasks']}\nreport: {page}", file=sys.stderr)
            return 1
    total = time.perf_counter() - t0
    page = write_report(out, data, runs, total)
    print(f"\ndemo finished in {total:.0f} s\nreport: {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
