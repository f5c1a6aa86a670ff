"""Client overhead of the teacher batch runner vs bare client loops, against the same loopback server.

One llama.cpp OpenAI-compatible server (llama-cpp-python, the embedded SmolLM2 GGUF) on 127.0.0.1 serves
three contenders that send identical request bodies at the same concurrency:
  runner  - our BatchRunner + OpenAIHttpBackend: request keys, SQLite store lookups and per-result commits,
            tenacity retry wrapper, schema-free result records (a fresh store each round, so all is generated)
  openai  - a bare `openai.AsyncOpenAI` loop (max_retries=0) with an asyncio.Semaphore
  httpx   - a bare `httpx.AsyncClient` loop with an asyncio.Semaphore
Contenders take turns round by round (rotating the order), so load changes on the shared machine hit all
of them; we report the median completion tokens/s and requests/s per contender and the runner/bare ratios.
The server is a separate process, so this process's CPU time (time.process_time) is the client's own cost:
we also report client CPU milliseconds per request, which a loaded machine disturbs far less than wall time.

Two settings: generation-bound (--max-tokens, default 16) and request-bound (max_tokens=1, where per-request
client cost matters most). Prompts are real GSM8K test questions (chat requests, greedy decoding).

Run: python bench/teacher_client_overhead.py [--requests 16] [--max-tokens 16] [--concurrency 4]
     [--rounds 5] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from curation.paths import shared_data_dir
from synthesis.teacher import BatchRunner, ChatMessage, SamplingParams, TeacherRequest
from synthesis.teacher.backends.embedded import LlamaServer
from synthesis.teacher.backends.openai_http import OpenAIHttpBackend


def gsm8k_requests(n: int, max_tokens: int, tag: str) -> list[TeacherRequest]:
    path = shared_data_dir() / "benchmarks_decontam" / "gsm8k" / "test.jsonl"
    with path.open(encoding="utf-8") as f:
        questions = [json.loads(line)["question"] for _, line in zip(range(n), f)]
    return [
        TeacherRequest(
            id=f"q{i}",
            messages=[ChatMessage(role="user", content=q)],
            sampling=SamplingParams(max_tokens=max_tokens),
            template_version=tag,
        )
        for i, q in enumerate(questions)
    ]


def run_runner(
    backend: OpenAIHttpBackend, requests, workdir: Path, round_no: int
) -> tuple[float, int, float]:
    store = workdir / f"runner-{requests[0].sampling.max_tokens}-{round_no}.sqlite"
    t0, c0 = time.perf_counter(), time.process_time()
    report = BatchRunner(backend, store).run(requests)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert report.ok == len(requests), report.summary()
    return wall, report.completion_tokens, cpu


async def _bare_openai(base_url: str, bodies: list[dict], concurrency: int) -> int:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=600)
    sem = asyncio.Semaphore(concurrency)

    async def one(body):
        async with sem:
            resp = await client.chat.completions.create(**body)
            return resp.usage.completion_tokens

    try:
        return sum(await asyncio.gather(*(one(b) for b in bodies)))
    finally:
        await client.close()


async def _bare_httpx(base_url: str, bodies: list[dict], concurrency: int) -> int:
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=600, limits=httpx.Limits(max_connections=concurrency)
    ) as client:

        async def one(body):
            async with sem:
                resp = await client.post("/chat/completions", json=body)
                resp.raise_for_status()
                return resp.json()["usage"]["completion_tokens"]

        return sum(await asyncio.gather(*(one(b) for b in bodies)))


def run_bare(kind: str, base_url: str, bodies: list[dict], concurrency: int) -> tuple[float, int, float]:
    fn = _bare_openai if kind == "openai" else _bare_httpx
    t0, c0 = time.perf_counter(), time.process_time()
    tokens = asyncio.run(fn(base_url, bodies, concurrency))
    return time.perf_counter() - t0, tokens, time.process_time() - c0


def bench_setting(
    server: LlamaServer, n: int, max_tokens: int, concurrency: int, rounds: int, workdir: Path
) -> dict:
    requests = gsm8k_requests(n, max_tokens, f"bench-{max_tokens}")
    backend = OpenAIHttpBackend(
        server.base_url, server.model_alias, concurrency=concurrency, structured_output="json_object_schema"
    )
    bodies = [backend.payload(r) for r in requests]  # byte-for-byte the same requests
    contenders = ["runner", "openai", "httpx"]
    samples: dict[str, list[tuple[float, int, float]]] = {c: [] for c in contenders}
    run_bare("httpx", server.base_url, bodies[:2], concurrency)  # warm the server (first-call costs)
    for r in range(rounds):
        order = contenders[r % 3 :] + contenders[: r % 3]
        for c in order:
            if c == "runner":
                samples[c].append(run_runner(backend, requests, workdir, r))
            else:
                samples[c].append(run_bare(c, server.base_url, bodies, concurrency))
            wall, tok, cpu = samples[c][-1]
            print(
                f"  max_tokens={max_tokens} round {r} {c:<7} {wall:7.2f}s {tok:5d} tok "
                f"{tok / wall:7.1f} tok/s {n / wall:6.2f} req/s  client cpu {1000 * cpu / n:6.2f} ms/req",
                flush=True,
            )
    out = {"requests": n, "max_tokens": max_tokens, "concurrency": concurrency, "rounds": rounds}
    for c in contenders:
        out[c] = {
            "tok_per_s": round(statistics.median(t / w for w, t, _ in samples[c]), 2),
            "req_per_s": round(statistics.median(n / w for w, _, _ in samples[c]), 3),
            "client_cpu_ms_per_req": round(statistics.median(1000 * cpu / n for _, _, cpu in samples[c]), 2),
            "tokens": samples[c][0][1],
            "walls_s": [round(w, 2) for w, _, _ in samples[c]],
        }
    out["runner_vs_openai"] = round(out["runner"]["tok_per_s"] / out["openai"]["tok_per_s"], 3)
    out["runner_vs_httpx"] = round(out["runner"]["tok_per_s"] / out["httpx"]["tok_per_s"], 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp server threads")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "loadavg_start": os.getloadavg(),
        "server_threads": args.threads,
        "settings": [],
    }
    with LlamaServer(n_threads=args.threads) as server, tempfile.TemporaryDirectory() as tmp:
        for max_tokens in (args.max_tokens, 1):
            results["settings"].append(
                bench_setting(server, args.requests, max_tokens, args.concurrency, args.rounds, Path(tmp))
            )
    results["loadavg_end"] = os.getloadavg()
    for s in results["settings"]:
        print(
            f"max_tokens={s['max_tokens']:>3}: runner {s['runner']['tok_per_s']:.1f} tok/s "
            f"({s['runner']['req_per_s']:.2f} req/s), openai {s['openai']['tok_per_s']:.1f}, "
            f"httpx {s['httpx']['tok_per_s']:.1f}; runner/openai {s['runner_vs_openai']:.3f}, "
            f"runner/httpx {s['runner_vs_httpx']:.3f}; client cpu ms/req: runner "
            f"{s['runner']['client_cpu_ms_per_req']}, openai {s['openai']['client_cpu_ms_per_req']}, "
            f"httpx {s['httpx']['client_cpu_ms_per_req']}"
        )
    print(f"load average start {results['loadavg_start']}, end {results['loadavg_end']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
