"""Teacher layer under faults: retries through a fault-injecting loopback proxy in front of the real llama.cpp
server, clear failures for 4xx and exhausted retries, and SIGKILL-and-resume with exactly-once results."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures_teacher import question_requests, web_snippets

from synthesis.teacher import BatchRunner, ChatMessage, RetryConfig, SamplingParams, TeacherRequest
from synthesis.teacher.backends.embedded import EMBEDDED_GGUF
from synthesis.teacher.backends.openai_http import OpenAIHttpBackend

MODEL = EMBEDDED_GGUF.removesuffix(".gguf")
FAST_RETRY = RetryConfig(max_attempts=4, initial_s=0.05, max_s=0.2)
REPO = Path(__file__).resolve().parents[2]


def _content(body: bytes) -> str:
    msg = json.loads(body)
    return msg["messages"][-1]["content"] if "messages" in msg else msg["prompt"]


def test_every_fault_kind_is_retried_until_the_real_answer_arrives(fault_proxy, shared_data, tmp_path):
    kinds = ["500", "503", "429", "drop", "reset"]
    assigned: dict[str, str] = {}  # question -> the fault its first attempt got

    def plan(attempt: int, body: bytes) -> str:  # each request's first attempt gets the next fault kind
        if attempt > 1:
            return "pass"
        assigned[_content(body)] = kinds[len(assigned) % len(kinds)]
        return assigned[_content(body)]

    proxy = fault_proxy(plan)
    requests = question_requests(shared_data, len(kinds), max_tokens=4)
    # generous per-attempt limit: the shared CI box can be slow, and no fault here needs a timeout to surface
    backend = OpenAIHttpBackend(
        proxy.base_url, MODEL, concurrency=2, request_timeout_s=120.0, retry=FAST_RETRY
    )
    runner = BatchRunner(backend, tmp_path / "teacher.sqlite")
    report = runner.run(requests)

    assert (report.ok, report.failed) == (len(kinds), 0)
    assert {k: proxy.actions[k] for k in kinds} == {k: 1 for k in kinds}
    for req, res in zip(requests, runner.results(requests)):
        assert res.ok and res.text and res.attempts == 2
        if assigned[req.messages[-1].content] == "429":
            # the 429 carried Retry-After: 1, which beats FAST_RETRY's <= 0.2 s jittered backoff
            assert res.latency_s >= 1.0
    # every question was answered by the real server exactly once
    answered = {_content(proxy.bodies[d]): n for d, n in proxy.forwarded.items()}
    assert sorted(answered) == sorted(r.messages[-1].content for r in requests)
    assert set(answered.values()) == {1}


def test_a_stalled_attempt_hits_the_per_request_timeout_and_is_retried(fault_proxy, shared_data, tmp_path):
    proxy = fault_proxy(lambda attempt, body: "stall" if attempt == 1 else "pass")
    # a short raw prompt and one token: the answer itself is quick even on a loaded box, so only the stall
    # (not a slow generation) should run into the per-attempt limit
    question = question_requests(shared_data, 1)[0].messages[-1].content
    request = TeacherRequest(
        id="stall", prompt=" ".join(question.split()[:6]), sampling=SamplingParams(max_tokens=1)
    )
    backend = OpenAIHttpBackend(proxy.base_url, MODEL, request_timeout_s=10.0, retry=FAST_RETRY)
    runner = BatchRunner(backend, tmp_path / "teacher.sqlite")
    t0 = time.perf_counter()
    report = runner.run([request])
    assert report.ok == 1 and proxy.actions["stall"] == 1
    res = runner.results([request])[0]
    assert res.attempts >= 2 and res.latency_s >= 10.0 and res.completion_tokens == 1
    assert time.perf_counter() - t0 < 10.0 + 50  # the stall cost one timeout, not the proxy's 60 s hold


def test_client_errors_fail_at_once_and_exhausted_retries_are_recorded_then_retried_on_rerun(
    fault_proxy, shared_data, tmp_path
):
    long_text = " ".join(t for _, t in web_snippets(shared_data, 40, chars=2000))  # > the server's 1024 ctx
    too_long = TeacherRequest(
        id="too-long",
        messages=[ChatMessage(role="user", content=long_text)],
        sampling=SamplingParams(max_tokens=4),
    )
    flaky, healthy = question_requests(shared_data, 2, max_tokens=4)
    outage = {"on": True}

    def plan(attempt: int, body: bytes) -> str:
        if outage["on"] and flaky.messages[-1].content == _content(body):
            return "500"
        return "pass"

    proxy = fault_proxy(plan)
    backend = OpenAIHttpBackend(
        proxy.base_url,
        MODEL,
        concurrency=3,
        request_timeout_s=30.0,
        retry=RetryConfig(max_attempts=3, initial_s=0.05, max_s=0.1),
    )
    runner = BatchRunner(backend, tmp_path / "teacher.sqlite")
    report = runner.run([too_long, flaky, healthy])
    assert report.failure_types == {"http_4xx": 1, "retries_exhausted": 1}
    r_long, r_flaky, r_ok = runner.results([too_long, flaky, healthy])
    # the real server's 400 (context length) is not retried and its message is kept
    assert r_long.status == "failed" and r_long.attempts == 1 and "HTTP 400" in r_long.error
    assert "context length" in r_long.error
    assert r_flaky.status == "failed" and r_flaky.attempts == 3
    assert "after 3 attempt(s)" in r_flaky.error and "HTTP 500" in r_flaky.error
    assert r_ok.ok

    outage["on"] = False  # the outage ends: a rerun retries the recorded failure and replaces it
    again = runner.run([too_long, flaky, healthy])
    assert (again.skipped, again.generated) == (1, 2)
    assert runner.results([flaky])[0].ok and len(runner.store) == 3


def _generate_cmd(requests_file: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "synthesis",
        "generate",
        "--requests",
        str(requests_file),
        "--output",
        str(out),
        "--no-progress",
        *extra,
    ]


def _wait_for_rows(db: Path, n: int, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"generate exited early with {proc.returncode}"
        if db.exists():
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
                try:
                    if con.execute("SELECT COUNT(*) FROM results").fetchone()[0] >= n:
                        return
                except sqlite3.OperationalError:  # table not created yet
                    pass
        time.sleep(0.05)
    raise AssertionError(f"{db} did not reach {n} rows in {timeout}s")


def _rows(db: Path) -> dict[str, tuple]:
    with sqlite3.connect(db) as con:
        return {
            k: (s, run, created, choices)
            for k, s, run, created, choices in con.execute(
                "SELECT key, status, run_id, created_at, choices FROM results"
            )
        }


def test_sigkill_mid_batch_then_resume_answers_every_request_exactly_once(fault_proxy, shared_data, tmp_path):
    proxy = fault_proxy(delay_s=0.3)  # slow enough that the kill lands mid-batch
    requests = question_requests(shared_data, 12, max_tokens=4)
    requests_file = tmp_path / "requests.jsonl"
    requests_file.write_text("".join(r.model_dump_json() + "\n" for r in requests))
    out = tmp_path / "out"
    cmd = _generate_cmd(
        requests_file,
        out,
        "--backend",
        "openai_http",
        "--base-url",
        proxy.base_url,
        "--model",
        MODEL,
        "--concurrency",
        "2",
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    first = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _wait_for_rows(out / "teacher.sqlite", 4, first)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    before = _rows(out / "teacher.sqlite")
    assert 4 <= len(before) < len(requests), "the kill must land mid-batch"

    second = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert second.returncode == 0, second.stdout + second.stderr
    after = _rows(out / "teacher.sqlite")
    report = json.loads((out / "report.json").read_text())

    expected_keys = {r.key(MODEL) for r in requests}
    assert set(after) == expected_keys  # every request answered ...
    assert all(status == "ok" for status, *_ in after.values())
    assert {k: after[k] for k in before} == before  # ... finished ones untouched ...
    assert (report["skipped"], report["generated"]) == (len(before), len(requests) - len(before))
    assert len({run for _, run, *_ in after.values()}) == 2  # ... the rest by the resumed run
    # the real server answered each request finished before the kill exactly once: nothing was redone
    finished_contents = {r.messages[-1].content for r in requests if r.key(MODEL) in before}
    for digest, n in proxy.forwarded.items():
        if _content(proxy.bodies[digest]) in finished_contents:
            assert n == 1
    import pyarrow.parquet as pq

    assert pq.read_table(out / "results.parquet").num_rows == len(requests)


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper that never comes in a container counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.slow
def test_sigkill_of_an_embedded_run_leaves_no_orphan_server_and_resumes(shared_data, tmp_path):
    requests = question_requests(shared_data, 8, max_tokens=6, template_version="kill-embedded")
    requests_file = tmp_path / "requests.jsonl"
    requests_file.write_text("".join(r.model_dump_json() + "\n" for r in requests))
    out = tmp_path / "out"
    config = tmp_path / "teacher.yaml"
    config.write_text("backend: {kind: embedded, n_threads: 1, concurrency: 1}\n")
    cmd = _generate_cmd(requests_file, out, "--config", str(config))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_rows(out / "teacher.sqlite", 2, first)
    servers = _children(first.pid)
    assert servers, "the embedded backend should have started a llama.cpp server child"
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in servers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in servers), "llama.cpp server outlived its killed parent"
    n_before = len(_rows(out / "teacher.sqlite"))
    second = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert second.returncode == 0, second.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["skipped"] == n_before and report["generated"] == len(requests) - n_before
    assert set(_rows(out / "teacher.sqlite")) == {r.key(MODEL) for r in requests}
