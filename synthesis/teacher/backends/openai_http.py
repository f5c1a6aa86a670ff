"""OpenAI-compatible HTTP client (what `vllm serve`, SGLang and llama.cpp's server expose).

Async with a fixed pool of `concurrency` workers (not one task per request, so a million-request batch costs
a million tiny dicts, not a million coroutines). Each attempt has a hard wall-clock limit; 429, 5xx, timeouts
and connection resets/drops are retried with exponential backoff and full jitter (tenacity); any other 4xx is
the caller's fault and fails the request at once with the server's message. A Retry-After header on a
429/503 is honoured (the wait is at least that long). A request that still fails after
the last attempt comes back as a failed Generation carrying the last error, never dropped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

import httpx
from pydantic import Field
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from synthesis.teacher.backends.base import (
    Backend,
    BackendConfigBase,
    Generation,
    RetryConfig,
    TeacherBackendError,
)
from synthesis.teacher.request import TeacherRequest

log = logging.getLogger(__name__)

StructuredOutput = Literal["json_schema", "json_object_schema", "vllm_structured_outputs"]


class OpenAIHttpConfig(BackendConfigBase):
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
    structured_output: StructuredOutput = "json_schema"


#: Longest server-requested pause (Retry-After) we honour; a larger value is treated as this.
MAX_RETRY_AFTER_S = 60.0


class RetryableHTTPError(Exception):
    """429 / 5xx / timeout / dropped or reset connection / truncated body: worth another attempt."""

    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


def _retry_after(resp: httpx.Response) -> float | None:
    """Seconds from a numeric Retry-After header (the HTTP-date form is rare for APIs and is ignored)."""
    try:
        return min(float(resp.headers["retry-after"]), MAX_RETRY_AFTER_S)
    except (KeyError, ValueError):
        return None


class ClientRequestError(Exception):
    """A 4xx other than 429: the request itself is wrong (bad params, prompt too long, unknown model)."""


class OpenAIHttpBackend(Backend):
    name = "openai_http"
    config = OpenAIHttpConfig
    constrains_schema = True

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        concurrency: int = 16,
        request_timeout_s: float = 300.0,
        connect_timeout_s: float = 10.0,
        retry: RetryConfig | None = None,
        structured_output: StructuredOutput = "json_schema",
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.concurrency = concurrency
        self.request_timeout_s = request_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.retry = retry or RetryConfig()
        self.structured_output = structured_output

    @classmethod
    def from_config(cls, cfg: OpenAIHttpConfig) -> OpenAIHttpBackend:
        api_key = None
        if cfg.api_key_env:
            api_key = os.environ.get(cfg.api_key_env)
            if not api_key:
                raise TeacherBackendError(
                    f"teacher backend config api_key_env={cfg.api_key_env!r}: "
                    f"that environment variable is not set"
                )
        return cls(
            cfg.base_url,
            cfg.model,
            api_key=api_key,
            concurrency=cfg.concurrency,
            request_timeout_s=cfg.request_timeout_s,
            connect_timeout_s=cfg.connect_timeout_s,
            retry=cfg.retry,
            structured_output=cfg.structured_output,
        )

    @property
    def model_id(self) -> str:
        return self.model

    # ---- request building / response parsing (pure) --------------------------------------------------

    def payload(self, req: TeacherRequest) -> dict[str, Any]:
        s = req.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "n": s.n,
        }
        if req.messages is not None:
            body["messages"] = [m.model_dump() for m in req.messages]
        else:
            body["prompt"] = req.prompt
        if s.stop:
            body["stop"] = list(s.stop)
        if s.seed is not None:
            body["seed"] = s.seed
        if s.top_k is not None:
            body["top_k"] = s.top_k  # not in OpenAI's API; vLLM, SGLang and llama.cpp accept it
        if req.response_schema is not None:
            if self.structured_output == "json_schema":
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "response", "schema": req.response_schema},
                }
            elif self.structured_output == "json_object_schema":
                body["response_format"] = {"type": "json_object", "schema": req.response_schema}
            else:
                body["structured_outputs"] = {"json": req.response_schema}
        return body

    @staticmethod
    def parse(index: int, data: dict[str, Any], chat: bool) -> Generation:
        try:
            choices = sorted(data["choices"], key=lambda c: c.get("index", 0))
            texts = [(c["message"].get("content") or "") if chat else c["text"] for c in choices]
        except (KeyError, TypeError, AttributeError) as e:
            raise RetryableHTTPError(f"response without choices/text ({e!r}): {str(data)[:300]}") from e
        usage = data.get("usage") or {}
        return Generation(
            index=index,
            texts=texts,
            finish_reasons=[c.get("finish_reason") for c in choices],
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
        )

    # ---- I/O --------------------------------------------------------------------------------------------

    def client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(self.request_timeout_s, connect=self.connect_timeout_s),
            limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
        )

    async def generate(self, requests: Sequence[TeacherRequest]) -> AsyncIterator[Generation]:
        if not requests:
            return
        out: asyncio.Queue[Generation] = asyncio.Queue()
        work = iter(enumerate(requests))  # shared by the workers; asyncio is single-threaded, so no lock

        async with self.client() as client:

            async def worker() -> None:
                for i, req in work:
                    await out.put(await self.request_one(client, i, req))

            workers = [asyncio.create_task(worker()) for _ in range(min(self.concurrency, len(requests)))]
            try:
                for _ in range(len(requests)):
                    yield await out.get()
            finally:
                for w in workers:
                    w.cancel()
                await asyncio.gather(*workers, return_exceptions=True)

    async def request_one(self, client: httpx.AsyncClient, index: int, req: TeacherRequest) -> Generation:
        chat = req.messages is not None
        path = "/chat/completions" if chat else "/completions"
        body = self.payload(req)
        attempts = 0
        t0 = time.perf_counter()

        def _log_retry(state: RetryCallState) -> None:
            log.info(
                "request %d attempt %d failed (%s); retrying in %.2fs",
                index,
                state.attempt_number,
                state.outcome.exception() if state.outcome else "?",
                state.next_action.sleep,
            )

        jitter = wait_random_exponential(multiplier=self.retry.initial_s, max=self.retry.max_s)

        def _wait(state: RetryCallState) -> float:
            # full-jitter backoff, but never sooner than the server asked for (429/503 Retry-After)
            exc = state.outcome.exception() if state.outcome else None
            return max(jitter(state), getattr(exc, "retry_after_s", None) or 0.0)

        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.retry.max_attempts),
                wait=_wait,
                retry=retry_if_exception_type(RetryableHTTPError),
                reraise=True,
                before_sleep=_log_retry,
            ):
                with attempt:
                    attempts += 1
                    data = await self._post(client, path, body)
                    gen = self.parse(index, data, chat)
        except RetryableHTTPError as e:
            return Generation(
                index=index,
                attempts=attempts,
                latency_s=time.perf_counter() - t0,
                error_type="retries_exhausted",
                error=f"after {attempts} attempt(s): {e}",
            )
        except ClientRequestError as e:
            return Generation(
                index=index,
                attempts=attempts,
                latency_s=time.perf_counter() - t0,
                error_type="http_4xx",
                error=str(e),
            )
        except Exception as e:  # an unexpected bug must still leave a failed row, not hang the batch
            log.exception("request %d: unexpected error", index)
            return Generation(
                index=index,
                attempts=attempts,
                latency_s=time.perf_counter() - t0,
                error_type=type(e).__name__,
                error=str(e)[:2000],
            )
        gen.attempts = attempts
        gen.latency_s = time.perf_counter() - t0
        return gen

    async def _post(self, client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            # httpx's timeouts are per phase (connect/read/...); a server that trickles bytes never trips
            # them, so the whole attempt also gets a hard deadline.
            async with asyncio.timeout(self.request_timeout_s):
                resp = await client.post(path, json=body)
        except (TimeoutError, httpx.TimeoutException) as e:
            raise RetryableHTTPError(f"timeout after {self.request_timeout_s}s ({type(e).__name__})") from e
        except httpx.TransportError as e:  # connect refused/reset, server disconnected, protocol error
            raise RetryableHTTPError(f"{type(e).__name__}: {e}") from e
        code = resp.status_code
        if code == 429 or code >= 500:
            raise RetryableHTTPError(
                f"HTTP {code} from {resp.request.url}: {resp.text[:300]}", _retry_after(resp)
            )
        if code >= 400:
            raise ClientRequestError(f"HTTP {code} from {resp.request.url}: {resp.text[:1000]}")
        try:
            return resp.json()
        except ValueError as e:
            raise RetryableHTTPError(f"HTTP {code} with a body that is not JSON: {resp.text[:300]!r}") from e
