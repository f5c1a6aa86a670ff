"""Mixture build benchmark: tokenize+pack throughput vs a bare `tokenizers` loop, and realised ratios.

1. Throughput. The same texts (the three real sample sources, each repeated --repeat times, in the dataset
   contract) are encoded by
     - bare `Tokenizer.encode_batch` over in-memory batches (the issue's reference), and `encode_batch_fast`;
     - our path: DuckDB/Arrow batches from parquet -> encode -> EOS -> token cache (tokenize_source), then
       blend + pack into phase shards + held-out shards + documents.parquet (write_phase).
   Runs are interleaved (bare, ours, bare, ours, ...) so machine noise hits both; medians reported.
2. Ratios. A two-phase mixture is built with `build()`, then every training shard is read back, each document
   decoded and attributed to its source by its text, and realised token shares compared with the targets.

    python bench/mixture_pack.py --repeat 4 --rounds 3 --out out/bench/mixture
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curation.contract import DatasetRoot, Manifest, code_version, config_hash, now_iso
from curation.paths import models_dir, shared_data_dir
from training.mixture import sources as S
from training.mixture.blend import CachedSource, write_phase
from training.mixture.build import build
from training.mixture.encode import read_cache, tokenize_source
from training.mixture.tokenizer import eos_id, load_tokenizer, save_tokenizer, train_bpe
from training.shards import document_offsets, open_shard, token_dtype

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
# the sample sources are the tests' fixtures: importable only once tests/ is on sys.path (just above)
from fixtures.mixture.sources import build_all  # noqa: E402

log = logging.getLogger("bench.mixture_pack")


def repeated(src_version: Path, root: Path, times: int) -> Path:
    """A contract dataset holding the source's documents `times` over (ids suffixed to stay unique)."""
    table = pq.read_table(src_version / "data")
    dr = DatasetRoot(root)
    staging = dr.staging_dir("v1")
    (staging / "data").mkdir()
    for k in range(times):
        ids = pa.array([f"{i}-r{k}" for i in table["id"].to_pylist()])
        pq.write_table(table.set_column(0, "id", ids), staging / "data" / f"part-{k:05d}.parquet")
    Manifest(
        dataset=root.name,
        version="v1",
        created_at=now_iso(),
        code_version=code_version(),
        inputs=[],
        config={},
        config_hash=config_hash({}),
        rows=table.num_rows * times,
    ).write(staging)
    return dr.publish(staging, "v1")


def bare_loop(tok, texts: list[str], batch: int, fast: bool) -> tuple[int, float]:
    t0 = time.perf_counter()
    n = 0
    enc = tok.encode_batch_fast if fast else tok.encode_batch
    for i in range(0, len(texts), batch):
        n += sum(len(e) for e in enc(texts[i : i + batch], add_special_tokens=False))  # no id copy: strictest
    return n, time.perf_counter() - t0


def our_path(
    datasets: list[S.ResolvedSource], tok_dir: Path, eos: int, dtype, work: Path
) -> tuple[int, float, float]:
    shutil.rmtree(work, ignore_errors=True)
    con = S.connect()
    t0 = time.perf_counter()
    caches = []
    for k, res in enumerate(datasets):
        info = tokenize_source(con, res, None, tok_dir, eos, dtype, work / "cache" / str(k))
        caches.append(info)
    t_tok = time.perf_counter() - t0
    total = sum(c.tokens for c in caches)
    srcs = []
    for k, c in enumerate(caches):
        tokens, offsets, docs = read_cache(c.folder, dtype)
        srcs.append(CachedSource(f"s{k}", c.tokens / total, 1.2, str(k), tokens, offsets, docs))
    t1 = time.perf_counter()
    # pack (nearly) everything once: ~0.98 of all tokens (1% held out), one epoch of each source
    pr = write_phase(srcs, int(total * 0.97), 0, 0.01, work / "phase", dtype, 1 << 24)
    t_pack = time.perf_counter() - t1
    assert pr.tokens >= int(total * 0.97)
    return total, t_tok, t_pack


