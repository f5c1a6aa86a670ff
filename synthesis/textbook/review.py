"""Researcher review of a synthetic candidate version before it is published.

The reviewer sees the version's report and a sample per generator (`review_sample`, `review_body`: the
markdown shown by Airflow's human-in-the-loop task), approves or rejects publication, and may flag items.
`apply_review` then records the decision in the candidate (before the gate publishes it): flagged items leave
`data/` for `rejects/` (stage `review`, reason `reviewer_flagged`), the manifest gains a `review` stage (so
the counts still chain) and `extra.review` = decision, reviewer, time, flagged ids, and whether the review was
skipped (auto-approved unattended runs say so).

Memory is bounded whatever the version's size: every read streams parquet batches (`BATCH_ROWS` rows, only
the columns needed) through `ParquetFile.iter_batches`. The sample is a seeded "bottom-k" per generator: each
item's rank is a hash of (seed, id) and the k lowest ranks are kept (from the `id` and `generator` columns;
texts are then read only from the files holding a chosen item, cut to an excerpt), so it is the same for the
same version and seed whatever the files' order or row groups.
Flagged ids are checked against a stream of the `id` column; only the files that hold one are rewritten,
batch by batch, to a temporary file that atomically replaces the original. Held at once: one batch, k
excerpts per generator, and the flagged rows (as many as the reviewer listed).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from curation.contract import Manifest, StageCounts, iter_parquet_files, now_iso

STAGE = "review"
REASON = "reviewer_flagged"
EXCERPT_CHARS = 600
#: rows per streamed batch: the unit of memory of every pass over the version
BATCH_ROWS = 8192
SAMPLE_COLUMNS = ["id", "generator", "recipe", "verification_kind", "text"]


def _batches(files: Iterable[Path], columns: list[str] | None) -> Iterator[tuple[Path, pa.RecordBatch]]:
    for f in files:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=BATCH_ROWS, columns=columns):
            yield f, batch


def sample_rank(seed: int, item_id: str) -> int:
    """An item's place in the seeded order: the sample is the lowest ranks of each generator."""
    return xxhash.xxh3_64_intdigest(f"{seed}\x00{item_id}".encode())


def review_sample(version_dir: str | Path, per_generator: int, seed: int = 0) -> list[dict]:
    """Up to `per_generator` kept items per generator, drawn at random (seeded bottom-k, see the module doc):
    id, generator, recipe, verification kind and a text excerpt; by generator, then by rank. Two passes: the
    ranks from the `id` and `generator` columns, then the texts of the chosen items from the files holding
    them."""
    if per_generator <= 0:
        return []
    chosen = _lowest_ranks(list(iter_parquet_files(Path(version_dir), "data")), per_generator, seed)
    wanted = pa.array([item_id for picks in chosen.values() for _, item_id, _ in picks], pa.string())
    rows: dict[str, dict] = {}
    files = sorted({f for picks in chosen.values() for *_, f in picks})
    for _, batch in _batches(files, SAMPLE_COLUMNS):
        hit = batch.filter(pc.is_in(batch.column("id"), value_set=wanted))
        excerpt = pc.utf8_slice_codeunits(pc.fill_null(hit.column("text"), ""), 0, EXCERPT_CHARS)
        for row, text in zip(hit.drop_columns(["text"]).to_pylist(), excerpt.to_pylist()):
            rows[row["id"]] = {**row, "text": text}
    return [rows[item_id] for gen in sorted(chosen) for _, item_id, _ in chosen[gen]]


def _lowest_ranks(files: list[Path], k: int, seed: int) -> dict[str, list[tuple[int, str, Path]]]:
    """Per generator, the k lowest (rank, id) with the file holding each: a total order, so the choice does
    not depend on the order the rows are read in. At most 2k candidates per generator are held."""
    kept: dict[str, list[tuple[int, str, Path]]] = {}
    cutoff: dict[str, tuple[int, str]] = {}  # per generator: the k-th lowest (rank, id) once k are known
    for f, batch in _batches(files, ["id", "generator"]):
        for item_id, gen in zip(batch.column("id").to_pylist(), batch.column("generator").to_pylist()):
            key = (sample_rank(seed, item_id), item_id)
            if gen in cutoff and key >= cutoff[gen]:
                continue
            kept.setdefault(gen, []).append((*key, f))
            if len(kept[gen]) >= 2 * k:
                kept[gen] = sorted(kept[gen])[:k]
                cutoff[gen] = kept[gen][-1][:2]
    return {gen: sorted(picks)[:k] for gen, picks in kept.items()}


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
    if flagged:
        _move_flagged(version_dir, flagged, reviewer)
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


