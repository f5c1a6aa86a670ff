"""CPU default: completion tokens/s of SmolLM2-135M-Instruct (the embedded GGUF) for each local backend.

Backends, all driven through the real BatchRunner into a fresh SQLite store:
  embedded      - llama.cpp server on loopback (llama-cpp-python) + our OpenAI-compatible client,
                  with 1 and with 2 server threads
  transformers  - the GGUF dequantised to float32 torch weights on CPU, batch size 1 and 8
                  (OMP_NUM_THREADS as set by scripts/env.sh, i.e. 1: see STACK-NOTES P9)
Same requests for all: --requests real GSM8K test questions as chat requests, greedy, --max-tokens each.
Model load / server start-up time is reported separately and not counted in tokens/s.

Run: python bench/teacher_cpu.py [--requests 8] [--max-tokens 32] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from teacher_client_overhead import gsm8k_requests

from synthesis.teacher import BatchRunner, EmbeddedConfig, TransformersConfig, make_backend


def measure(cfg, requests, store: Path) -> dict:
    backend = make_backend(cfg)
    t0 = time.perf_counter()
    backend.start()
    load_s = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        report = BatchRunner(backend, store).run(requests)
        wall = time.perf_counter() - t0
    finally:
        backend.close()
    assert report.ok == len(requests), report.summary()
    return {
        "load_s": round(load_s, 2),
        "wall_s": round(wall, 2),
        "completion_tokens": report.completion_tokens,
        "tok_per_s": round(report.completion_tokens / wall, 2),
        "req_per_s": round(len(requests) / wall, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    requests = gsm8k_requests(args.requests, args.max_tokens, "bench-cpu")
    configs = {
        "embedded (llama.cpp, 1 thread)": EmbeddedConfig(n_threads=1, concurrency=1),
        "embedded (llama.cpp, 2 threads)": EmbeddedConfig(n_threads=2, concurrency=1),
        "transformers (batch 1)": TransformersConfig(batch_size=1),
        "transformers (batch 8)": TransformersConfig(batch_size=8),
    }
    out = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cores": len(os.sched_getaffinity(0)),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "loadavg_start": os.getloadavg(),
        "requests": args.requests,
        "max_tokens": args.max_tokens,
        "backends": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, cfg) in enumerate(configs.items()):
            out["backends"][name] = r = measure(cfg, requests, Path(tmp) / f"{i}.sqlite")
            print(
                f"{name:<34} load {r['load_s']:6.1f}s  {r['completion_tokens']:5d} tok in {r['wall_s']:7.1f}s"
                f"  = {r['tok_per_s']:6.1f} tok/s, {r['req_per_s']:.2f} req/s",
                flush=True,
            )
    out["loadavg_end"] = os.getloadavg()
    print(f"load average start {out['loadavg_start']}, end {out['loadavg_end']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
