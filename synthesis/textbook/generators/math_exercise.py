"""Ground-truth math: the exercise is built programmatically with a known answer
(synthesis/textbook/exercises.py), the teacher writes only the worked, textbook-style solution, and the item
is kept only when the solution's final answer equals the ground truth (verify/ground_truth.py). Topics come
from the `math_exercises` pool (`<family>/<level>`); the sample's place in the plan seeds the numbers and the
surface form."""

from __future__ import annotations

import random

import sympy

from synthesis.textbook.exercises import Exercise, build, parse_topic
from synthesis.textbook.generators.base import Generator, Parsed, ToVerify, Verdict, VerifyContext
from synthesis.textbook.generators.schema import NUMBER, char_budget, obj, pattern, prose, steps
from synthesis.textbook.seeds import SeedDraw
from synthesis.textbook.verify.ground_truth import check_answer
from synthesis.textbook.verify.math import extract_final_answer


def exercise_for(seed: SeedDraw) -> Exercise:
    family, level = parse_topic(seed.topic)
    return build(family, level, random.Random(f"{seed.recipe}|{seed.index}|{seed.topic}"))


class MathExerciseGenerator(Generator):
    kind = "math_exercise"
    prompt_version = "v1"

    def prompt(self, seed: SeedDraw) -> str:
        return (
            f"Solve this problem step by step, as a worked example in a textbook for {seed.audience_text}. "
            f"End with a line of the form 'Final answer: <the number only>'.\n\nProblem: "
            f"{exercise_for(seed).problem}"
        )

    def json_prompt(self, seed: SeedDraw) -> str:
        return (
            f"Solve this problem step by step, as a worked example in a textbook for {seed.audience_text}. "
            "Answer in JSON with the keys solution_steps (a list of short steps) and final_answer "
            f"(the number only).\n\nProblem: {exercise_for(seed).problem}"
        )

    def schema(self, max_tokens: int) -> dict:
        budget = char_budget(max_tokens, 4) - 16
        return obj(solution_steps=steps(1, 3, prose(5, max(budget // 3, 12))), final_answer=pattern(NUMBER))

    def from_json(self, value: dict) -> Parsed:
        solution = "\n".join(s.strip() for s in value["solution_steps"] if s.strip())
        return Parsed(
            text=solution,
            fields={"solution": solution, "answer": value["final_answer"].strip(), "answer_method": "json"},
        )

    def parse(self, text: str) -> Parsed:
        answer = extract_final_answer(text)
        if answer.answer is None:
            return Parsed(reason="no_final_answer", detail="no 'Final answer:' line")
        return Parsed(
            text=text.strip(),
            fields={"solution": text.strip(), "answer": answer.answer, "answer_method": answer.method},
        )

    def read(self, result, seed: SeedDraw) -> Parsed:
        parsed = super().read(result, seed)
        if not parsed.ok:
            return parsed
        ex = exercise_for(seed)
        f = parsed.fields
        body = f"Problem: {ex.problem}\n\nSolution: {f['solution']}\n\nFinal answer: {f['answer']}"
        return Parsed(
            text=body,
            fields={
                **f,
                "problem": ex.problem,
                "ground_truth": ex.answer_text,
                "unit": ex.unit,
                "family": ex.family,
                "difficulty": ex.level,
            },
        )

    def verify(self, items: list[ToVerify], ctx: VerifyContext) -> list[Verdict]:
        return [self._check(it.parsed.fields) for it in items]

    @staticmethod
    def _check(f: dict) -> Verdict:
        truth = f["ground_truth"]
        ex = Exercise(
            f["family"],
            f["difficulty"],
            f["problem"],
            sympy.Rational(truth.rstrip("%")),
            percent=truth.endswith("%"),
            unit=f["unit"],
        )
        chk = check_answer(f["answer"], ex)
        ev = {
            "method": "ground_truth",
            "claimed": f["answer"],
            "claimed_value": chk.claimed_value,
            "expected": truth,
            "difficulty": f["difficulty"],
            "family": f["family"],
            "reason": chk.reason,
        }
        return Verdict(chk.ok, ev, f"ground_truth_{chk.reason}", "ground_truth")