RATIO_MIXTURE = """\
name: bench-ratios
seed: 5
seq_len: 2048
heldout_fraction: 0.01
tokenizer:
  path: {tok}
phases:
  - name: phase1
    tokens: {p1}
    sources:
      - {{name: web, dataset: {web}, weight: 0.6, max_epochs: 40}}
      - {{name: edu, dataset: {edu}, weight: 0.4, max_epochs: 40}}
  - name: phase2
    tokens: {p2}
    sources:
      - {{name: web_en, dataset: {web}, filter: "lang = 'en'", weight: 0.3, max_epochs: 40}}
      - {{name: edu_hi, dataset: {edu}, filter: "edu_score >= 1", weight: 0.3, max_epochs: 40}}
      - {{name: quality, dataset: {quality}, filter: "quality_label = 1", weight: 0.4, max_epochs: 40}}
"""
RATIO_FILTERS = {
    "web": ("web", None),
    "edu": ("edu", None),
    "web_en": ("web", "lang = 'en'"),
    "edu_hi": ("edu", "edu_score >= 1"),
    "quality": ("quality", "quality_label = 1"),
}


def ratios_from_shards(build_dir: Path, srcs: dict[str, Path]) -> list[dict]:
    m = json.loads((build_dir / "manifest.json").read_text())
    tok = load_tokenizer(build_dir / "tokenizer")
    dtype = np.dtype(m["dtype"])
    rows = []
    for phase in m["phases"]:
        owner = {}
        for s in phase["sources"]:
            ds, where = RATIO_FILTERS[s["name"]]
            q = f"SELECT text FROM read_parquet('{srcs[ds]}/v1/data/*.parquet')" + (
                f" WHERE {where}" if where else ""
            )
            owner.update({t: s["name"] for (t,) in duckdb.sql(q).fetchall() if t})
        counts: dict[str, int] = {}
        for sh in phase["shards"]:
            toks = np.asarray(open_shard(build_dir / phase["dir"] / sh["file"], dtype))
            docs = np.split(toks, document_offsets(build_dir / phase["dir"] / sh["file"])[1:])
            for text, d in zip(tok.decode_batch([d[:-1].tolist() for d in docs]), docs):
                counts[owner[text]] = counts.get(owner[text], 0) + len(d)
        total = sum(counts.values())
        longest = duckdb.sql(
            f"SELECT max(tokens) FROM '{build_dir / phase['dir']}/documents.parquet' WHERE split = 'train'"
        ).fetchall()[0][0]
        for s in phase["sources"]:
            realised = counts[s["name"]] / total
            rows.append(
                {
                    "phase": phase["name"],
                    "source": s["name"],
                    "budget": phase["budget"],
                    "tokens": total,
                    "target": s["target_weight"],
                    "realised_from_shards": realised,
                    "abs_error": abs(realised - s["target_weight"]),
                    "epochs": s["epochs"],
                    "longest_document": longest,
                    "longest_over_tokens": longest / total,
                }
            )
    return rows


