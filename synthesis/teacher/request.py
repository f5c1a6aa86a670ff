"""The one request/response model every teacher backend speaks, and the deterministic request key.

A request is either chat `messages` or a raw `prompt`, plus sampling parameters, an optional JSON schema the
answer must follow, and the version of the prompt template that produced it. Its key is a hash of
model + prompt + parameters + schema + template version: the same work always has the same key, so a
rerun can skip what is already stored and two callers asking the same question share one answer.
`id` is the caller's own tag (a document id, a topic id); it is stored with the result but is not part
of the key, so it never splits identical work.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Bump when the key recipe changes, so old stores never match new keys by accident.
KEY_SCHEME = "teacher-key-v1"


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    role: Literal["system", "user", "assistant"]
    content: str


class SamplingParams(BaseModel):
    """Sampling parameters common to vLLM, the OpenAI API and transformers' `generate`.

    temperature 0 means greedy decoding everywhere. top_k None means "backend default / off".
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    temperature: float = Field(0.0, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=1)
    max_tokens: int = Field(256, ge=1)
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = Field(1, ge=1, le=64)


class TeacherRequest(BaseModel):
    """One unit of teacher work. Exactly one of `messages` / `prompt` is set."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str | None = None  # caller's tag, stored but not hashed
    messages: tuple[ChatMessage, ...] | None = None
    prompt: str | None = None
    sampling: SamplingParams = SamplingParams()
    response_schema: dict[str, Any] | None = None  # JSON schema the completion must parse against
    template_version: str = "none"  # version of the prompt template that built this request

    @model_validator(mode="after")
    def _one_input(self) -> TeacherRequest:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("a teacher request needs exactly one of `messages` or `prompt`")
        if self.messages is not None and not self.messages:
            raise ValueError("`messages` is empty")
        return self

    def key(self, model_id: str) -> str:
        """Deterministic key: sha256 over the canonical JSON of everything that changes the answer."""
        payload = {
            "scheme": KEY_SCHEME,
            "model": model_id,
            "messages": [m.model_dump() for m in self.messages] if self.messages is not None else None,
            "prompt": self.prompt,
            "sampling": self.sampling.model_dump(mode="json"),
            "response_schema": self.response_schema,
            "template_version": self.template_version,
        }
        canon = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canon.encode("utf-8")).hexdigest()


class Choice(BaseModel):
    """One sampled completion (a request with n > 1 has n of them)."""

    model_config = ConfigDict(extra="forbid")
    text: str
    finish_reason: str | None = None  # stop | length | ... as the backend reports it
    parsed: Any = None  # the JSON value, when the request had a schema and it validated


Status = Literal["ok", "failed"]


class TeacherResult(BaseModel):
    """What the store keeps for one request key: the answer or the error, and how it was produced."""

    model_config = ConfigDict(extra="forbid")
    key: str
    request_id: str | None = None
    status: Status
    choices: list[Choice] = Field(default_factory=list)
    error_type: str | None = None  # e.g. http_4xx, retries_exhausted, schema_invalid, timeout
    error: str | None = None
    model_id: str
    backend: str
    sampling: SamplingParams
    template_version: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float | None = None
    attempts: int = 1
    run_id: str | None = None  # which batch run produced the row (audit of resumes)
    created_at: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def text(self) -> str | None:
        """The first completion's text (the common n == 1 case)."""
        return self.choices[0].text if self.choices else None

    @property
    def parsed(self) -> Any:
        return self.choices[0].parsed if self.choices else None

    @property
    def finish_reason(self) -> str | None:
        return self.choices[0].finish_reason if self.choices else None
