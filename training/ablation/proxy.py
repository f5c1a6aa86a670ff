"""Train one proxy (an arm's build, one seed) with the project's trainer, then score it on the suite."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from training.ablation.references import McItem
from training.config import RunConfig
from training.trainer import Trainer, init_distributed

log = logging.getLogger(__name__)

RESULT = "result.json"


def run_config(proxy, build: Path, out_dir: Path, steps: dict[str, int], seed: int) -> RunConfig:
    """A one-process run of the proxy preset: checkpoints and the trainer's own eval only at each phase's
    end."""
    longest = max(steps.values())
    every = -(-longest // proxy.log_every) * proxy.log_every
    return RunConfig.model_validate(
        {
            "mixture": str(build),
            "out_dir": str(out_dir),
            "preset": proxy.preset,
            "seq_len": proxy.seq_len,
            "global_batch_tokens": proxy.global_batch_tokens,
            "micro_batch": proxy.micro_batch,
            "optimizer": {"lr": proxy.lr},
            "schedule": {
                "warmup_steps": min(proxy.warmup_steps, max(0, sum(steps.values()) - 1)),
                "decay_start": "phase2" if "phase2" in steps else "auto",
                "min_lr_ratio": 0.1,
            },
            "compile": False,
            "device": proxy.device,
            "log_every": proxy.log_every,
            "eval_every": every,
            "eval_tokens": 4 * proxy.seq_len,
            "checkpoint_every": every,
            "keep_checkpoints": 1,
            "seed": seed,
            "phases": {p: {"steps": n} for p, n in steps.items()},
        }
    )


@torch.no_grad()
def reference_loss(lm, tokens: np.ndarray, seq_len: int, device, batch: int = 16) -> float:
    """Mean next-token loss over consecutive windows of seq_len + 1 tokens (stride seq_len)."""
    n = (len(tokens) - 1) // seq_len
    if n == 0:
        return float("nan")
    windows = np.stack([tokens[k * seq_len : k * seq_len + seq_len + 1] for k in range(n)])
    total, count = 0.0, 0
    for start in range(0, n, batch):
        x = torch.from_numpy(windows[start : start + batch]).to(device)
        logits = lm(input_ids=x[:, :-1]).logits.float()
        total += F.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten(), reduction="sum").item()
        count += x[:, 1:].numel()
    return total / count


@torch.no_grad()
def choice_accuracy(lm, items: list[McItem], seq_len: int, device) -> float:
    """Log-likelihood multiple choice: the choice whose tokens the model finds likeliest after the context
    (the context is cut from the left to fit seq_len). Right padding does not change a causal model's
    scores."""
    if not items:
        return float("nan")
    correct = 0
    for it in items:
        seqs = []
        for ch in it.choices:
            ch = ch[-(seq_len - 1) :]
            seqs.append((it.context + ch)[-seq_len:])
        lens = [len(s) for s in seqs]
        x = torch.zeros((len(seqs), max(lens)), dtype=torch.long)
        for r, s in enumerate(seqs):
            x[r, : len(s)] = torch.tensor(s)
        logp = torch.log_softmax(lm(input_ids=x.to(device)).logits.float(), dim=-1)
        scores = []
        for r, (s, ch) in enumerate(zip(seqs, it.choices)):
            k = min(len(ch), len(s) - 1)
            pos = torch.arange(len(s) - k - 1, len(s) - 1, device=device)
            scores.append(logp[r, pos, x[r, pos + 1].to(device)].sum().item())
        correct += int(np.argmax(scores) == it.answer)
    return correct / len(items)


def target_loss(losses: dict[str, float], target_sets: list[str]) -> float:
    """The study's target: the mean held-out loss over the reference sets large enough to count."""
    vals = [losses[k] for k in target_sets if k in losses and np.isfinite(losses[k])]
    return float(np.mean(vals)) if vals else float("nan")


def repetition(build: Path) -> dict[str, float]:
    """Per phase, the most epochs any source of the build repeats (from its manifest)."""
    m = json.loads((build / "manifest.json").read_text())
    return {p["name"]: max((s["epochs"] for s in p["sources"]), default=0.0) for p in m["phases"]}


def train_and_score(
    proxy,
    build: Path,
    out_dir: Path,
    steps: dict[str, int],
    seed: int,
    sets: dict[str, np.ndarray],
    items: list[McItem],
    extra: dict,
    target_sets: list[str],
) -> dict:
    """Resumable: a finished run (result.json) is read back, not redone (its target recomputed over
    `target_sets`); a crashed one resumes from the trainer's checkpoints."""
    done = out_dir / RESULT
    if done.is_file():
        result = json.loads(done.read_text())
        return result | {"mean_loss": target_loss(result["losses"], target_sets), "target_sets": target_sets}
    t0 = time.perf_counter()
    cfg = run_config(proxy, build, out_dir, steps, seed)
    trainer = Trainer(cfg, init_distributed(cfg.device))
    for phase in steps:
        trainer.run_phase(phase)
    from training.report import write_report

    write_report(out_dir)
    trainer.lm.eval()
    device = trainer.env.device
    losses = {name: reference_loss(trainer.lm, toks, cfg.seq_len, device) for name, toks in sets.items()}
    result = {
        **extra,
        "seed": seed,
        "losses": losses,
        "mean_loss": target_loss(losses, target_sets),
        "target_sets": target_sets,
        "epochs": repetition(build),
        "mmlu_acc": choice_accuracy(trainer.lm, items, cfg.seq_len, device),
        "mmlu_items": len(items),
        "tokens": {p: n * cfg.global_batch_tokens for p, n in steps.items()},
        "params": trainer.n_params,
        "seconds": time.perf_counter() - t0,
    }
    tmp = done.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(done)
    return result
