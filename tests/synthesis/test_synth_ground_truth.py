"""Ground-truth math: programmatic exercises with known answers; a planted wrong final answer (off by one,
x10, sign, unit, rounded) is always rejected, a right one in any accepted notation is kept, and the pipeline
records the verification kind."""

from __future__ import annotations

import random

import pytest
import sympy

from synthesis.textbook.exercises import BUILDERS, LEVELS, Exercise, build
from synthesis.textbook.generators import GENERATORS
from synthesis.textbook.plan import build_plan
from synthesis.textbook.recipes import parse_recipes
from synthesis.textbook.verify.ground_truth import check_answer

ALL = [
    build(family, level, random.Random(f"gt|{family}|{level}|{i}"))
    for family in BUILDERS
    for level in LEVELS
    for i in range(8)
]


def _decimal(x: sympy.Rational, places: int) -> str:
    return format(sympy.Float(x, 30).round(places), f".{places}f")


def _wrong(ex: Exercise) -> dict[str, str]:
    """Planted errors: each is a wrong statement of the answer that a careless solution could end with."""
    a, pct = ex.answer, "%" if ex.percent else ""
    out = {"off_by_one": f"{_decimal(a + 1, 4)}{pct}"}
    if a != 0:  # x10 and the sign of 0 are 0
        out["times_ten"] = f"{_decimal(a * 10, 4)}{pct}"
        out["sign"] = f"{_decimal(-a, 4)}{pct}"
    other = {"cm^2": "m^2", "m^2": "cm^2", "cm": "m", "$": "cm"}.get(ex.unit or "", "kg")
    out["unit"] = f"{ex.answer_text.rstrip('%')} {other}"
    if a.q != 1:  # a fraction or decimal: rounded to a whole number (and to 2 places when that differs)
        out["rounded_integer"] = f"{round(a)}{pct}"
        if (a * 100).q != 1:
            out["rounded_2_places"] = f"{_decimal(a, 2)}{pct}"
    elif ex.percent is False and a > 20:
        out["rounded_tens"] = str(round(a, -1)) if round(a, -1) != a else str(a + 10)
    return out


def _right(ex: Exercise) -> list[str]:
    a = ex.answer
    out = [ex.answer_text, f"Final: {ex.answer_text}".split(": ")[1]]
    if ex.percent:
        out += [f"{_decimal(a, 3)}%", f"{ex.answer_text.rstrip('%')} percent"]
        return out
    if a.q != 1:
        out += [f"{a.p}/{a.q}", f"\\frac{{{a.p}}}{{{a.q}}}", _decimal(a, 4), _decimal(a, 6)]
    if ex.family == "probability":
        out.append(f"{_decimal(a * 100, 2)}%")
    if ex.family == "linear_equations":
        out.append(f"x = {ex.answer_text}")
    if ex.unit:
        spoken = {"cm^2": "square centimeters", "m^2": "m²", "cm": "centimeters", "$": "dollars"}[ex.unit]
        out += [
            f"{ex.answer_text} {ex.unit}" if ex.unit != "$" else f"${ex.answer_text}",
            f"{ex.answer_text} {spoken}",
        ]
    return out


def test_exercises_cover_every_family_and_level_with_diverse_surface_forms():
    assert {(e.family, e.level) for e in ALL} == {(f, lv) for f in BUILDERS for lv in LEVELS}
    assert len({e.problem for e in ALL}) >= 0.9 * len(ALL)
    for e in ALL:  # the stated answer is the exact value, and the ground truth checks against itself
        assert check_answer(e.answer_text, e).ok, e


@pytest.mark.parametrize("ex", ALL, ids=lambda e: f"{e.family}-{e.level}-{e.problem[:20]}")
def test_every_planted_wrong_answer_is_rejected_and_every_right_notation_kept(ex):
    for kind, wrong in _wrong(ex).items():
        chk = check_answer(wrong, ex)
        assert not chk.ok, (kind, wrong, ex.answer_text, ex.problem)
    for right in _right(ex):
        chk = check_answer(right, ex)
        assert chk.ok, (right, chk.reason, ex.answer_text, ex.problem)


def test_notation_rules_per_problem_type():
    third = Exercise("probability", 2, "p", sympy.Rational(1, 3))
    assert [
        check_answer(s, third).ok for s in ("1/3", "0.333", "0.3333", "33.33%", "0.33", "0.3", "0.334")
    ] == [True, True, True, True, False, False, False]
    assert check_answer("0.33", third).reason == "rounded"
    pct = Exercise("percentages", 3, "p", sympy.Rational(125, 2), percent=True)
    assert [check_answer(s, pct).ok for s in ("62.5%", "62.5", "62.5 percent", "0.625", "63%")] == [
        True,
        True,
        True,
        False,
        False,
    ]
    of = Exercise("percentages", 1, "What is 15% of 80?", sympy.Integer(12))
    assert check_answer("12", of).ok and check_answer("12%", of).reason == "wrong_percent"
    area = Exercise("geometry", 1, "p", sympy.Integer(48), unit="cm^2")
    assert check_answer("48 cm²", area).ok and check_answer("48", area).ok
    assert check_answer("48 m^2", area).reason == "wrong_unit" and check_answer("48 marbles", area).ok
    assert check_answer("no idea", area).reason == "no_answer"


def test_the_pipeline_keeps_right_and_rejects_wrong_solutions_with_kind_ground_truth():
    from synthesis.textbook.pipeline import Candidate, _Ledger, _verify

    rs = parse_recipes(
        {"recipes": [{"name": "gt", "generator": "math_exercise", "n": 6, "topics": {"math_exercises": 1}}]}
    )
    cands = [Candidate(s) for s in build_plan(rs, None).samples]
    gen = GENERATORS["math_exercise"]
    for i, c in enumerate(cands):
        truth = gen.read(_result({"solution_steps": ["Think."], "final_answer": "0"}), c.planned.seed)
        answer = truth.fields["ground_truth"].rstrip("%") if i % 2 == 0 else "100001"
        c.parsed = gen.read(
            _result({"solution_steps": ["We work it out."], "final_answer": answer}), c.planned.seed
        )
        assert c.parsed.ok and c.parsed.fields["problem"] in c.planned.request.messages[-1].content
    led = _Ledger(cands)
    _verify(led, runner=None, set_seed=0, workers=1)
    assert [c.planned.sample_id for c in led.alive] == [c.planned.sample_id for c in cands[::2]]
    assert all(c.verified and c.verification["kind"] == "ground_truth" for c in led.alive)
    assert {r[2] for r in led.rejected} == {"ground_truth_wrong_answer"}
    assert all(r[0].verification["expected"] == r[0].parsed.fields["ground_truth"] for r in led.rejected)


def _result(parsed: dict):
    from synthesis.teacher import Choice, SamplingParams, TeacherResult

    return TeacherResult(
        key="k",
        status="ok",
        choices=[Choice(text="{}", parsed=parsed)],
        model_id="m",
        backend="b",
        sampling=SamplingParams(),
        template_version="t",
    )
