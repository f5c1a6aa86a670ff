"""Benchmark of issue 17: an 8-arm proxy ablation (2 seeds) and a RegMix search (>= 24 samples) on the shared
sample data, with the tiny CPU proxy. Inputs come from bench/ablation_data.py (the project's own curation run,
edu classifier and the recorded SmolLM2 teacher outputs); every number lands in OUT/summary.json.

    python bench/ablation.py --out out/bench/ablation            # data, tokenizer, ablation, search

Arms (phase 1 -> phase 2, equal tokens per arm): raw web -> raw web; curated -> curated; curated -> curated
with edu_score >= the corpus median / upper quartile; edu >= median in both phases; curated -> curated +
synthetic; curated -> edu upper quartile + synthetic; and the planted control, curated -> shuffled-word
curated text, which must rank last beyond the seed noise.

Every web source may repeat at most REPEAT_CAP epochs per phase (Muennighoff et al. 2023, "Scaling
Data-Constrained Language Models": up to ~4 epochs repeated tokens are worth almost as much as new ones, past
that their value falls fast), so the arms compare data, not overfitting of a few documents; the build refuses
an arm that would need more. The upper-quartile edu filter keeps 24 of the 95 curated documents (~35k
training tokens): it can fill phase 2 but not phase 1 within the cap, so the both-phases arm uses the median.
The synthetic source (22 recorded teacher outputs, 3k tokens) is the exception (max_epochs 40): generating
more takes minutes per document on this CPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import yaml

from curation.contract import resolve_version_dir
from curation.paths import REPO_ROOT

PROXY = {
    "preset": "tiny",
    "seq_len": 128,
    "global_batch_tokens": 2048,
    "micro_batch": 16,
    "lr": 0.003,
    "warmup_steps": 5,
    "device": "cpu",
    "log_every": 5,
}


REPEAT_CAP = 4


def src(
    name: str, dataset: Path, weight: float, where: str | None = None, max_epochs: float = REPEAT_CAP
) -> dict:
    return {
        "name": name,
        "dataset": str(dataset),
        "filter": where,
        "weight": weight,
        "max_epochs": max_epochs,
    }


def mixture(name: str, phase1: list[dict], phase2: list[dict]) -> dict:
    return {
        "name": name,
        "seed": 0,
        "seq_len": 128,
        "heldout_fraction": 0.05,
        "tokenizer": {"train": {"vocab_size": 2048, "sample_documents": 3000}},
        "phases": [
            {"name": "phase1", "tokens": 100_000, "sources": phase1},
            {"name": "phase2", "tokens": 50_000, "sources": phase2},
        ],
    }


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def edu_quantiles(web_edu: Path) -> tuple[float, float]:
    files = str(resolve_version_dir(web_edu) / "data" / "*.parquet")
    q = duckdb.sql(f"SELECT quantile_cont(edu_score, [0.5, 0.75]) FROM read_parquet('{files}')").fetchall()[
        0
    ][0]
    return round(float(q[0]), 4), round(float(q[1]), 4)


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def studies(
    out: Path, data: Path, steps: tuple[int, int], folder: str, overfit: bool = False
) -> tuple[Path, Path, dict]:
    raw, web, syn, shuf = data / "raw", data / "web_edu", data / "synthetic", data / "shuffled"
    lo, hi = edu_quantiles(web)
    mix = out / "mixtures"
    mix.mkdir(parents=True, exist_ok=True)
    arms = {
        "raw": mixture("raw", [src("web", raw, 1.0)], [src("web", raw, 1.0)]),
        "curated": mixture("curated", [src("web", web, 1.0)], [src("web", web, 1.0)]),
        "curated_synthetic": mixture(
            "cs", [src("web", web, 1.0)], [src("web", web, 0.9), src("syn", syn, 0.1, None, 40)]
        ),
        "edu_hi_synthetic": mixture(
            "es",
            [src("web", web, 1.0)],
            [src("web", web, 0.9, f"edu_score >= {hi}"), src("syn", syn, 0.1, None, 40)],
        ),
        "planted_shuffled": mixture("shuffled", [src("web", web, 1.0)], [src("web", shuf, 1.0)]),
    }
    entries = [{"name": k, "mixture": str(write(mix / f"{k}.yaml", v))} for k, v in arms.items()]
    entries[2:2] = [
        {"name": "edu_median", "variations": [{"phase": "phase2", "source": "web", "edu_threshold": lo}]},
        {"name": "edu_q75", "variations": [{"phase": "phase2", "source": "web", "edu_threshold": hi}]},
        {
            "name": "edu_median_both",
            "variations": [
                {"phase": "phase1", "source": "web", "edu_threshold": lo},
                {"phase": "phase2", "source": "web", "edu_threshold": lo},
            ],
        },
    ]
    if overfit:  # edu >= q75 in both phases, allowed 8 epochs: what the 4-epoch cap refuses, run anyway
        q75 = [src("web", web, 1.0, f"edu_score >= {hi}", 8)]
        path = write(mix / "edu_q75_both_cap8.yaml", mixture("edu_q75_both_cap8", q75, copy.deepcopy(q75)))
        entries.append({"name": "edu_q75_both_cap8", "mixture": str(path)})
    base = mix / "curated.yaml"
    ablation = write(
        out / f"{folder}.yaml",
        {
            "name": f"bench-8arm-{steps[0]}-{steps[1]}",
            "output": folder,
            "tokenizer": "tokenizer",
            "base": str(base),
            "arms": entries,
            "proxy": PROXY,
            "tokens": {"phase1": steps[0] * 2048, "phase2": steps[1] * 2048},
            "seeds": [0, 1],
            "heldout_fraction": 0.1,
            "eval": {"tokens": 16384, "heldout_exclude": [str(shuf)], "mmlu_questions": 200},
        },
    )
    search_base = write(
        mix / "search_base.yaml",
        mixture(
            "search",
            [
                src("curated", web, 0.5),
                src("raw_en", raw, 0.2, "lang = 'en'"),
                src("raw_other", raw, 0.15, "lang <> 'en'"),
                src("edu_q75", web, 0.1, f"edu_score >= {hi}"),
                src("syn", syn, 0.05, None, 40),
            ],
            [src("web", web, 1.0)],
        ),
    )
    search = write(
        out / "search.yaml",
        {
            "name": "bench-search",
            "output": "search",
            "tokenizer": "tokenizer",
            "base": str(search_base),
            "phase": "phase1",
            "samples": 24,
            "folds": 6,
            "regressor": "ridge",
            "candidates": 100_000,
            "top_k": 100,
            "proxy": PROXY,
            "tokens": {"phase1": 30 * 2048},
            "heldout_fraction": 0.1,
            "eval": {"tokens": 16384, "mmlu_questions": 0},
        },
    )
    return ablation, search, {"edu_median": lo, "edu_q75": hi}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/bench/ablation")
    ap.add_argument("--skip-search", action="store_true")
    ap.add_argument(
        "--steps",
        type=int,
        nargs=2,
        default=[120, 60],
        metavar=("PHASE1", "PHASE2"),
        help="proxy steps (2,048 tokens each) per phase of every ablation arm (default 120 60: at 30 15 the"
        " tiny proxy has learned little beyond token frequencies, which shuffled words keep)",
    )
    ap.add_argument("--ablation-dir", default="ablation", help="the ablation's folder under --out")
    ap.add_argument(
        "--overfit-arm",
        action="store_true",
        help="add a 9th arm, edu >= q75 in both phases with an 8-epoch cap (it overfits 24 documents)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = Path(args.out).resolve()
    summary: dict = {"load_start": Path("/proc/loadavg").read_text().split()[:3]}
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "ablation_data.py"), "--out", str(out / "data")],
        check=True,
        cwd=REPO_ROOT,
    )
    summary["data_seconds"] = time.perf_counter() - t0
    ablation, search, summary["edu_thresholds"] = studies(
        out, out / "data", tuple(args.steps), args.ablation_dir, args.overfit_arm
    )
    from training.ablation.runner import run_ablation
    from training.ablation.search import run_search
    from training.mixture.artifact import train_artifact

    if not (out / "tokenizer").is_dir():
        train_artifact(out / "mixtures" / "curated.yaml", out / "tokenizer")
    t1, c1 = time.perf_counter(), cpu_seconds()
    rep = run_ablation(ablation)
    summary["ablation"] = {
        "seconds": time.perf_counter() - t1,
        "cpu_seconds": cpu_seconds() - c1,  # this process's CPU time: what the load does not inflate
        "ranking": rep.ranking,
        "noise_sd": rep.noise_sd,
        "threshold": rep.threshold,
        "beyond_noise": rep.beyond_noise,
        "planted_last_beyond_noise": rep.ranking[-1] == "planted_shuffled" and rep.last_beyond_noise(),
        "load": Path("/proc/loadavg").read_text().split()[:3],
    }
    print(rep.summary(), flush=True)
    if not args.skip_search:
        t2 = time.perf_counter()
        srep = run_search(search)
        samples = [v for a, v in srep.observed.items() if a.startswith("sample-")]
        summary["search"] = {
            "seconds": time.perf_counter() - t2,
            "samples": len(samples),
            "cv_spearman": srep.spearman,
            "proposed_observed": srep.proposed_observed,
            "quartile": srep.quartile,
            "current": srep.current,
            "proposed": srep.proposed,
            "sources": srep.sources,
            "load": Path("/proc/loadavg").read_text().split()[:3],
        }
        print(srep.summary(), flush=True)
    summary["total_seconds"] = time.perf_counter() - t0
    (out / f"summary-{args.ablation_dir}.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
