"""The trainer's CUDA paths end to end: a two-phase run (phase 1 -> phase 2 on one WSD schedule) under
torchrun, FSDP2 with one rank, bf16 autocast, killed twice with SIGKILL (mid phase 1 between checkpoints,
then mid phase 2) and resumed, against the same run uninterrupted.

It runs exactly the CLI an engineer runs (`torchrun --nproc_per_node=1 -m training run CONFIG`) on a mixture
build (`python -m training mixture build` output) and writes, as JSON: both loss curves, the largest
difference between them, the held-out evals, what the trainer logged about its device and precision, and the
wall time of each launch. On CUDA the curves need not be bit-identical (cuBLAS/SDPA kernels may pick other
algorithms after a restart); the report says how close they are. On CPU (a smoke check of this script)
they are identical.

    python bench/gpu_resume.py --mixture .gpu/mixture --out out/bench/gpu_resume.json
    python bench/gpu_resume.py --mixture M --device cpu --steps 6 3            # CPU smoke check
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.report import read_metrics  # noqa: E402 -- after the sys.path line (plain script, no install)


def launch(config: Path, *extra: str) -> tuple[subprocess.CompletedProcess, float]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]
    cmd += ["-m", "training", "run", str(config), *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=dict(os.environ))
    return proc, time.perf_counter() - t0


def curve(out_dir: Path) -> list[tuple[str, int, float]]:
    records = read_metrics(out_dir / "metrics.jsonl")
    return [(r["phase"], r["global_step"], r["loss"]) for r in records if r["kind"] == "train"]


def run_config(args, out_dir: Path) -> dict:
    n1, n2 = args.steps
    return {
        "mixture": str(args.mixture.resolve()),
        "out_dir": str(out_dir),
        "preset": args.preset,
        "seq_len": args.seq_len,
        "global_batch_tokens": args.seq_len * 16,
        "micro_batch": 8,
        "optimizer": {"lr": 3.0e-3, "betas": [0.9, 0.95], "weight_decay": 0.1},
        "schedule": {
            "warmup_steps": 5,
            "decay_start": "phase2",
            "decay_shape": "1-sqrt",
            "min_lr_ratio": 0.1,
        },
        "precision": "auto",  # bf16 autocast on CUDA
        "compile": args.compile,
        "parallel": "fsdp",
        "device": args.device,
        "log_every": 1,
        "eval_every": n1,
        "eval_tokens": 8192,
        "checkpoint_every": 4,
        "keep_checkpoints": 2,
        "seed": 0,
        "phases": {"phase1": {"steps": n1}, "phase2": {"steps": n2}},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mixture", type=Path, required=True, help="a two-phase mixture build")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--seq-len", type=int, default=64, help="must equal the mixture's seq_len")
    ap.add_argument("--steps", type=int, nargs=2, default=[24, 12], metavar=("PHASE1", "PHASE2"))
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    n1, _ = args.steps
    work = Path(tempfile.mkdtemp(prefix="gpu-resume-"))
    result: dict = {"device": args.device, "steps": args.steps, "launches": []}

    def record(name: str, proc: subprocess.CompletedProcess, wall: float) -> None:
        text = proc.stdout + proc.stderr
        entry = {"name": name, "rc": proc.returncode, "wall_s": round(wall, 1), "tail": text[-1500:]}
        # what the trainer said about itself (device, precision, wrapping, parameters)
        entry["trainer_lines"] = [ln for ln in text.splitlines() if "training.trainer:" in ln][:4]
        result["launches"].append(entry)
        print(f"{name}: rc={proc.returncode} in {wall:.1f}s", flush=True)

    paths = {}
    for name in ("straight", "killed"):
        paths[name] = work / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(run_config(args, work / name)))
    record("straight", *launch(paths["straight"]))
    for kill_at in (n1 // 2 + 1, n1 + 3):  # between checkpoints in phase 1, then in phase 2
        proc, wall = launch(paths["killed"], "--fail-at-step", str(kill_at))
        record(f"killed-at-{kill_at}", proc, wall)
        # the kill came after step kill_at was logged and before its checkpoint
        result["launches"][-1]["last_logged_step"] = max((s for _, s, _ in curve(work / "killed")), default=0)
    record("resumed", *launch(paths["killed"]))

    ok = [launch_["rc"] for launch_ in result["launches"]]
    straight, resumed = curve(work / "straight"), curve(work / "killed")
    same_steps = [s for _, s, _ in straight] == [s for _, s, _ in resumed]
    diffs = [abs(a[2] - b[2]) for a, b in zip(straight, resumed)]
    result.update(
        rcs=ok,
        kills_failed_the_launch=all(rc != 0 for rc in ok[1:3]),  # torchrun reports its killed worker
        same_steps=same_steps,
        bit_identical=same_steps and straight == resumed,
        max_abs_loss_diff=max(diffs) if diffs else None,
        loss_first=straight[0][2] if straight else None,
        loss_last=straight[-1][2] if straight else None,
        straight_curve=straight,
        resumed_curve=resumed,
        evals=[r for r in read_metrics(work / "straight" / "metrics.jsonl") if r["kind"] == "eval"]
        if (work / "straight" / "metrics.jsonl").is_file()
        else [],
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(
        f"steps equal: {same_steps}; bit-identical: {result['bit_identical']}; "
        f"max |loss diff|: {result['max_abs_loss_diff']};"
        f" loss {result['loss_first']} -> {result['loss_last']}"
    )
    return 0 if ok[0] == 0 and ok[-1] == 0 and same_steps else 1


if __name__ == "__main__":
    sys.exit(main())
