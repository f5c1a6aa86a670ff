"""Extract + filter throughput: our Spark pipeline vs datatrove's equivalent, side by side in one run.

Corpus: the 990 real HTML pages of the trafilatura evaluation set (shared data), replicated into gzipped WARC
files (one response record per page copy, distinct URLs and record ids) until N documents.
Both sides: WARC reader -> trafilatura (favour precision) -> fasttext lid.176 (the same local .ftz on both
sides: datatrove would download lid.176.bin, so its model loader is pointed at our file) -> Gopher repetition
-> Gopher quality -> C4 -> FineWeb quality -> parquet/jsonl writer. Ours also computes the text hash; exact
dedup and decontamination are switched off (datatrove's pipeline has no equivalent in this chain).

Each (side, size) runs in a fresh subprocess so its peak memory is its own.

    python bench/curation_throughput.py --sizes 2000 8000 --out bench/out/throughput
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def build_corpus(n_docs: int, out_dir: Path, n_files: int = 8) -> Path:
    """Write n_docs WARC response records (replicated real pages) into n_files gzipped WARC files."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from curation.paths import shared_data_dir

    folder = out_dir / f"warc_{n_docs}"
    if folder.is_dir() and len(list(folder.glob("*.warc.gz"))) == n_files:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    pages = sorted((shared_data_dir() / "html_trafilatura_eval" / "html").glob("*.gz"))
    bodies = [gzip.decompress(p.read_bytes()) for p in pages]
    writers = [WARCWriter(open(folder / f"bench-{i:03d}.warc.gz", "wb"), gzip=True) for i in range(n_files)]
    for i in range(n_docs):
        body = bodies[i % len(bodies)]
        http = StatusAndHeaders(
            "200 OK",
            [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))],
            protocol="HTTP/1.1",
        )
        rec = writers[i % n_files].create_warc_record(
            f"https://bench.example/{i}/{pages[i % len(pages)].stem}",
            "response",
            payload=io.BytesIO(body),
            http_headers=http,
            warc_headers_dict={"WARC-Record-ID": f"<urn:uuid:{uuid.UUID(int=i)}>"},
        )
        writers[i % n_files].write_record(rec)
    for w in writers:
        w.out.close()
    return folder


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(corpus: Path, out: Path) -> dict:
    from curation.config import CurationConfig
    from curation.pipeline import run
    from curation.spark import get_spark

    cfg = CurationConfig.model_validate(
        {"decontam": {"enabled": False}, "exact_dedup": {"enabled": False}, "langid": {"languages": []}}
    )
    spark = get_spark("bench", master="local[2]")
    t0 = time.perf_counter()
    result = run([str(corpus / "*.warc.gz")], out, cfg, run_id="bench", spark=spark)
    wall = time.perf_counter() - t0
    jvm = spark.sparkContext._jvm.java.lang.management.ManagementFactory
    heap_peak = (
        sum(
            p.getPeakUsage().getUsed()
            for p in jvm.getMemoryPoolMXBeans()
            if str(p.getType()) == "Heap memory"
        )
        / 2**20
    )
    m = result.manifest
    ingested = m.stages[0].rows_in
    return {
        "wall_s": wall,
        "docs": ingested,
        "kept": m.rows,
        "driver_py_rss_mb": peak_rss_mb(),
        "driver_jvm_heap_peak_mb": heap_peak,
        "stage_seconds": {s.stage: s.seconds for s in m.stages},
    }


def run_datatrove(corpus: Path, out: Path) -> dict:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
    )
    from datatrove.pipeline.readers import WarcReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils import lid

    from curation.paths import models_dir

    model_path = str(models_dir() / "lid.176.ftz")

    class LocalFT176(lid.FT176LID):  # same model file as ours; datatrove would download lid.176.bin
        @property
        def model(self):
            if self._model is None:
                from fasttext.FastText import _FastText

                self._model = _FastText(model_path)
            return self._model

    lang_filter = LanguageFilter(languages=None, language_threshold=0.0)
    lang_filter.model = LocalFT176(None)
    pipeline = [
        WarcReader(str(corpus), glob_pattern="*.warc.gz"),
        Trafilatura(favour_precision=True),
        lang_filter,
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(),
        FineWebQualityFilter(),
        JsonlWriter(str(out / "kept")),
    ]
    t0 = time.perf_counter()
    LocalPipelineExecutor(
        pipeline, tasks=2, workers=2, logging_dir=str(out / "logs"), skip_completed=False
    ).run()
    wall = time.perf_counter() - t0
    kept = sum(1 for f in (out / "kept").glob("*.jsonl*") for _ in __import__("gzip").open(f, "rt"))
    return {"wall_s": wall, "docs": None, "kept": kept, "driver_py_rss_mb": peak_rss_mb()}


def child(side: str, corpus: Path, out: Path) -> None:
    result = run_ours(corpus, out) if side == "ours" else run_datatrove(corpus, out)
    print("RESULT " + json.dumps(result))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000])
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "throughput")
    ap.add_argument("--sides", nargs="+", default=["ours", "datatrove"])
    ap.add_argument("--child", nargs=3, metavar=("SIDE", "CORPUS", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    rows = []
    for n in args.sizes:
        corpus = build_corpus(n, args.out)
        for side in args.sides:
            out = args.out / f"{side}_{n}_{uuid.uuid4().hex[:6]}"
            proc = subprocess.run(
                [sys.executable, __file__, "--child", side, str(corpus), str(out)],
                capture_output=True,
                text=True,
            )
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode != 0 or not line:
                sys.stderr.write(proc.stderr[-4000:])
                raise SystemExit(f"{side} at {n} docs failed (rc={proc.returncode})")
            res = json.loads(line[0][7:])
            # docs/s over the corpus size on both sides (datatrove's reader stat counts differently)
            res.update(side=side, size=n, docs_per_s=n / res["wall_s"])
            rows.append(res)
            print(json.dumps(res), flush=True)
    print("\n| docs | side | wall s | docs/s | driver py peak RSS MB | driver JVM heap peak MB |")
    print("|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['size']} | {r['side']} | {r['wall_s']:.1f} | {r['docs_per_s']:.1f} | "
            f"{r['driver_py_rss_mb']:.0f} | {r.get('driver_jvm_heap_peak_mb', float('nan')):.0f} |"
        )
    for n in args.sizes:
        by = {r["side"]: r for r in rows if r["size"] == n}
        if {"ours", "datatrove"} <= by.keys():
            print(
                f"size {n}: ours/datatrove docs/s ratio = "
                f"{by['ours']['docs_per_s'] / by['datatrove']['docs_per_s']:.2f}"
            )


if __name__ == "__main__":
    main()
