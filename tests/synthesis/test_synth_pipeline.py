"""End to end with the real SmolLM2 teacher (llama.cpp server on loopback): every planned sample ends up kept
or rejected with a reason, the output follows the dataset contract, code is verified in the sandbox, a rerun
resumes from the store, and a run killed mid-generation resumes without duplicates."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
import yaml

from curation.contract import DOC_COLUMNS, Manifest, resolve_version_dir
from curation.paths import REPO_ROOT
from synthesis.teacher.backends.openai_http import OpenAIHttpBackend
from synthesis.textbook.generators import GENERATORS
from synthesis.textbook.pipeline import run_synthesis
from synthesis.textbook.plan import build_plan
from synthesis.textbook.recipes import parse_recipes
from synthesis.textbook.verify.sandbox import run_python


def _recipes(n: int = 2, max_tokens: int = 48) -> dict:
    loose = {"min_words": 5, "max_words": 600, "reject_truncated": False, "lang": None}
    common = {"n": n, "sampling": {"temperature": 0.7, "max_tokens": max_tokens}, "filters": loose}
    return {
        "name": "t",
        "seed": 3,
        "postfilter": {"decontam": {"enabled": True}},
        "recipes": [
            {"name": "tb", "generator": "textbook", "topics": {"science": 1}, **common},
            {
                "name": "m",
                "generator": "math",
                "topics": {"math": 1},
                **common,
                "verify": {"k": 1, "solve_max_tokens": 32},
            },
            {"name": "c", "generator": "code", "topics": {"programming": 1}, **common},
            {
                "name": "p",
                "generator": "puzzle",
                "topics": {"reasoning": 1},
                **common,
                "verify": {"k": 1, "solve_max_tokens": 32},
            },
        ],
    }


@pytest.mark.slow
def test_run_publishes_a_contract_dataset_and_resumes(llama_server, tmp_path):
    rs = parse_recipes(_recipes())
    backend = OpenAIHttpBackend(
        llama_server.base_url, llama_server.model_alias, concurrency=2, structured_output="json_object_schema"
    )  # llama-cpp-python's dialect
    out = tmp_path / "synthetic"
    first = run_synthesis(rs, out, backend=backend)
    m = Manifest.read(resolve_version_dir(out))
    m.check()
    data = pq.read_table(next((first.version_dir / "data").glob("*.parquet")))
    rejects = pq.read_table(next((first.version_dir / "rejects").glob("*.parquet")))
    assert data.schema.names[: len(DOC_COLUMNS)] == DOC_COLUMNS
    assert rejects.num_rows == m.rejected_rows and data.num_rows == m.rows
    # every planned sample is accounted for exactly once
    planned = {s.sample_id for s in build_plan(rs, None).samples}
    ids = data.column("id").to_pylist() + rejects.column("id").to_pylist()
    assert sorted(ids) == sorted(planned)
    assert all(r for r in rejects.column("reject_reason").to_pylist())
    assert set(rejects.column("reject_stage").to_pylist()) <= {
        "generate",
        "quality",
        "verify",
        "near_dedup",
        "decontam",
    }
    for row in data.to_pylist():
        assert row["source_format"] == "synthetic" and row["teacher_model"] == llama_server.model_alias
        assert row["recipe"] and row["topic"] and row["request_key"]
    assert (first.version_dir / "report.md").is_file()
    assert set(first.report["recipes"]) == {"tb", "m", "c", "p"}
    assert first.manifest.extra["batches"]["generate"]["generated"] == len(planned)

    # a rerun finds every answer in the store: nothing is generated again, the same rows come out
    second = run_synthesis(rs, out, backend=backend)
    assert second.manifest.extra["batches"]["generate"]["generated"] == 0
    assert second.manifest.extra["batches"]["generate"]["skipped"] == len(planned)
    again = pq.read_table(next((second.version_dir / "data").glob("*.parquet")))
    assert again.column("id").to_pylist() == data.column("id").to_pylist()


def test_code_verification_runs_the_reference_solution_in_the_sandbox():
    completion = (
        '```python\ndef double(x):\n    """Return twice x."""\n    return {body}\n```\n'
        "```python\nassert double(2) == 4\nassert double(0) == 0\nassert double(-3) == -6\n```"
    )
    gen = GENERATORS["code"]
    good = gen.parse(completion.format(body="2 * x"))
    bad = gen.parse(completion.format(body="x + 2"))
    assert good.ok and bad.ok and good.fields["signature"] == "def double(x):"
    assert run_python(good.fields["solution"] + "\n\n" + good.fields["tests"]).passed
    failed = run_python(bad.fields["solution"] + "\n\n" + bad.fields["tests"])
    assert not failed.passed and "AssertionError" in failed.stderr


def _store_rows(path) -> list[tuple[str, str]]:
    if not path.is_file():
        return []
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return db.execute("SELECT key, run_id FROM results WHERE status = 'ok'").fetchall()
    except sqlite3.OperationalError:
        return []


@pytest.mark.slow
def test_killed_run_resumes_without_duplicates(llama_server, tmp_path):
    recipes = tmp_path / "r.yaml"
    spec = _recipes(n=3, max_tokens=40)
    spec["recipes"] = spec["recipes"][:2]  # textbook + math: 6 generations (+ solves)
    # llama-cpp-python's server takes the JSON schema in its own response_format dialect
    spec["teacher"] = {
        "backend": {
            "kind": "openai_http",
            "base_url": llama_server.base_url,
            "model": llama_server.model_alias,
            "structured_output": "json_object_schema",
        }
    }
    recipes.write_text(yaml.safe_dump(spec))
    out = tmp_path / "synthetic"
    cmd = [
        sys.executable,
        "-m",
        "synthesis",
        "run",
        "--recipes",
        str(recipes),
        "--output",
        str(out),
        "--backend",
        "openai_http",
        "--base-url",
        llama_server.base_url,
        "--model",
        llama_server.model_alias,
        "--concurrency",
        "1",
        "--no-progress",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    store = out / "_work" / "teacher-shard-0-of-1.sqlite"
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while len(_store_rows(store)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be killed; make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = dict(_store_rows(store))
    assert 2 <= len(before) < 6
    assert not any(p.name.startswith("t-") for p in out.iterdir() if not p.name.startswith((".", "_")))

    done = subprocess.run(
        cmd, check=False, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    after = dict(_store_rows(store))
    # answers of the killed run were kept, not regenerated; every key is stored once (primary key)
    assert all(after[k] == run for k, run in before.items())
    assert len(after) > len(before)
    version = resolve_version_dir(out)
    ids = (
        pq.read_table(next((version / "data").glob("*.parquet"))).column("id").to_pylist()
        + pq.read_table(next((version / "rejects").glob("*.parquet"))).column("id").to_pylist()
    )
    assert len(ids) == len(set(ids)) == 6


def test_verify_stage_keeps_passing_code_and_rejects_failing_code_with_stderr():
    from synthesis.textbook.pipeline import Candidate, _Ledger, _verify

    rs = parse_recipes(
        {"recipes": [{"name": "c", "generator": "code", "n": 2, "topics": {"programming": 1}}]}
    )
    cands = [Candidate(s) for s in build_plan(rs, None).samples]
    completion = (
        '```python\ndef inc(x):\n    """Add one."""\n    return {body}\n```\n'
        "```python\nassert inc(1) == 2\nassert inc(-1) == 0\n```"
    )
    cands[0].parsed = GENERATORS["code"].parse(completion.format(body="x + 1"))
    cands[1].parsed = GENERATORS["code"].parse(completion.format(body="x - 1"))
    led = _Ledger(cands)
    _verify(led, runner=None, set_seed=0, workers=2)  # code needs no teacher: no solve requests are made
    assert [c.planned.sample_id for c in led.alive] == [cands[0].planned.sample_id]
    assert led.alive[0].verified is True and led.alive[0].verification["method"] == "sandbox_tests"
    ((cand, stage, reason, detail),) = led.rejected
    assert stage == "verify" and reason == "sandbox_tests_failed" and "AssertionError" in detail
    assert led.stages[-1].reasons == {"sandbox_tests_failed": 1}


def test_a_shard_cleans_only_its_own_stale_staging(tmp_path):
    """Shards publish into one root at the same time: one must never remove another's half-built version."""
    from curation.contract import DatasetRoot

    root = DatasetRoot(tmp_path)
    mine, theirs = root.staging_dir("shard-0-of-2"), root.staging_dir("shard-1-of-2")
    root.clean_own_staging("shard-0-of-2")
    assert not mine.exists() and theirs.exists()