def _files_holding(files: list[Path], ids: pa.Array) -> tuple[list[Path], set[str]]:
    """The files whose `id` column holds any of `ids`, and which of them were found (one streamed column)."""
    holding, found = [], set()
    for f, batch in _batches(files, ["id"]):
        hit = pc.is_in(batch.column("id"), value_set=ids)
        if pc.any(hit).as_py():
            found.update(pc.filter(batch.column("id"), hit).to_pylist())
            if not holding or holding[-1] != f:
                holding.append(f)
    return holding, found


def _move_flagged(version_dir: Path, flagged: list[str], reviewer: str) -> None:
    """Flagged rows out of data/ into rejects/review.parquet (written first, then the data files replaced).
    A retry after a crash in between finds the rows already moved in that rejects file and keeps them."""
    rejects_path = version_dir / "rejects" / f"{STAGE}.parquet"
    ids = pa.array(flagged, pa.string())
    holding, found = _files_holding(list(iter_parquet_files(version_dir, "data")), ids)
    earlier = _earlier_rejects(rejects_path, flagged, found)
    unknown = [i for i in flagged if i not in found and i not in set(earlier.column("id").to_pylist())]
    if unknown:
        raise ValueError(f"review of {version_dir}: flagged id(s) {unknown} are not items of this version")
    removed, rewritten = [], []
    for f in holding:
        tmp, rows = _without(f, ids)
        rewritten.append((tmp, f))
        removed.append(rows)
    rej = pa.concat_tables(removed, promote_options="default") if removed else None
    if rej is not None:
        n = rej.num_rows
        rej = (
            rej.append_column("reject_stage", pa.array([STAGE] * n, pa.string()))
            .append_column("reject_reason", pa.array([REASON] * n, pa.string()))
            .append_column("reject_detail", pa.array([f"flagged by {reviewer}"] * n, pa.string()))
        )
    parts = [t for t in (earlier, rej) if t is not None and t.num_rows]
    _atomic_write(pa.concat_tables(parts, promote_options="default"), rejects_path)
    for tmp, f in rewritten:  # data/ loses the rows only once the rejects file holds them
        os.replace(tmp, f)


def _earlier_rejects(path: Path, flagged: list[str], found: set[str]) -> pa.Table:
    """The rows an interrupted earlier attempt already moved out of data/ (in its rejects file, no longer in
    data/). Bounded: at most the rows a reviewer flagged. Moved rows the reviewer no longer flags would be
    lost by this review: an error naming them."""
    if not path.is_file():
        return pa.table({"id": pa.array([], pa.string())})
    rows = pq.read_table(path)
    moved = rows.filter(
        pc.invert(pc.is_in(rows.column("id"), value_set=pa.array(sorted(found), pa.string())))
    )
    stray = sorted(set(moved.column("id").to_pylist()) - set(flagged))
    if stray:
        raise ValueError(
            f"{path}: an interrupted earlier review moved id(s) {stray[:10]} out of data/, and this review"
            " does not flag them: restore them or flag them again"
        )
    return moved


def _without(f: Path, ids: pa.Array) -> tuple[Path, pa.Table]:
    """Write `f` minus the rows with `ids` to a temporary file next to it, batch by batch; (the temporary
    file, the rows taken out)."""
    pf = pq.ParquetFile(f)
    tmp = f.with_name(f".{f.name}.review-tmp")
    taken = []
    with pq.ParquetWriter(tmp, pf.schema_arrow) as out:
        for batch in pf.iter_batches(batch_size=BATCH_ROWS):
            hit = pc.is_in(batch.column("id"), value_set=ids)
            out.write_batch(batch.filter(pc.invert(hit)))
            if pc.any(hit).as_py():
                taken.append(batch.filter(hit))
    return tmp, pa.Table.from_batches(taken, schema=pf.schema_arrow)


def _atomic_write(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


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
