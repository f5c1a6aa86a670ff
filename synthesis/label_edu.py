"""Teacher labelling for the edu classifier: sample documents, ask the teacher for an additive 0-5
educational-value score, parse it robustly, publish a label dataset `curation edu train` reads.

  sample   seeded, stratified by (domain, length bucket): strata are visited round-robin, each in a seeded
           pseudo-random order, so N labels spread over as many sites and lengths as the corpus has
  ask      our additive rubric (PROMPT_VERSION), through the teacher layer's BatchRunner: the store makes the
           batch resumable (a rerun generates only what is missing) and keys each answer by model, prompt and
           sampling parameters
  parse    JSON ({"score": .., "rationale": ..}, fenced or bare), an explicit "Educational score: N" line, or
           an answer that is only the number; anything else (no score, out of range, two different scores) is
           recorded as unparseable with the raw answer, never guessed (edu_score.py)
  publish  contract dataset: data/ = labelled documents (score, rationale, teacher model, prompt version,
           sampling params, parse method), rejects/ = unparseable answers and teacher failures with the reason

A stronger teacher (vLLM or any OpenAI-compatible endpoint) is a TeacherConfig change only; `structured`
asks the backend for schema-constrained JSON where it supports it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from curation.contract import (
    DatasetRoot,
    Manifest,
    StageCounts,
    new_run_id,
)
from curation.edu.text_source import open_text_source
from synthesis.edu_score import MAX_SCORE, parse_edu_score
from synthesis.teacher import (
    BatchRunner,
    ChatMessage,
    ResultStore,
    SamplingParams,
    TeacherConfig,
    TeacherRequest,
    TeacherResult,
    make_backend,
)

log = logging.getLogger(__name__)

PROMPT_VERSION = "edu-additive-v1"
STAGE = "label_edu"

SYSTEM_PROMPT = (
    "You rate web pages for how useful they would be for teaching at primary to secondary school level.\n"
    "Score the page with this additive rubric: start at 0 and add one point for each criterion it meets.\n"
    "1 point: it gives some basic information relevant to an educational topic, even if mixed with ads or "
    "off-topic material.\n"
    "+1 point: it covers elements of an educational topic coherently, even if it is incomplete or not "
    "written for teaching.\n"
    "+1 point: it is appropriate and useful for teaching at school level and introduces key concepts of a "
    "subject clearly.\n"
    "+1 point: it is focused and well organised like a textbook chapter or tutorial, with explanations, "
    "examples or exercises.\n"
    "+1 point: it is outstanding teaching material: thorough, accurate, clear reasoning a student could "
    "learn from directly.\n"
    "Advertising, navigation menus, product listings, news gossip and adult content earn no points."
)

USER_TEMPLATE = """Page:
<<<
{text}
>>>

Briefly justify your rating in at most 80 words, then give the score on its own last line as
"Educational score: <points>" where <points> is an integer from 0 to 5."""

USER_TEMPLATE_JSON = """Page:
<<<
{text}
>>>

