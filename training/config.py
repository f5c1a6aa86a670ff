"""The run config: one pydantic schema (extra="forbid"), loaded from YAML. Paths are relative to the working
directory the command runs in."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from training.model import PRESETS

PHASES = ("phase1", "phase2")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OptimizerConfig(Strict):
    lr: float = Field(3e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = Field(1e-8, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    fused: bool | None = None  # None: fused on CUDA, foreach elsewhere


class ScheduleConfig(Strict):
    """WSD: linear warmup -> constant (stable) -> decay to min_lr_ratio * lr, one schedule across both phases.
    decay_start: "auto" starts the decay `decay_fraction` of the total steps before the end, "phase2" at the
    first phase-2 step, an integer at that global step. The decay always runs to the last step."""

    warmup_steps: int = Field(100, ge=0)
    decay_start: Literal["auto", "phase2"] | int = "auto"
    decay_fraction: float = Field(0.2, ge=0, le=1)
    decay_shape: Literal["linear", "cosine", "1-sqrt"] = "1-sqrt"
    min_lr_ratio: float = Field(0.0, ge=0, le=1)


class PhaseConfig(Strict):
    steps: int | None = Field(None, gt=0)
    tokens: int | None = Field(None, gt=0)  # converted to steps: ceil(tokens / global_batch_tokens)

    @model_validator(mode="after")
    def _one_length(self):
        if (self.steps is None) == (self.tokens is None):
            raise ValueError("give exactly one of steps or tokens")
        return self


class RunConfig(Strict):
    mixture: Path  # the mixture build folder (holds manifest.json)
    out_dir: Path  # checkpoints/, metrics.jsonl, report.png
    preset: Literal[tuple(PRESETS)]  # type: ignore[valid-type]
    seq_len: int = Field(2048, gt=0)
    global_batch_tokens: int = Field(gt=0)
    micro_batch: int = Field(gt=0)  # sequences per rank per forward/backward
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    grad_clip: float | None = Field(1.0, gt=0)
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    compile: bool = False
    parallel: Literal["ddp", "fsdp"] = "ddp"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    attn_implementation: Literal["sdpa_causal", "sdpa", "eager"] = "sdpa_causal"  # see training/model.py
    log_every: int = Field(10, gt=0)
    eval_every: int = Field(200, gt=0)
    eval_tokens: int = Field(1 << 18, gt=0)  # per held-out source, per eval
    checkpoint_every: int = Field(1000, gt=0)
    keep_checkpoints: int = Field(2, gt=0)
    prefetch: int = Field(4, gt=0)  # batches the background loader keeps ready
    peak_tflops: float | None = None  # per device, for MFU; None: 989 (H100/H200 dense bf16) on CUDA
    seed: int = 0
    # A phase may ask more tokens than the mixture built only with this set, and then only up to its sources'
    # max_epochs (training/budget.py); otherwise the trainer refuses before step 0.
    allow_repetition: bool = False
    phases: dict[Literal["phase1", "phase2"], PhaseConfig]

    @model_validator(mode="after")
    def _check(self):
        if self.global_batch_tokens % self.seq_len:
            raise ValueError(
                f"global_batch_tokens={self.global_batch_tokens} is not a multiple of seq_len={self.seq_len}"
            )
        if self.checkpoint_every % self.log_every:
            # a resumed run must average the same steps into each logged loss as an uninterrupted one
            raise ValueError(
                f"checkpoint_every={self.checkpoint_every} must be a multiple of log_every={self.log_every}"
            )
        if "phase1" not in self.phases:
            raise ValueError("phases must include phase1 (phase 2 continues from its final checkpoint)")
        return self

    @property
    def global_batch_seqs(self) -> int:
        return self.global_batch_tokens // self.seq_len

    def phase_steps(self, phase: str) -> int:
        p = self.phases.get(phase)
        if p is None:
            return 0
        return p.steps if p.steps is not None else -(-p.tokens // self.global_batch_tokens)

    def grad_accum(self, world_size: int) -> int:
        per_step = self.micro_batch * world_size
        if self.global_batch_seqs % per_step:
            raise ValueError(
                f"global batch of {self.global_batch_seqs} sequences (global_batch_tokens / seq_len) "
                f"is not divisible by micro_batch={self.micro_batch} x world_size={world_size}"
            )
        return self.global_batch_seqs // per_step


def load_config(path: str | Path, overrides: dict | None = None) -> RunConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"run config {path} not found") from None
    except yaml.YAMLError as e:
        raise ValueError(f"run config {path}: invalid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"run config {path}: expected a mapping at the top level, got {type(data).__name__}")
    data.update(overrides or {})
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in err['loc']) or '<root>'}: {err['msg']} "
            f"(got {_short(err.get('input'))})"
            for err in e.errors()
        )
        raise ValueError(f"run config {path}: {problems}") from None


def _short(value, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
