"""Researcher review of a synthetic candidate version before it is published.

The reviewer sees the version's report and a random sample per generator (`review_sample`, `review_body`: the
markdown shown by Airflow's human-in-the-loop task), approves or rejects publication, and may flag items.
`apply_review` then records the decision in the candidate (before the gate publishes it): flagged items leave
`data/` for `rejects/` (stage `review`, reason `reviewer_flagged`), the manifest gains a `review` stage (so
the counts still chain) and `extra.review` = decision, reviewer, time, flagged ids, and whether the review was
skipped (auto-approved unattended runs say so).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.contract import Manifest, StageCounts, iter_parquet_files, now_iso

STAGE = "review"
REASON = "reviewer_flagged"
EXCERPT_CHARS = 600


def _data(version_dir: Path) -> list[tuple[Path, pa.Table]]:
    return [(f, pq.read_table(f)) for f in iter_parquet_files(version_dir, "data")]


def review_sample(version_dir: str | Path, per_generator: int, seed: int = 0) -> list[dict]:
    """Up to `per_generator` kept items per generator, drawn at random (seeded): id, generator, recipe,
    verification kind and a text excerpt."""
    rows = [
        r
        for _, t in _data(Path(version_dir))
        for r in t.select(["id", "generator", "recipe", "verification_kind", "text"]).to_pylist()
    ]
    by_gen: dict[str, list[dict]] = {}
    for r in sorted(rows, key=lambda r: r["id"]):
        by_gen.setdefault(r["generator"], []).append(r)
    rng = random.Random(seed)
    out = []
    for gen in sorted(by_gen):
        for r in rng.sample(by_gen[gen], min(per_generator, len(by_gen[gen]))):
            out.append({**r, "text": (r["text"] or "")[:EXCERPT_CHARS]})
    return out


def review_body(version_dir: str | Path, sample: list[dict]) -> str:
    """Markdown for the reviewer: the version's counts per stage and the sampled items."""
    m = Manifest.read(Path(version_dir))
    lines = [
        f"## Synthetic version `{m.version}`: {m.rows} kept, {m.rejected_rows} rejected",
        "",
        "| stage | in | kept | rejected | reasons |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {s.stage} | {s.rows_in} | {s.rows_kept} | {s.rows_rejected} | {json.dumps(s.reasons)} |"
        for s in m.stages
    ]
    lines += ["", f"### Sample ({len(sample)} items). Flag an item by listing its id.", ""]
    for r in sample:
        lines += [
            f"**{r['id']}** ({r['generator']}, verified by {r['verification_kind'] or 'nothing'})",
            "",
            "```",
            r["text"],
            "```",
            "",
        ]
    return "\n".join(lines)


def apply_review(
    version_dir: str | Path,
    *,
    approved: bool,
    reviewer: str,
    flagged: Iterable[str] = (),
    skipped: bool = False,
    at: str | None = None,
) -> Manifest:
    """Record the decision in the candidate version (see the module docstring) and return its manifest.
    Flagged ids that are not kept items are an error naming them (a typo must not pass silently). Applying a
    review to a candidate that already records one changes nothing (task retries are safe)."""
    version_dir = Path(version_dir)
    m = Manifest.read(version_dir)
    if "review" in m.extra:  # a retried task: the decision is already recorded
        return m
    flagged = sorted(set(flagged))
    tables = _data(version_dir)
    present = {i for _, t in tables for i in t.column("id").to_pylist()}
    unknown = [i for i in flagged if i not in present]
    if unknown:
        raise ValueError(f"review of {version_dir}: flagged id(s) {unknown} are not items of this version")
    removed = []
    if flagged:
        ids = pa.array(flagged)
        for f, t in tables:
            hit = pc.is_in(t.column("id"), value_set=ids)
            if pc.any(hit).as_py():
                removed.append(t.filter(hit))
                pq.write_table(t.filter(pc.invert(hit)), f)
        rej = pa.concat_tables(removed)
        n = rej.num_rows
        rej = (
            rej.append_column("reject_stage", pa.array([STAGE] * n, pa.string()))
            .append_column("reject_reason", pa.array([REASON] * n, pa.string()))
            .append_column("reject_detail", pa.array([f"flagged by {reviewer}"] * n, pa.string()))
        )
        pq.write_table(rej, version_dir / "rejects" / f"{STAGE}.parquet")
    rows_in = m.rows
    m.stages.append(
        StageCounts(
            stage=STAGE,
            rows_in=rows_in,
            rows_kept=rows_in - len(flagged),
            rows_rejected=len(flagged),
            reasons={REASON: len(flagged)} if flagged else {},
        )
    )
    m.rows, m.rejected_rows = rows_in - len(flagged), m.rejected_rows + len(flagged)
    m.extra["review"] = {
        "decision": "approved" if approved else "rejected",
        "reviewer": reviewer,
        "at": at or now_iso(),
        "flagged": flagged,
        "skipped": skipped,
    }
    m.check()
    m.write(version_dir)
    return m


def decision_from_hitl(payload: dict, on_timeout: str = "reject") -> dict:
    """The review decision from Airflow's HITL task result (chosen_options, params_input, responded_by_user,
    responded_at, timedout): keyword arguments for `apply_review`. A timed-out review takes `on_timeout`
    (approve | reject), and says so in the reviewer field."""
    if on_timeout not in ("approve", "reject"):
        raise ValueError(f"on_timeout={on_timeout!r}: expected approve or reject")
    timed_out = bool(payload.get("timedout"))
    user = payload.get("responded_by_user") or {}
    raw = (payload.get("params_input") or {}).get("flag_ids") or []
    flagged = [s.strip() for s in (raw.split(",") if isinstance(raw, str) else raw) if str(s).strip()]
    approved = on_timeout == "approve" if timed_out else payload.get("chosen_options") == ["Approve"]
    at = payload.get("responded_at")
    return {
        "approved": approved,
        "flagged": [] if timed_out else flagged,
        "reviewer": f"timeout ({on_timeout})"
        if timed_out
        else (user.get("name") or user.get("id") or "unknown"),
        "at": at.isoformat() if hasattr(at, "isoformat") else at,
    }
