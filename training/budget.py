"""Token budgets honoured: a run may not read more of a phase than the mixture built for it.

`training/data.py` wraps into a new epoch of a phase's windows when they run out, silently repeating every
source of the phase. The mixture already decided each source's repetition (`epochs`, capped by its
`max_epochs`), so a run asking more tokens than the build holds would break that cap unnoticed. The trainer
calls `check_budgets` before step 0; a run config may opt in to repetition (`allow_repetition: true`), and
even then only up to the factor the tightest source's cap leaves (`max_epochs / epochs` in the manifest).
"""

from __future__ import annotations

from dataclasses import dataclass

from training.config import RunConfig
from training.data import MixtureBuild


@dataclass
class PhaseBudget:
    phase: str
    asked: int  # steps x global_batch_tokens
    steps: int
    built: int  # training tokens the mixture wrote for the phase (manifest `tokens`)
    served: int  # tokens one pass of the loader's windows serves (seq_len per window)
    max_repeat: float  # passes the mixture's max_epochs allow: min over sources of max_epochs / epochs
    tightest: str  # the source that sets max_repeat

    @property
    def passes(self) -> float:
        return self.asked / self.served if self.served else float("inf")


def _served_tokens(tokens: list[int], seq_len: int) -> int:
    """What the loader reads without wrapping: per shard, (tokens - 1) // seq_len windows of seq_len."""
    return sum(max(0, (t - 1) // seq_len) for t in tokens) * seq_len


def phase_budget(cfg: RunConfig, mixture: MixtureBuild, phase: str) -> PhaseBudget:
    entry = next(p for p in mixture.manifest["phases"] if p["name"] == phase)
    steps = cfg.phase_steps(phase)
    repeat, tightest = float("inf"), "-"
    for s in entry.get("sources", []):
        epochs, cap = float(s.get("epochs") or 0), float(s.get("max_epochs", 1.0))
        if epochs > 0 and cap / epochs < repeat:
            repeat, tightest = cap / epochs, s["name"]
    return PhaseBudget(
        phase,
        steps * cfg.global_batch_tokens,
        steps,
        int(entry.get("tokens", 0)),
        _served_tokens(mixture.train[phase].tokens, cfg.seq_len),
        repeat,
        tightest,
    )


def budget_problems(cfg: RunConfig, mixture: MixtureBuild) -> list[str]:
    """One message per phase that asks more than the build allows, naming both numbers."""
    out = []
    for phase in cfg.phases:
        b = phase_budget(cfg, mixture, phase)
        if b.asked <= b.served:
            continue
        head = (
            f"phases.{phase}: {b.steps:,} steps x {cfg.global_batch_tokens:,} tokens/step"
            f" = {b.asked:,} tokens,"
            f" but mixture {cfg.mixture} built {b.built:,} training tokens for {phase} ({b.served:,} in"
            f" windows of seq_len {cfg.seq_len})"
        )
        if not cfg.allow_repetition:
            out.append(
                f"{head}; the run would repeat the phase {b.passes:.2f}x. Lower the steps/tokens, build a"
                f" bigger mixture, or set allow_repetition: true (allowed up to the sources' max_epochs)"
            )
        elif b.passes > b.max_repeat + 1e-9:
            out.append(
                f"{head}; allow_repetition permits {b.max_repeat:.2f} passes (source {b.tightest!r} is"
                f" built at its max_epochs share), the run needs {b.passes:.2f}"
            )
    return out


def check_budgets(cfg: RunConfig, mixture: MixtureBuild) -> None:
    problems = budget_problems(cfg, mixture)
    if problems:
        raise ValueError("run exceeds the mixture's token budget:\n  " + "\n  ".join(problems))
