"""Checkpoints: torch.distributed.checkpoint (DCP) for model + optimizer, so DDP, FSDP2 and single-process
runs share one format and a run may resume on a different number of ranks; trainer.json (step, schedule,
data-loader state) from rank 0; one RNG file per rank.

Atomic: every rank writes into `step-NNNNNNNN.tmp/`, and only after all ranks are done does rank 0 rename it
to `step-NNNNNNNN/` (a directory rename is atomic on POSIX). A killed job leaves at most a `.tmp` folder,
which is never read and is removed by the next save. The last `keep` checkpoints of each phase are kept.
"""

from __future__ import annotations

import json
import logging
import random
import re
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

log = logging.getLogger(__name__)

META = "trainer.json"


def _rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


@contextmanager
def _quiet_single_process():
    """DCP warns on every call without a process group; a single-process run is intended here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


def step_dir(phase_dir: Path, step: int) -> Path:
    return phase_dir / f"step-{step:08d}"


def list_checkpoints(phase_dir: Path) -> list[Path]:
    """Complete checkpoints of a phase, oldest first (a `.tmp` folder is an interrupted save)."""
    if not phase_dir.is_dir():
        return []
    done = [
        p
        for p in phase_dir.glob("step-*")
        if p.is_dir() and re.fullmatch(r"step-\d+", p.name) and (p / META).is_file()
    ]
    return sorted(done, key=lambda p: int(p.name.split("-")[1]))


def latest_checkpoint(phase_dir: Path) -> Path | None:
    found = list_checkpoints(phase_dir)
    return found[-1] if found else None


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(
    phase_dir: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    meta: dict,
    keep: int,
) -> Path:
    """Collective: every rank calls it. `step` names the checkpoint (the number of steps done in the
    phase)."""
    final = step_dir(phase_dir, step)
    tmp = final.with_name(final.name + ".tmp")
    if _rank() == 0:
        phase_dir.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
    _barrier()
    model_sd, optim_sd = get_state_dict(model, optimizer)
    with _quiet_single_process():
        dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=tmp, no_dist=not dist.is_initialized())
    torch.save(_rng_state(), tmp / f"rng-rank{_rank()}.pt")
    if _rank() == 0:
        (tmp / META).write_text(json.dumps(meta, indent=1))
    _barrier()  # every rank's files are in tmp before it becomes visible
    if _rank() == 0:
        stale = final.with_name(final.name + ".old")
        if final.exists():  # same step saved before (a rerun): swap, then delete
            final.rename(stale)
        tmp.rename(final)
        if stale.exists():
            shutil.rmtree(stale)
        for old in list_checkpoints(phase_dir)[:-keep]:
            shutil.rmtree(old)
        log.info("checkpoint %s", final)
    _barrier()
    return final


def load(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, restore_rng: bool = True
) -> dict:
    """Load model + optimizer in place (resharding if the world size changed) and return trainer.json."""
    meta_path = path / META
    if not meta_path.is_file():
        raise FileNotFoundError(f"checkpoint {path}: {META} missing (an incomplete checkpoint?)")
    meta = json.loads(meta_path.read_text())
    model_sd, optim_sd = get_state_dict(model, optimizer)
    state = {"model": model_sd, "optim": optim_sd}
    with _quiet_single_process():
        dcp.load(state, checkpoint_id=path, no_dist=not dist.is_initialized())
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    rng_file = path / f"rng-rank{_rank()}.pt"
    if restore_rng and rng_file.is_file():  # absent when resuming on more ranks than were saved
        _set_rng_state(torch.load(rng_file, weights_only=False))
    return meta
