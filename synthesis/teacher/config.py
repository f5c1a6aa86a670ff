"""Teacher configuration, validated at the edge: which backend, and its knobs.

YAML shape (one of the `kind`s)::

    backend:
      kind: openai_http            # vllm serve / SGLang / llama.cpp server
      base_url: http://10.0.0.5:8000/v1
      model: Qwen/Qwen2.5-72B-Instruct
      concurrency: 64
    store_fsync: false
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetryConfig(_Cfg):
    """Exponential backoff with full jitter on 429 / 5xx / timeouts / connection resets."""
    max_attempts: int = Field(5, ge=1, le=50)
    initial_s: float = Field(0.5, gt=0)
    max_s: float = Field(30.0, gt=0)


class OpenAIHttpConfig(_Cfg):
    kind: Literal["openai_http"] = "openai_http"
    base_url: str = Field(..., description="server root including /v1, e.g. http://127.0.0.1:8000/v1")
    model: str = Field(..., description="model name as the server knows it (goes into request keys)")
    api_key_env: str | None = Field(None, description="environment variable holding the API key, if any")
    concurrency: int = Field(16, ge=1, le=4096)
    request_timeout_s: float = Field(300.0, gt=0, description="hard wall-clock limit per attempt")
    connect_timeout_s: float = Field(10.0, gt=0)
    retry: RetryConfig = RetryConfig()
    # How the JSON schema travels: OpenAI's `response_format: json_schema` (vLLM, SGLang, OpenAI),
    # llama-cpp-python's `response_format: {type: json_object, schema}`, or vLLM's `structured_outputs` extra.
    structured_output: Literal["json_schema", "json_object_schema", "vllm_structured_outputs"] = "json_schema"


class EmbeddedConfig(_Cfg):
    """SmolLM2-135M-Instruct (or another GGUF) served by llama.cpp on loopback, started and stopped with
    the backend. The CPU default: no GPU, no network, no hub download."""
    kind: Literal["embedded"] = "embedded"
    model_file: Path | None = Field(None, description="GGUF file; default: models_dir()/SmolLM2-135M-Instruct.Q4_1.gguf")
    n_ctx: int = Field(2048, ge=128)
    # 1 by default: llama.cpp's threads meet at spinning barriers, and on a shared, oversubscribed box 2
    # threads measured 4.5x slower than 1 (BENCHMARKS.md, Teacher layer). Raise it on a dedicated machine.
    n_threads: int = Field(1, ge=1)
    startup_timeout_s: float = Field(120.0, gt=0)
    concurrency: int = Field(4, ge=1, le=256)
    request_timeout_s: float = Field(300.0, gt=0)
    retry: RetryConfig = RetryConfig()


class TransformersConfig(_Cfg):
    kind: Literal["transformers"] = "transformers"
    model: Path | None = Field(None, description="HF model directory or a .gguf file; default: the embedded GGUF")
    device: str = Field("cpu", description="cpu | cuda | cuda:N | auto")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    batch_size: int = Field(8, ge=1, le=4096)


class VllmConfig(_Cfg):
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


BackendConfig = Annotated[OpenAIHttpConfig | EmbeddedConfig | TransformersConfig | VllmConfig,
                          Field(discriminator="kind")]


class TeacherConfig(_Cfg):
    backend: BackendConfig = EmbeddedConfig()
    store_fsync: bool = False
    retry_failed: bool = True


def make_backend(cfg: BackendConfig):
    """Build (but do not start) the backend a config names. Heavy imports happen here, lazily."""
    if isinstance(cfg, OpenAIHttpConfig):
        from synthesis.teacher.backends.openai_http import OpenAIHttpBackend
        return OpenAIHttpBackend.from_config(cfg)
    if isinstance(cfg, EmbeddedConfig):
        from synthesis.teacher.embedded import EmbeddedBackend
        return EmbeddedBackend(cfg)
    if isinstance(cfg, TransformersConfig):
        from synthesis.teacher.backends.transformers_local import TransformersBackend
        return TransformersBackend(cfg)
    if isinstance(cfg, VllmConfig):
        from synthesis.teacher.backends.vllm_offline import VllmBackend
        return VllmBackend(cfg)
    raise ValueError(f"unknown teacher backend config {cfg!r}")
