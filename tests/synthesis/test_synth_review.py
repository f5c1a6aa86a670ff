"""The researcher review step's package side: a seeded sample per generator, the reviewer's markdown, and the
decision recorded in the candidate (flags become `reviewer_flagged` reject rows, counts still reconcile)."""

from __future__ import annotations

import json
from datetime import UTC

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from manifest_helpers import make_manifest

from curation.contract import Manifest, StageCounts
from synthesis.textbook.pipeline import REJECT_SCHEMA, SYNTH_SCHEMA
from synthesis.textbook.review import apply_review, review_body, review_sample


def _candidate(tmp_path, n_per_gen: int = 4):
    d = tmp_path / "cand"
    (d / "data").mkdir(parents=True)
    (d / "rejects").mkdir()
    rows = [
        {
            "id": f"{g}-{i}",
            "text": f"{g} item {i}: " + "words " * 30,
            "generator": g,
            "recipe": g,
            "verified": g != "textbook" or None,
            "verification_kind": {"textbook": None, "code": "tests_run", "math_exercise": "ground_truth"}[g],
            "source_format": "synthetic",
        }
        for g in ("textbook", "code", "math_exercise")
        for i in range(n_per_gen)
    ]
    pq.write_table(pa.Table.from_pylist(rows, schema=SYNTH_SCHEMA), d / "data" / "part-0.parquet")
    pq.write_table(
        pa.Table.from_pylist(
            [
                {
                    **rows[0],
                    "id": "gone",
                    "reject_stage": "verify",
                    "reject_reason": "tests_cannot_fail",
                    "reject_detail": "",
                }
            ],
            schema=REJECT_SCHEMA,
        ),
        d / "rejects" / "part-0.parquet",
    )
    n = len(rows)
    make_manifest(
        "synthetic",
        "v1",
        n,
        columns=SYNTH_SCHEMA.names,
        rejected_rows=1,
        stages=[
            StageCounts(stage="generate", rows_in=n + 1, rows_kept=n + 1, rows_rejected=0),
            StageCounts(
                stage="verify", rows_in=n + 1, rows_kept=n, rows_rejected=1, reasons={"tests_cannot_fail": 1}
            ),
        ],
    ).write(d)
    return d


def test_sample_is_per_generator_seeded_and_shown_with_the_counts(tmp_path):
    d = _candidate(tmp_path)
    sample = review_sample(d, per_generator=2, seed=7)
    assert sorted(r["generator"] for r in sample) == [
        "code",
        "code",
        "math_exercise",
        "math_exercise",
        "textbook",
        "textbook",
    ]
    assert sample == review_sample(d, per_generator=2, seed=7) != review_sample(d, per_generator=2, seed=8)
    assert len(review_sample(d, per_generator=10)) == 12
    body = review_body(d, sample)
    assert "| verify | 13 | 12 | 1 |" in body and '{"tests_cannot_fail": 1}' in body
    assert all(f"**{r['id']}**" in body for r in sample) and "verified by ground_truth" in body


def test_flags_become_reject_rows_and_the_decision_is_recorded(tmp_path):
    d = _candidate(tmp_path)
    m = apply_review(
        d, approved=True, reviewer="ada", flagged=["code-1", "textbook-3"], at="2026-12-06T01:00:00Z"
    )
    assert (m.rows, m.rejected_rows) == (10, 3)
    assert m.stages[-1] == StageCounts(
        stage="review", rows_in=12, rows_kept=10, rows_rejected=2, reasons={"reviewer_flagged": 2}
    )
    assert m.extra["review"] == {
        "decision": "approved",
        "reviewer": "ada",
        "at": "2026-12-06T01:00:00Z",
        "flagged": ["code-1", "textbook-3"],
        "skipped": False,
    }
    assert Manifest.read(d) == m
    kept = pq.read_table(d / "data" / "part-0.parquet").column("id").to_pylist()
    assert len(kept) == 10 and "code-1" not in kept and "textbook-3" not in kept
    rej = pq.read_table(d / "rejects" / "review.parquet").to_pylist()
    assert sorted(r["id"] for r in rej) == ["code-1", "textbook-3"]
    assert {(r["reject_stage"], r["reject_reason"], r["reject_detail"]) for r in rej} == {
        ("review", "reviewer_flagged", "flagged by ada")
    }
    assert json.loads((d / "manifest.json").read_text())["stages"][-1]["stage"] == "review"


def test_unattended_runs_say_the_review_was_skipped_and_unknown_flags_are_refused(tmp_path):
    d = _candidate(tmp_path)
    with pytest.raises(ValueError, match=r"flagged id\(s\) \['nope'\] are not items"):
        apply_review(d, approved=True, reviewer="ada", flagged=["nope", "code-0"])
    assert Manifest.read(d).rows == 12  # nothing changed by the refused review
    m = apply_review(d, approved=True, reviewer="auto-approve", skipped=True)
    assert m.extra["review"]["skipped"] is True and m.rows == 12 and m.stages[-1].rows_rejected == 0


def test_the_hitl_payload_becomes_a_decision():
    from datetime import datetime

    from synthesis.textbook.review import decision_from_hitl

    at = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
    approve = {
        "chosen_options": ["Approve"],
        "params_input": {"flag_ids": ["code-1", " textbook-3 "]},
        "responded_by_user": {"id": "7", "name": "ada"},
        "responded_at": at,
    }
    assert decision_from_hitl(approve) == {
        "approved": True,
        "flagged": ["code-1", "textbook-3"],
        "reviewer": "ada",
        "at": "2026-12-06T02:00:00+00:00",
    }
    reject = {**approve, "chosen_options": ["Reject"], "params_input": {"flag_ids": "code-1, code-2"}}
    assert decision_from_hitl(reject)["approved"] is False and decision_from_hitl(reject)["flagged"] == [
        "code-1",
        "code-2",
    ]
    timeout = {"chosen_options": ["Reject"], "timedout": True, "responded_at": at}
    assert decision_from_hitl(timeout, "approve") == {
        "approved": True,
        "flagged": [],
        "reviewer": "timeout (approve)",
        "at": "2026-12-06T02:00:00+00:00",
    }
    assert decision_from_hitl(timeout)["approved"] is False
    with pytest.raises(ValueError, match="on_timeout='maybe'"):
        decision_from_hitl(timeout, "maybe")


