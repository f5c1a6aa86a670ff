"""Math verification: answer extraction (hand-labelled real SmolLM2 outputs, and live ones), numeric/sympy
equivalence, the checker's precision on hand-written items with known answers (not the GSM8K test set), and
self-consistency over k solves."""

from __future__ import annotations

import json

import pytest

from synthesis.teacher import BatchRunner, ResultStore
from synthesis.teacher.backends.openai_http import OpenAIHttpBackend
from synthesis.textbook.generators import GENERATORS, Parsed
from synthesis.textbook.verify.math import (
    check_by_agreement,
    equivalent,
    extract_final_answer,
    same_short_answer,
    to_value,
)
from synthesis.textbook.verify.precision import score_items


def test_checker_accepts_correct_and_rejects_corrupted_answers(fixtures):
    score = score_items(fixtures / "synthesis" / "math_items.jsonl")
    assert score.items >= 30 and score.corrupted >= 4 * score.items
    assert score.failures == []
    assert score.accuracy == 1.0


@pytest.mark.parametrize(
    "answer, value",
    [
        ("$1,200.50", "2401/2"),
        ("3/4", "3/4"),
        (r"\frac{3}{4}", "3/4"),
        (r"2\sqrt{3}", "2*sqrt(3)"),
        ("15 apples", "15"),
        ("x = 6", "6"),
        ("(2 * 4) = 8", "8"),
        ("-7", "-7"),
        ("1,000,000", "1000000"),
        ("banana", None),
        ("__import__('os').system('true')", None),
    ],
)
def test_values(answer, value):
    v = to_value(answer)
    assert (str(v) if v is not None else None) == value


def test_equivalence():
    assert equivalent("0.75", "3/4") and equivalent("1,200", "1200.0") and equivalent(r"\frac{1}{2}", "0.5")
    assert not equivalent("5", "6") and not equivalent("12", "120") and not equivalent(None, "1")
    assert same_short_answer("The Red House", "red house") and not same_short_answer("Alice", "Bob")


def test_extraction_markers_and_no_guessing():
    assert extract_final_answer("so 3+4=7\nFinal answer: 7").answer == "7"
    assert extract_final_answer("work...\n#### 1,234").answer == "1,234"
    assert extract_final_answer(r"hence \boxed{\frac{5}{8}}").answer == r"\frac{5}{8}"
    assert extract_final_answer("The answer is 42.").answer == "42"
    # a number in the text is not an answer unless the text says so
    assert extract_final_answer("We add 3 and 4 to get 7.").answer is None


def test_extraction_on_recorded_teacher_outputs(fixtures):
    """Real SmolLM2 solves of our items, with the extraction a person expects written beside each."""
    rows = [json.loads(line) for line in (fixtures / "synthesis" / "smollm2_math_outputs.jsonl").open()]
    assert len(rows) >= 10
    for r in rows:
        got = extract_final_answer(r["output"])
        assert got.answer == r["expected_answer"], r["output"][-200:]
        assert (str(to_value(got.answer)) if got.answer else None) == r["expected_value"]
        # the 135M teacher is wrong on all of these: the checker must say so
        assert not equivalent(got.answer, r["known_answer"])


def test_self_consistency():
    solves = ["... Final answer: 12", "... Final answer: 12.0", "... Final answer: 13", "no answer here"]
    chk = check_by_agreement("12", solves, min_agreement=0.5)
    assert chk.verified and chk.agreeing == 2 and chk.evidence["method"] == "self_consistency"
    assert not check_by_agreement("13", solves, min_agreement=0.5).verified
    assert not check_by_agreement(None, solves, min_agreement=0.1).verified
    one = check_by_agreement("7", ["Final answer: 7"], min_agreement=1.0)
    assert one.verified and one.evidence["method"] == "second_solution"


def test_extraction_on_live_teacher_solves(llama_server, tmp_path, fixtures):
    """Solve requests as the pipeline builds them, answered by the real SmolLM2: whatever is extracted is
    literally in the output under a marker, and is accepted only when it equals the known answer."""
    items = [json.loads(line) for line in (fixtures / "synthesis" / "math_items.jsonl").open()][10:13]
    gen = GENERATORS["math"]
    from synthesis.teacher import SamplingParams, TeacherRequest

    reqs = [
        TeacherRequest(
            id=f"live{i}",
            messages=gen.solve_messages(Parsed(fields={"problem": it["question"]})),
            sampling=SamplingParams(max_tokens=64, temperature=0.0),
            template_version="test-solve",
        )
        for i, it in enumerate(items)
    ]
    backend = OpenAIHttpBackend(llama_server.base_url, llama_server.model_alias, concurrency=1)
    with ResultStore(tmp_path / "s.sqlite") as store:
        runner = BatchRunner(backend, store)
        runner.run(reqs)
        results = runner.results(reqs)
    for it, res in zip(items, results):
        assert res is not None and res.ok
        got = extract_final_answer(res.text)
        if got.answer is not None:
            assert got.answer in res.text
        assert equivalent(got.answer, it["answer"]) == (
            got.answer is not None and to_value(got.answer) == to_value(it["answer"])
        )