def summarise_throughput(bare, fast, ours, texts, tok, dtype) -> dict:
    med = statistics.median
    bare_tps = med(n / t for n, t in bare)
    fast_tps = med(n / t for n, t in fast)
    ours_tps = med(n / (a + b) for n, a, b in ours)
    # each round's pair ran back to back: the median of paired ratios is the figure least hit by noise
    paired = [(o[0] / (o[1] + o[2])) / (b[0] / b[1]) for o, b in zip(ours, bare)]
    paired_fast = [(o[0] / (o[1] + o[2])) / (f[0] / f[1]) for o, f in zip(ours, fast)]
    assert ours[0][0] == bare[0][0], f"token counts differ: ours {ours[0][0]} vs bare {bare[0][0]}"
    throughput = {
        "documents": len(texts),
        "tokens": bare[0][0],
        "vocab": tok.get_vocab_size(),
        "dtype": dtype.name,
        "bare_encode_batch_tok_s": bare_tps,
        "bare_encode_batch_fast_tok_s": fast_tps,
        "ours_tokenize_pack_tok_s": ours_tps,
        "ratio_of_medians_vs_encode_batch": ours_tps / bare_tps,
        "paired_ratio_vs_encode_batch": med(paired),
        "paired_ratio_vs_encode_batch_fast": med(paired_fast),
        "paired_ratios_by_round": [round(x, 3) for x in paired],
        "ours_pack_share": med(b / (a + b) for _, a, b in ours),
    }

    return throughput


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--repeat", type=int, default=2, help="copies of each sample source (throughput corpus size)"
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--vocab", type=int, default=32064)
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--p1", type=int, default=6_000_000, help="phase-1 budget of the ratio mixture")
    ap.add_argument(
        "--p2",
        type=int,
        nargs="+",
        default=[1_500_000, 6_000_000],
        help="phase-2 budgets: one ratio build each (the error bound is ~ longest document / budget)",
    )
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "bench" / "mixture")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out = args.out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)

    built = build_all(shared_data_dir(), models_dir(), out / "sources")
    srcs = {k: v.parent for k, v in built.items()}
    big = [repeated(v, out / "repeated" / k, args.repeat) for k, v in built.items()]
    texts_all = [
        x
        for v in built.values()
        for x in pq.read_table(v / "data", columns=["text"])["text"].to_pylist()
        if x
    ]
    texts = texts_all * args.repeat  # the bare loop's texts: the same documents our path reads

    tok = train_bpe(iter(texts_all), args.vocab, 2, "<|endoftext|>")
    tok_dir = save_tokenizer(tok, out / "tokenizer", "<|endoftext|>")
    tok = load_tokenizer(tok_dir)
    eos = eos_id(tok, "<|endoftext|>")
    dtype = token_dtype(tok.get_vocab_size())
    con = S.connect()
    resolved = []
    for p in big:
        r = S.resolve(str(p), None, {}, Path.cwd())
        S.describe(con, r)
        resolved.append(r)

    bare, fast, ours = [], [], []
    for rnd in range(0 if args.skip_throughput else args.rounds):
        n, t = bare_loop(tok, texts, args.batch, fast=False)
        bare.append((n + len(texts), t))  # + one EOS per document, as ours counts
        n, t = bare_loop(tok, texts, args.batch, fast=True)
        fast.append((n + len(texts), t))
        n, t_tok, t_pack = our_path(resolved, tok_dir, eos, dtype, out / "ours")
        ours.append((n, t_tok, t_pack))
        print(
            f"round {rnd}: bare {bare[-1][0] / bare[-1][1]:,.0f} tok/s,"
            f" bare-fast {fast[-1][0] / fast[-1][1]:,.0f},"
            f" ours {n / (t_tok + t_pack):,.0f} (tokenize {t_tok:.2f}s + pack {t_pack:.2f}s)",
            flush=True,
        )
    throughput = summarise_throughput(bare, fast, ours, texts, tok, dtype) if ours else None

    ratio_rows = []
    t0 = time.perf_counter()
    for p2 in args.p2:
        mix = out / f"ratios-{p2}.yaml"
        mix.write_text(
            RATIO_MIXTURE.format(tok=tok_dir, p1=args.p1, p2=p2, **{k: v for k, v in srcs.items()})
        )
        build(mix, out / f"ratio_build-{p2}")
        ratio_rows += ratios_from_shards(out / f"ratio_build-{p2}", srcs)
    result = {
        "throughput": throughput,
        "ratios": ratio_rows,
        "ratio_builds_seconds": time.perf_counter() - t0,
        "max_abs_ratio_error": max(r["abs_error"] for r in ratio_rows),
    }
    (out / "results.json").write_text(json.dumps(result, indent=2))
    if throughput:
        print(json.dumps(throughput, indent=2))
    print(
        f"{'phase':<8} {'budget':>10} {'source':<9} {'target':>7} {'realised':>9} {'abs err':>8}"
        f" {'epochs':>7}"
        f" {'longest/tokens':>15}"
    )
    for r in ratio_rows:
        print(
            f"{r['phase']:<8} {r['budget']:>10,} {r['source']:<9} {r['target']:>7.4f}"
            f" {r['realised_from_shards']:>9.5f}"
            f" {r['abs_error']:>8.5f} {r['epochs']:>7.2f} {r['longest_over_tokens']:>15.5f}"
        )
    print(f"max |realised - target| = {result['max_abs_ratio_error']:.5f}; results in {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
