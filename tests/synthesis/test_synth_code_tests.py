"""Code exercises are kept only when their tests can fail: they pass on the solution in the sandbox AND fail
on at least one trivial mutant (the function returning None or a constant). Real sandbox runs, no mocks."""

from __future__ import annotations

import pytest

from synthesis.textbook.generators import GENERATORS
from synthesis.textbook.generators.code import MUTANT_RETURNS, mutants
from synthesis.textbook.plan import build_plan
from synthesis.textbook.recipes import parse_recipes

SOLUTION = (
    'def count_vowels(s):\n    """Count the vowels in s."""\n    total = 0\n    for ch in s.lower():\n'
    '        if ch in "aeiou":\n            total += 1\n    return total\n'
)


def _verify(tests_by_sample: list[str]):
    from synthesis.textbook.pipeline import Candidate, _Ledger, _verify

    rs = parse_recipes(
        {
            "recipes": [
                {"name": "c", "generator": "code", "n": len(tests_by_sample), "topics": {"programming": 1}}
            ]
        }
    )
    cands = [Candidate(s) for s in build_plan(rs, None).samples]
    for c, tests in zip(cands, tests_by_sample):
        c.parsed = GENERATORS["code"].check(SOLUTION, tests)
        assert c.parsed.ok
    led = _Ledger(cands)
    _verify(led, runner=None, set_seed=0, workers=2)
    return cands, led


def test_mutants_keep_signature_and_docstring_and_return_constants():
    sources = mutants(SOLUTION, "count_vowels")
    assert len(sources) == len(MUTANT_RETURNS)
    for const, src in zip(MUTANT_RETURNS, sources):
        assert src.startswith('def count_vowels(s):\n    """Count the vowels in s."""\n')
        assert src.rstrip().endswith(f"return {const}") and "total" not in src


@pytest.mark.parametrize(
    "vacuous",
    [
        "assert True",
        "assert count_vowels is not None",
        "assert count_vowels('abc') is not None or True",
        "assert callable(count_vowels)\n"
        "assert isinstance(count_vowels('x'), (int, type(None), str, list, bool))",
    ],
)
def test_tests_that_cannot_fail_are_rejected_with_their_own_reason(vacuous):
    cands, led = _verify([vacuous, "assert count_vowels('banana') == 3\nassert count_vowels('') == 0"])
    assert [c.planned.sample_id for c in led.alive] == [cands[1].planned.sample_id]
    kept = led.alive[0]
    assert kept.verified is True and kept.verification["kind"] == "tests_run"
    assert kept.verification["mutant_killed"] == "return None"
    ((cand, stage, reason, _detail),) = led.rejected
    assert cand is cands[0] and stage == "verify" and reason == "tests_cannot_fail"
    assert cand.verification["mutants_survived"] == [f"return {c}" for c in MUTANT_RETURNS]
    assert led.stages[-1].reasons == {"tests_cannot_fail": 1}


def test_a_test_only_a_later_mutant_fails_still_counts():
    # `return None` satisfies this test, `return 0` does not: the tests can fail, so the item is kept
    _, led = _verify(["assert count_vowels('a') in (1, None)"])
    assert led.rejected == [] and led.alive[0].verification["mutant_killed"] == "return 0"


def test_failing_tests_are_still_rejected_as_failures_not_as_vacuous():
    _, led = _verify(["assert count_vowels('banana') == 4"])
    ((_cand, _stage, reason, detail),) = led.rejected
    assert reason == "sandbox_tests_failed" and "AssertionError" in detail
