"""Trainer throughput on one GPU: tokens/s, MFU and GPU-busy fraction for the 125m and 350m presets at
seq 2048.

It drives the real trainer (training.trainer.Trainer: its model, wrapping, optimizer, train_step and
background loader over memory-mapped shards), compiled with our mask-free causal SDPA and, as the same-card
baseline, compiled with transformers' own "sdpa" attention (optionally eager too), and reports:
  tokens/s      timed steps, one device sync at each end of the window (none per step)
  MFU           tokens/s * (6N + 12*L*d*T) / 989e12 (H100/H200 dense bf16); N = all parameters, the
                convention of the issue's reference figures; `mfu_strict` leaves the input embedding
                (a lookup) out of N
  gpu_busy      union of CUDA kernel intervals / wall time over a profiled window (torch.profiler)
  data_wait     share of wall time the loop waited on the loader
Designed to fit one ~8-minute run on an H100/H200:

    python bench/train_gpu.py --out out/bench/train_gpu.json
    python bench/train_gpu.py --mixture out/mixtures/main           # a real mixture build instead

Without --mixture it packs real text into a one-phase build first: the Dolma CC sample under $PHI_SHARED_DATA
if present, else this repository's own Markdown and Python files, tokenized with a byte-level BPE trained on
it; the manifest declares vocab_size 32000 so the model has the production vocabulary (throughput depends on
it, not on which ids occur). CPU smoke run (checks the script, measures nothing useful):

    python bench/train_gpu.py --device cpu --presets tiny --seq-len 128 --steps 2 --warmup 1 \
        --profile-steps 1 --modes eager --micro-batch 2 --accum 2
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# after the sys.path line above: the bench runs as a plain script on a bare GPU machine (no install)
from training.config import RunConfig  # noqa: E402
from training.model import flops_per_token  # noqa: E402
from training.shards import ShardWriter, token_dtype  # noqa: E402
from training.trainer import H100_BF16_DENSE_TFLOPS, DistEnv, Trainer  # noqa: E402

MODEL_VOCAB = 32000
DEFAULT_MICRO = {"tiny": 8, "125m": 16, "350m": 8, "1b": 4}


def real_texts() -> tuple[str, list[str]]:
    shared = Path(os.environ.get("PHI_SHARED_DATA", REPO.parent / "shared" / "data"))
    files = sorted((shared / "webtext_cc2019_dolma_sample").glob("*.jsonl.gz"))
    if files:
        texts = []
        for path in files:
            with gzip.open(path, "rt") as fh:
                texts += [json.loads(line)["text"] for line in fh]
        return f"Dolma CC sample ({len(texts)} docs)", texts
    paths = [
        p for p in REPO.rglob("*") if p.suffix in (".md", ".py") and ".venv" not in p.parts and p.is_file()
    ]
    texts = [p.read_text(errors="replace") for p in sorted(paths)]
    return f"repository .md/.py files ({len(texts)} files)", texts


def build_bench_mixture(root: Path) -> str:
    """One-phase build in the DEVELOPERS.md format from real text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    what, texts = real_texts()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=MODEL_VOCAB,
            special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    (root / "tokenizer").mkdir(parents=True)
    tok.save(str(root / "tokenizer" / "tokenizer.json"))
    eos, dtype = tok.token_to_id("<|endoftext|>"), token_dtype(MODEL_VOCAB)
    writer = ShardWriter(root / "phase1", dtype)
    for enc in tok.encode_batch(texts):
        writer.add_document(np.array(enc.ids + [eos], dtype=dtype))
    shards = [s.to_dict() for s in writer.close()]
    tokens = sum(s["tokens"] for s in shards)
    manifest = {
        "name": "bench",
        "seed": 0,
        "seq_len": 2048,
        "dtype": dtype.name,
        "tokenizer": {"path": "tokenizer", "vocab_size": MODEL_VOCAB, "eos_id": eos, "hash": ""},
        "mixture_yaml": "",
        "phases": [
            {
                "name": "phase1",
                "dir": "phase1",
                "tokens": tokens,
                "shards": shards,
                "sources": [],
                "heldout": {},
            }
        ],
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return f"{what}, {tokens:,} tokens"


def busy_fraction(prof, wall_s: float) -> float | None:
    """Union of CUDA kernel intervals over the profiled wall time."""
    from torch.autograd import DeviceType

    spans = sorted(
        (e.time_range.start, e.time_range.end) for e in prof.events() if e.device_type == DeviceType.CUDA
    )
    if not spans:
        return None
    busy, (cur_start, cur_end) = 0.0, spans[0]
    for start, end in spans[1:]:
        if start > cur_end:
            busy += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    busy += cur_end - cur_start
    return busy / 1e6 / wall_s


def loader_throughput(mixture: Path, seq_len: int, batch: int, steps: int) -> float:
    """Tokens/s the loader alone delivers (gather from the memory-mapped shards + int64 + pinning on CUDA),
    consumed as fast as it can produce: the ceiling it puts on training throughput."""
    from training.data import TrainLoader, Windows, read_mixture

    build = read_mixture(mixture)
    windows = Windows(build.train["phase1"], build.dtype, seq_len)
    loader = TrainLoader(
        windows,
        seed=0,
        global_batch=batch,
        micro_batch=batch,
        rank=0,
        world_size=1,
        pin_memory=torch.cuda.is_available(),
    )
    loader.next()
    t0 = time.perf_counter()
    for _ in range(steps):
        loader.next()
    elapsed = time.perf_counter() - t0
    loader.close()
    return steps * batch * seq_len / elapsed


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


MODES = {  # name -> (torch.compile, attention implementation)
    "compiled": (True, "sdpa_causal"),
    "eager": (False, "sdpa_causal"),
    # the same-card baseline: transformers' own SDPA attention (it builds a mask under compile on torch 2.13)
    "compiled-hf-sdpa": (True, "sdpa"),
}


def bench_one(args, mixture: Path, preset: str, mode: str, device: torch.device) -> dict:
    micro = args.micro_batch or DEFAULT_MICRO.get(preset, 4)
    compile_, attn = MODES[mode]
    cfg = RunConfig(
        mixture=mixture,
        out_dir=Path(tempfile.mkdtemp(prefix="bench-train-")),
        preset=preset,
        seq_len=args.seq_len,
        global_batch_tokens=micro * args.accum * args.seq_len,
        micro_batch=micro,
        compile=compile_,
        attn_implementation=attn,
        device=device.type,
        log_every=10**9,
        eval_every=10**9,
        checkpoint_every=10**9,
        phases={"phase1": {"steps": args.warmup + args.steps + args.profile_steps}},
        # the sample build holds a few million tokens: a throughput bench may read it more than once
        allow_repetition=True,
        schedule={"warmup_steps": 0},  # the timed loop passes a constant LR; the schedule need only be valid
    )
    trainer = Trainer(cfg, DistEnv(0, 1, 0, device))
    loader = trainer.make_loader("phase1")
    lr = cfg.optimizer.lr
    tokens_per_step = cfg.global_batch_tokens

    def steps(n: int) -> tuple[float, float, torch.Tensor]:
        wait, loss = 0.0, torch.zeros((), device=device)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(n):
            t = time.perf_counter()
            batch = loader.next().to(device, non_blocking=True)
            wait += time.perf_counter() - t
            step_loss, _ = trainer.train_step(batch, lr)
            loss = step_loss
        sync(device)
        return time.perf_counter() - t0, wait, loss

    t_compile, _, first_loss = steps(args.warmup)  # compile + autotune + allocator warm-up
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    wall, wait, last_loss = steps(args.steps)
    tps = args.steps * tokens_per_step / wall
    busy = None
    if args.profile_steps:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CUDA] if device.type == "cuda" else [ProfilerActivity.CPU]
        try:
            with profile(activities=activities) as prof:
                p_wall, _, _ = steps(args.profile_steps)
            busy = busy_fraction(prof, p_wall) if device.type == "cuda" else None
            if args.profile_table:  # where the time goes: the top kernels/ops of the profiled steps
                sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
                with args.profile_table.open("a") as fh:
                    fh.write(f"\n## {preset} {mode}: {args.profile_steps} steps, {p_wall:.2f} s wall\n")
                    fh.write(prof.key_averages().table(sort_by=sort, row_limit=25, max_name_column_width=70))
        except Exception as e:  # noqa: BLE001 -- the throughput figures above stand without the profile
            logging.getLogger("bench").warning("GPU-busy profile failed: %r", e)
    loader.close()
    strict = flops_per_token(trainer.model_config, cfg.seq_len, include_embedding=False)
    peak = H100_BF16_DENSE_TFLOPS * 1e12
    result = {
        "preset": preset,
        "mode": mode,
        "params_M": round(trainer.n_params / 1e6, 1),
        "seq_len": cfg.seq_len,
        "micro_batch": micro,
        "grad_accum": args.accum,
        "tokens_per_step": tokens_per_step,
        "warmup_s": round(t_compile, 1),
        "timed_steps": args.steps,
        "tokens_per_s": round(tps),
        "mfu": round(tps * trainer.flops_per_token / peak, 4),
        "mfu_strict": round(tps * strict / peak, 4),
        "gpu_busy": None if busy is None else round(busy, 4),
        "data_wait_frac": round(wait / wall, 5),
        "loss_first": round(first_loss.item(), 3),
        "loss_last": round(last_loss.item(), 3),
        "peak_mem_GiB": round(torch.cuda.max_memory_allocated(device) / 2**30, 1)
        if device.type == "cuda"
        else None,
    }
    return result


