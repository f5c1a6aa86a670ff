"""Reasoning puzzles: a puzzle, the reasoning that solves it, and a short `Answer:`."""

from __future__ import annotations

from synthesis.textbook.generators.base import AnsweredGenerator, Parsed, section, web_block
from synthesis.textbook.seeds import SeedDraw
from synthesis.textbook.verify.math import same_short_answer

MAX_ANSWER_CHARS = 100


class PuzzleGenerator(AnsweredGenerator):
    kind = "puzzle"
    prompt_version = "v1"
    headers = ("Puzzle", "Reasoning", "Answer")
    solver_system = "You solve logic puzzles carefully, step by step."
    answer_hint = "short answer"
    json_keys = ("puzzle", "explanation", "answer")

    def prompt(self, seed: SeedDraw) -> str:
        return (
            web_block(seed)
            + f"Write one reasoning puzzle ({seed.topic}) for {seed.audience_text}, then explain "
            "the reasoning that solves it step by step. The answer must be short "
            "(a word, a name or a number). "
            "Use exactly this format:\nPuzzle: <the puzzle>\nReasoning: <the step-by-step reasoning>\n"
            "Answer: <the short answer>"
        )

    def json_prompt(self, seed: SeedDraw) -> str:
        return (
            web_block(seed)
            + f"Write one reasoning puzzle ({seed.topic}) for {seed.audience_text}, then explain "
            "the reasoning that solves it step by step. Answer in JSON with the keys puzzle (the puzzle), "
            "explanation (a list of short reasoning steps) and answer (a word, a name or a number)."
        )

    def find_sections(self, text: str) -> tuple[str | None, str | None]:
        puzzle = section(text, "(?:puzzle|problem|riddle)", ["reasoning", "solution", "answer"])
        return puzzle, section(text, "reasoning", ["answer"]) or section(text, "solution", ["answer"])

    def compare(self, claimed: str | None, solved: str | None) -> bool:
        return same_short_answer(claimed, solved)

    def reject_answer(self, answer: str) -> Parsed | None:
        if len(answer) > MAX_ANSWER_CHARS:
            return Parsed(reason="answer_too_long", detail=f"{len(answer)} chars")
        return None
