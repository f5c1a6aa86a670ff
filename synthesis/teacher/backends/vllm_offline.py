"""vLLM offline engine (`vllm.LLM`) for batch jobs on GPU nodes.

vllm is the optional `gpu` extra: it pins its own CUDA torch and cannot live in the CPU environment, so it is
imported only when this backend is built, and a missing install is a clear error naming the alternatives.
Structured output uses vLLM's current API,
`SamplingParams(structured_outputs=StructuredOutputsParams(json=...))` (the older `guided_decoding` /
`guided_json` fields were removed in vLLM 0.12).

The runner hands over `batch_size` requests per call; vLLM schedules them continuously inside the call
(paged attention, continuous batching), and the results of each call are committed together, which bounds
what a crash can cost to one call's worth of work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from synthesis.teacher.backends.base import BackendConfigBase, BatchedBackend, Generation, TeacherBackendError
from synthesis.teacher.request import TeacherRequest

log = logging.getLogger(__name__)

MISSING_VLLM = (
    "teacher backend 'vllm' needs the `vllm` package, which is only installed on GPU nodes "
    "(pip install -e '.[gpu]' in a CUDA environment). On this machine use backend kind 'embedded' "
    "or 'transformers', or 'openai_http' pointed at a `vllm serve` endpoint."
)


class VllmConfig(BackendConfigBase):
    kind: Literal["vllm"] = "vllm"
    model: str = Field(..., description="HF repo id or local directory")
    tensor_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    max_model_len: int | None = Field(None, ge=128)
    dtype: str = "auto"
    seed: int = 0
    # Requests handed to vLLM per call: vLLM schedules them continuously inside the call; the runner commits
    # results after each call, so this bounds the work a crash can cost.
    batch_size: int = Field(1024, ge=1)


def import_vllm():
    try:
        import vllm
    except ImportError as e:
        raise TeacherBackendError(f"{MISSING_VLLM} (import error: {e})") from e
    return vllm


def sampling_kwargs(req: TeacherRequest) -> dict[str, Any]:
    """Our sampling parameters as `vllm.SamplingParams` keyword arguments (schema handled separately)."""
    s = req.sampling
    kw: dict[str, Any] = {
        "n": s.n,
        "temperature": s.temperature,
        "top_p": s.top_p,
        "max_tokens": s.max_tokens,
    }
    if s.top_k is not None:
        kw["top_k"] = s.top_k
    if s.stop:
        kw["stop"] = list(s.stop)
    if s.seed is not None:
        kw["seed"] = s.seed
    return kw


class VllmBackend(BatchedBackend):
    name = "vllm"
    config = VllmConfig
    constrains_schema = True

    def __init__(self, cfg: VllmConfig):
        self.cfg = cfg
        self.batch_size = cfg.batch_size
        self._vllm = import_vllm()  # fail at selection time, not hours into a job
        self.llm = None

    @property
    def model_id(self) -> str:
        return self.cfg.model

    def start(self) -> None:
        if self.llm is not None:
            return
        t0 = time.perf_counter()
        kw: dict[str, Any] = {
            "model": self.cfg.model,
            "tensor_parallel_size": self.cfg.tensor_parallel_size,
            "gpu_memory_utilization": self.cfg.gpu_memory_utilization,
            "dtype": self.cfg.dtype,
            "seed": self.cfg.seed,
        }
        if self.cfg.max_model_len is not None:
            kw["max_model_len"] = self.cfg.max_model_len
        self.llm = self._vllm.LLM(**kw)
        log.info(
            "vLLM engine for %s (tp=%d) ready in %.1fs",
            self.cfg.model,
            self.cfg.tensor_parallel_size,
            time.perf_counter() - t0,
        )

    def close(self) -> None:
        self.llm = None

    def sampling_params(self, req: TeacherRequest):
        kw = sampling_kwargs(req)
        if req.response_schema is not None:
            from vllm.sampling_params import StructuredOutputsParams

            kw["structured_outputs"] = StructuredOutputsParams(json=req.response_schema)
        return self._vllm.SamplingParams(**kw)

    def generate_batch(self, requests: Sequence[TeacherRequest]) -> list[Generation]:
        self.start()
        chat_idx = [i for i, r in enumerate(requests) if r.messages is not None]
        raw_idx = [i for i, r in enumerate(requests) if r.messages is None]
        gens: list[Generation] = []
        if chat_idx:
            t0 = time.perf_counter()
            outs = self.llm.chat(
                [[m.model_dump() for m in requests[i].messages] for i in chat_idx],
                sampling_params=[self.sampling_params(requests[i]) for i in chat_idx],
                use_tqdm=False,
            )
            gens += self._to_generations(chat_idx, outs, time.perf_counter() - t0)
        if raw_idx:
            t0 = time.perf_counter()
            outs = self.llm.generate(
                [requests[i].prompt for i in raw_idx],
                sampling_params=[self.sampling_params(requests[i]) for i in raw_idx],
                use_tqdm=False,
            )
            gens += self._to_generations(raw_idx, outs, time.perf_counter() - t0)
        return gens

    @staticmethod
    def _to_generations(idx: list[int], outs, latency: float) -> list[Generation]:
        gens = []
        for i, out in zip(idx, outs):
            completions = list(out.outputs)
            gens.append(
                Generation(
                    index=i,
                    texts=[c.text for c in completions],
                    finish_reasons=[c.finish_reason for c in completions],
                    prompt_tokens=len(out.prompt_token_ids or []),
                    completion_tokens=sum(len(c.token_ids) for c in completions),
                    latency_s=latency,
                )
            )
        return gens
