"""Math word problems: a problem, a step-by-step solution and a machine-readable `Final answer:` line."""

from __future__ import annotations

from synthesis.textbook.generators.base import AnsweredGenerator, Parsed, section, web_block
from synthesis.textbook.generators.schema import NUMBER
from synthesis.textbook.seeds import SeedDraw
from synthesis.textbook.verify.math import equivalent, to_value

SOLVER_SYSTEM = "You are a careful math tutor. Solve problems step by step and check your arithmetic."


class MathGenerator(AnsweredGenerator):
    kind = "math"
    prompt_version = "v1"
    headers = ("Problem", "Solution", "Final answer")
    solver_system = SOLVER_SYSTEM
    answer_hint = "number"
    json_keys = ("problem", "solution_steps", "final_answer")
    answer_pattern = NUMBER

    def prompt(self, seed: SeedDraw) -> str:
        return (
            web_block(seed) + f"Write one math word problem about {seed.topic} for {seed.audience_text}, "
            "then solve it step by step. The answer must be a single number. Use exactly this format:\n"
            "Problem: <the problem>\nSolution: <the step-by-step solution>\nFinal answer: <the number only>"
        )

    def json_prompt(self, seed: SeedDraw) -> str:
        return (
            web_block(seed) + f"Write one math word problem about {seed.topic} for {seed.audience_text}, "
            "then solve it step by step. The answer must be a single number. Answer in JSON with the keys "
            "problem (the problem), solution_steps (a list of short steps) and final_answer "
            "(the number only)."
        )

    def find_sections(self, text: str) -> tuple[str | None, str | None]:
        # small teachers often title the problem; accept the common headers, never unlabelled text
        problem = section(
            text, "(?:math word problem|word problem|problem|question)", ["solution", "final answer"]
        )
        return problem, section(text, "solution", ["final answer"])

    def compare(self, claimed: str | None, solved: str | None) -> bool:
        return equivalent(claimed, solved)

    def reject_answer(self, answer: str) -> Parsed | None:
        if to_value(answer) is None:
            return Parsed(reason="non_numeric_answer", detail=f"final answer {answer!r} is not a number")
        return None
