"""Gate memory: peak RSS of the quality gate on Spark (the default, `python -m curation gate`) vs the pandas
gate it replaced (`--engine pandas`), side by side on the same candidates of growing size (issue 16; the
first, smaller version of the scale benchmark's gate comparison).

Candidates: web_curated versions of documents composed of real sentences of ../shared/data
(bench/near_dedup_corpus.py's sentence pool and paragraph composer), with every contract column filled as
`curation run` fills it (urls, dates, source files, language scores, text hashes), written as `--files`
parquet files, manifest rows = data rows (so the gate passes). Each gate runs as its own process, exactly the
CLI the DAGs' validate task runs; the process tree (the Python driver, Spark's JVM in local mode and its
Python workers) is sampled every 50 ms (bench/proc_sampler.py). Reported per run: wall time, peak RSS of the
gate's Python process, peak RSS of the largest process of the tree, and peak of the tree's summed RSS. Both
verdicts must agree.

    python bench/gate_memory.py --docs 50000 200000 --files 8 --json /tmp/gate_memory.json
    python bench/gate_memory.py --docs 200000 --engines spark:512m   # the Spark gate on a capped heap
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyarrow as pa
import pyarrow.parquet as pq
from near_dedup_corpus import _composed, _sentences, real_documents
from proc_sampler import run_sampled

from curation.contract import DOC_FIELDS, DatasetRoot, StageCounts, text_hash
from curation.paths import REPO_ROOT

SCHEMA = pa.schema([*DOC_FIELDS, pa.field("text_hash", pa.string())])


def contract_table(
    rng: random.Random, texts: list[str], ids: list[str], start: int, hasher=text_hash
) -> pa.Table:
    """Documents with every contract column filled as `curation run` fills them (urls, dates, source
    files, language scores, `hasher(text)` as text_hash); `start` numbers the urls and source files."""
    n = len(texts)
    return pa.table(
        {
            "id": ids,
            "text": texts,
            "url": [
                f"https://example-{k % 997}.org/articles/{k}/{rng.getrandbits(40):x}"
                for k in range(start, start + n)
            ],
            "title": [t[:60] for t in texts],
            "date": ["2019-07-17T12:15:59Z"] * n,
            "crawl_id": ["CC-MAIN-2019-30"] * n,
            "source_format": ["warc"] * n,
            "source_file": [
                f"s3://commoncrawl/crawl-data/CC-MAIN-2019-30/segments/1563195525133/warc/"
                f"CC-MAIN-20190717121559-20190717143559-{(start + i) // 5000:05d}.warc.gz"
                for i in range(n)
            ],
            "lang": ["en"] * n,
            "lang_score": [round(rng.uniform(0.65, 1.0), 4) for _ in range(n)],
            "text_hash": [hasher(t) for t in texts],
        },
        schema=SCHEMA,
    )


def _rows(rng: random.Random, pool: list[str], start: int, n: int) -> pa.Table:
    texts = [_composed(rng, pool) for _ in range(n)]
    return contract_table(rng, texts, [f"doc-{start + i:08d}" for i in range(n)], start)


def build_candidate(root: Path, n_docs: int, files: int) -> Path:
    pool = _sentences(real_documents())
    rng = random.Random(n_docs)
    per = -(-n_docs // files)
    with DatasetRoot(root).building(f"docs-{n_docs}", set_current=False) as b:
        (b.staging / "data").mkdir()
        for k in range(files):
            n = min(per, n_docs - k * per)
            pq.write_table(_rows(rng, pool, k * per, n), b.staging / "data" / f"part-{k:05d}.parquet")
        cfg = {"langid": {"languages": ["en"]}}
        b.manifest(
            dataset="web_curated",
            inputs=["bench"],
            config=cfg,
            rows=n_docs,
            rejected_rows=0,
            stages=[StageCounts(stage="quality", rows_in=n_docs, rows_kept=n_docs, rows_rejected=0)],
            columns=SCHEMA.names,
        )
    return b.final


def run_gate(version: Path, spec: str) -> dict:
    """`spec`: an engine, or `spark:<heap>` for the Spark gate with the driver JVM's heap capped there
    (SPARK_DRIVER_MEMORY, which curation.spark.get_spark passes to a local session; default 2g)."""
    engine, _, heap = spec.partition(":")
    env = {**os.environ, **({"SPARK_DRIVER_MEMORY": heap} if heap else {})}
    label = spec.replace(":", "-")
    docs_dir = version / f"quality-{label}"
    argv = [sys.executable, "-m", "curation", "gate", "--input", str(version), "--engine", engine]
    argv += ["--docs-dir", str(docs_dir)]
    run = run_sampled(argv, docs_dir.with_suffix(".log"), env=env, cwd=REPO_ROOT)
    if run["returncode"] not in (0, 1):
        tail = docs_dir.with_suffix(".log").read_text()[-3000:]
        raise RuntimeError(f"gate {spec} exited {run['returncode']}:\n{tail}")
    verdict = json.loads((docs_dir / "gate.json").read_text())
    return {
        "engine": spec,
        "seconds": round(run["seconds"], 1),
        "passed": verdict["success"],
        "evaluated": verdict["evaluated"],
        "python_peak_mb": run["driver_peak_mb"],
        "largest_process_peak_mb": run["largest_process_peak_mb"],
        "tree_peak_mb": run["tree_peak_mb"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, nargs="+", default=[50_000, 200_000])
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument(
        "--engines", nargs="+", default=["spark", "pandas"], help="spark, pandas, or spark:<driver heap>"
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="gate-memory-") as tmp:
        for n in args.docs:
            t0 = time.perf_counter()
            version = build_candidate(Path(tmp) / "web", n, args.files)
            size = sum(f.stat().st_size for f in (version / "data").glob("*.parquet"))
            print(
                f"candidate {n} docs: {size / 2**20:.0f} MB parquet, built in {time.perf_counter() - t0:.0f}s"
            )
            for engine in args.engines:
                r = {"docs": n, "parquet_mb": round(size / 2**20), **run_gate(version, engine)}
                print(json.dumps(r), flush=True)
                results.append(r)
            verdicts = {r["passed"] for r in results if r["docs"] == n}
            if len(verdicts) != 1:
                raise RuntimeError(f"engines disagree on the {n}-document candidate: {results}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
