"""Where the trainer's train and eval records go: metrics.jsonl, read by the report and the ablations, and
TensorBoard when it is installed."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

log = logging.getLogger(__name__)


class MetricsLog:
    """metrics.jsonl (appended across resumes; readers keep the last record per step) + TensorBoard if
    present."""

    def __init__(self, out_dir: Path, enabled: bool):
        self.enabled = enabled
        self.path = out_dir / "metrics.jsonl"
        self.tb = None
        if enabled:
            out_dir.mkdir(parents=True, exist_ok=True)
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out_dir / "tensorboard"))
            except ImportError:
                log.info("tensorboard not installed: metrics go to %s only", self.path)

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.tb is not None:
            tag = f"{record['kind']}/{record['source']}" if "source" in record else record["kind"]
            for key in ("loss", "lr", "grad_norm", "tokens_per_s", "mfu"):
                if record.get(key) is not None:
                    self.tb.add_scalar(f"{tag}/{key}", record[key], record["global_step"])
            self.tb.flush()


@dataclass
class LogWindow:
    """The steps since the last train log: their summed loss (kept on the device, read once per log), the
    time they took and how much of it was spent waiting for data."""

    loss_sum: torch.Tensor
    start: float = field(default_factory=time.perf_counter)
    steps: int = 0
    data_wait: float = 0.0

    def reset(self) -> None:
        self.loss_sum.zero_()
        self.start, self.steps, self.data_wait = time.perf_counter(), 0, 0.0
