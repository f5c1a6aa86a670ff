"""`python -m synthesis generate --requests FILE --output DIR [--backend ...]`: an ad-hoc teacher batch.

FILE is JSONL, one TeacherRequest per line, e.g.
    {"id": "q1", "messages": [{"role": "user", "content": "Define entropy."}], "sampling": {"max_tokens": 64}}
    {"id": "q2", "prompt": "Once upon a time", "sampling": {"max_tokens": 32, "temperature": 0.7, "seed": 1}}
or a line of the OpenAI Batch API (what vLLM's run_batch and hosted batch APIs take), e.g.
    {"custom_id": "q3", "method": "POST", "url": "/v1/chat/completions",
     "body": {"model": "m", "messages": [...], "max_tokens": 64, "temperature": 0.7,
              "response_format": {...}}}
DIR receives teacher.sqlite (the durable store: rerunning the same command resumes), results.parquet (a
snapshot for DuckDB/Spark), report.json (the counts of this run) and, with --output-format openai_batch,
results.jsonl in the Batch API's output format (one line per request, in file order).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import yaml
from pydantic import ValidationError

from synthesis.teacher.backends.base import TeacherBackendError
from synthesis.teacher.batch import BatchRunner
from synthesis.teacher.config import TeacherConfig
from synthesis.teacher.endpoint import apply_teacher_base_url
from synthesis.teacher.openai_batch import batch_output_line, is_batch_line, request_from_batch_line
from synthesis.teacher.registry import BACKEND_KINDS, BACKENDS, make_backend
from synthesis.teacher.request import TeacherRequest
from synthesis.teacher.store import ResultStore
from synthesis.teacher.structured import check_schema

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="run a JSONL file of teacher requests into a durable, resumable store",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--requests", required=True, type=Path, help="JSONL file, one TeacherRequest per line")
    p.add_argument("--output", required=True, type=Path, help="output folder (store + parquet snapshot)")
    p.add_argument("--config", type=Path, help="YAML TeacherConfig; flags below override it")
    p.add_argument(
        "--output-format",
        choices=["parquet", "openai_batch"],
        default="parquet",
        help="openai_batch: also write results.jsonl in the OpenAI Batch API output format",
    )
    add_backend_options(p)
    p.set_defaults(func=run)


def add_backend_options(p: argparse.ArgumentParser) -> None:
    """The teacher backend flags, shared by every command that runs a teacher batch."""
    p.add_argument(
        "--backend", choices=BACKEND_KINDS, help="default: the config's, else embedded (SmolLM2 on CPU)"
    )
    p.add_argument(
        "--model",
        help="the backend's model: openai_http: served model name; transformers: HF dir "
        "or .gguf; vllm: repo id or dir; embedded: .gguf file",
    )
    p.add_argument("--base-url", help="openai_http: server root incl. /v1")
    p.add_argument("--concurrency", type=int, help="openai_http/embedded: requests in flight")
    p.add_argument("--batch-size", type=int, help="transformers/vllm: requests per engine call")
    p.add_argument("--tensor-parallel-size", type=int, help="vllm: GPUs per model replica")
    p.add_argument("--max-attempts", type=int, help="openai_http/embedded: attempts per request")
    p.add_argument("--request-timeout", type=float, help="openai_http/embedded: seconds per attempt")
    p.add_argument("--no-retry-failed", action="store_true", help="keep stored failures instead of retrying")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def load_requests(path: Path) -> list[TeacherRequest]:
    """Parse the JSONL file; a bad line is an error naming the file, line and field."""
    if not path.is_file():
        raise FileNotFoundError(f"requests file {path} does not exist")
    requests = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                req = (
                    request_from_batch_line(raw) if is_batch_line(raw) else TeacherRequest.model_validate(raw)
                )
                if req.response_schema is not None:
                    check_schema(req.response_schema)
            except ValidationError as e:
                err = e.errors()[0]
                field = ".".join(str(x) for x in err["loc"]) or "<line>"
                raise ValueError(
                    f"{path}:{lineno}: field {field!r}: {err['msg']} (input: {str(err.get('input'))[:120]!r})"
                ) from None
            except ValueError as e:  # json.JSONDecodeError included
                raise ValueError(f"{path}:{lineno}: {e}") from None
            requests.append(req)
    if not requests:
        raise ValueError(f"requests file {path} holds no requests")
    return requests


def backend_config(args: argparse.Namespace) -> TeacherConfig:
    data = {}
    if args.config:
        if not args.config.is_file():
            raise FileNotFoundError(f"teacher config {args.config} does not exist")
        data = yaml.safe_load(args.config.read_text()) or {}
    return teacher_config(data, args, source=args.config)


def teacher_config(data: dict, args: argparse.Namespace, source: object = None) -> TeacherConfig:
    """A TeacherConfig from `data` (a YAML section) with the command-line backend flags applied on top, and
    `TEACHER_BASE_URL` between the two (see synthesis/teacher/endpoint.py)."""
    try:
        cfg = TeacherConfig.model_validate(data)
    except ValidationError as e:
        raise ValueError(f"teacher config {source}: {e}") from None
    cfg = apply_teacher_base_url(
        cfg, backend_flag=args.backend, base_url_flag=args.base_url, model_flag=args.model
    )
    b = (
        cfg.backend.model_dump(exclude_none=True)
        if (args.backend or cfg.backend.kind) == cfg.backend.kind
        else {}
    )
    kind = args.backend or cfg.backend.kind
    b["kind"] = kind
    model = BACKENDS[kind].config
    if args.model:
        b[model.model_field] = args.model
    overrides = {
        "base_url": args.base_url,
        "concurrency": args.concurrency,
        "batch_size": args.batch_size,
        "tensor_parallel_size": args.tensor_parallel_size,
        "request_timeout_s": args.request_timeout,
    }
    b.update({k: v for k, v in overrides.items() if v is not None})
    if args.max_attempts is not None:
        b.setdefault("retry", {})["max_attempts"] = args.max_attempts
    try:
        backend = model.model_validate(b)
    except ValidationError as e:
        err = e.errors()[0]
        raise ValueError(
            f"backend {kind!r}: field {'.'.join(map(str, err['loc']))!r}: {err['msg']}"
        ) from None
    return cfg.model_copy(
        update={"backend": backend, "retry_failed": cfg.retry_failed and not args.no_retry_failed}
    )


def run(args: argparse.Namespace) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    requests = load_requests(args.requests)
    cfg = backend_config(args)
    args.output.mkdir(parents=True, exist_ok=True)
    try:
        backend = make_backend(cfg.backend)
    except TeacherBackendError as e:
        raise ValueError(str(e)) from None  # the CLI prints it as a one-line error, exit code 2
    # The runner starts the backend only when something is left to generate (a finished rerun loads no model).
    try:
        with ResultStore(args.output / "teacher.sqlite", fsync=cfg.store_fsync) as store:
            runner = BatchRunner(backend, store, retry_failed=cfg.retry_failed, progress=not args.no_progress)
            report = runner.run(requests)
            results = runner.results(requests)
            store.export_parquet(args.output / "results.parquet")
        if args.output_format == "openai_batch":
            with (args.output / "results.jsonl").open("w", encoding="utf-8") as f:
                for req, res in zip(requests, results):
                    f.write(
                        json.dumps(batch_output_line(req, res, backend.model_id), ensure_ascii=False) + "\n"
                    )
    except TeacherBackendError as e:
        raise ValueError(str(e)) from None
    finally:
        backend.close()
    missing = sum(r is None for r in results)
    failed = sum(1 for r in results if r is not None and not r.ok)
    (args.output / "report.json").write_text(
        json.dumps(
            {
                **report.__dict__,
                "requests_in_file": len(requests),
                "ok_in_store": len(requests) - failed - missing,
                "failed_in_store": failed,
                "tokens_per_s": report.tokens_per_s,
                "requests_per_s": report.requests_per_s,
                "backend": backend.name,
                "model_id": backend.model_id,
            },
            indent=2,
        )
    )
    print(report.summary())
    print(
        f"{'requests in file':<24}{len(requests):>8}\n"
        f"{'ok in store':<24}{len(requests) - failed - missing:>8}\n"
        f"{'failed in store':<24}{failed:>8}\n{'store':<24}{args.output / 'teacher.sqlite'}"
    )
    return 1 if failed or missing else 0
