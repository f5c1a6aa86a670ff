"""Web scale (issue 16): nights of nightly_refresh on a large published corpus, then the whole-corpus gate on
Spark vs pandas.

Setup (timed, logged, not part of any night): an edu model trained on the DCLM human labels and promoted in
the registry the DAGs read (`$PHI_DATA_ROOT/edu_models`, as tests/dags/test_dags.py does), so every night's
curate job scores with it (dags/lib/plan.py plan_edu); the base corpus (bench/scale_data.py: `--docs`
composed documents with near-duplicate families, every contract column plus the edu columns) published as
the first version of `$PHI_DATA_ROOT/web_curated`; then **night 0**, a small night run exactly like the
others, whose plan finds no band index and requests its rebuild from the base version (the curate job
indexes every published document once): its time is the rebuild's, reported under setup.

Each night, exactly as the nightly_refresh DAG (dags/nightly_refresh.py, dags/_common.py) runs it:
    discover   SegmentLedger.scan over the inbox glob (new JSONL.gz segments: bench/scale_data.py's mix)
    plan       dags.lib.plan.plan_curation(incremental=True): version, config, edu model, band index
    curate     `python -m curation <plan argv>` (the argv the DAG hands spark-submit), a subprocess
    append     dags.lib.plan.append_candidate (in this process, as the Airflow task body)
    gate       `python -m curation gate --input <candidate> --kind web_curated` (the validate task's CLI)
    report     curation.reports.build_report (in process)
    publish    dags.lib.near_index.publish_with_index (gate verdict reused, band index promoted)
    record     ledger.record + record_night + prune_run_folders (as the record task)
With `--store table` (PHI_CORPUS_STORE=table, dags/_table_store.py) plan is plan_table_run, append is
`python -m curation append --stage` (a subprocess), gate and report read
`iceberg:web_curated@audit/<version>`, and publish is publish_table_run; `--store mirror` keeps the folders
but configures a catalog (versions mirrored into tables, the band index an append-only table). Disk growth
counts the whole data root, warehouse included.
Subprocesses run under SPARK_MASTER=local[2], SPARK_DRIVER_MEMORY=--spark-memory (the DAG's 2g), Spark UI off.
Every step is sampled with bench/proc_sampler.py (RSS per process class, /proc I/O). Bytes read/written in
the table are rchar/wchar summed over every step's processes: they count file reads whether or not the page
cache served them (this box's RAM caches the whole corpus, so read_bytes would say ~0 for the corpus scans
that matter here), plus local socket traffic between Spark's JVM and its Python workers; read_bytes /
write_bytes and the data root's growth on disk (new inodes: hard links are free) are in the JSON too.
Counts reconcile per night: segment lines = delta kept + delta rejected, stage by stage; delta kept =
appended + published_dedup rejects; corpus rows = previous + appended.

    python bench/scale.py --docs 500000 --nights 5 --night-docs 10000 --gate-compare --json /tmp/scale.json
    python bench/scale.py --docs 20000 --night-docs 1000 --nights 2 --gate-compare   # a small run
    python bench/scale.py --docs 100000 --night-docs 5000 --nights 2 --store mirror  # + tables, band table
    python bench/scale.py --docs 100000 --night-docs 5000 --nights 2 --store table   # the corpus in the table
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyarrow as pa
import pyarrow.parquet as pq
from gate_memory import contract_table
from proc_sampler import in_process_sampled, run_sampled
from scale_data import EDU_MODEL, SAMPLE_EVERY, Sentences, base_chunks, night_documents, write_segments

from curation.contract import DatasetRoot, Manifest, StageCounts
from curation.dedup.exact import normalized_text_hash
from curation.paths import REPO_ROOT, shared_data_dir

SEGMENTS_PER_NIGHT = 2
MB = 1e6


def setup_env(workdir: Path, spark_memory: str, store: str) -> None:
    """The environment the DAG's tasks see, for this process (plan, append, publish) and its children.
    `store`: `folders` (no catalog), `mirror` (a catalog as in the demo and the stack: SQLite, warehouse in
    the data root; each version also goes to table web_curated, the band index is the append-only table) or
    `table` (PHI_CORPUS_STORE=table: the corpus is the table alone, nights through write-audit-publish)."""
    os.environ.update(
        PHI_DATA_ROOT=str(workdir / "data"),
        SPARK_MASTER="local[2]",
        SPARK_DRIVER_MEMORY=spark_memory,
        PHI_SPARK_UI="0",
        PYTHONPATH=str(REPO_ROOT),
    )
    for name in ("PHI_EDU_REGISTRY", "PHI_ICEBERG_WAREHOUSE", "PHI_ICEBERG_CATALOG_URI", "PHI_CORPUS_STORE"):
        os.environ.pop(name, None)
    if store != "folders":
        os.environ["PHI_ICEBERG_WAREHOUSE"] = str(workdir / "data" / "_warehouse")
    if store == "table":
        os.environ["PHI_CORPUS_STORE"] = "table"


def promote_edu_model() -> str:
    """A small fasttext edu model on the DCLM human labels, promoted where plan_edu looks (as tests do)."""
    from curation.edu.labels import read_label_file
    from curation.edu.registry import ModelRegistry
    from curation.edu.train import EduTrainConfig, FastTextParams
    from curation.edu.workflow import train_and_register
    from dags.lib.paths import registry_root

    reg = ModelRegistry(registry_root())
    labels = read_label_file(
        shared_data_dir() / "quality_labels_dclm_human/majority_data_disputed.jsonl", max_score=1
    )
    cfg = EduTrainConfig(fasttext=FastTextParams(dim=16, bucket=20_000), max_score=1, threshold=0.5)
    ref = train_and_register(labels, cfg, reg, human_labels=None)
    reg.promote(ref.version)
    return ref.version


def _scored(rng: random.Random, table: pa.Table) -> pa.Table:
    """The edu columns a scored night adds (values on the binary model's 0..1 scale)."""
    scores = [round(rng.random(), 4) for _ in range(len(table))]
    table = table.append_column("edu_score", pa.array(scores, pa.float64()))
    table = table.append_column("edu_int", pa.array([round(s) for s in scores], pa.int64()))
    return table.append_column("edu_model", pa.array([EDU_MODEL] * len(table), pa.string()))


def publish_base(root: Path, s: Sentences, n_docs: int, seed: int) -> tuple[Path, list[tuple[str, str]]]:
    """The base corpus as the first version of `root` (CURRENT); returns it and the published sample."""
    from dags.lib.paths import version_id

    rng = random.Random(seed)
    sample: list[tuple[str, str]] = []
    version = version_id("bench__base", datetime(2026, 12, 31, 3, tzinfo=UTC))
    with DatasetRoot(root).building(version) as b:
        (b.staging / "data").mkdir()
        (b.staging / "rejects").mkdir()
        start = 0
        for k, (ids, texts) in enumerate(base_chunks(s, n_docs, seed, normalized_text_hash)):
            table = _scored(rng, contract_table(rng, texts, ids, start, hasher=normalized_text_hash))
            pq.write_table(table, b.staging / "data" / f"part-{k:05d}-base.parquet")
            sample += [(ids[i], texts[i]) for i in range(0, len(ids), SAMPLE_EVERY)]
            start += len(ids)
        b.manifest(
            dataset="web_curated",
            inputs=["bench/scale.py base corpus"],
            config={"langid": {"languages": ["en"]}},
            rows=start,
            rejected_rows=0,
            stages=[StageCounts(stage="quality", rows_in=start, rows_kept=start, rows_rejected=0)],
            columns=table.schema.names,
        )
    return b.final, sample


def _inventory(root: Path) -> dict[int, int]:
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            try:
                st = os.stat(os.path.join(dirpath, n))
            except FileNotFoundError:
                continue
            out[st.st_ino] = st.st_size
    return out


def _run_cli(args: list[str], log: Path) -> dict:
    run = run_sampled([sys.executable, "-m", "curation", *args], log, env=dict(os.environ), cwd=REPO_ROOT)
    if run["returncode"] != 0:
        raise RuntimeError(f"`curation {args[0]}` exited {run['returncode']}; see {log}")
    return run


def _folder_steps(planned: dict, logs: Path, steps: dict) -> Manifest:
    """append -> gate -> report -> publish as the folder store's tasks run them; the published manifest."""
    from curation.reports import build_report
    from dags.lib.near_index import publish_with_index
    from dags.lib.plan import append_candidate

    root = planned["root"]
    candidate, steps["append"] = in_process_sampled(lambda: append_candidate(planned))
    steps["gate"] = _run_cli(["gate", "--input", str(candidate), "--kind", "web_curated"], logs / "gate.log")
    _, steps["report"] = in_process_sampled(lambda: build_report(candidate))
    final, steps["publish"] = in_process_sampled(
        lambda: publish_with_index(candidate, root, "web_curated", planned["near_index"])
    )
    return Manifest.read(final)


def _table_steps(planned: dict, logs: Path, steps: dict) -> Manifest:
    """append --stage -> gate -> report on the staged version -> tables publish, as the table store's tasks
    run them (dags/_table_store.py); the published version's manifest (from its snapshot summary)."""
    from curation.reports import build_report
    from curation.tables.version import open_version
    from dags.lib.table_store import publish_table_run

    evidence = Path(planned["evidence"])
    steps["append"] = _run_cli(planned["append_argv"], logs / "append.log")
    gate = [
        "gate",
        "--input",
        planned["staged"],
        "--kind",
        "web_curated",
        "--docs-dir",
        str(evidence / "quality"),
    ]
    steps["gate"] = _run_cli(gate, logs / "gate.log")
    _, steps["report"] = in_process_sampled(
        lambda: build_report(planned["staged"], output=evidence / "report")
    )
    info, steps["publish"] = in_process_sampled(lambda: publish_table_run(planned))
    return open_version(info["reference"]).manifest


def run_night(workdir: Path, night: int, docs: list[dict], corpus_before: int) -> dict:
    """One night of nightly_refresh over the segments in the inbox (the night's docs already written)."""
    from curation.contract_prune import prune_run_folders
    from dags.lib.ledger import SegmentLedger
    from dags.lib.paths import data_root, dataset_root, version_id
    from dags.lib.plan import DELTAS, plan_curation
    from dags.lib.table_store import corpus_store, plan_table_run

    root = dataset_root("web_curated")
    logs = workdir / "logs" / f"night{night:02d}"
    before = _inventory(data_root())  # the warehouse too
    when = datetime(2027, 1, 1 + night, 3, tzinfo=UTC)
    steps: dict[str, dict] = {}
    t0 = time.perf_counter()
    ledger = SegmentLedger.for_root(root)
    (found, pending), steps["discover"] = in_process_sampled(
        lambda: ledger.scan([str(workdir / "inbox" / "*.jsonl.gz")])
    )
    version = version_id(f"scheduled__{when.isoformat()}", when)
    table_store = corpus_store() == "table"
    planned, steps["plan"] = in_process_sampled(
        lambda: (
            plan_table_run(pending, root, "web_curated", version)
            if table_store
            else plan_curation(pending, root, version, incremental=True)
        )
    )
    steps["curate"] = _run_cli(planned["argv"], logs / "curate.log")
    published = (_table_steps if table_store else _folder_steps)(planned, logs, steps)

    def record():
        ledger.record(pending, version)
        ledger.record_night(version, "published", len(found), len(pending), version, published.rows)
        prune_run_folders(root / DELTAS, root, keep=version)

    _, steps["record"] = in_process_sampled(record)
    wall = time.perf_counter() - t0
    after = _inventory(data_root())
    new_bytes = sum(size if ino not in before else max(0, size - before[ino]) for ino, size in after.items())
    return {
        "night": night,
        "version": version,
        "wall_s": round(wall, 2),
        "steps": steps,
        "edu_model": planned["edu_model"],
        "near_index": {k: planned["near_index"].get(k) for k in ("base", "rebuilt", "reason")},
        "disk_new_bytes": new_bytes,
        "disk_total_bytes": sum(after.values()),
        "counts": reconcile(docs, Path(planned["delta_dir"]), published, corpus_before),
    }


def reconcile(docs: list[dict], delta_dir: Path, fm: Manifest, base_rows: int) -> dict:
    """Stage counts of the night (`fm`: the published version's manifest, `base_rows`: the corpus's rows
    before the night, as the previous night counted them); raises when they do not add up."""
    dm = Manifest.read(delta_dir)
    stages = {
        s.stage: {"in": s.rows_in, "kept": s.rows_kept, "rejected": s.rows_rejected, **s.reasons}
        for s in fm.stages
    }
    first, last = fm.stages[0], fm.stages[-1]
    problems = []
    if first.rows_in != len(docs):
        problems.append(f"first stage rows_in {first.rows_in} != {len(docs)} lines in the segments")
    if first.rows_in != last.rows_kept + sum(s.rows_rejected for s in fm.stages):
        problems.append("rows in != kept + rejected over the stages")
    if dm.rows + dm.rejected_rows != len(docs):
        problems.append(f"delta rows {dm.rows} + rejected {dm.rejected_rows} != {len(docs)} input lines")
    if fm.base_rows != base_rows:
        problems.append(f"the version's base has {fm.base_rows} rows, the corpus had {base_rows}")
    if fm.rows != base_rows + last.rows_kept:
        problems.append(f"corpus rows {fm.rows} != base {base_rows} + appended {last.rows_kept}")
    if problems:
        raise RuntimeError(f"night {fm.version}: counts do not reconcile: {problems}")
    return {
        "input": len(docs),
        "delta_kept": dm.rows,
        "appended": last.rows_kept,
        "corpus": fm.rows,
        "stages": stages,
    }


def _peaks(night: dict) -> dict:
    """The night's peak RSS per class over its Spark steps (curate, gate) and the in-process steps' peak."""
    spark_steps = [night["steps"][k] for k in ("curate", "gate")]
    inproc = [v for k, v in night["steps"].items() if k not in ("curate", "gate")]
    out = {c: max(s[f"{c}_peak_mb"] for s in spark_steps) for c in ("driver", "jvm", "python_worker")}
    out["airflow_task"] = max(s["driver_peak_mb"] for s in inproc)
    return out


def _io(night: dict) -> dict:
    return {
        k: sum(s["io"][k] for s in night["steps"].values())
        for k in ("rchar", "wchar", "read_bytes", "write_bytes")
    }


def setup(workdir: Path, args) -> tuple[dict, Sentences, list[tuple[str, str]]]:
    info: dict = {}
    t0 = time.perf_counter()
    info["edu_model"] = promote_edu_model()
    info["edu_model_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    sentences = Sentences()
    from dags.lib.paths import dataset_root

    base, sample = publish_base(dataset_root("web_curated"), sentences, args.docs, args.seed)
    info["base_s"] = round(time.perf_counter() - t0, 1)
    info["base_version"] = base.name
    info["base_parquet_bytes"] = sum(f.stat().st_size for f in (base / "data").glob("*.parquet"))
    print(
        f"setup: edu model {info['edu_model']} in {info['edu_model_s']} s; base corpus {args.docs} docs "
        f"({info['base_parquet_bytes'] / MB:.0f} MB parquet) in {info['base_s']} s",
        flush=True,
    )
    return info, sentences, sample


def nights(workdir: Path, args, sentences: Sentences, sample: list) -> list[dict]:
    """Night 0 (small: the band-index rebuild, setup) then nights 1..N."""
    out, corpus = [], args.docs  # the base corpus's rows, then each night's published count
    for night in range(args.nights + 1):
        n = max(100, args.night_docs // 10) if night == 0 else args.night_docs
        t0 = time.perf_counter()
        docs, kinds = night_documents(sentences, night, n, sample, args.seed)
        write_segments(docs, workdir / "inbox", night, SEGMENTS_PER_NIGHT)
        compose_s = round(time.perf_counter() - t0, 1)
        rec = {**run_night(workdir, night, docs, corpus), "kinds": dict(kinds), "compose_s": compose_s}
        corpus = rec["counts"]["corpus"]
        rec["peaks_mb"], rec["io"] = _peaks(rec), _io(rec)
        c = rec["counts"]
        print(
            f"night {night}{' (setup: band-index rebuild)' if night == 0 else ''}: {rec['wall_s']} s "
            f"(curate {rec['steps']['curate']['seconds']} s, gate {rec['steps']['gate']['seconds']} s); "
            f"{c['input']} in, {c['delta_kept']} curated, {c['appended']} appended, corpus {c['corpus']}; "
            f"peaks {rec['peaks_mb']}",
            flush=True,
        )
        out.append(rec)
    return out


def gate_compare(workdir: Path) -> list[dict]:
    """The same gate over the whole current corpus: Spark (default) vs pandas, each its own process."""
    from curation.quality_gates.result import GateResult
    from dags.lib.paths import dataset_root
    from dags.lib.table_store import corpus_reference

    root = DatasetRoot(dataset_root("web_curated"))
    corpus = corpus_reference("web_curated", root.root)  # the table's current version in the table store
    version = corpus if corpus.startswith("iceberg:") else root.version_dir(root.current())
    rows = []
    for engine in ("spark", "pandas"):
        docs_dir = workdir / "gate_compare" / engine
        args = ["gate", "--input", str(version), "--kind", "web_curated", "--engine", engine]
        run = _run_cli([*args, "--docs-dir", str(docs_dir)], workdir / "logs" / f"gate-{engine}.log")
        verdict = GateResult.read(docs_dir / "gate.json")
        rows.append({"engine": engine, "passed": verdict.success, "evaluated": verdict.evaluated, **run})
        print(
            f"whole-corpus gate ({engine}): {run['seconds']} s, gate process {run['driver_peak_mb']} MB, "
            f"largest process {run['largest_process_peak_mb']} MB, tree {run['tree_peak_mb']} MB",
            flush=True,
        )
    if len({r["passed"] for r in rows}) != 1:
        raise RuntimeError(f"the engines disagree: {rows}")
    return rows


def ratios(measured: list[dict]) -> dict:
    first, last = measured[0], measured[-1]
    out = {"wall_last_over_first": round(last["wall_s"] / first["wall_s"], 3)}
    for c in ("driver", "jvm", "python_worker", "airflow_task"):
        a, b = first["peaks_mb"][c], last["peaks_mb"][c]
        out[f"{c}_rss_last_over_first"] = round(b / a, 3) if a else None
    out["wall_within_1_3x"] = out["wall_last_over_first"] <= 1.3
    out["rss_flat_within_20pct"] = all(
        out[f"{c}_rss_last_over_first"] is not None and abs(out[f"{c}_rss_last_over_first"] - 1) <= 0.2
        for c in ("driver", "python_worker")
    )
    return out


def table(records: list[dict]) -> str:
    head = (
        "| night | corpus docs | wall s | curate s | gate s | append s | report s | publish s | read MB "
        "| written MB | disk +MB | driver MB | JVM MB | worker MB |\n|---|" + "---:|" * 13
    )
    lines = [head]
    for r in records:
        st, p = r["steps"], r["peaks_mb"]
        name = f"{r['night']} (setup: index rebuild)" if r["night"] == 0 else str(r["night"])
        lines.append(
            f"| {name} | {r['counts']['corpus']:,} | {r['wall_s']:.1f} | {st['curate']['seconds']:.1f} | "
            f"{st['gate']['seconds']:.1f} | {st['append']['seconds']:.1f} | {st['report']['seconds']:.1f} | "
            f"{st['publish']['seconds']:.1f} | {r['io']['rchar'] / MB:,.0f} | {r['io']['wchar'] / MB:,.0f} | "
            f"{r['disk_new_bytes'] / MB:,.0f} | {p['driver']} | {p['jvm']} | {p['python_worker']} |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=500_000, help="documents of the published base corpus")
    ap.add_argument("--nights", type=int, default=5)
    ap.add_argument("--night-docs", type=int, default=10_000, help="raw documents per night")
    ap.add_argument(
        "--spark-memory", default="2g", help="SPARK_DRIVER_MEMORY of the Spark steps (the DAG's 2g)"
    )
    ap.add_argument("--gate-compare", action="store_true", help="then gate the whole corpus: spark vs pandas")
    ap.add_argument(
        "--store",
        choices=("folders", "mirror", "table"),
        default="folders",
        help="folders: no table catalog; mirror: versions also as Iceberg snapshots, the band index an"
        " append-only table; table: the corpus is the Iceberg table alone (PHI_CORPUS_STORE=table)",
    )
    ap.add_argument("--workdir", type=Path, help="default: a temporary folder (removed unless --keep)")
    ap.add_argument("--keep", action="store_true", help="keep the workdir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="scale-bench-"))
    if workdir.exists() and any(workdir.iterdir()):
        raise SystemExit(f"--workdir {workdir} is not empty: the benchmark starts from an empty data root")
    workdir.mkdir(parents=True, exist_ok=True)
    setup_env(workdir, args.spark_memory, args.store)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    try:
        info, sentences, sample = setup(workdir, args)
        records = nights(workdir, args, sentences, sample)
        compare = gate_compare(workdir) if args.gate_compare else None
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "started_utc": started,
        "total_s": round(time.perf_counter() - t0, 1),
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "setup": info,
        "nights": records,
        "ratios": ratios(records[1:]) if len(records) > 1 else None,
        "gate_compare": compare,
    }
    print(table(records))
    print(json.dumps(report["ratios"]))
    if compare:
        print("\n| whole-corpus gate | wall s | gate process MB | largest process MB | tree MB | passed |")
        print("|---|---:|---:|---:|---:|---|")
        for r in compare:
            print(
                f"| {r['engine']} | {r['seconds']:.0f} | {r['driver_peak_mb']} | "
                f"{r['largest_process_peak_mb']} | {r['tree_peak_mb']} | {r['passed']} |"
            )
    print(f"total {report['total_s']} s; load average {load_start} -> {report['load_average_end']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