def _many_files_candidate(tmp_path, order: str = "forward"):
    """A candidate of 600 long items (3 generators) in 8 files of 16-row row groups; `order` names the files
    so that they are read in the opposite order (the rows are the same)."""
    d = _candidate(tmp_path / order, n_per_gen=200)
    rows = pq.read_table(d / "data" / "part-0.parquet").to_pylist()
    (d / "data" / "part-0.parquet").unlink()
    rows = [{**r, "text": f"{r['id']} " + "lorem ipsum dolor " * 450} for r in rows]
    chunks = [rows[k::8] for k in range(8)]  # every file holds every generator
    for k, chunk in enumerate(chunks):
        name = f"part-{k if order == 'forward' else 7 - k}.parquet"
        pq.write_table(pa.Table.from_pylist(chunk, schema=SYNTH_SCHEMA), d / "data" / name, row_group_size=16)
    return d, rows


def test_sample_and_review_stream_a_large_version_in_batches(tmp_path, monkeypatch):
    import tracemalloc

    import synthesis.textbook.review as review

    monkeypatch.setattr(review, "BATCH_ROWS", 32)
    d, rows = _many_files_candidate(tmp_path)
    text_bytes = sum(len(r["text"]) for r in rows)
    tracemalloc.start()
    sample = review_sample(d, per_generator=3, seed=11)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # the texts are never all Python strings at once (a whole-version read would hold ~4.9 MB of them)
    assert text_bytes > 4_000_000 and peak < text_bytes / 5, (peak, text_bytes)
    # the bottom-k of the seeded hash rank per generator: what a full read would choose
    expect = {
        g: sorted((review.sample_rank(11, r["id"]), r["id"]) for r in rows if r["generator"] == g)[:3]
        for g in ("code", "math_exercise", "textbook")
    }
    assert [r["id"] for r in sample] == [i for g in sorted(expect) for _, i in expect[g]]
    assert all(len(r["text"]) == review.EXCERPT_CHARS for r in sample)
    # the same for the same version and seed, whatever order the files are read in
    reversed_dir, _ = _many_files_candidate(tmp_path, order="reversed")
    assert review_sample(reversed_dir, per_generator=3, seed=11) == sample == review_sample(d, 3, seed=11)

    files = sorted((d / "data").glob("*.parquet"))
    before = {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in files}
    holding = {
        f.name for f in files if {"code-17", "textbook-170"} & set(pq.read_table(f).column("id").to_pylist())
    }
    assert len(holding) == 2
    tracemalloc.start()
    m = apply_review(d, approved=True, reviewer="ada", flagged=["code-17", "textbook-170"])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < text_bytes / 5, (peak, text_bytes)
    # only the files holding a flagged item were rewritten; the rest are untouched
    after = {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in files}
    assert {n for n in before if before[n] != after[n]} == holding
    assert not list((d / "data").glob(".*")) and not list((d / "rejects").glob(".*"))
    # kept + rejected = the input, row for row
    kept = pq.read_table(d / "data").to_pylist()
    rejected = pq.read_table(d / "rejects" / "review.parquet").to_pylist()
    assert len(kept) == m.rows == 598 and sorted(r["id"] for r in rejected) == ["code-17", "textbook-170"]
    by_id = {r["id"]: r for r in rows}
    assert all(by_id[r["id"]] == r for r in kept)
    assert all(by_id[r["id"]] == {c: r[c] for c in SYNTH_SCHEMA.names} for r in rejected)
    assert sorted([r["id"] for r in kept] + [r["id"] for r in rejected]) == sorted(by_id)


def test_a_review_interrupted_after_its_rejects_file_completes_on_retry(tmp_path):
    """A crash after rejects/review.parquet was written and one of two rewritten files replaced: the retry
    finds one flagged item in data/ and the other in the rejects file, and ends as an uninterrupted review."""
    d, rows = _many_files_candidate(tmp_path)
    flagged = ["code-17", "textbook-170"]
    clean = tmp_path / "clean"
    import shutil

    shutil.copytree(d, clean)
    apply_review(clean, approved=True, reviewer="ada", flagged=flagged, at="t")
    # the interrupted state: the full rejects file, and the file holding code-17 already replaced
    shutil.copy(clean / "rejects" / "review.parquet", d / "rejects" / "review.parquet")
    for f in sorted((d / "data").glob("*.parquet")):
        if "code-17" in pq.read_table(f).column("id").to_pylist():
            shutil.copy(clean / "data" / f.name, f)
    with pytest.raises(
        ValueError, match=r"moved id\(s\) \['code-17'\] out of data/, and this review does not"
    ):
        apply_review(d, approved=True, reviewer="ada", flagged=["textbook-170"])
    m = apply_review(d, approved=True, reviewer="ada", flagged=flagged, at="t")
    assert m == Manifest.read(clean)
    assert pq.read_table(d / "data").to_pylist() == pq.read_table(clean / "data").to_pylist()
    assert sorted(r["id"] for r in pq.read_table(d / "rejects" / "review.parquet").to_pylist()) == flagged
