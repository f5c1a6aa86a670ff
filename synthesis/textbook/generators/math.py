"""Math word problems: a problem, a step-by-step solution and a machine-readable `Final answer:` line."""
from __future__ import annotations

from synthesis.teacher import ChatMessage
from synthesis.textbook.generators.base import Generator, Parsed, section, web_block
from synthesis.textbook.seeds import SeedDraw
from synthesis.textbook.verify.math import extract_final_answer, to_value

SOLVER_SYSTEM = "You are a careful math tutor. Solve problems step by step and check your arithmetic."


class MathGenerator(Generator):
    kind = "math"
    prompt_version = "v1"
    has_answer = True

    def prompt(self, seed: SeedDraw) -> str:
        return (web_block(seed) + f"Write one math word problem about {seed.topic} for {seed.audience_text}, "
                "then solve it step by step. The answer must be a single number. Use exactly this format:\n"
                "Problem: <the problem>\nSolution: <the step-by-step solution>\nFinal answer: <the number only>")

    def parse(self, text: str) -> Parsed:
        # small teachers often title the problem; accept the common headers, never unlabelled text
        problem = section(text, "(?:math word problem|word problem|problem|question)", ["solution", "final answer"])
        solution = section(text, "solution", ["final answer"])
        answer = extract_final_answer(text)
        if not problem:
            return Parsed(reason="no_problem", detail="no 'Problem:' section")
        if not solution:
            return Parsed(reason="no_solution", detail="no 'Solution:' section")
        if answer.answer is None:
            return Parsed(reason="no_final_answer", detail="no 'Final answer:' line")
        if to_value(answer.answer) is None:
            return Parsed(reason="non_numeric_answer", detail=f"final answer {answer.answer!r} is not a number")
        body = f"Problem: {problem}\n\nSolution: {solution}\n\nFinal answer: {answer.answer}"
        return Parsed(text=body, fields={"problem": problem, "solution": solution, "answer": answer.answer,
                                         "answer_method": answer.method})

    def solve_messages(self, parsed: Parsed) -> tuple[ChatMessage, ...]:
        return (ChatMessage(role="system", content=SOLVER_SYSTEM),
                ChatMessage(role="user", content="Solve this problem step by step. End with a line of the form "
                                                 f"'Final answer: <number>'.\n\nProblem: {parsed.fields['problem']}"))
