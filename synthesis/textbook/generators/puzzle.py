"""Reasoning puzzles: a puzzle, the reasoning that solves it, and a short `Answer:`."""
from __future__ import annotations

from synthesis.teacher import ChatMessage
from synthesis.textbook.generators.base import Generator, Parsed, section, web_block
from synthesis.textbook.seeds import SeedDraw
from synthesis.textbook.verify.math import extract_final_answer

MAX_ANSWER_CHARS = 100


class PuzzleGenerator(Generator):
    kind = "puzzle"
    prompt_version = "v1"
    has_answer = True

    def prompt(self, seed: SeedDraw) -> str:
        return (web_block(seed) + f"Write one reasoning puzzle ({seed.topic}) for {seed.audience_text}, then explain "
                "the reasoning that solves it step by step. The answer must be short (a word, a name or a number). "
                "Use exactly this format:\nPuzzle: <the puzzle>\nReasoning: <the step-by-step reasoning>\n"
                "Answer: <the short answer>")

    def parse(self, text: str) -> Parsed:
        puzzle = section(text, "(?:puzzle|problem|riddle)", ["reasoning", "solution", "answer"])
        reasoning = section(text, "reasoning", ["answer"]) or section(text, "solution", ["answer"])
        answer = extract_final_answer(text)
        if not puzzle:
            return Parsed(reason="no_puzzle", detail="no 'Puzzle:' section")
        if not reasoning:
            return Parsed(reason="no_reasoning", detail="no 'Reasoning:' section")
        if answer.answer is None:
            return Parsed(reason="no_final_answer", detail="no 'Answer:' line")
        if len(answer.answer) > MAX_ANSWER_CHARS:
            return Parsed(reason="answer_too_long", detail=f"{len(answer.answer)} chars")
        body = f"Puzzle: {puzzle}\n\nReasoning: {reasoning}\n\nAnswer: {answer.answer}"
        return Parsed(text=body, fields={"problem": puzzle, "solution": reasoning, "answer": answer.answer,
                                         "answer_method": answer.method})

    def solve_messages(self, parsed: Parsed) -> tuple[ChatMessage, ...]:
        return (ChatMessage(role="system", content="You solve logic puzzles carefully, step by step."),
                ChatMessage(role="user", content="Solve this puzzle step by step. End with a line of the form "
                                                 f"'Answer: <short answer>'.\n\nPuzzle: {parsed.fields['problem']}"))
