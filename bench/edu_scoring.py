"""Benchmark: edu classifier scoring throughput, Spark vs a bare fasttext predict loop, same documents.

Documents: ~1.5 kB windows cut at whitespace from the real shared texts (DCLM human-labelled pages, the
Dolma CC sample, FineWeb-C Danish), repeated with fresh ids up to --docs. Model: trained here with the
default EduTrainConfig on the DCLM human labels (dim 32, word bigrams, 100k buckets).

Measured side by side in one run (medians of --repeats), as wall time AND CPU seconds (the dev machine is
shared by many engineers: wall time depends on their load; CPU seconds per document is what a path costs):
  bare_loop      one process, one core: normalize_batch(all docs), then model.predict(k=-1) + expected value
                 document by document
  bare_batched   one process, one core: EduScorer.score over 1,000-doc batches (the code the workers run)
  spark_local1   score_frame (mapInArrow) on local[1], parquet in, noop sink: per-core Spark cost
  spark_local2   the same on local[2]
  publish_local2 score_dataset end to end on local[2] (parquet in, scored data/ + rejects/ written, manifest)
Spark timings are warm: a first pass on the same session loads the model into the Python workers.

    python bench/edu_scoring.py --docs 60000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curation.contract import DOC_FIELDS, DatasetRoot, Manifest, StageCounts, now_iso
from curation.edu.labels import read_label_file
from curation.edu.normalize import normalize_batch
from curation.edu.registry import ModelRegistry
from curation.edu.scorer import EduScorer
from curation.edu.train import EduTrainConfig
from curation.edu.workflow import train_and_register
from curation.paths import shared_data_dir

log = logging.getLogger("bench.edu")
OUT = Path(__file__).resolve().parent / "out" / "edu"


def windows(text: str, size: int = 1500, min_size: int = 1200) -> list[str]:
    """~size-char pieces of a text, cut at whitespace."""
    out, start = [], 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            cut = text.rfind(" ", start + min_size, end)
            end = cut if cut > 0 else end
        piece = text[start:end].strip()
        if len(piece) >= min_size:
            out.append(piece)
        start = end
    return out


def real_texts() -> list[str]:
    import gzip

    import pandas as pd

    d = shared_data_dir()
    texts = pd.read_json(
        d / "quality_labels_dclm_human" / "majority_data_disputed.jsonl", lines=True
    ).text.tolist()
    with gzip.open(next((d / "webtext_cc2019_dolma_sample").glob("*.jsonl.gz")), "rt") as f:
        texts += [json.loads(line)["text"] for line in f]
    texts += pd.read_csv(d / "edu_labels_finewebc_danish" / "fineweb-c_danish.csv").text.tolist()
    return [w for t in texts for w in windows(t)]


def build_dataset(n: int, files: int) -> tuple[Path, list[str]]:
    base = real_texts()
    texts = [base[i % len(base)] for i in range(n)]
    root = DatasetRoot(OUT / "docs")
    shutil.rmtree(root.root, ignore_errors=True)
    root.root.mkdir(parents=True)
    staging = root.staging_dir("bench")
    (staging / "data").mkdir()
    per = (n + files - 1) // files
    for f in range(files):
        chunk = texts[f * per : (f + 1) * per]
        rows = {c.name: [None] * len(chunk) for c in DOC_FIELDS}
        rows["id"] = [f"doc-{f * per + i}" for i in range(len(chunk))]
        rows["text"] = chunk
        pq.write_table(
            pa.table(rows, schema=pa.schema(DOC_FIELDS)), staging / "data" / f"part-{f:03d}.parquet"
        )
    Manifest(
        dataset="bench_docs",
        version="bench",
        created_at=now_iso(),
        code_version="bench",
        inputs=[],
        config={},
        config_hash="-",
        rows=n,
        stages=[StageCounts(stage="ingest", rows_in=n, rows_kept=n, rows_rejected=0)],
    ).write(staging)
    root.publish(staging, "bench")
    log.info(
        "%d documents (%d distinct windows, mean %.0f chars) in %d files",
        n,
        len(base),
        sum(map(len, texts)) / n,
        files,
    )
    return root.root, texts


# ---- CPU accounting: the machine is shared, so wall time alone says little; CPU seconds per document
# are what the paths cost. Spark's cost is the whole local process tree (JVM: parquet scan, Arrow
# conversion; pyspark daemon and Python workers: the scoring itself).

_TICK = os.sysconf("SC_CLK_TCK")


def _proc_tree_cpu(root_pid: int) -> float:
    parents, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = sum(int(x) for x in fields[11:15]) / _TICK  # utime stime cutime cstime

    def in_tree(pid: int) -> bool:
        while pid > 1:
            if pid == root_pid:
                return True
            pid = parents.get(pid, 1)
        return False

    return sum(c for pid, c in cpu.items() if in_tree(pid))


def timed(fn, cpu_of=None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of fn(); CPU of this process, or of `cpu_of()`'s process tree."""
    c0 = cpu_of() if cpu_of else time.process_time()
    t0 = time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    return wall, (cpu_of() if cpu_of else time.process_time()) - c0


