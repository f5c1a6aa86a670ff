"""The transformers backend generates real text from the embedded SmolLM2 GGUF on CPU (dequantised on load,
~20-30 s, hence slow), batched, with stop strings, n > 1 sampling and schema checking."""

from __future__ import annotations

import re

import pytest
from fixtures_teacher import SCORE_SCHEMA, question_requests, score_requests

from synthesis.teacher import BatchRunner, SamplingParams, TeacherRequest, TransformersConfig, make_backend
from synthesis.teacher.backends.openai_http import OpenAIHttpBackend
from synthesis.teacher.structured import parse_structured

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def transformers_backend():
    with make_backend(TransformersConfig(batch_size=4)) as backend:
        yield backend


def test_transformers_backend_generates_real_text_from_the_gguf(transformers_backend, shared_data, tmp_path):
    questions = question_requests(shared_data, 2, max_tokens=6)
    capital = TeacherRequest(
        id="capital", prompt="The capital of France is", sampling=SamplingParams(max_tokens=6, stop=(".",))
    )
    sampled = TeacherRequest(
        id="sampled",
        prompt="A good way to learn algebra is",
        sampling=SamplingParams(max_tokens=5, temperature=0.9, top_k=40, seed=7, n=2),
    )
    requests = [*questions, capital, sampled]
    runner = BatchRunner(transformers_backend, tmp_path / "teacher.sqlite")
    report = runner.run(requests)
    assert (report.ok, report.failed) == (4, 0)
    results = runner.results(requests)
    for _req, res in zip(questions, results):
        assert res.backend == "transformers" and res.model_id == "SmolLM2-135M-Instruct.Q4_1"
        assert res.text.strip() and res.finish_reason in ("stop", "length")
        assert res.prompt_tokens > 20 and 1 <= res.completion_tokens <= 6
    cap = results[2]
    assert "Paris" in cap.text and "." not in cap.text and cap.finish_reason == "stop"
    assert len(results[3].choices) == 2 and all(c.text for c in results[3].choices)
    assert results[3].completion_tokens <= 10


def test_transformers_and_llama_cpp_agree_greedily_on_the_same_weights(
    transformers_backend, llama_server, shared_data, tmp_path
):
    requests = question_requests(shared_data, 3, max_tokens=4, template_version="agree")
    local = BatchRunner(transformers_backend, tmp_path / "a.sqlite")
    local.run(requests)
    served = BatchRunner(
        OpenAIHttpBackend(llama_server.base_url, "SmolLM2-135M-Instruct.Q4_1"), tmp_path / "b.sqlite"
    )
    served.run(requests)
    # Same GGUF weights, greedy decoding: the two engines' first words match (later tokens may drift on
    # float rounding differences between the dequantised torch model and llama.cpp's Q4_1 kernels).
    for a, b in zip(local.results(requests), served.results(requests)):
        first_word = re.compile(r"\w+")
        assert first_word.search(a.text).group() == first_word.search(b.text).group(), (a.text, b.text)


def test_unconstrained_structured_output_is_validated_or_recorded_as_failure(
    transformers_backend, shared_data, tmp_path
):
    requests = score_requests(shared_data, 3, max_tokens=12)
    runner = BatchRunner(transformers_backend, tmp_path / "teacher.sqlite")
    report = runner.run(requests)
    assert report.ok + report.failed == 3
    for res in runner.results(requests):
        if res.ok:
            assert parse_structured(res.text, SCORE_SCHEMA) == res.parsed
        else:
            assert res.error_type == "schema_invalid" and res.text is not None
