"""The run report: loss curves of both phases (train loss and held-out loss per source) and the LR as a
PNG."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

PHASE_COLOURS = {"phase1": "tab:blue", "phase2": "tab:orange"}


def read_metrics(path: str | Path) -> list[dict]:
    """Records of metrics.jsonl; after a crash and resume, steps are logged again, so the last record of each
    (kind, phase, step, source) wins: that is the curve of the run that carried on."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"metrics file {path} not found")
    latest = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{lineno}: invalid JSON ({e})") from None
        latest[(rec["kind"], rec["phase"], rec["step"], rec.get("source"))] = rec
    return sorted(latest.values(), key=lambda r: (r["global_step"], r["kind"], r.get("source") or ""))


def write_report(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    records = read_metrics(out_dir / "metrics.jsonl")
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    fig, (ax_loss, ax_lr) = plt.subplots(2, 1, figsize=(9, 7), sharex=True, height_ratios=[3, 1])
    for phase, colour in PHASE_COLOURS.items():
        pts = [r for r in train if r["phase"] == phase]
        if pts:
            ax_loss.plot(
                [r["global_step"] for r in pts],
                [r["loss"] for r in pts],
                color=colour,
                lw=1.2,
                label=f"{phase} train",
            )
            ax_lr.plot([r["global_step"] for r in pts], [r["lr"] for r in pts], color=colour)
    eval_colours = ["tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"]
    for i, source in enumerate(sorted({r["source"] for r in evals})):
        pts = [r for r in evals if r["source"] == source]
        ax_loss.plot(
            [r["global_step"] for r in pts],
            [r["loss"] for r in pts],
            "o--",
            ms=3,
            lw=0.8,
            color=eval_colours[i % len(eval_colours)],
            label=f"held-out {source}",
        )
    boundary = [r["global_step"] for r in train if r["phase"] == "phase1"]
    if boundary and any(r["phase"] == "phase2" for r in train):
        for ax in (ax_loss, ax_lr):
            ax.axvline(max(boundary), color="grey", ls=":", lw=1)
    ax_loss.set_ylabel("loss (nats/token)")
    ax_loss.legend(fontsize=8)
    ax_loss.set_title(f"Training run {out_dir.name}: phase 1 -> phase 2 (WSD decay)")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("global step")
    fig.tight_layout()
    path = out_dir / "report.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