def bare_loop(scorer: EduScorer, texts: list[str]) -> None:
    """The plain loop: normalise all (vectorised, as training does), then fasttext predict doc by doc."""
    model, value = scorer.model, scorer._value
    for t in normalize_batch(texts, scorer.spec):
        labels, probs = model.predict(t, k=-1)
        sum(p * value[lab] for lab, p in zip(labels, probs)) / probs.sum()


def bare_batched(scorer: EduScorer, texts: list[str], batch: int = 1000) -> None:
    for i in range(0, len(texts), batch):
        scorer.score(texts[i : i + batch])


def spark_pass(spark, docs: Path, ref, registry: str) -> None:
    from curation.edu.score import score_frame

    score_frame(spark.read.parquet(str(docs / "bench" / "data")), ref, None, registry).write.format(
        "noop"
    ).mode("overwrite").save()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=60_000)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)

    registry = ModelRegistry(OUT / "registry")
    shutil.rmtree(registry.root, ignore_errors=True)
    labels = read_label_file(
        shared_data_dir() / "quality_labels_dclm_human" / "majority_data_disputed.jsonl", max_score=1
    )
    ref = train_and_register(labels, EduTrainConfig(max_score=1, threshold=0.5), registry)
    docs, texts = build_dataset(args.docs, args.files)
    scorer = EduScorer(ref)
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}

    def record(name: str, measured: tuple[float, float]) -> None:
        wall.setdefault(name, []).append(measured[0])
        cpu.setdefault(name, []).append(measured[1])
        log.info(
            "%-15s wall %.2fs (%.0f docs/s)  cpu %.2fs (%.0f docs per cpu-s)",
            name,
            measured[0],
            args.docs / measured[0],
            measured[1],
            args.docs / max(measured[1], 1e-9),
        )

    for _ in range(args.repeats):
        record("bare_loop", timed(lambda: bare_loop(scorer, texts)))
        record("bare_batched", timed(lambda: bare_batched(scorer, texts)))

    from curation.edu.score import score_dataset
    from curation.spark import get_spark

    registry.promote(ref.version)
    for cores in (1, 2):
        spark = get_spark(
            f"bench-edu-{cores}",
            master=f"local[{cores}]",
            conf={"spark.default.parallelism": str(cores), "spark.sql.shuffle.partitions": str(cores)},
        )
        jvm_pid = spark.sparkContext._gateway.proc.pid

        def tree(pid=jvm_pid):
            return _proc_tree_cpu(pid)

        spark_pass(spark, docs, ref, str(registry.root))  # warm-up: workers start, model loads
        for _ in range(args.repeats):
            record(
                f"spark_local{cores}",
                timed(lambda s=spark: spark_pass(s, docs, ref, str(registry.root)), tree),
            )
        if cores == 2:
            for i in range(args.repeats):
                record(
                    "publish_local2",
                    timed(
                        lambda s=spark, i=i: score_dataset(
                            s, docs, OUT / "scored", registry=str(registry.root), run_id=f"r{i}"
                        ),
                        tree,
                    ),
                )
        spark.stop()

    med_wall = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    per_cpu_s = {k: args.docs / v for k, v in med_cpu.items()}
    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "docs": args.docs,
        "mean_chars": round(sum(map(len, texts)) / len(texts)),
        "repeats": args.repeats,
        "model": {
            "version": ref.version,
            "bytes": ref.card.model_bytes,
            **{k: ref.card.params["fasttext"][k] for k in ("dim", "wordNgrams", "bucket")},
        },
        "cpu_count": os.cpu_count(),
        "load_avg_at_end": os.getloadavg(),
        "wall_docs_per_s": {k: round(args.docs / v) for k, v in med_wall.items()},
        "docs_per_cpu_second": {k: round(v) for k, v in per_cpu_s.items()},
        "spark_local1_vs_bare_loop_per_cpu_s": round(per_cpu_s["spark_local1"] / per_cpu_s["bare_loop"], 3),
        "spark_local2_vs_bare_loop_per_cpu_s": round(per_cpu_s["spark_local2"] / per_cpu_s["bare_loop"], 3),
        "spark_local2_capacity_2_dedicated_cores_docs_per_s": round(2 * per_cpu_s["spark_local2"]),
        "wall_seconds": {k: [round(x, 2) for x in v] for k, v in wall.items()},
        "cpu_seconds": {k: [round(x, 2) for x in v] for k, v in cpu.items()},
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
