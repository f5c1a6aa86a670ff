"""The textbook-synthesis run: plan -> generate -> check -> verify -> post-filter -> publish.

    plan       deterministic seed draws per recipe, no exact prompt repeats, cut to this shard (plan.py)
    generate   one teacher request per sample through the durable BatchRunner; parse the answer (generators/)
    quality    length, language, refusal/boilerplate, repetition, truncation (verify/text.py)
    verify     math/puzzle: k independent solves must agree with the stated answer (verify/math.py);
               code: reference solution + its tests run in the sandbox (verify/sandbox.py); textbook: n/a
    near_dedup MinHash-LSH + exact Jaccard within the set, verified rows preferred as survivors
    decontam   benchmark n-gram overlap (curation DecontamIndex)
    edu        optional edu-classifier score / floor
    publish    contract dataset: data/ (DOC columns + provenance, schema.py), rejects/ (every drop with
               stage and reason), report.json/.md, manifest.json written last, then DatasetRoot.publish

Resumable: all teacher calls (generations and solves) go through one SQLite store per shard under
OUTPUT/_work/, keyed by prompt + sampling + model, so a rerun after a kill generates only what is missing and
the published version is rebuilt from the store (no duplicates). Shardable: `Shard(i, n)` keeps a disjoint,
hash-chosen share of the plan; each shard publishes its own version (`<name>-<config hash>-shard-i-of-n`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curation.contract import (
    DatasetRoot,
    Manifest,
    StageCounts,
    config_hash,
    now_iso,
)
from synthesis.teacher import BatchRunner, ResultStore, TeacherResult, make_backend
from synthesis.textbook.generators import GENERATORS, Parsed, ToVerify, Verdict, VerifyContext
from synthesis.textbook.plan import WHOLE, PlannedSample, Shard, build_plan, request_seed
from synthesis.textbook.postfilter import contaminated, edu_scores, near_duplicates
from synthesis.textbook.recipes import RecipeSet
from synthesis.textbook.report import build_report, write_report
from synthesis.textbook.schema import REJECT_SCHEMA, SYNTH_SCHEMA
from synthesis.textbook.seeds import load_web_pool
from synthesis.textbook.verify.text import check_text

log = logging.getLogger(__name__)

STAGES = ["generate", "quality", "verify", "near_dedup", "decontam", "edu"]


@dataclass
class Candidate:
    """One planned sample on its way through the stages."""

    planned: PlannedSample
    result: TeacherResult | None = None
    parsed: Parsed | None = None
    signals: dict = field(default_factory=dict)
    verified: bool | None = None
    verification: dict = field(default_factory=dict)
    edu_score: float | None = None

    @property
    def text(self) -> str | None:
        if self.parsed is not None and self.parsed.text:
            return self.parsed.text
        return self.result.text if self.result is not None else None


@dataclass
class SynthesisResult:
    manifest: Manifest
    version_dir: Path
    report: dict


class _Ledger:
    """Stage bookkeeping: which candidates are alive, and every drop with its stage and reason."""

    def __init__(self, alive: list[Candidate]):
        self.alive = alive
        self.rejected: list[tuple[Candidate, str, str, str]] = []
        self.stages: list[StageCounts] = []

    def stage(self, name: str, drops: dict[int, tuple[str, str]], seconds: float) -> None:
        reasons: dict[str, int] = {}
        for i, (reason, detail) in drops.items():
            self.rejected.append((self.alive[i], name, reason, detail))
            reasons[reason] = reasons.get(reason, 0) + 1
        rows_in = len(self.alive)
        self.alive = [c for i, c in enumerate(self.alive) if i not in drops]
        self.stages.append(
            StageCounts(
                stage=name,
                rows_in=rows_in,
                rows_kept=len(self.alive),
                rows_rejected=len(drops),
                reasons=dict(sorted(reasons.items())),
                seconds=round(seconds, 3),
            )
        )
        log.info(
            "stage %-10s in %5d  kept %5d  dropped %4d %s",
            name,
            rows_in,
            len(self.alive),
            len(drops),
            reasons or "",
        )


# ---- stages -----------------------------------------------------------------------------------------


def _generate(led: _Ledger, runner: BatchRunner) -> dict:
    t0 = time.perf_counter()
    requests = [c.planned.request for c in led.alive]
    report = runner.run(requests)
    drops = {}
    for i, (c, res) in enumerate(zip(led.alive, runner.results(requests))):
        c.result = res
        if res is None:
            drops[i] = ("teacher_missing", "no result in the store")
        elif res.error_type == "schema_invalid":  # answered, but not JSON of the schema (e.g. cut off)
            drops[i] = ("unparseable:schema_invalid", (res.error or "")[:500])
        elif not res.ok:
            drops[i] = ("teacher_failed", f"{res.error_type}: {res.error}"[:500])
        else:
            c.parsed = GENERATORS[c.planned.recipe.generator].read(res, c.planned.seed)
            if not c.parsed.ok:
                drops[i] = (f"unparseable:{c.parsed.reason}", c.parsed.detail or "")
    led.stage("generate", drops, time.perf_counter() - t0)
    return _batch_dict(report)


def _quality(led: _Ledger) -> None:
    t0 = time.perf_counter()
    drops = {}
    for i, c in enumerate(led.alive):
        v = check_text(
            c.parsed.text,
            c.planned.recipe.filters,
            c.result.finish_reason,
            lang_text=GENERATORS[c.planned.recipe.generator].prose(c.parsed),
        )
        c.signals = v.signals
        if v.reason:
            drops[i] = (v.reason, v.detail or "")
    led.stage("quality", drops, time.perf_counter() - t0)


def _verify(led: _Ledger, runner: BatchRunner, set_seed: int, workers: int) -> dict:
    """Each generator verifies its own samples (generators/: solves, sandboxed tests, nothing)."""
    t0 = time.perf_counter()
    ctx = VerifyContext(runner, lambda sample_id, j: request_seed(set_seed, sample_id, "solve", j), workers)
    by_kind: dict[str, list[int]] = {}
    for i, c in enumerate(led.alive):
        by_kind.setdefault(c.planned.recipe.generator, []).append(i)
    verdicts: dict[int, Verdict] = {}
    for kind, idx in by_kind.items():
        items = [
            ToVerify(
                c.planned.sample_id,
                c.parsed,
                c.planned.recipe.verify,
                c.planned.request.template_version,
                c.planned.request.response_schema is not None,
            )
            for c in (led.alive[i] for i in idx)
        ]
        verdicts.update(zip(idx, GENERATORS[kind].verify(items, ctx)))
    drops = {}
    for i, c in enumerate(led.alive):
        v = verdicts[i]
        c.verified, c.verification = v.verified, {**v.evidence, "kind": v.kind} if v.kind else v.evidence
        if v.verified is False and c.planned.recipe.verify.require_verified:
            detail = json.dumps(
                {
                    k: v.evidence.get(k)
                    for k in ("claimed", "solve_answers", "reason", "stderr")
                    if k in v.evidence
                }
            )[:1000]
            drops[i] = (v.reason, detail)
    led.stage("verify", drops, time.perf_counter() - t0)
    return _batches_dict(ctx.reports)


def _postfilter(led: _Ledger, rs: RecipeSet) -> None:
    # survivors of a near-duplicate cluster: verified first, then not-applicable, then flagged unverified
    rank = {True: 0, None: 1, False: 2}
    led.alive.sort(key=lambda c: (rank[c.verified], c.planned.sample_id))
    t0 = time.perf_counter()
    drops, _ = near_duplicates(
        [c.planned.sample_id for c in led.alive], [c.text for c in led.alive], rs.postfilter.near_dedup
    )
    led.stage("near_dedup", {d.index: (d.reason, d.detail) for d in drops}, time.perf_counter() - t0)
    t0 = time.perf_counter()
    drops = contaminated([c.text for c in led.alive], rs.postfilter.decontam)
    led.stage("decontam", {d.index: (d.reason, d.detail) for d in drops}, time.perf_counter() - t0)
    if rs.postfilter.edu is not None:
        t0 = time.perf_counter()
        scores, drops = edu_scores([c.text for c in led.alive], rs.postfilter.edu) if led.alive else ([], [])
        for c, s in zip(led.alive, scores):
            c.edu_score = round(float(s), 4)
        led.stage("edu", {d.index: (d.reason, d.detail) for d in drops}, time.perf_counter() - t0)


# ---- rows and publishing ------------------------------------------------------------------------------


def _row(c: Candidate, model_id: str, backend: str, source_file: str, shard: Shard, created: str) -> dict:
    p, res, parsed = c.planned, c.result, c.parsed
    fields = dict(parsed.fields) if parsed is not None else {}
    return {
        "id": p.sample_id,
        "text": c.text,
        "url": None,
        "title": fields.get("title") or p.seed.topic,
        "date": created[:10],
        "crawl_id": None,
        "source_format": "synthetic",
        "source_file": source_file,
        "lang": c.signals.get("lang"),
        "lang_score": c.signals.get("lang_score"),
        "recipe": p.recipe.name,
        "generator": p.recipe.generator,
        "template_version": p.request.template_version,
        **{k: v for k, v in p.seed.provenance().items()},
        "prompt": p.request.messages[-1].content,
        "teacher_model": model_id,
        "teacher_backend": backend,
        "request_key": p.request.key(model_id),
        "sampling": p.request.sampling.model_dump_json(),
        "finish_reason": res.finish_reason if res is not None else None,
        "completion_tokens": res.completion_tokens if res is not None else None,
        "answer": fields.get("answer"),
        "parts": json.dumps(fields, ensure_ascii=False) if fields else None,
        "verified": c.verified,
        "verification": json.dumps(c.verification, ensure_ascii=False) if c.verification else None,
        "verification_kind": c.verification.get("kind"),
        "quality_signals": json.dumps(c.signals) if c.signals else None,
        "edu_score": c.edu_score,
        "shard": str(shard),
    }


def _batch_dict(report) -> dict:
    return {
        "requests": report.requests,
        "skipped": report.skipped,
        "generated": report.generated,
        "failed": report.failed,
        "completion_tokens": report.completion_tokens,
        "seconds": round(report.seconds, 2),
        "tokens_per_s": round(report.tokens_per_s, 2),
    }


def _batches_dict(reports: list) -> dict:
    """Several teacher batches (one per generator that asked for solves) summed as one; {} when none ran."""
    if not reports:
        return {}
    keys = ("requests", "skipped", "generated", "failed", "completion_tokens")
    out = {k: sum(getattr(r, k) for r in reports) for k in keys}
    seconds = sum(r.seconds for r in reports)
    return {
        **out,
        "seconds": round(seconds, 2),
        "tokens_per_s": round(out["completion_tokens"] / seconds, 2) if seconds else 0.0,
    }


def default_run_id(rs: RecipeSet, shard: Shard) -> str:
    suffix = f"-shard-{shard}" if shard.count > 1 else ""
    return f"{rs.name}-{config_hash(rs.model_dump(mode='json'))[:10]}{suffix}"


def _teacher_stages(
    led: _Ledger, rs: RecipeSet, backend, store_path: Path, progress: bool, sandbox_workers: int
) -> dict:
    """generate, quality and verify, inside one resumable teacher store (generate and verify ask the
    teacher; quality sits between them). Returns the teacher batches' counts by stage."""
    batches = {}
    with ResultStore(store_path, fsync=rs.teacher.store_fsync) as store:
        runner = BatchRunner(backend, store, retry_failed=rs.teacher.retry_failed, progress=progress)
        batches["generate"] = _generate(led, runner)
        _quality(led)
        batches["verify"] = _verify(led, runner, rs.seed, sandbox_workers)
    return batches


