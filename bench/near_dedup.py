"""Near-dedup benchmark: precision/recall at Jaccard >= 0.8 and wall time, ours (Spark) side by side with
single-process datasketch MinHashLSH (without and with exact verification) and datatrove's MinHash
pipeline, same parameters, at each corpus size. See bench/near_dedup_corpus.py for the corpus.

    python bench/near_dedup.py --sizes 20000 100000 --out out/bench/near_dedup

Every method runs in its own child process (fresh interpreter, so peak RSS is its own; ours also reports
the Spark JVM's peak), one after the other on the same corpus files; the parent builds the corpus, scores
every method against one exact-Jaccard ground truth and writes results.json and a markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

NUM_PERM, BANDS, ROWS, SEED, NGRAM = 120, 20, 6, 1, 5
METHODS = ["ours", "datasketch", "datasketch_verified", "datatrove"]
log = logging.getLogger("bench.near_dedup")


def _peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not getrusage's ru_maxrss: Linux carries that over from the forked
    parent across exec, so a child would report the parent's (corpus-holding) peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _jvm_peak_mb(spark) -> float | None:
    try:
        pid = spark.sparkContext._gateway.proc.pid
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except Exception:  # not a locally launched JVM
        return None
    return None


def child(method: str, work: Path) -> dict:
    """Run one method on the corpus under `work`; returns timing, memory and writes removed ids."""
    import pyarrow.parquet as pq

    out: dict = {"method": method}
    if method == "ours":
        from curation.dedup.job import run_near_dedup
        from curation.dedup.near_config import NearDedupConfig
        from curation.spark import get_spark

        t0 = time.perf_counter()
        spark = get_spark(
            "near-dedup-bench",
            master="local[2]",
            conf={"spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2"},
        )
        out["spark_start_s"] = time.perf_counter() - t0
        cfg = NearDedupConfig(num_perm=NUM_PERM, bands=BANDS, rows=ROWS, seed=SEED, ngram=NGRAM, verify=True)
        t0 = time.perf_counter()
        result = run_near_dedup(work / "dataset", work / "ours", cfg, run_id="bench", spark=spark)
        out["seconds"] = time.perf_counter() - t0
        out["python_peak_mb"] = _peak_rss_mb()  # the driver's peak during the job, before bench bookkeeping
        removed = set(
            pq.read_table(result.version_dir / "duplicates", columns=["doc_id"]).column(0).to_pylist()
        )
        out["stats"] = result.manifest.extra.get("near_dedup", {})
        out["jvm_peak_mb"] = _jvm_peak_mb(spark)
        clusters: dict[str, list[str]] = {}
        dups = pq.read_table(result.version_dir / "duplicates").to_pylist()
        for r in dups:
            clusters.setdefault(r["cluster_id"], [r["kept_id"]]).append(r["doc_id"])
        (work / f"clusters-{method}.json").write_text(json.dumps(list(clusters.values())))
        spark.stop()
    else:
        docs = [r for f in sorted((work / "parts").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
        t0 = time.perf_counter()
        if method.startswith("datasketch"):
            from near_dedup_refs import run_datasketch

            removed = run_datasketch(
                docs, NUM_PERM, BANDS, ROWS, SEED, NGRAM, verify=method.endswith("verified")
            )
        elif method == "datatrove":
            import shutil

            from near_dedup_refs import run_datatrove

            shutil.rmtree(work / "datatrove", ignore_errors=True)
            removed = run_datatrove(work / "parts", work / "datatrove", BANDS, ROWS, SEED, NGRAM)
        else:
            raise ValueError(f"unknown method {method!r}")
        out["seconds"] = time.perf_counter() - t0
    out.setdefault("python_peak_mb", _peak_rss_mb())
    (work / f"removed-{method}.json").write_text(json.dumps(sorted(removed)))
    out["removed"] = len(removed)
    return out


def prepare(n: int, work: Path) -> list[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from near_dedup_corpus import build_corpus

    from curation.contract import DOC_COLUMNS, DatasetRoot, Manifest, code_version, now_iso

    docs = build_corpus(n)
    work.mkdir(parents=True, exist_ok=True)
    (work / "parts").mkdir(exist_ok=True)
    half = (len(docs) + 1) // 2
    for i, part in enumerate((docs[:half], docs[half:])):  # two files: one per datatrove task
        pq.write_table(
            pa.Table.from_pylist([{"id": d["id"], "text": d["text"]} for d in part]),
            work / "parts" / f"part-{i}.parquet",
        )
    root = DatasetRoot(work / "dataset")
    if root.current() != "v1":
        root.root.mkdir(parents=True, exist_ok=True)
        staging = root.staging_dir("v1")
        (staging / "data").mkdir()
        schema = pa.schema(
            [pa.field(c, pa.float64() if c == "lang_score" else pa.string()) for c in DOC_COLUMNS]
        )
        for i in range(0, len(docs), 10_000):
            rows = [
                {"id": d["id"], "text": d["text"], "source_format": "jsonl"} for d in docs[i : i + 10_000]
            ]
            pq.write_table(
                pa.Table.from_pylist(rows, schema=schema),
                staging / "data" / f"part-{i // 10_000:04d}.parquet",
            )
        Manifest(
            dataset="bench_near_dedup",
            version="v1",
            created_at=now_iso(),
            code_version=code_version(),
            inputs=[],
            config={"n": n},
            config_hash="-",
            rows=len(docs),
            columns=DOC_COLUMNS,
        ).write(staging)
        root.publish(staging, "v1")
    return docs


def score(n: int, work: Path, docs: list[dict], results: list[dict]) -> dict:
    from near_dedup_corpus import ShingleSets, ground_truth, gt_components, score_removal

    t0 = time.perf_counter()
    sets = ShingleSets(docs)
    predicted = []
    for r in results:
        removed = json.loads((work / f"removed-{r['method']}.json").read_text())
        cfile = work / f"clusters-{r['method']}.json"
        predicted.append(json.loads(cfile.read_text()) if cfile.exists() else [])
        # references give removed ids only: judge each removed doc against its family and the whole removed
        # set
    gt = ground_truth(docs, sets, predicted)
    comps = gt_components([d["id"] for d in docs], gt["pairs"])
    for r in results:
        removed = set(json.loads((work / f"removed-{r['method']}.json").read_text()))
        r.update(score_removal(removed, gt["pairs"], comps))
    return {
        "n": n,
        "gt_pairs": len(gt["pairs"]),
        "gt_components": len(comps),
        "gt_removable": sum(len(c) - 1 for c in comps),
        **{k: v for k, v in gt.items() if k != "pairs"},
        "scoring_s": time.perf_counter() - t0,
        "methods": results,
    }


def table(all_runs: list[dict]) -> str:
    lines = [
        "| docs | method | wall s | removed | precision | recall | python peak MB | JVM peak MB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in all_runs:
        for r in run["methods"]:
            jvm = f"{r['jvm_peak_mb']:.0f}" if r.get("jvm_peak_mb") else "-"
            lines.append(
                f"| {run['n']} | {r['method']} | {r['seconds']:.1f} | {r['removed']} | {r['precision']:.3f}"
                f" | {r['recall']:.3f} | {r['python_peak_mb']:.0f} | {jvm} |"
            )
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    p.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    p.add_argument("--out", type=Path, default=Path("out/bench/near_dedup"))
    p.add_argument(
        "--concurrent",
        action="store_true",
        help="start all methods at once (same load for all on a shared machine) instead of in turn",
    )
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    if args.child:
        print("RESULT " + json.dumps(child(args.child, args.work)), flush=True)
        return 0
    all_runs = []
    for n in args.sizes:
        work = (args.out / f"n{n}").resolve()
        t0 = time.perf_counter()
        docs = prepare(n, work)
        log.info("corpus n=%d built in %.1fs", n, time.perf_counter() - t0)
        results = []
        batches = [args.methods] if args.concurrent else [[m] for m in args.methods]
        for batch in batches:
            procs = {}
            for method in batch:
                log.info("n=%d: running %s", n, method)
                procs[method] = subprocess.Popen(
                    [sys.executable, __file__, "--child", method, "--work", str(work)],
                    env=os.environ.copy(),
                    stdout=subprocess.PIPE,
                    stderr=open(work / f"log-{method}.txt", "w"),
                    text=True,
                )
            for method, proc in procs.items():
                stdout, _ = proc.communicate()
                line = next((x for x in stdout.splitlines() if x.startswith("RESULT ")), None)
                if proc.returncode != 0 or line is None:
                    raise RuntimeError(
                        f"{method} failed at n={n} (exit {proc.returncode}); see {work}/log-{method}.txt"
                    )
                res = json.loads(line[len("RESULT ") :])
                res["concurrent_with"] = [m for m in batch if m != method]
                log.info("n=%d %s: %.1fs, removed %d", n, method, res["seconds"], res["removed"])
                results.append(res)
        run = score(n, work, docs, results)
        all_runs.append(run)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(
            json.dumps(
                {
                    "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "command": " ".join(sys.argv),
                    "params": {
                        "num_perm": NUM_PERM,
                        "bands": BANDS,
                        "rows": ROWS,
                        "seed": SEED,
                        "ngram": NGRAM,
                    },
                    "runs": all_runs,
                },
                indent=2,
                default=str,
            )
        )
        print(table(all_runs), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
