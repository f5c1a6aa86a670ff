"""Quality filters only: our Gopher quality + Gopher repetition + C4 + FineWeb steps vs datatrove 0.10.1's
GopherQualityFilter, GopherRepetitionFilter, C4QualityFilter, FineWebQualityFilter, docs/s side by side.

Inputs: the real documents of the shared Dolma CC-MAIN-2019-30 sample (non-empty ones) and the DCLM
human-labelled sample, replicated round-robin to --docs documents (a text recurs only every ~900
documents, so datatrove's small per-text word-split cache sees no unfair repeats).

Both sides run one process on one core, with the same thresholds and the same order (Gopher quality,
Gopher repetition, C4, FineWeb; C4 with filter_no_terminal_punct=False as in the FineWeb recipe).
Ours runs as the pipeline does: Arrow batches of 1000 rows -> DocBatch -> the four steps -> Arrow.
datatrove runs its filters as chained generators over Document objects, as its executor does (its
English word splitter is spaCy's tokenizer, which needs `spacy` from the bench extra).

Also reported: how often the two sides make the same keep/reject decision, for the chain and per filter.

Run: python bench/filters_throughput.py [--docs 20000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from collections import Counter

import pyarrow as pa

from curation.paths import shared_data_dir
from curation.steps.base import DocBatch, StepTimer
from curation.steps.quality import QualityConfig, quality_steps

BATCH_ROWS = 1000


def load_texts() -> list[str]:
    data = shared_data_dir()
    path = data / "webtext_cc2019_dolma_sample" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
    with gzip.open(path, "rt") as f:
        texts = [d["text"] for d in map(json.loads, f)]
    texts += [
        json.loads(line)["text"]
        for line in (data / "quality_labels_dclm_human" / "majority_data_disputed.jsonl").open()
    ]
    return [t for t in texts if t and t.strip()]


def replicate(base: list[str], n: int) -> list[str]:
    return [base[i % len(base)] for i in range(n)]


def datatrove_filters():
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    return [
        GopherQualityFilter(),
        GopherRepetitionFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),
        FineWebQualityFilter(),
    ]


def run_datatrove(texts: list[str]) -> tuple[float, float, set[int]]:
    from datatrove.data import Document

    filters = datatrove_filters()
    docs = (Document(text=t, id=str(i)) for i, t in enumerate(texts))
    stream = docs
    for flt in filters:
        stream = flt.run(stream, rank=0, world_size=1)
    t0, c0 = time.perf_counter(), time.process_time()
    kept = {int(doc.id) for doc in stream}
    return time.perf_counter() - t0, time.process_time() - c0, kept


def run_ours(texts: list[str]) -> tuple[float, float, set[int], dict[str, float]]:
    steps = quality_steps(QualityConfig())
    schema = pa.schema(
        [pa.field("id", pa.string()), pa.field("text", pa.string())]
        + [f for s in steps for f in s.fields()]
        + [pa.field(n, pa.string()) for n in ("reject_stage", "reject_reason", "reject_detail")]
    )
    batches = [
        pa.RecordBatch.from_pydict(
            {
                "id": [str(i) for i in range(s, min(s + BATCH_ROWS, len(texts)))],
                "text": texts[s : s + BATCH_ROWS],
            }
        )
        for s in range(0, len(texts), BATCH_ROWS)
    ]
    timer = StepTimer()
    kept: set[int] = set()
    t0, c0 = time.perf_counter(), time.process_time()
    for rb in batches:
        batch = DocBatch.from_arrow(rb)
        for step in steps:
            timer.run(step, batch)
        out = batch.to_arrow(schema)
        stages = out.column("reject_stage").to_pylist()
        kept.update(int(i) for i, st in zip(out.column("id").to_pylist(), stages) if st is None)
    return time.perf_counter() - t0, time.process_time() - c0, kept, timer.seconds


def per_filter_agreement(base: list[str]) -> dict[str, float]:
    """Share of documents on which each of our filters and its datatrove twin agree, each run alone."""
    from datatrove.data import Document

    agree = {}
    for ours, theirs in zip(quality_steps(QualityConfig()), datatrove_filters()):
        same = 0
        for i, t in enumerate(base):
            res = theirs.filter(Document(text=t, id=str(i)))
            same += (res is True) == (ours.evaluate(t)[0] is None)
        agree[ours.name] = same / len(base)
    return agree


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=20_000)
    args = ap.parse_args()
    base = load_texts()
    texts = replicate(base, args.docs)
    chars = sum(map(len, texts))
    print(f"{len(texts)} docs ({len(base)} distinct real documents, {chars / len(texts):.0f} chars mean)")

    # warm both (imports, spaCy load, regex compile) on a few docs so neither pays start-up in the timing
    run_ours(base[:50])
    run_datatrove(base[:50])

    t_ours, cpu_ours, kept_ours, ours_split = run_ours(texts)
    t_dt, cpu_dt, kept_dt = run_datatrove(texts)
    n = len(texts)
    # wall time is what a user sees; CPU time is what survives the shared machine's noise
    print(f"\n{'system':<32}{'wall s':>8}{'docs/s':>8}{'CPU s':>8}{'docs/CPU-s':>12}{'kept':>8}")
    for name, wall, cpu, kept in (
        ("ours (4 steps, Arrow batches)", t_ours, cpu_ours, kept_ours),
        ("datatrove 0.10.1 (4 filters)", t_dt, cpu_dt, kept_dt),
    ):
        print(f"{name:<32}{wall:>8.1f}{n / wall:>8.0f}{cpu:>8.1f}{n / cpu:>12.0f}{len(kept):>8}")
    print(f"speed-up: {t_dt / t_ours:.1f}x wall, {cpu_dt / cpu_ours:.1f}x CPU")
    print("\nour time per step: " + ", ".join(f"{k} {v / t_ours:.0%}" for k, v in ours_split.items()))
    same = sum((i in kept_ours) == (i in kept_dt) for i in range(n))
    print(f"chain decision agreement with datatrove: {same / n:.1%}")
    for name, share in per_filter_agreement(base).items():
        print(f"  {name:<20} alone: {share:.1%} agreement")
    reasons = Counter()
    for t in base:
        for step in quality_steps(QualityConfig()):
            r, _ = step.evaluate(t)
            if r:
                reasons[r] += 1
                break
    print("our first-failing rule over the distinct documents:", dict(reasons.most_common(8)))


if __name__ == "__main__":
    main()