def _rows(
    led: _Ledger, backend, source_file: str, shard: Shard, created: str
) -> tuple[list[dict], list[dict]]:
    """(kept rows sorted by id, reject rows with their stage, reason and detail) of the finished ledger."""

    def rows(cands):
        return [_row(c, backend.model_id, backend.name, source_file, shard, created) for c in cands]

    kept = sorted(rows(led.alive), key=lambda r: r["id"])
    rejected = [
        {**r, "reject_stage": st, "reject_reason": why, "reject_detail": detail}
        for r, (_, st, why, detail) in zip(rows([x[0] for x in led.rejected]), led.rejected)
    ]
    return kept, rejected


def run_synthesis(
    rs: RecipeSet,
    output: str | Path,
    *,
    recipes_path: str | Path = "<recipes>",
    shard: Shard = WHOLE,
    backend=None,
    run_id: str | None = None,
    progress: bool = False,
    sandbox_workers: int = 2,
) -> SynthesisResult:
    """Run (or resume) the recipes into `output/<run_id>/`. `backend` overrides the recipe file's teacher
    (tests pass a started loopback server); it is then not closed here."""
    t0 = time.perf_counter()
    root = DatasetRoot(output)
    root.root.mkdir(parents=True, exist_ok=True)
    needs_web = any(r.web_share > 0 for r in rs.recipes)
    web_pool = load_web_pool(rs.web_seeds) if needs_web and rs.web_seeds else None
    plan = build_plan(rs, web_pool, shard)
    led = _Ledger([Candidate(s) for s in plan.samples])
    own_backend = backend is None
    backend = backend or make_backend(rs.teacher.backend)
    try:
        store_path = root.root / "_work" / f"teacher-shard-{shard}.sqlite"
        batches = _teacher_stages(led, rs, backend, store_path, progress, sandbox_workers)
    finally:
        if own_backend:
            backend.close()
    _postfilter(led, rs)

    run_id = run_id or default_run_id(rs, shard)
    created = now_iso()
    kept, rejected = _rows(led, backend, str(recipes_path), shard, created)
    report = build_report(rs, plan.planned, plan.exhausted, kept, rejected)
    # shards of one run share the root and publish at the same time: each cleans only its own leftovers
    with root.building(run_id, set_current=shard.count == 1, clean="own") as build:
        staging = build.staging
        (staging / "data").mkdir()
        (staging / "rejects").mkdir()
        pq.write_table(
            pa.Table.from_pylist(kept, schema=SYNTH_SCHEMA), staging / "data" / f"part-{shard}.parquet"
        )
        pq.write_table(
            pa.Table.from_pylist(rejected, schema=REJECT_SCHEMA),
            staging / "rejects" / f"part-{shard}.parquet",
        )
        write_report(report, staging)
        conf = {**rs.model_dump(mode="json"), "shard": str(shard)}
        manifest = build.manifest(
            dataset="synthetic",
            created_at=created,
            inputs=[str(recipes_path)] + ([rs.web_seeds.source] if web_pool else []),
            config=conf,
            stages=led.stages,
            rows=len(kept),
            rejected_rows=len(rejected),
            columns=SYNTH_SCHEMA.names,
            timings={"total": round(time.perf_counter() - t0, 3)},
            extra={
                "teacher_model": backend.model_id,
                "teacher_backend": backend.name,
                "shard": str(shard),
                "planned": plan.planned,
                "prompt_space_exhausted": plan.exhausted,
                "batches": batches,
                "totals": report["totals"],
            },
        )
    log.info("synthetic %s: %d kept, %d rejected -> %s", run_id, len(kept), len(rejected), build.final)
    return SynthesisResult(manifest, build.final, report)
