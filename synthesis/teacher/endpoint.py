"""`TEACHER_BASE_URL`: the deployment's teacher endpoint (docker-compose's vLLM service, `vllm serve`, any
OpenAI-compatible server), applied to every teacher config a command builds (`label-edu`, `run`, `generate`).

Precedence, strongest first: the command line (`--backend`, `--base-url`, `--model`; the DAGs pass their
params as these flags), then `TEACHER_BASE_URL`, then the YAML's `teacher:` section. So with the variable set:
- a YAML `openai_http` backend keeps its knobs (model, concurrency, retries) and gets the variable's URL;
- any other YAML backend (the embedded default) becomes `openai_http` on that URL; its model is `--model`,
  else the one model the endpoint serves (`GET /models`; vLLM lists its `--served-model-name`);
- `--backend` naming another kind, or `--base-url`, means the run chose explicitly: the variable is ignored.
"""

from __future__ import annotations

import logging
import os

import httpx

from synthesis.teacher.backends.base import TeacherBackendError
from synthesis.teacher.backends.openai_http import OpenAIHttpBackend, OpenAIHttpConfig
from synthesis.teacher.config import TeacherConfig

log = logging.getLogger(__name__)

ENV = "TEACHER_BASE_URL"


def served_model(base_url: str, timeout_s: float = 10.0) -> str:
    """The one model an OpenAI-compatible endpoint serves; an error naming the choices when it is not one."""
    url = f"{base_url.rstrip('/')}/models"
    try:
        resp = httpx.get(url, timeout=timeout_s)
        resp.raise_for_status()
        ids = [m["id"] for m in resp.json().get("data", [])]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
        raise TeacherBackendError(
            f"{ENV}={base_url}: cannot list the served models at {url} ({e}); "
            f"name the model with --model (the DAGs' `model` param)"
        ) from None
    if len(ids) != 1:
        raise TeacherBackendError(
            f"{ENV}={base_url} serves {len(ids)} models {ids}; name one with --model "
            f"(the DAGs' `model` param)"
        )
    return ids[0]


def apply_teacher_base_url(
    cfg: TeacherConfig,
    *,
    backend_flag: str | None = None,
    base_url_flag: str | None = None,
    model_flag: str | None = None,
) -> TeacherConfig:
    """`cfg` pointed at `$TEACHER_BASE_URL` when it is set and the command line did not choose otherwise."""
    url = os.environ.get(ENV, "").strip()
    if not url or base_url_flag or backend_flag not in (None, OpenAIHttpBackend.name):
        return cfg
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{ENV}={url!r} is not an http(s) URL (expected e.g. http://vllm:8000/v1)")
    if isinstance(cfg.backend, OpenAIHttpConfig):
        backend = cfg.backend.model_copy(update={"base_url": url})
    else:
        backend = OpenAIHttpConfig(base_url=url, model=model_flag or served_model(url))
    log.info("teacher: %s set, using openai_http %s (model %s)", ENV, url, model_flag or backend.model)
    return cfg.model_copy(update={"backend": backend})
