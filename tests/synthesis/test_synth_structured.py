"""Constrained output: every generator declares a JSON schema sized to its token cap; the embedded teacher
(the real llama.cpp server and SmolLM2) decodes under that schema's grammar, so its answers parse for every
generator."""

from __future__ import annotations

import json
import re

import pytest

from synthesis.teacher import BatchRunner
from synthesis.teacher.backends.openai_http import OpenAIHttpBackend
from synthesis.teacher.structured import check_schema
from synthesis.textbook.generators import GENERATORS
from synthesis.textbook.generators.schema import CHUNK, repeat
from synthesis.textbook.plan import build_plan
from synthesis.textbook.recipes import parse_recipes

#: the end-to-end benchmark's caps (BENCHMARKS.md): generations 64 tokens, code 96
CAPS = {"textbook": 64, "math": 64, "code": 96, "puzzle": 64, "math_exercise": 64}
TOPICS = {
    "textbook": "science",
    "math": "math",
    "code": "programming",
    "puzzle": "reasoning",
    "math_exercise": "math_exercises",
}


def _patterns(node) -> list[str]:
    if isinstance(node, dict):
        return ([node["pattern"]] if "pattern" in node else []) + [
            p for v in node.values() for p in _patterns(v)
        ]
    if isinstance(node, list):
        return [p for v in node for p in _patterns(v)]
    return []


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_every_generator_declares_a_valid_schema_the_grammar_converter_accepts(kind):
    gen = GENERATORS[kind]
    for max_tokens in (48, 64, 96, 256, 1024):
        schema = gen.schema(max_tokens)
        check_schema(schema)
        assert schema["type"] == "object" and schema["required"] == list(schema["properties"])
        for p in _patterns(schema):
            re.compile(p)
            # an escape outside a character class reaches llama.cpp's grammar parser, which rejects it and
            # takes its server down with the request: classes only ([.], not \.)
            outside = re.sub(r"\[(?:\\.|[^\]])*\]", "", p)
            assert "\\" not in outside, (kind, p)


@pytest.mark.parametrize(
    "lo, hi", [(0, 40), (600, 1000), (1200, 1800), (2311, 3852), (2900, 3000), (0, 1001)]
)
def test_long_fields_repeat_chunks_and_never_exceed_their_bound(lo, hi):
    rx = re.compile(f"^{repeat('a', lo, hi)}$")
    longest = max(n for n in range(0, hi + 2) if rx.match("a" * n))
    shortest = min(n for n in range(0, hi + 2) if rx.match("a" * n))
    assert shortest == lo and hi - CHUNK < longest <= hi
    assert all(rx.match("a" * n) for n in range(lo, longest + 1))
    bounds = [int(b) for q in re.findall(r"\{([\d,]+)\}", rx.pattern) for b in q.split(",") if b]
    assert max(bounds) <= 2 * CHUNK  # no bound llama.cpp refuses


@pytest.fixture(scope="module")
def smollm2_vocab():
    """The embedded teacher's vocabulary (no weights): what llama.cpp's grammar sampler is built against."""
    import llama_cpp

    from synthesis.teacher.backends.embedded import embedded_model_path

    llm = llama_cpp.Llama(str(embedded_model_path()), vocab_only=True, verbose=False)
    yield llama_cpp.llama_model_get_vocab(llm._model.model)
    llm.close()


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_llama_cpp_builds_the_grammar_of_every_schema_at_every_cap(kind, smollm2_vocab):
    """The server turns the schema into a grammar exactly like this (llama-cpp-python's converter, no
    fallback to plain JSON) and llama.cpp parses it; a grammar it refuses (a repetition bound past ~1,000,
    a `?` over two keyword-free names) yields a null sampler and the server dies on the request."""
    import llama_cpp
    from llama_cpp.llama_chat_format import _grammar_for_json_schema

    for max_tokens in (48, 64, 96, 160, 256, 512, 1024, 2048):
        gbnf = _grammar_for_json_schema(
            json.dumps(GENERATORS[kind].schema(max_tokens)), fallback_to_json=False
        )
        sampler = llama_cpp.llama_sampler_init_grammar(smollm2_vocab, gbnf._grammar.encode(), b"root")
        assert sampler, (kind, max_tokens)
        llama_cpp.llama_sampler_free(sampler)


def test_every_generator_defaults_to_json():
    spec = {
        "recipes": [{"name": k, "generator": k, "n": 1, "topics": {TOPICS[k]: 1}} for k in sorted(GENERATORS)]
    }
    sent = {
        s.recipe.generator: s.request.response_schema is not None
        for s in build_plan(parse_recipes(spec), None).samples
    }
    assert sent == dict.fromkeys(GENERATORS, True)


def test_a_free_text_recipe_sends_no_schema_and_keeps_its_template():
    spec = {
        "recipes": [
            {"name": "m", "generator": "math", "n": 2, "topics": {"math": 1}, "structured": False},
            {"name": "j", "generator": "math", "n": 2, "topics": {"math": 1}},
        ]
    }
    samples = build_plan(parse_recipes(spec), None).samples
    free, structured = samples[:2], samples[2:]
    assert all(s.request.response_schema is None and s.request.template_version == "math-v1/v1" for s in free)
    assert all(s.request.response_schema == GENERATORS["math"].schema(512) for s in structured)
    assert all(s.request.template_version == "math-json-v1/v1" for s in structured)


@pytest.mark.slow
def test_schema_constrained_answers_of_the_embedded_teacher_parse_for_every_generator(llama_server, tmp_path):
    spec = {
        "seed": 5,
        "recipes": [
            {
                "name": kind,
                "generator": kind,
                "n": 2,
                "topics": {TOPICS[kind]: 1},
                "structured": True,
                "sampling": {"temperature": 0.8, "max_tokens": CAPS[kind]},
            }
            for kind in sorted(GENERATORS)
        ],
    }
    plan = build_plan(parse_recipes(spec), None)
    requests = [s.request for s in plan.samples]
    backend = OpenAIHttpBackend(
        llama_server.base_url, llama_server.model_alias, concurrency=2, structured_output="json_object_schema"
    )
    runner = BatchRunner(backend, tmp_path / "teacher.sqlite")
    runner.run(requests)
    parsed = {}
    for s, res in zip(plan.samples, runner.results(requests)):
        assert res.ok, (s.recipe.generator, res.error_type, res.error, res.text)
        assert isinstance(res.parsed, dict) and json.loads(res.text, strict=False) == res.parsed
        assert set(res.parsed) == set(s.request.response_schema["properties"])
        parsed.setdefault(s.recipe.generator, []).append(GENERATORS[s.recipe.generator].read(res, s.seed))
    # every generator: the grammar admits only what the reader accepts (code: a body that compiles)
    for kind in GENERATORS:
        assert all(p.ok and p.text for p in parsed[kind]), [(p.reason, p.detail) for p in parsed[kind]]
    for p in parsed["math"]:
        assert GENERATORS["math"].reject_answer(p.fields["answer"]) is None  # a number, by the schema
