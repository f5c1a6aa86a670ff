"""End-to-end textbook synthesis with the embedded SmolLM2-135M teacher (llama.cpp server, CPU): >= 200
generation requests across all four generators (+ the verification solves), then yield and diversity.

    python bench/synthesis_e2e.py [--scale 1.0] [--output out/bench/synthesis_e2e]

Writes <output>/result.json (and the published dataset with report.md under <output>/dataset). Resumable:
a rerun reuses the answers already in the store (the figures then show 'skipped')."""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from curation.paths import shared_data_dir
from synthesis.textbook.pipeline import run_synthesis
from synthesis.textbook.recipes import parse_recipes


def recipes(scale: float) -> dict:
    n = lambda k: max(1, round(k * scale))
    web = str(next((shared_data_dir() / "webtext_cc2019_dolma_sample").glob("*.jsonl.gz")))
    short = {"temperature": 0.8, "top_p": 0.95, "max_tokens": 64}   # the shared 2-core box gave ~6 tok/s during the run
    return {
        "name": "bench-e2e", "seed": 0,
        "teacher": {"backend": {"kind": "embedded", "concurrency": 2, "n_ctx": 2048}},
        "web_seeds": {"source": web, "max_chars": 800, "min_chars": 300, "pool_size": 200, "lang": "en"},
        "recipes": [
            {"name": "textbook", "generator": "textbook", "n": n(55), "topics": {"science": 2, "world_knowledge": 1,
             "math": 1}, "audiences": {"middle_school": 1, "high_school": 1, "college": 1, "general": 1},
             "styles": {"textbook": 2, "qa": 1, "dialogue": 1, "story": 1}, "web_share": 0.5, "sampling": short,
             "filters": {"min_words": 25, "max_words": 800, "reject_truncated": False}},
            {"name": "math", "generator": "math", "n": n(55), "topics": {"math": 1},
             "audiences": {"middle_school": 1, "high_school": 1, "college": 1, "general": 1}, "styles": {"worked_examples": 1}, "sampling": short,
             "filters": {"min_words": 15, "max_words": 800, "reject_truncated": False},
             "verify": {"k": 2, "min_agreement": 0.5, "solve_max_tokens": 48}},
            {"name": "code", "generator": "code", "n": n(50), "topics": {"programming": 1},
             "audiences": {"high_school": 1, "college": 1, "professionals": 1}, "styles": {"exercises": 1},
             "sampling": {**short, "temperature": 0.5, "max_tokens": 96},
             "filters": {"min_words": 10, "max_words": 1000, "reject_truncated": False,
                         "max_duplicate_line_fraction": 0.6, "max_top_ngram_fraction": 0.5}},
            {"name": "puzzle", "generator": "puzzle", "n": n(50), "topics": {"reasoning": 1},
             "audiences": {"young_children": 1, "middle_school": 1, "high_school": 1, "college": 1,
                           "professionals": 1, "general": 1}, "styles": {"qa": 1, "exercises": 1},
             "sampling": short, "filters": {"min_words": 15, "max_words": 800, "reject_truncated": False},
             "verify": {"k": 2, "min_agreement": 0.5, "solve_max_tokens": 48}},
        ]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--output", type=Path, default=Path("out/bench/synthesis_e2e"))
    ap.add_argument("--only", nargs="+", help="run only these recipes (textbook math code puzzle)")
    ap.add_argument("--max-tokens", type=int, help="override every recipe's generation max_tokens")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    spec = recipes(args.scale)
    if args.only:
        spec["recipes"] = [r for r in spec["recipes"] if r["name"] in args.only]
    if args.max_tokens:
        for r in spec["recipes"]:
            r["sampling"] = {**r["sampling"], "max_tokens": args.max_tokens}
    rs = parse_recipes(spec, "bench/synthesis_e2e.py")
    t0 = time.perf_counter()
    res = run_synthesis(rs, args.output / "dataset", recipes_path="bench/synthesis_e2e.py")
    wall = time.perf_counter() - t0
    batches = res.manifest.extra["batches"]
    requests = batches["generate"]["requests"] + batches.get("verify", {}).get("requests", 0)
    out = {"wall_s": round(wall, 1), "teacher_requests": requests, "batches": batches,
           "stages": [s.model_dump() for s in res.manifest.stages], "totals": res.report["totals"],
           "recipes": {k: {kk: vv for kk, vv in v.items() if kk != "samples"} for k, v in res.report["recipes"].items()},
           "version_dir": str(res.version_dir)}
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "result.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
