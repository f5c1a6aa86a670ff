"""Is a stated final answer the exercise's known answer? Exact by construction, with notation rules decided
per problem type (tests/synthesis/test_synth_ground_truth.py plants the wrong answers each rule must catch):

- Any exact notation of the value is right: `3/4`, `0.75`, `\\frac{3}{4}`, `x = 4`, `$12.50`, `1,200`.
- A decimal that cannot be exact (1/3, 1/6) is right only when it has at least 3 decimal places and is the
  value correctly rounded to them: `0.333` and `0.1667` are kept, `0.33`, `0.3`, `0.17` are `rounded`.
- Percent: a question asking "what percent" is answered in percent (`62.5%` or `62.5`; `0.625` is the wrong
  number). Elsewhere a `%` answer is wrong (`12%` for "what is 15% of 80?"), except for probabilities, where
  `50%` states 1/2 (same rounding rule, on the probability).
- Units: an answer naming a unit other than the question's (`48 m^2` for cm^2, `$` for a length) is
  `wrong_unit`; naming none is fine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sympy

from synthesis.textbook.exercises import Exercise
from synthesis.textbook.verify.math import to_value

#: unit spellings -> canonical unit; anything else in an answer is words, not a unit
_UNITS = {
    "cm^2": "cm^2",
    "cm2": "cm^2",
    "cm²": "cm^2",
    "square centimeters": "cm^2",
    "square cm": "cm^2",
    "sq cm": "cm^2",
    "m^2": "m^2",
    "m2": "m^2",
    "m²": "m^2",
    "square meters": "m^2",
    "square metres": "m^2",
    "sq m": "m^2",
    "cm": "cm",
    "centimeters": "cm",
    "centimetres": "cm",
    "mm": "mm",
    "km": "km",
    "m": "m",
    "meters": "m",
    "metres": "m",
    "$": "$",
    "dollars": "$",
    "usd": "$",
    "€": "€",
    "euros": "€",
    "kg": "kg",
    "g": "g",
    "grams": "g",
    "km/h": "km/h",
    "mph": "mph",
    "hours": "h",
    "minutes": "min",
}
_UNIT_RE = re.compile("|".join(sorted((re.escape(u) for u in _UNITS), key=len, reverse=True)), re.IGNORECASE)
_DECIMAL = re.compile(r"-?\d+\.(\d+)")


@dataclass(frozen=True)
class GroundTruthCheck:
    ok: bool
    reason: str | None  # None when ok: no_answer | wrong_unit | wrong_percent | rounded | wrong_answer
    claimed_value: str | None


def _units_named(answer: str) -> set[str]:
    found = set()
    for m in _UNIT_RE.finditer(answer):
        before = answer[m.start() - 1] if m.start() else " "
        after = answer[m.end()] if m.end() < len(answer) else " "
        # whole tokens only ("m" inside "5 marbles" is no unit); "$" and "²" forms stand alone
        if m.group(0) in ("$", "€") or (not before.isalpha() and not after.isalpha()):
            found.add(_UNITS[m.group(0).lower()] if m.group(0).lower() in _UNITS else _UNITS[m.group(0)])
    return found


def check_answer(claimed: str | None, ex: Exercise) -> GroundTruthCheck:
    """Whether `claimed` states `ex.answer` under the rules above."""
    value = to_value(claimed)
    if claimed is None or value is None:
        return GroundTruthCheck(False, "no_answer", None)
    shown = str(value)
    named = _units_named(claimed.replace("%", ""))
    if named and named != {ex.unit}:
        return GroundTruthCheck(False, "wrong_unit", shown)
    has_percent = "%" in claimed or "percent" in claimed.lower()
    expected, places_bonus = ex.answer, 0
    if has_percent and not ex.percent:
        if ex.family != "probability":
            return GroundTruthCheck(False, "wrong_percent", shown)
        value, places_bonus = value / 100, 2
    if sympy.simplify(value - expected) == 0:
        return GroundTruthCheck(True, None, shown)
    decimal = _DECIMAL.search(claimed.replace(",", ""))
    places = len(decimal.group(1)) + places_bonus if decimal else 0
    if decimal and places >= 3 and _non_terminating(expected, places):
        rounded = sympy.Rational(round(expected * 10**places), 10**places)
        if sympy.simplify(value - rounded) == 0:
            return GroundTruthCheck(True, None, shown)
    if decimal and abs(float(value) - float(expected)) < 10**-places:
        return GroundTruthCheck(False, "rounded", shown)
    return GroundTruthCheck(False, "wrong_answer", shown)


def _non_terminating(x: sympy.Rational, places: int) -> bool:
    """True when `x` has no exact decimal with `places` digits (so a rounded decimal is the best one can
    say)."""
    return (x * 10**places).q != 1
