"""The training loop: phase 1 then phase 2 on one WSD schedule, single process or torchrun (DDP / FSDP2).

Hot path (GPU): bf16 autocast, SDPA attention, fused AdamW, optional torch.compile of model + loss, batches
prepared by a background thread in pinned memory and copied with non_blocking=True, and no host-device sync
per step: the loss is accumulated on the device and read only on log steps.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from training import checkpoint
from training.budget import check_budgets
from training.config import PHASES, RunConfig
from training.data import MixtureBuild, TrainLoader, Windows, eval_windows, read_mixture
from training.distributed import DistEnv, all_reduce_mean, init_distributed
from training.metrics_log import LogWindow, MetricsLog
from training.model import build_model, count_params, flops_per_token, phi3_config
from training.schedule import wsd_from_config

log = logging.getLogger(__name__)

H100_BF16_DENSE_TFLOPS = 989.0


# ---------------------------------------------------------------------------------------------- model + loss
class CausalLMLoss(torch.nn.Module):
    """Model and next-token loss in one module, so torch.compile fuses the fp32 upcast into the loss."""

    def __init__(self, lm: torch.nn.Module):
        super().__init__()
        self.lm = lm

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = self.lm(input_ids=inputs).logits
        return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())


# ---------------------------------------------------------------------------------------------- the trainer
class Trainer:
    def __init__(self, cfg: RunConfig, env: DistEnv, fail_at_step: int | None = None):
        self.cfg, self.env, self.fail_at_step = cfg, env, fail_at_step
        self.mixture: MixtureBuild = read_mixture(cfg.mixture)
        for phase in cfg.phases:
            if phase not in self.mixture.train:
                raise ValueError(
                    f"config phases.{phase}: mixture {cfg.mixture} has no phase {phase!r} "
                    f"(it has {sorted(self.mixture.train)})"
                )
        check_budgets(cfg, self.mixture)
        self.grad_accum = cfg.grad_accum(env.world_size)
        self.schedule = wsd_from_config(cfg)
        on_cuda = env.device.type == "cuda"
        self.bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and on_cuda)
        if on_cuda:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        torch.manual_seed(cfg.seed)  # identical init on every rank
        self.model_config = phi3_config(
            cfg.preset, self.mixture.vocab_size, cfg.seq_len, self.mixture.eos_id, cfg.attn_implementation
        )
        self.lm = build_model(self.model_config).to(env.device)
        self.n_params = count_params(self.lm)
        self.flops_per_token = flops_per_token(self.model_config, cfg.seq_len)
        self.train_module = self._parallelize()
        fused = cfg.optimizer.fused if cfg.optimizer.fused is not None else on_cuda
        self.optimizer = torch.optim.AdamW(
            self._param_groups(),
            lr=cfg.optimizer.lr,
            betas=cfg.optimizer.betas,
            eps=cfg.optimizer.eps,
            fused=fused,
            foreach=None if fused else True,
        )
        peak = cfg.peak_tflops or (H100_BF16_DENSE_TFLOPS if on_cuda else None)
        self.peak_flops = peak * 1e12 * env.world_size if peak else None
        self.metrics = MetricsLog(cfg.out_dir, env.is_main)
        self.eval_sets = self._eval_sets()
        if env.is_main:
            log.info(
                "model %s: %.1fM params, %.3g FLOPs/token; world %d, grad_accum %d, %s, %s%s",
                cfg.preset,
                self.n_params / 1e6,
                self.flops_per_token,
                env.world_size,
                self.grad_accum,
                cfg.parallel,
                "bf16" if self.bf16 else "fp32",
                ", compiled" if cfg.compile else "",
            )

    def _parallelize(self) -> torch.nn.Module:
        cfg, env = self.cfg, self.env
        if env.world_size > 1 and cfg.parallel == "fsdp":
            from torch.distributed.device_mesh import init_device_mesh
            from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

            mesh = init_device_mesh(env.device.type, (env.world_size,))
            mp = (
                MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
                if self.bf16
                else MixedPrecisionPolicy()
            )
            for layer in self.lm.model.layers:  # one all-gather / reduce-scatter unit per decoder block
                if cfg.compile:  # compile per block, inside FSDP's hooks (as torchtitan does)
                    layer.compile()
                fully_shard(layer, mesh=mesh, mp_policy=mp)
            fully_shard(self.lm, mesh=mesh, mp_policy=mp)
            return CausalLMLoss(self.lm)
        elif env.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            module = DDP(
                CausalLMLoss(self.lm), device_ids=[env.local_rank] if env.device.type == "cuda" else None
            )
        else:
            module = CausalLMLoss(self.lm)
        return torch.compile(module) if cfg.compile else module

    def _param_groups(self) -> list[dict]:
        # no weight decay on norm gains (1-D) or the input embedding (OLMo 2 practice): decay only shrinks
        # them
        decay, no_decay = [], []
        for name, p in self.lm.named_parameters():
            (no_decay if p.ndim < 2 or "embed_tokens" in name else decay).append(p)
        return [
            {"params": decay, "weight_decay": self.cfg.optimizer.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]

    def _eval_sets(self) -> dict[str, tuple[Windows, np.ndarray]]:
        sets = {}
        for phase in self.cfg.phases:
            for source, files in self.mixture.heldout.get(phase, {}).items():
                name = f"{phase}/{source}"
                try:
                    windows = Windows(files, self.mixture.dtype, self.cfg.seq_len)
                except ValueError as e:
                    log.warning("held-out source %s skipped: %s", name, e)
                    continue
                ids = eval_windows(windows, self.cfg.eval_tokens, self.env.rank, self.env.world_size)
                if len(ids) == 0:
                    log.warning("held-out source %s skipped: fewer windows than ranks", name)
                    continue
                sets[name] = (windows, ids)
        return sets

    def _autocast(self):
        if self.bf16:
            return torch.autocast(self.env.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _no_grad_sync(self, last_micro: bool):
        """Gradients are all-reduced only on the last micro-batch of a step."""
        if self.env.world_size == 1:
            return contextlib.nullcontext()
        if self.cfg.parallel == "fsdp":
            self.lm.set_requires_gradient_sync(last_micro)
            return contextlib.nullcontext()
        ddp = getattr(self.train_module, "_orig_mod", self.train_module)
        return contextlib.nullcontext() if last_micro else ddp.no_sync()

    # ------------------------------------------------------------------------------------------ eval
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean token loss per held-out source (the same windows every time; ranks split them evenly)."""
        self.lm.eval()
        eager = CausalLMLoss(self.lm)  # no recompiles for the eval batch shapes
        results = {}
        for name, (windows, ids) in self.eval_sets.items():
            total = torch.zeros(2, device=self.env.device, dtype=torch.float64)  # loss * tokens, tokens
            for chunk in np.array_split(ids, max(1, -(-len(ids) // self.cfg.micro_batch))):
                batch = torch.from_numpy(windows.gather(chunk)).to(self.env.device)
                with self._autocast():
                    loss = eager(batch[:, :-1], batch[:, 1:])
                n = batch[:, 1:].numel()
                total += torch.stack(
                    [loss.double() * n, torch.tensor(float(n), device=self.env.device, dtype=torch.float64)]
                )
            if dist.is_initialized():
                dist.all_reduce(total)
            results[name] = (total[0] / total[1]).item()
        self.lm.train()
        return results

    # ------------------------------------------------------------------------------------------ phases
    def _start_phase(self, phase: str, loader: TrainLoader) -> int:
        """Restore state; returns the number of steps of this phase already done."""
        phase_dir = self.cfg.out_dir / "checkpoints" / phase
        latest = checkpoint.latest_checkpoint(phase_dir)
        if latest is not None:
            meta = checkpoint.load(latest, self.lm, self.optimizer)
            self.schedule.check_matches(meta["schedule"])
            loader.load_state_dict(meta["loader"])
            log.info("%s: resumed from %s (step %d)", phase, latest, meta["phase_step"])
            return int(meta["phase_step"])
        if phase == "phase2":
            prev = checkpoint.latest_checkpoint(self.cfg.out_dir / "checkpoints" / "phase1")
            need = self.cfg.phase_steps("phase1")
            if prev is None:
                raise FileNotFoundError(
                    f"phase2 starts from phase 1's final checkpoint, but "
                    f"{self.cfg.out_dir / 'checkpoints' / 'phase1'} has none; run phase1 first"
                )
            meta = checkpoint.load(prev, self.lm, self.optimizer)
            if meta["phase"] != "phase1" or meta["phase_step"] != need:
                raise ValueError(
                    f"phase 1 is not finished: its latest checkpoint {prev} is at step "
                    f"{meta['phase_step']} of {need}; run phase1 to the end first"
                )
            self.schedule.check_matches(meta["schedule"])
            log.info("phase2: starting from phase 1's final checkpoint %s", prev)
        return 0

    def make_loader(self, phase: str) -> TrainLoader:
        cfg, env = self.cfg, self.env
        windows = Windows(self.mixture.train[phase], self.mixture.dtype, cfg.seq_len)
        return TrainLoader(
            windows,
            seed=cfg.seed + PHASES.index(phase),
            global_batch=cfg.global_batch_seqs,
            micro_batch=cfg.micro_batch,
            rank=env.rank,
            world_size=env.world_size,
            prefetch=cfg.prefetch,
            pin_memory=env.device.type == "cuda",
        )

    def train_step(self, batch: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One optimizer step on this rank's (grad_accum, micro_batch, seq_len + 1) batch, already on the
        device. Returns the step's mean loss and the pre-clip gradient norm as device tensors (no host
        sync)."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        step_loss = torch.zeros((), device=self.env.device)
        for micro in range(self.grad_accum):
            last = micro == self.grad_accum - 1
            with self._no_grad_sync(last):
                with self._autocast():
                    loss = self.train_module(batch[micro, :, :-1], batch[micro, :, 1:]) / self.grad_accum
                loss.backward()
            step_loss += loss.detach()
        grad_norm = (
            torch.nn.utils.clip_grad_norm_(self.lm.parameters(), self.cfg.grad_clip, foreach=True)
            if self.cfg.grad_clip
            else None
        )
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return step_loss, grad_norm

    def run_phase(self, phase: str) -> None:
        cfg, env = self.cfg, self.env
        steps = cfg.phase_steps(phase)
        offset = cfg.phase_steps("phase1") if phase == "phase2" else 0  # the schedule is global
        loader = self.make_loader(phase)
        done = self._start_phase(phase, loader)
        if done >= steps:
            log.info("%s: already complete (%d steps)", phase, steps)
            return
        if done == 0 and phase == "phase1":
            self._log_eval(phase, 0, offset)  # the untrained model's held-out loss: the curve's start

        window = LogWindow(torch.zeros((), device=env.device))
        try:
            for step in range(done, steps):
                gstep = offset + step
                lr = self.schedule.lr(gstep)
                t0 = time.perf_counter()
                batch = loader.next().to(env.device, non_blocking=True)
                window.data_wait += time.perf_counter() - t0
                step_loss, grad_norm = self.train_step(batch, lr)
                window.loss_sum += step_loss
                window.steps += 1

                n_done = step + 1
                if n_done % cfg.log_every == 0 or n_done == steps:
                    self._log_train(phase, n_done, steps, gstep, lr, grad_norm, window)
                    window.reset()
                if n_done % cfg.eval_every == 0 or n_done == steps:
                    self._log_eval(phase, n_done, gstep + 1)
                    window.start = time.perf_counter()  # don't charge the eval to tokens/s
                if self.fail_at_step is not None and gstep + 1 == self.fail_at_step:
                    log.warning("fault injection: SIGKILL after global step %d", gstep + 1)
                    os.kill(os.getpid(), signal.SIGKILL)
                if n_done % cfg.checkpoint_every == 0 or n_done == steps:
                    self._save(phase, n_done, gstep, loader)
                    window.start = time.perf_counter()  # don't charge the save to tokens/s
        finally:
            loader.close()

    def _save(self, phase: str, n_done: int, gstep: int, loader: TrainLoader) -> None:
        """Model and optimizer, plus what a resume checks (the schedule) and restores (the loader's place)."""
        meta = {
            "phase": phase,
            "phase_step": n_done,
            "global_step": gstep + 1,
            "schedule": self.schedule.state_dict(),
            "loader": loader.state_dict(),
            "world_size": self.env.world_size,
            "preset": self.cfg.preset,
        }
        checkpoint.save(
            self.cfg.out_dir / "checkpoints" / phase,
            n_done,
            self.lm,
            self.optimizer,
            meta,
            self.cfg.keep_checkpoints,
        )

    def _log_train(
        self,
        phase: str,
        n_done: int,
        steps: int,
        gstep: int,
        lr: float,
        grad_norm: torch.Tensor | None,
        window: LogWindow,
    ) -> None:
        """One train record for the steps of `window`: mean loss over all ranks, throughput and MFU."""
        mean_loss = all_reduce_mean(window.loss_sum / window.steps).item()  # the one sync per log
        elapsed = time.perf_counter() - window.start
        tps = window.steps * self.cfg.global_batch_tokens / elapsed
        if grad_norm is not None and hasattr(grad_norm, "full_tensor"):
            grad_norm = grad_norm.full_tensor()
        self.metrics.write(
            {
                "kind": "train",
                "phase": phase,
                "step": n_done,
                "global_step": gstep + 1,
                "loss": mean_loss,
                "lr": lr,
                "grad_norm": None if grad_norm is None else float(grad_norm),
                "tokens": (gstep + 1) * self.cfg.global_batch_tokens,
                "tokens_per_s": tps,
                "mfu": tps * self.flops_per_token / self.peak_flops if self.peak_flops else None,
                "data_wait_frac": window.data_wait / elapsed,
                "time": time.time(),
            }
        )
        if self.env.is_main:
            log.info("%s step %d/%d loss %.4f lr %.2e %.0f tok/s", phase, n_done, steps, mean_loss, lr, tps)

    def _log_eval(self, phase: str, step: int, global_step: int) -> None:
        for source, loss in self.evaluate().items():
            self.metrics.write(
                {
                    "kind": "eval",
                    "phase": phase,
                    "step": step,
                    "global_step": global_step,
                    "source": source,
                    "loss": loss,
                    "time": time.time(),
                }
            )
            if self.env.is_main:
                log.info("%s step %d eval %s loss %.4f", phase, step, source, loss)


def run(cfg: RunConfig, phases: list[str], fail_at_step: int | None = None) -> Path:
    """Run the given phases in order; returns the metrics file. Safe to call again after a crash: each phase
    resumes from its latest checkpoint."""
    env = init_distributed(cfg.device)
    try:
        trainer = Trainer(cfg, env, fail_at_step)
        for phase in phases:
            if phase not in cfg.phases:
                raise ValueError(f"--phase {phase}: the config has no phases.{phase}")
            trainer.run_phase(phase)
        if env.is_main:
            from training.report import write_report

            write_report(cfg.out_dir)
        if dist.is_initialized():
            dist.barrier()  # on success only: after a failure the other ranks may be gone
        return trainer.metrics.path
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
