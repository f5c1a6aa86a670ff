"""End-to-end textbook synthesis with the embedded SmolLM2-135M teacher (llama.cpp server, CPU): >= 200
generation requests across the generators (+ the verification solves), then yield and diversity, parse rate
per generator, ground-truth math yield per difficulty level, and code yield with the share of vacuous tests.

    python bench/synthesis_e2e.py [--scale 1.0] [--output out/bench/synthesis_e2e] [--free-text]

--free-text runs the generators' free-text prompts and parsers (the table before constrained output); the
default sends each generator's JSON schema. Writes <output>/result.json (and the published dataset with
report.md under <output>/dataset). Resumable: a rerun reuses the answers already in the store (the figures
then show 'skipped')."""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from curation.paths import shared_data_dir
from synthesis.textbook.pipeline import run_synthesis
from synthesis.textbook.recipes import parse_recipes


def recipes(scale: float) -> dict:
    def n(k):
        return max(1, round(k * scale))

    web = str(next((shared_data_dir() / "webtext_cc2019_dolma_sample").glob("*.jsonl.gz")))
    short = {
        "temperature": 0.8,
        "top_p": 0.95,
        "max_tokens": 64,
    }  # the shared 2-core box gave ~6 tok/s during the run
    return {
        "name": "bench-e2e",
        "seed": 0,
        "teacher": {"backend": {"kind": "embedded", "concurrency": 2, "n_ctx": 2048}},
        "web_seeds": {"source": web, "max_chars": 800, "min_chars": 300, "pool_size": 200, "lang": "en"},
        "recipes": [
            {
                "name": "textbook",
                "generator": "textbook",
                "n": n(55),
                "topics": {"science": 2, "world_knowledge": 1, "math": 1},
                "audiences": {"middle_school": 1, "high_school": 1, "college": 1, "general": 1},
                "styles": {"textbook": 2, "qa": 1, "dialogue": 1, "story": 1},
                "web_share": 0.5,
                "sampling": short,
                "filters": {"min_words": 25, "max_words": 800, "reject_truncated": False},
            },
            {
                "name": "math",
                "generator": "math",
                "n": n(55),
                "topics": {"math": 1},
                "audiences": {"middle_school": 1, "high_school": 1, "college": 1, "general": 1},
                "styles": {"worked_examples": 1},
                "sampling": short,
                "filters": {"min_words": 15, "max_words": 800, "reject_truncated": False},
                "verify": {"k": 2, "min_agreement": 0.5, "solve_max_tokens": 48},
            },
            {
                "name": "code",
                "generator": "code",
                "n": n(50),
                "topics": {"programming": 1},
                "audiences": {"high_school": 1, "college": 1, "professionals": 1},
                "styles": {"exercises": 1},
                "sampling": {**short, "temperature": 0.5, "max_tokens": 96},
                "filters": {
                    "min_words": 10,
                    "max_words": 1000,
                    "reject_truncated": False,
                    "max_duplicate_line_fraction": 0.6,
                    "max_top_ngram_fraction": 0.5,
                },
            },
            {
                "name": "puzzle",
                "generator": "puzzle",
                "n": n(50),
                "topics": {"reasoning": 1},
                "audiences": {
                    "young_children": 1,
                    "middle_school": 1,
                    "high_school": 1,
                    "college": 1,
                    "professionals": 1,
                    "general": 1,
                },
                "styles": {"qa": 1, "exercises": 1},
                "sampling": short,
                "filters": {"min_words": 15, "max_words": 800, "reject_truncated": False},
                "verify": {"k": 2, "min_agreement": 0.5, "solve_max_tokens": 48},
            },
            {
                "name": "math_exercise",
                "generator": "math_exercise",
                "n": n(60),
                "topics": {"math_exercises": 1},
                "audiences": {"middle_school": 1, "high_school": 1},
                "sampling": short,
                "filters": {"min_words": 3, "max_words": 800, "reject_truncated": False},
            },
        ],
    }


def _rows(version_dir: Path) -> tuple[list[dict], list[dict]]:
    def read(sub):
        return [
            r for f in sorted((version_dir / sub).glob("*.parquet")) for r in pq.read_table(f).to_pylist()
        ]

    return read("data"), read("rejects")


