"""GPU throughput of the teacher backends on SmolLM2 (to run on an H100/H200 node; not run yet).

  transformers - our TransformersBackend on CUDA (bfloat16), batch size 1, 32 and 256, through the real
                 BatchRunner (so keys, store commits and result records are included in the figure)
  vllm         - our VllmBackend (vllm.LLM, continuous batching inside each call) when `vllm` is installed
                 and --vllm-model names a local HF model directory (no hub download at run time)
Requests: --requests real GSM8K test questions (repeated with distinct template versions when more are
needed than the file has), chat template, greedy, --max-tokens each. Completion tokens/s = completion tokens
over wall time of the batch, model load excluded.

--model is a HF directory or a .gguf (default: the embedded SmolLM2 GGUF, dequantised on load).
Run: python bench/teacher_gpu.py [--model DIR_OR_GGUF] [--vllm-model HF_DIR] [--requests 512]
     [--max-tokens 128] [--batch-sizes 1,32,256] [--batch1-requests 32] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import tempfile
import time
from pathlib import Path

from teacher_client_overhead import gsm8k_requests

from synthesis.teacher import BatchRunner, TransformersConfig, VllmConfig, make_backend


def requests_for(n: int, max_tokens: int):
    base = gsm8k_requests(min(n, 1319), max_tokens, "bench-gpu")
    out, rep = [], 0
    while len(out) < n:  # distinct keys for repeats, so the store never short-circuits them
        out += [r.model_copy(update={"template_version": f"bench-gpu-{rep}"}) for r in base[: n - len(out)]]
        rep += 1
    return out


def timed_run(backend, requests, store: Path) -> dict:
    t0 = time.perf_counter()
    report = BatchRunner(backend, store).run(requests)
    wall = time.perf_counter() - t0
    return {
        "requests": len(requests),
        "ok": report.ok,
        "failed": report.failed,
        "wall_s": round(wall, 2),
        "completion_tokens": report.completion_tokens,
        "tok_per_s": round(report.completion_tokens / wall, 1),
        "req_per_s": round(len(requests) / wall, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="HF dir or .gguf for transformers (default: embedded GGUF)")
    ap.add_argument("--vllm-model", help="local HF model directory for vLLM")
    ap.add_argument("--requests", type=int, default=512)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--batch-sizes", default="1,32,256")
    ap.add_argument("--batch1-requests", type=int, default=32, help="requests at batch 1 (it is slow)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch

    if not torch.cuda.is_available():
        raise SystemExit("bench/teacher_gpu.py needs a CUDA GPU (torch.cuda.is_available() is False)")
    out = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "gpu": torch.cuda.get_device_name(0),
        "max_tokens": args.max_tokens,
        "transformers": {},
        "vllm": None,
    }
    with tempfile.TemporaryDirectory() as tmp:
        for bs in [int(b) for b in args.batch_sizes.split(",")]:
            # batch 1 is slow: give it fewer requests so the run stays short; tokens/s is per request anyway
            n = min(args.requests, args.batch1_requests) if bs == 1 else max(args.requests, bs)
            backend = make_backend(
                TransformersConfig(model=args.model, device="cuda", dtype="bfloat16", batch_size=bs)
            )
            backend.start()
            timed_run(backend, requests_for(min(bs, n), 8), Path(tmp) / f"warm-{bs}.sqlite")  # CUDA warm-up
            r = timed_run(backend, requests_for(n, args.max_tokens), Path(tmp) / f"tf-{bs}.sqlite")
            backend.close()
            torch.cuda.empty_cache()
            out["transformers"][bs] = r
            print(
                f"transformers batch {bs:>4}: {r['completion_tokens']} tok in {r['wall_s']}s = "
                f"{r['tok_per_s']} tok/s ({r['req_per_s']} req/s)",
                flush=True,
            )
        if importlib.util.find_spec("vllm") is None:
            print("vllm: not installed here; skipped (install the `gpu` extra on a CUDA node)")
        elif not args.vllm_model:
            print("vllm: installed but --vllm-model not given; skipped")
        else:
            backend = make_backend(VllmConfig(model=args.vllm_model, batch_size=args.requests))
            backend.start()
            r = timed_run(backend, requests_for(args.requests, args.max_tokens), Path(tmp) / "vllm.sqlite")
            out["vllm"] = r
            print(
                f"vllm: {r['completion_tokens']} tok in {r['wall_s']}s = {r['tok_per_s']} tok/s", flush=True
            )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
