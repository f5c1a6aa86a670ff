"""Teacher-layer fixtures: a real llama.cpp server on loopback serving the embedded SmolLM2, a fault-injecting
loopback proxy in front of it, and requests built from the real shared data (GSM8K questions, Common Crawl
text). Loaded by tests/conftest.py through `pytest_plugins`."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from synthesis.teacher import ChatMessage, SamplingParams, TeacherRequest

#: JSON schema for the edu-score style structured requests.
SCORE_SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "integer", "minimum": 0, "maximum": 5}},
    "required": ["score"],
}

_REASONS = {
    200: "OK",
    400: "Bad Request",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class FaultProxy:
    """An HTTP/1.1 proxy on 127.0.0.1 that forwards to `upstream` or injects the fault `plan` picks.

    `plan(attempt, body)` is called per incoming request with the 1-based number of times this exact body has
    been seen (so "fail the first attempt, pass the retry" is easy) and returns one of:
      pass | 500 | 503 | 429 | 400 | drop (close without answering) | reset (TCP RST) | stall (answer never)
    Counters: `actions` (per action), `attempts` and `forwarded` (answered 200 by upstream), per body hash;
    `bodies` maps each hash back to the request body.
    """

    def __init__(
        self,
        upstream: str,
        plan: Callable[[int, bytes], str] | None = None,
        delay_s: float = 0.0,
        stall_s: float = 60.0,
        retry_after_s: int = 1,
    ):
        self.upstream = upstream.rstrip("/")
        self.plan = plan or (lambda attempt, body: "pass")
        self.delay_s = delay_s
        self.stall_s = stall_s
        self.retry_after_s = retry_after_s  # sent with every injected 429
        self.actions: Counter[str] = Counter()
        self.attempts: Counter[str] = Counter()
        self.forwarded: Counter[str] = Counter()
        self.bodies: dict[str, bytes] = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = None
        self.port = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FaultProxy:
        self.thread.start()

        async def _start():
            self.client = httpx.AsyncClient(timeout=120.0)
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            return self.server.sockets[0].getsockname()[1]

        self.port = asyncio.run_coroutine_threadsafe(_start(), self.loop).result(10)
        return self

    def stop(self) -> None:
        async def _stop():
            self.server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
            await self.client.aclose()

        asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                method, target, _ = request_line.decode("latin-1").split(" ", 2)
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                body = await reader.readexactly(length) if length else b""
                digest = hashlib.sha1(body).hexdigest()
                self.bodies[digest] = body
                self.attempts[digest] += 1
                action = self.plan(self.attempts[digest], body)
                self.actions[action] += 1
                if action == "drop":
                    return  # finally closes: no response at all
                if action == "reset":
                    writer.transport.abort()  # RST instead of FIN
                    return
                if action == "stall":
                    try:  # hold the connection until the client gives up
                        await asyncio.wait_for(reader.read(1), self.stall_s)
                    except TimeoutError:
                        pass
                    return
                if action == "pass":
                    await asyncio.sleep(self.delay_s)
                    resp = await self.client.request(
                        method,
                        self.upstream + target,
                        content=body,
                        headers={"Content-Type": "application/json"},
                    )
                    status, payload = resp.status_code, resp.content
                    if status == 200:
                        self.forwarded[digest] += 1
                else:
                    status = int(action)
                    payload = json.dumps(
                        {"error": {"message": f"injected {status}", "code": status}}
                    ).encode()
                extra = f"Retry-After: {self.retry_after_s}\r\n" if status == 429 else ""
                writer.write(
                    f"HTTP/1.1 {status} {_REASONS.get(status, 'X')}\r\nContent-Type: application/json\r\n"
                    f"{extra}Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


@pytest.fixture(scope="session")
def llama_server():
    """The real llama.cpp OpenAI-compatible server on 127.0.0.1, serving the embedded SmolLM2 GGUF."""
    from synthesis.teacher.backends.embedded import LlamaServer

    # One thread: on a shared, overloaded box llama.cpp's spinning thread barrier makes 2 threads 3-4x
    # slower than 1 (measured 16:54 UTC, load 11 on 2 cores); tests want steady latency, not peak speed.
    with LlamaServer(n_ctx=1024, n_threads=1) as server:
        yield server


@pytest.fixture
def fault_proxy(llama_server):
    """Factory: fault_proxy(plan, delay_s=...) -> a started FaultProxy in front of the real server."""
    proxies = []

    def make(plan=None, **kw) -> FaultProxy:
        proxy = FaultProxy(llama_server.base_url.removesuffix("/v1"), plan, **kw).start()
        proxies.append(proxy)
        return proxy

    yield make
    for p in proxies:
        p.stop()


def gsm8k_questions(shared_data: Path, n: int) -> list[str]:
    with open(shared_data / "benchmarks_decontam" / "gsm8k" / "test.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["question"] for _, line in zip(range(n), f)]


def web_snippets(shared_data: Path, n: int, chars: int = 400) -> list[tuple[str, str]]:
    path = next((shared_data / "webtext_cc2019_dolma_sample").glob("*.jsonl.gz"))
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            if len(doc["text"]) > 200:
                out.append((doc["id"], doc["text"][:chars]))
            if len(out) == n:
                break
    return out


def question_requests(shared_data: Path, n: int, max_tokens: int = 8, template_version: str = "qa-v1"):
    """Chat requests asking SmolLM2 to start solving real GSM8K test questions."""
    return [
        TeacherRequest(
            id=f"gsm8k-{i}",
            messages=[ChatMessage(role="user", content=q)],
            sampling=SamplingParams(max_tokens=max_tokens),
            template_version=template_version,
        )
        for i, q in enumerate(gsm8k_questions(shared_data, n))
    ]


def score_requests(shared_data: Path, n: int, max_tokens: int = 12):
    """Structured edu-score requests over real Common Crawl text."""
    return [
        TeacherRequest(
            id=doc_id,
            messages=[
                ChatMessage(
                    role="system",
                    content="Rate the educational value of the text from 0 to 5. "
                    'Answer with JSON like {"score": 3}.',
                ),
                ChatMessage(role="user", content=text),
            ],
            sampling=SamplingParams(max_tokens=max_tokens),
            response_schema=SCORE_SCHEMA,
            template_version="edu-score-v1",
        )
        for doc_id, text in web_snippets(shared_data, n)
    ]