def quality(version_dir: Path) -> dict:
    """Parse rate per generator; ground-truth yield per difficulty; code yield and vacuous share."""
    kept, rejected = _rows(version_dir)
    out: dict = {"parse_rate": {}}
    gens = sorted({r["generator"] for r in kept + rejected})
    for g in gens:
        rows = [r for r in kept + rejected if r["generator"] == g]
        unparsed = [
            r
            for r in rejected
            if r["generator"] == g
            and r["reject_stage"] == "generate"
            and r["reject_reason"].startswith("unparseable")
        ]
        answered = [
            r
            for r in rows
            if not (r in rejected and r["reject_reason"] in ("teacher_failed", "teacher_missing"))
        ]
        out["parse_rate"][g] = {
            "answered": len(answered),
            "parsed": len(answered) - len(unparsed),
            "rate": round((len(answered) - len(unparsed)) / len(answered), 3) if answered else None,
            "unparsed_by_reason": dict(Counter(r["reject_reason"] for r in unparsed)),
        }
    # ground truth: of the solutions that reached the check, the share whose final answer is the known one
    checked = [r for r in kept if r["verification_kind"] == "ground_truth"] + [
        r for r in rejected if r["reject_stage"] == "verify" and r["generator"] == "math_exercise"
    ]
    per_level: dict = {}
    for r in checked:
        level = json.loads(r["parts"])["difficulty"]
        right = r["verified"] is True
        d = per_level.setdefault(level, {"checked": 0, "right": 0})
        d["checked"] += 1
        d["right"] += right
    for d in per_level.values():
        d["yield"] = round(d["right"] / d["checked"], 3) if d["checked"] else None
    out["ground_truth_by_level"] = dict(sorted(per_level.items()))
    out["ground_truth_reasons"] = dict(Counter(r["reject_reason"] for r in checked if r in rejected))
    out["code"] = _code_quality(kept, rejected)
    return out


def _exception(verification: str | None) -> str:
    """The exception a sandboxed test run ended with (`NameError`, `AssertionError`), from its stderr."""
    stderr = json.loads(verification or "{}").get("stderr") or ""
    last = next((ln for ln in reversed(stderr.strip().splitlines()) if ln.strip()), "")
    m = re.match(r"([A-Za-z_.]+(Error|Exception|Exit))\b", last)
    return m.group(1) if m else (last[:40] or "none")


def _code_quality(kept: list[dict], rejected: list[dict]) -> dict:
    """Code yield (tests pass on the solution and fail on a mutant), the vacuous share, and what the
    sandboxed failures died of."""
    code = [r for r in kept + rejected if r["generator"] == "code"]
    ran = [r for r in code if r in kept or r["reject_stage"] not in ("generate", "quality")]
    failed = [r for r in ran if r in rejected and r["reject_stage"] == "verify"]
    reasons = Counter(r["reject_reason"] for r in failed)
    passed_and_can_fail = sum(1 for r in ran if r["verified"] is True)
    return {
        "requests": len(code),
        "sandboxed": len(ran),
        "tests_pass_and_kill_a_mutant": passed_and_can_fail,
        "yield_of_requests": round(passed_and_can_fail / len(code), 3) if code else None,
        "vacuous_share_of_sandboxed": round(reasons["tests_cannot_fail"] / len(ran), 3) if ran else None,
        "verify_rejects": dict(reasons),
        "sandbox_failures_by_exception": dict(
            Counter(
                _exception(r["verification"]) for r in failed if r["reject_reason"] != "tests_cannot_fail"
            )
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--output", type=Path, default=Path("out/bench/synthesis_e2e"))
    ap.add_argument("--only", nargs="+", help="run only these recipes (textbook math code puzzle)")
    ap.add_argument("--max-tokens", type=int, help="override every recipe's generation max_tokens")
    ap.add_argument("--free-text", action="store_true", help="free-text prompts and parsers (no JSON schema)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    spec = recipes(args.scale)
    if args.only:
        spec["recipes"] = [r for r in spec["recipes"] if r["name"] in args.only]
    if args.max_tokens:
        for r in spec["recipes"]:
            r["sampling"] = {**r["sampling"], "max_tokens": args.max_tokens}
    for r in spec["recipes"]:
        r["structured"] = not args.free_text
    rs = parse_recipes(spec, "bench/synthesis_e2e.py")
    t0 = time.perf_counter()
    res = run_synthesis(rs, args.output / "dataset", recipes_path="bench/synthesis_e2e.py")
    wall = time.perf_counter() - t0
    batches = res.manifest.extra["batches"]
    requests = batches["generate"]["requests"] + batches.get("verify", {}).get("requests", 0)
    out = {
        "wall_s": round(wall, 1),
        "teacher_requests": requests,
        "batches": batches,
        "stages": [s.model_dump() for s in res.manifest.stages],
        "totals": res.report["totals"],
        "recipes": {
            k: {kk: vv for kk, vv in v.items() if kk != "samples"} for k, v in res.report["recipes"].items()
        },
        "version_dir": str(res.version_dir),
        "quality": quality(res.version_dir),
    }
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "result.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
