"""The batch runner: submit requests, get every answer exactly once, durably, across crashes and reruns.

How a caller uses it (edu labelling, textbook synthesis, the `generate` CLI)::

    from synthesis.teacher import (BatchRunner, ChatMessage, SamplingParams, TeacherConfig,
                                   TeacherRequest, make_backend)

    schema = {"type": "object", "properties": {"score": {"type": "integer", "minimum": 0, "maximum": 5}},
              "required": ["score"]}
    requests = [TeacherRequest(id=doc_id,
                               messages=[ChatMessage(role="user", content=prompt_for(text))],
                               sampling=SamplingParams(max_tokens=32, temperature=0.0),
                               response_schema=schema, template_version="edu-v1")
                for doc_id, text in docs]
    cfg = TeacherConfig.model_validate(yaml_dict)          # or TeacherConfig() = embedded SmolLM2
    with make_backend(cfg.backend) as backend:
        runner = BatchRunner(backend, "out/edu/teacher.sqlite")
        report = runner.run(requests)                      # resumable: finished keys are skipped
        results = runner.results(requests)                 # aligned with `requests`
    for req, res in zip(requests, results):
        if res.ok:
            use(req.id, res.parsed["score"])               # res.text / res.choices for raw text
        else:
            count_reject(req.id, res.error_type, res.error)

Guarantees:
- Every request key ends up with exactly one row in the store (`status` ok or failed). Duplicate requests
  (same key) in one batch are generated once.
- A rerun skips keys whose row is "ok"; failed keys are retried unless `retry_failed=False`, except answers
  that arrived but were unusable (`FINAL_ERRORS`: not JSON of the schema, fewer samples than `n`): the same
  request (same key, same seed) reproduces them, so retrying costs tokens and changes nothing.
- A run killed at any instant (SIGKILL included) loses only the requests in flight; the rerun generates just
  those. Results are committed one by one (or one micro-batch at a time for batched engines).
- A request with `response_schema` whose completion does not parse/validate is stored as failed with
  error_type="schema_invalid" and the raw text kept for audit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from curation.contract import new_run_id, now_iso
from synthesis.teacher.backends.base import Backend, Generation
from synthesis.teacher.request import Choice, TeacherRequest, TeacherResult
from synthesis.teacher.store import ResultStore
from synthesis.teacher.structured import SchemaViolation, parse_structured

log = logging.getLogger(__name__)

#: failures of a completion that did arrive; a rerun of the same key would reproduce them, so never retried
FINAL_ERRORS = frozenset({"schema_invalid", "n_mismatch"})


@dataclass
class BatchReport:
    """Counts for one `run` call. requests = unique keys submitted; skipped were already finished."""

    run_id: str
    requests: int
    skipped: int = 0
    generated: int = 0
    ok: int = 0
    failed: int = 0
    failure_types: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    @property
    def requests_per_s(self) -> float:
        return self.generated / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_s(self) -> float:
        """Completion tokens per second of wall time (the figure that matters for generation)."""
        return self.completion_tokens / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        fails = ", ".join(f"{k}={v}" for k, v in sorted(self.failure_types.items())) or "-"
        return (
            f"run {self.run_id}: {self.requests} unique requests, {self.skipped} already done, "
            f"{self.generated} generated ({self.ok} ok, {self.failed} failed: {fails}); "
            f"{self.completion_tokens} completion tokens in {self.seconds:.1f}s = "
            f"{self.requests_per_s:.2f} req/s, {self.tokens_per_s:.1f} tok/s"
        )


class BatchRunner:
    """Runs requests through one backend into one durable store."""

    def __init__(
        self,
        backend: Backend,
        store: ResultStore | str | Path,
        *,
        retry_failed: bool = True,
        progress: bool = False,
        run_id: str | None = None,
    ):
        self.backend = backend
        self.store = store if isinstance(store, ResultStore) else ResultStore(store)
        self.retry_failed = retry_failed
        self.progress = progress
        self.run_id = run_id or new_run_id("teacher-")

    def keys(self, requests: Sequence[TeacherRequest]) -> list[str]:
        model_id = self.backend.model_id
        return [r.key(model_id) for r in requests]

    def pending(self, requests: Sequence[TeacherRequest]) -> tuple[list[str], list[TeacherRequest], int]:
        """(keys of all requests, unique requests still to run, number of unique keys already done)."""
        keys = self.keys(requests)
        unique: dict[str, TeacherRequest] = {}
        for k, r in zip(keys, requests):
            unique.setdefault(k, r)
        status = self.store.statuses(unique)
        done = {k for k, s in status.items() if s == "ok" or (s == "failed" and not self.retry_failed)}
        if self.retry_failed:
            done |= {k for k, e in self.store.failure_types(unique).items() if e in FINAL_ERRORS}
        todo = [r for k, r in unique.items() if k not in done]
        return keys, todo, len(done)

    def run(self, requests: Sequence[TeacherRequest]) -> BatchReport:
        """Generate every request not already finished in the store. Blocking; safe to call again."""
        _, todo, skipped = self.pending(requests)
        report = BatchReport(run_id=self.run_id, requests=len(todo) + skipped, skipped=skipped)
        log.info(
            "teacher run %s on %s/%s: %d unique requests, %d already done, %d to generate",
            self.run_id,
            self.backend.name,
            self.backend.model_id,
            report.requests,
            skipped,
            len(todo),
        )
        if todo:
            self.backend.start()
            t0 = time.perf_counter()
            asyncio.run(self._generate(todo, report, t0))
            report.seconds = time.perf_counter() - t0
        log.info(report.summary())
        return report

    def results(self, requests: Sequence[TeacherRequest]) -> list[TeacherResult | None]:
        """Stored results aligned with `requests` (None where a key has no row yet)."""
        keys = self.keys(requests)
        found = self.store.get_many(set(keys))
        return [found.get(k) for k in keys]

    async def _generate(self, todo: list[TeacherRequest], report: BatchReport, t0: float) -> None:
        bar = tqdm(total=len(todo), unit="req", disable=not self.progress, dynamic_ncols=True, smoothing=0.1)
        try:
            async for gen in self.backend.generate(todo):
                result = self.to_result(todo[gen.index], gen)
                self.store.put(result)
                report.generated += 1
                if result.ok:
                    report.ok += 1
                else:
                    report.failed += 1
                    report.failure_types[result.error_type or "unknown"] = (
                        report.failure_types.get(result.error_type or "unknown", 0) + 1
                    )
                report.prompt_tokens += result.prompt_tokens or 0
                report.completion_tokens += result.completion_tokens or 0
                bar.update(1)
                elapsed = max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix_str(
                    f"{report.completion_tokens / elapsed:.1f} tok/s, {report.failed} failed", refresh=False
                )
                if report.generated % 100 == 0:
                    log.info(
                        "%d/%d generated, %.1f tok/s",
                        report.generated,
                        len(todo),
                        report.completion_tokens / elapsed,
                    )
        finally:
            bar.close()

    def to_result(self, request: TeacherRequest, gen: Generation) -> TeacherResult:
        """A backend Generation -> the stored record, validating structured output on the way."""
        choices = [Choice(text=t, finish_reason=f) for t, f in zip(gen.texts, gen.finish_reasons)]
        status, error_type, error = (
            ("failed", gen.error_type, gen.error) if gen.failed else ("ok", None, None)
        )
        if not gen.failed and request.response_schema is not None:
            problems = []
            for i, c in enumerate(choices):
                try:
                    c.parsed = parse_structured(c.text, request.response_schema)
                except SchemaViolation as e:
                    problems.append(f"choice {i}: {e}")
            if problems:
                status, error_type, error = "failed", "schema_invalid", "; ".join(problems)[:2000]
        if not gen.failed and not choices:
            status, error_type, error = "failed", "empty_response", "backend returned no completion"
        elif not gen.failed and len(choices) != request.sampling.n:
            # e.g. llama.cpp's server ignores `n`: never pass off fewer samples than were asked for
            status, error_type, error = (
                "failed",
                "n_mismatch",
                (
                    f"asked for n={request.sampling.n} completions, backend returned {len(choices)}; "
                    f"send separate requests with distinct seeds instead"
                ),
            )
        return TeacherResult(
            key=request.key(self.backend.model_id),
            request_id=request.id,
            status=status,
            choices=choices,
            error_type=error_type,
            error=error,
            model_id=self.backend.model_id,
            backend=self.backend.name,
            sampling=request.sampling,
            template_version=request.template_version,
            prompt_tokens=gen.prompt_tokens,
            completion_tokens=gen.completion_tokens,
            latency_s=round(gen.latency_s, 4) if gen.latency_s is not None else None,
            attempts=gen.attempts,
            run_id=self.run_id,
            created_at=now_iso(),
        )
