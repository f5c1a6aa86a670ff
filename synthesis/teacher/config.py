"""Teacher configuration, validated at the edge: which backend, and its knobs.

YAML shape (one of the registered `kind`s, synthesis/teacher/registry.py)::

    backend:
      kind: openai_http            # vllm serve / SGLang / llama.cpp server
      base_url: http://10.0.0.5:8000/v1
      model: Qwen/Qwen2.5-72B-Instruct
      concurrency: 64
    store_fsync: false

Each backend's own config lives beside it in synthesis/teacher/backends/.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from synthesis.teacher.registry import BACKENDS, DEFAULT_BACKEND, BackendConfig


class TeacherConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backend: BackendConfig = Field(default_factory=lambda: BACKENDS[DEFAULT_BACKEND].config())
    store_fsync: bool = False
    retry_failed: bool = True