def free_memory(device: torch.device) -> None:
    """Between configurations: drop the last trainer's graphs and cached blocks."""
    gc.collect()
    torch._dynamo.reset()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def write_results(args, card: str, data: str, loader_tps: float, results: list[dict]) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "card": card,
                "torch": torch.__version__,
                "data": data,
                "loader_tokens_per_s": round(loader_tps),
                "args": {k: str(v) for k, v in vars(args).items()},
                "results": results,
            },
            indent=1,
        )
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["125m", "350m"])
    ap.add_argument(
        "--modes",
        nargs="+",
        choices=list(MODES),
        default=["compiled", "compiled-hf-sdpa"],
        help="add `eager` for the uncompiled figure (fits the 8 minutes only with fewer presets)",
    )
    ap.add_argument(
        "--mixture", type=Path, help="a mixture build (default: pack real text into a temp build)"
    )
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--micro-batch", type=int, help="default per preset: " + str(DEFAULT_MICRO))
    ap.add_argument("--accum", type=int, default=4, help="micro-batches per optimizer step")
    ap.add_argument("--warmup", type=int, default=4, help="untimed steps (compilation)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--profile-steps", type=int, default=5, help="steps under torch.profiler for GPU-busy")
    ap.add_argument(
        "--profile-table", type=Path, help="append each profiled window's top-25 ops table to this file"
    )
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    ap.add_argument("--loader-only", action="store_true", help="measure the data loader alone (runs on CPU)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    device = torch.device(args.device)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"# bench/train_gpu.py on {card}, torch {torch.__version__},"
        f" {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )

    with tempfile.TemporaryDirectory(prefix="bench-mixture-") as tmp:
        mixture, data = args.mixture, f"mixture build {args.mixture}"
        if mixture is None:
            mixture = Path(tmp)
            t = time.perf_counter()
            data = build_bench_mixture(mixture)
            print(f"# data: {data} (packed in {time.perf_counter() - t:.0f}s)")
        lt = loader_throughput(mixture, args.seq_len, batch=64, steps=20)
        print(f"# loader alone: {lt:,.0f} tokens/s (64 x {args.seq_len} batches, one background thread)")
        if args.loader_only:
            return 0
        results = []
        for preset in args.presets:
            for mode in args.modes:
                r = bench_one(args, mixture, preset, mode, device)
                free_memory(device)
                results.append(r)
                print(json.dumps(r), flush=True)
                if args.out:  # after each configuration: a run cut short by its time limit keeps its figures
                    write_results(args, card, data, lt, results)

    print(
        "\n| preset | params | mode | micro x accum | tokens/s | MFU (6N+attn) | MFU strict | GPU busy"
        " | data wait | peak mem |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        busy = "n/a" if r["gpu_busy"] is None else f"{r['gpu_busy']:.1%}"
        print(
            f"| {r['preset']} | {r['params_M']}M | {r['mode']} | "
            f"{r['micro_batch']} x {r['grad_accum']} | {r['tokens_per_s']:,} | {r['mfu']:.1%} | "
            f"{r['mfu_strict']:.1%} | {busy} | {r['data_wait_frac']:.2%} | {r['peak_mem_GiB']} GiB |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
