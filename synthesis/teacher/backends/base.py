"""The interface every teacher backend implements.

A backend only generates: it takes requests and yields `Generation`s (text, finish reason, token counts,
latency, or an error) in whatever order they finish. Keys, schema validation and durable storage live in
the batch runner (synthesis/teacher/batch.py), so every backend gets them the same way.

Two shapes cover the backends we have:
- `Backend.generate` is an async generator; the OpenAI-compatible HTTP client implements it directly with
  bounded concurrency.
- `BatchedBackend` is for engines that take a list of prompts at once (transformers, vLLM offline): it cuts
  the requests into micro-batches of `batch_size`, runs the blocking `generate_batch` in a worker thread,
  and yields each micro-batch as it finishes, so results reach the store batch by batch.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field

from synthesis.teacher.request import TeacherRequest

log = logging.getLogger(__name__)


class BackendConfigBase(BaseModel):
    """What every backend's config is: validated at the edge (extra="forbid") and tagged by `kind`, the key
    the backend is registered under (synthesis/teacher/registry.py)."""

    model_config = ConfigDict(extra="forbid")
    kind: str
    #: the field the command line's `--model` (and the DAGs' `model` param) sets
    model_field: ClassVar[str] = "model"


class RetryConfig(BaseModel):
    """Exponential backoff with full jitter on 429 / 5xx / timeouts / connection resets."""

    model_config = ConfigDict(extra="forbid")
    max_attempts: int = Field(5, ge=1, le=50)
    initial_s: float = Field(0.5, gt=0)
    max_s: float = Field(30.0, gt=0)


class TeacherBackendError(RuntimeError):
    """The backend cannot run at all (missing package, missing model, server that never came up)."""


@dataclass
class Generation:
    """What a backend produced for `requests[index]`: completions, or an error after its last retry."""

    index: int
    texts: list[str] = field(default_factory=list)
    finish_reasons: list[str | None] = field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float | None = None
    attempts: int = 1
    error_type: str | None = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error_type is not None


class Backend(ABC):
    """A teacher model behind one interface. Use as a context manager (or call start/close)."""

    #: Short backend name stored on every result (openai_http, transformers, vllm, embedded).
    name: ClassVar[str]
    #: Whether the backend constrains decoding to `response_schema` itself (the runner validates either way).
    constrains_schema: ClassVar[bool] = False
    #: The pydantic config this backend is built from; its `kind` literal equals `name`.
    config: ClassVar[type[BackendConfigBase]]

    @classmethod
    def from_config(cls, cfg: Any) -> Backend:
        """Build (but do not start) the backend from its config. Heavy imports happen in here or in
        start()."""
        return cls(cfg)

    @property
    @abstractmethod
    def model_id(self) -> str:
        """The model identity that goes into every request key and result."""

    def start(self) -> None:  # noqa: B027 - an optional hook: backends with nothing to start keep this no-op
        """Load the model / open connections / launch a server. Idempotent."""

    def close(self) -> None:  # noqa: B027 - an optional hook: backends with nothing to release keep this no-op
        """Release what start() took. Idempotent."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @abstractmethod
    def generate(self, requests: Sequence[TeacherRequest]) -> AsyncIterator[Generation]:
        """Yield one Generation per request (any order, `index` says which). Per-request failures are
        yielded as failed Generations; only a backend-wide failure raises."""


class BatchedBackend(Backend):
    """A backend whose engine takes a whole list of prompts per call."""

    batch_size: int = 8

    @abstractmethod
    def generate_batch(self, requests: Sequence[TeacherRequest]) -> list[Generation]:
        """Blocking: one Generation per request, `index` relative to `requests`."""

    async def generate(self, requests: Sequence[TeacherRequest]) -> AsyncIterator[Generation]:
        for start in range(0, len(requests), self.batch_size):
            chunk = requests[start : start + self.batch_size]
            gens = await asyncio.to_thread(self._safe_batch, chunk)
            for g in gens:
                g.index += start
                yield g

    def _safe_batch(self, chunk: Sequence[TeacherRequest]) -> list[Generation]:
        # An exception inside one micro-batch (e.g. a prompt longer than the context) is recorded on each
        # request of that batch instead of killing the run; the next run retries them.
        try:
            return self.generate_batch(chunk)
        except TeacherBackendError:
            raise
        except Exception as e:  # noqa: BLE001 - recorded per request, never dropped
            log.warning("%s: micro-batch of %d failed: %s", self.name, len(chunk), e)
            return [
                Generation(index=i, error_type=type(e).__name__, error=str(e)[:2000])
                for i in range(len(chunk))
            ]