Answer only with JSON: {{"rationale": "<one or two sentences>", "score": <integer 0 to 5>}}"""

SCORE_SCHEMA = {
    "type": "object",
    "properties": {
        "rationale": {"type": "string", "maxLength": 400},
        "score": {"type": "integer", "minimum": 0, "maximum": MAX_SCORE},
    },
    "required": ["rationale", "score"],
}


class LabelEduConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    n: int = Field(1000, ge=1)  # documents to label
    seed: int = 0
    length_buckets: list[int] = [500, 1500, 4000]  # character boundaries of the length strata
    max_doc_chars: int = Field(3000, ge=200)  # page text shown to the teacher (its context is limited)
    max_tokens: int = Field(200, ge=8)
    temperature: float = Field(0.0, ge=0)
    structured: bool = False  # JSON-schema constrained answers (vLLM, llama.cpp, OpenAI)


# ---- sampling -------------------------------------------------------------------------------------------


def sample_documents(source: str | Path, n: int, seed: int, length_buckets: list[int]) -> pa.Table:
    """Up to n (id, text, url, domain, length_bucket) rows: strata (domain x length bucket) visited
    round-robin, each stratum in a seeded pseudo-random order. Runs in DuckDB (streams large corpora)."""
    bounds = sorted(int(b) for b in length_buckets)
    case = " ".join(f"WHEN length(text) < {b} THEN '<{b}'" for b in bounds)
    with open_text_source(source, f"label-edu input {source}") as src:
        id_expr = src.id_expr
        url_expr = "CAST(url AS VARCHAR)" if "url" in src.columns else "NULL"
        query = f"""
            WITH docs AS (
                SELECT {id_expr} AS id, text, {url_expr} AS url,
                       coalesce(nullif(regexp_extract(lower({url_expr}),
                                           '^(?:[a-z][a-z0-9+.-]*://)?(?:www\\.)?([^/:?#]+)', 1), ''),
                                'unknown') AS domain,
                       CASE {case} ELSE '>={bounds[-1] if bounds else 0}' END AS length_bucket,
                       md5({id_expr} || '|' || '{int(seed)}') AS h
                FROM {src.table} WHERE text IS NOT NULL AND length(trim(text)) > 0),
            ranked AS (
                SELECT *, row_number() OVER (PARTITION BY domain, length_bucket ORDER BY h) AS rank_in_stratum
                FROM docs)
            SELECT id, text, url, domain, length_bucket FROM ranked
            ORDER BY rank_in_stratum, md5(domain || '|' || length_bucket || '|' || '{int(seed)}'), h
            LIMIT {int(n)}"""
        return src.con.sql(query).to_arrow_table()


# ---- requests -------------------------------------------------------------------------------------------


def build_request(doc_id: str, text: str, cfg: LabelEduConfig) -> TeacherRequest:
    shown = text[: cfg.max_doc_chars]
    template = USER_TEMPLATE_JSON if cfg.structured else USER_TEMPLATE
    return TeacherRequest(
        id=doc_id,
        messages=(
            ChatMessage(role="system", content=SYSTEM_PROMPT),
            ChatMessage(role="user", content=template.format(text=shown)),
        ),
        sampling=SamplingParams(max_tokens=cfg.max_tokens, temperature=cfg.temperature, seed=cfg.seed),
        response_schema=SCORE_SCHEMA if cfg.structured else None,
        template_version=PROMPT_VERSION + ("-json" if cfg.structured else ""),
    )


# ---- the batch ------------------------------------------------------------------------------------------


@dataclass
class LabelRunResult:
    manifest: Manifest
    version_dir: Path
    report: Any  # BatchReport of this run


def label_rows(
    docs: pa.Table,
    requests: list[TeacherRequest],
    results: list[TeacherResult | None],
    model_id: str,
    backend: str,
    cfg: LabelEduConfig,
) -> tuple[list[dict], list[dict]]:
    """(labelled rows, reject rows) from the teacher results aligned with the sampled documents."""
    sampling = json.dumps(requests[0].sampling.model_dump(mode="json"), sort_keys=True) if requests else None
    kept, rejected = [], []
    for doc, req, res in zip(docs.to_pylist(), requests, results):
        base = {
            "id": doc["id"],
            "text": doc["text"],
            "url": doc["url"],
            "domain": doc["domain"],
            "length_bucket": doc["length_bucket"],
            "teacher_model": model_id,
            "teacher_backend": backend,
            "prompt_version": req.template_version,
            "sampling": sampling,
            "request_key": req.key(model_id),
            "raw_response": res.text if res is not None else None,
        }
        if res is None or not res.ok:
            why = "teacher_failed" if res is not None else "teacher_missing"
            detail = f"{res.error_type}: {res.error}"[:500] if res is not None else "no result in the store"
            if res is not None and res.error_type == "schema_invalid":
                why = "unparseable_score"
            rejected.append(
                {
                    **base,
                    "score": None,
                    "rationale": None,
                    "parse_method": None,
                    "reject_stage": STAGE,
                    "reject_reason": why,
                    "reject_detail": detail,
                }
            )
            continue
        parsed = parse_edu_score(res.text)
        row = {**base, "score": parsed.score, "rationale": parsed.rationale, "parse_method": parsed.method}
        if parsed.score is None:
            rejected.append(
                {
                    **row,
                    "reject_stage": STAGE,
                    "reject_reason": "unparseable_score",
                    "reject_detail": parsed.error,
                }
            )
        else:
            kept.append(row)
    return kept, rejected


LABEL_FIELDS = [
    pa.field(n, t)
    for n, t in (
        ("id", pa.string()),
        ("text", pa.string()),
        ("url", pa.string()),
        ("domain", pa.string()),
        ("length_bucket", pa.string()),
        ("score", pa.int64()),
        ("rationale", pa.string()),
        ("parse_method", pa.string()),
        ("teacher_model", pa.string()),
        ("teacher_backend", pa.string()),
        ("prompt_version", pa.string()),
        ("sampling", pa.string()),
        ("request_key", pa.string()),
        ("raw_response", pa.string()),
    )
]
REJECT_EXTRA = [
    pa.field("reject_stage", pa.string()),
    pa.field("reject_reason", pa.string()),
    pa.field("reject_detail", pa.string()),
]


def run_label_edu(
    source: str | Path,
    output: str | Path,
    cfg: LabelEduConfig,
    store: str | Path | None = None,
    run_id: str | None = None,
    backend=None,
    progress: bool = False,
) -> LabelRunResult:
    """Sample, label through the durable batch runner, publish `output/<run_id>/`. `backend` overrides the
    one the config names (tests pass a started loopback server). The store defaults to
    `output/teacher.sqlite`, beside the versions, so every rerun resumes from it."""
    t0 = time.perf_counter()
    docs = _sample(source, cfg)
    requests = [
        build_request(i, t, cfg)
        for i, t in zip(docs.column("id").to_pylist(), docs.column("text").to_pylist())
    ]
    root = DatasetRoot(output)
    root.root.mkdir(parents=True, exist_ok=True)
    own_backend = backend is None
    backend = backend or make_backend(cfg.teacher.backend)
    try:
        with ResultStore(store or root.root / "teacher.sqlite", fsync=cfg.teacher.store_fsync) as st:
            runner = BatchRunner(backend, st, retry_failed=cfg.teacher.retry_failed, progress=progress)
            report = runner.run(requests)
            results = runner.results(requests)
    finally:
        if own_backend:
            backend.close()
    kept, rejected = label_rows(docs, requests, results, backend.model_id, backend.name, cfg)
    return _publish(
        root, run_id or new_run_id("labels-"), source, cfg, requests, kept, rejected, backend, report, t0
    )


def _sample(source: str | Path, cfg: LabelEduConfig) -> pa.Table:
    docs = sample_documents(source, cfg.n, cfg.seed, cfg.length_buckets)
    if docs.num_rows == 0:
        raise ValueError(f"label-edu input {source}: no documents with text")
    log.info(
        "sampled %d documents from %s over %d strata",
        docs.num_rows,
        source,
        len(set(zip(docs.column("domain").to_pylist(), docs.column("length_bucket").to_pylist()))),
    )
    return docs


def _publish(
    root: DatasetRoot,
    run_id: str,
    source: str | Path,
    cfg: LabelEduConfig,
    requests: list[TeacherRequest],
    kept: list[dict],
    rejected: list[dict],
    backend,
    report,
    t0: float,
) -> LabelRunResult:
    """Write data/ and rejects/ and the manifest (counts by reject reason and by score) as `run_id`."""
    with root.building(run_id) as build:
        staging = build.staging
        (staging / "data").mkdir()
        (staging / "rejects").mkdir()
        pq.write_table(
            pa.Table.from_pylist(kept, schema=pa.schema(LABEL_FIELDS)), staging / "data" / "part-0.parquet"
        )
        pq.write_table(
            pa.Table.from_pylist(rejected, schema=pa.schema(LABEL_FIELDS + REJECT_EXTRA)),
            staging / "rejects" / "part-0.parquet",
        )
        reasons: dict[str, int] = {}
        for r in rejected:
            reasons[r["reject_reason"]] = reasons.get(r["reject_reason"], 0) + 1
        score_counts: dict[str, int] = {}
        for r in kept:
            score_counts[str(r["score"])] = score_counts.get(str(r["score"]), 0) + 1
        conf = {"source": str(source), **cfg.model_dump(mode="json"), "prompt_version": PROMPT_VERSION}
        manifest = build.manifest(
            dataset="edu_labels",
            inputs=[str(source)],
            config=conf,
            stages=[
                StageCounts(
                    stage=STAGE,
                    rows_in=len(kept) + len(rejected),
                    rows_kept=len(kept),
                    rows_rejected=len(rejected),
                    reasons=dict(sorted(reasons.items())),
                    seconds=round(report.seconds, 3),
                )
            ],
            rows=len(kept),
            rejected_rows=len(rejected),
            columns=[f.name for f in LABEL_FIELDS],
            timings={"total": round(time.perf_counter() - t0, 3), "teacher": round(report.seconds, 3)},
            extra={
                "teacher_model": backend.model_id,
                "teacher_backend": backend.name,
                "prompt_version": requests[0].template_version,
                "score_counts": dict(sorted(score_counts.items())),
                "batch": {
                    "generated": report.generated,
                    "skipped": report.skipped,
                    "failed": report.failed,
                    "completion_tokens": report.completion_tokens,
                    "tokens_per_s": round(report.tokens_per_s, 2),
                },
            },
        )
    log.info(
        "edu labels %s: %d labelled (%s), %d rejected %s -> %s",
        run_id,
        len(kept),
        score_counts,
        len(rejected),
        reasons,
        build.final,
    )
    return LabelRunResult(manifest, build.final, report)
