"""WSD learning-rate schedule (warmup -> stable -> decay), one schedule spanning phase 1 and phase 2.

The LR is a pure function of the global step, so resuming needs only the step; the checkpointed state also
records the schedule's shape so a resume under a changed schedule fails loudly instead of silently bending
the curve.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from training.config import RunConfig


@dataclass(frozen=True)
class WSD:
    peak_lr: float
    warmup_steps: int
    decay_start: int  # first global step of the decay
    total_steps: int  # the decay reaches min_lr at the last step (total_steps - 1)
    shape: str = "1-sqrt"
    min_lr_ratio: float = 0.0

    def __post_init__(self):
        if not 0 <= self.warmup_steps <= self.decay_start <= self.total_steps:
            raise ValueError(
                f"WSD schedule needs 0 <= warmup_steps ({self.warmup_steps}) <= decay_start "
                f"({self.decay_start}) <= total_steps ({self.total_steps})"
            )

    def lr(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.peak_lr * (step + 1) / self.warmup_steps
        if step < self.decay_start:
            return self.peak_lr
        decay_steps = self.total_steps - self.decay_start
        progress = min(1.0, (step - self.decay_start + 1) / decay_steps)  # 1.0 exactly at the last step
        if self.shape == "linear":
            factor = 1.0 - progress
        elif self.shape == "cosine":
            factor = 0.5 * (1.0 + math.cos(math.pi * progress))
        elif self.shape == "1-sqrt":  # MiniCPM / Hägele et al.: holds LR longer, then drops
            factor = 1.0 - math.sqrt(progress)
        else:
            raise ValueError(f"schedule.decay_shape {self.shape!r} unknown")
        return self.peak_lr * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * factor)

    def state_dict(self) -> dict:
        return asdict(self)

    def check_matches(self, saved: dict) -> None:
        if saved != self.state_dict():
            raise ValueError(
                f"checkpoint was written under a different LR schedule: saved {saved}, "
                f"config now gives {self.state_dict()}"
            )


def wsd_from_config(cfg: RunConfig) -> WSD:
    phase1, phase2 = cfg.phase_steps("phase1"), cfg.phase_steps("phase2")
    total = phase1 + phase2
    s = cfg.schedule
    if s.decay_start == "phase2":
        if phase2 == 0:
            raise ValueError("schedule.decay_start is 'phase2' but the config has no phase2")
        decay_start = phase1
    elif s.decay_start == "auto":
        decay_start = total - round(s.decay_fraction * total)
    else:
        decay_start = s.decay_start
    if isinstance(s.decay_start, int) and decay_start >= total:
        raise ValueError(f"schedule.decay_start={decay_start} leaves no decay steps (total steps {total})")
    return WSD(
        peak_lr=cfg.optimizer.lr,
        warmup_steps=s.warmup_steps,
        decay_start=decay_start,
        total_steps=total,
        shape=s.decay_shape,
        min_lr_ratio=s.min_lr_ratio,
    )
