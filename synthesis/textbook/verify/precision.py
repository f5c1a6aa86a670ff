"""Precision of the math checker on items with known answers: every correct solution must be accepted and
every corrupted one (final answer changed to a near-miss number) rejected. Used by the test and the bench."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import sympy

from synthesis.textbook.verify.math import equivalent, extract_final_answer, to_value


@dataclass
class CheckerScore:
    items: int
    correct_accepted: int
    corrupted: int
    corrupted_rejected: int
    failures: list[str]

    @property
    def accuracy(self) -> float:
        total = self.items + self.corrupted
        return (self.correct_accepted + self.corrupted_rejected) / total if total else 0.0


def corruptions(value: sympy.Expr) -> list[sympy.Expr]:
    """Near misses a sloppy solver produces: off by one, a slipped decimal point, half, the sign."""
    out = [value + 1, value - 1, value * 10, value / 2]
    if value != 0:
        out.append(-value)
    return [c for c in out if sympy.simplify(c - value) != 0]


def _replace_final(solution: str, stated: str, new: str) -> str:
    at = solution.rfind(stated)
    return solution[:at] + new + solution[at + len(stated) :]


def score_items(path: str | Path) -> CheckerScore:
    items = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    score = CheckerScore(len(items), 0, 0, 0, [])
    for it in items:
        stated = extract_final_answer(it["solution"]).answer
        if equivalent(stated, it["answer"]):
            score.correct_accepted += 1
        else:
            score.failures.append(
                f"rejected correct: {it['question'][:60]!r} stated={stated!r} known={it['answer']!r}"
            )
        known = to_value(it["answer"])
        for bad in corruptions(known):
            bad_text = str(sympy.nsimplify(bad)) if bad.is_Rational else str(bad)
            corrupted = _replace_final(it["solution"], stated, bad_text) if stated else it["solution"]
            score.corrupted += 1
            if equivalent(extract_final_answer(corrupted).answer, it["answer"]):
                score.failures.append(f"accepted corrupted: {it['question'][:60]!r} -> {bad_text}")
            else:
                score.corrupted_rejected += 1
    return score
