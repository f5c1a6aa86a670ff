"""Math answers: extract the final answer from a teacher's text, decide whether two answers are the same
number (sympy-exact for integers, fractions and surds; relative tolerance for decimals), and check a
generated answer against independent solves (self-consistency over k samples; k=1 = a second solution).

Extraction never guesses: an answer comes from an explicit marker (`Final answer:`, GSM8K's `####`,
`\\boxed{}`, `The answer is`, `Answer:`); text without one has no answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sympy
from sympy.parsing.sympy_parser import parse_expr, standard_transformations

_MARKERS = [
    ("final_answer", re.compile(r"final\s+answer\s*(?:is)?\s*[:=]?\s*(.+)", re.IGNORECASE)),
    ("gsm8k", re.compile(r"^\s*####\s*(.+)$", re.MULTILINE)),
    ("boxed", re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})+)\}")),
    ("answer_is", re.compile(r"the\s+(?:final\s+)?answer\s+is\s*[:=]?\s*(.+)", re.IGNORECASE)),
    ("answer", re.compile(r"^\s*\**answer\**\s*[:=]\s*(.+)$", re.IGNORECASE | re.MULTILINE)),
]


@dataclass(frozen=True)
class Extracted:
    answer: str | None
    method: str | None


def extract_final_answer(text: str | None) -> Extracted:
    """The last answer the text states under the strongest marker present."""
    if not text:
        return Extracted(None, None)
    for method, pattern in _MARKERS:
        found = [m.group(1) for m in pattern.finditer(text)]
        found = [a for a in (_clean_answer(f) for f in found) if a]
        if found:
            return Extracted(found[-1], method)
    return Extracted(None, None)


def _clean_answer(raw: str) -> str:
    line = raw.strip().splitlines()[0] if raw.strip() else ""
    line = line.strip().strip("*").strip()
    line = re.sub(r"^\$+|\$+$", "", line).strip()  # LaTeX math delimiters around the whole answer
    line = re.sub(r"[.;,!]+$", "", line).strip()
    return line[:200]


# ---- numeric values ------------------------------------------------------------------------------

_LATEX_FRAC = re.compile(r"\\[dt]?frac\{([^{}]+)\}\{([^{}]+)\}")
_LATEX_SQRT = re.compile(r"\\sqrt\{([^{}]+)\}")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
#: what may reach the expression parser: digits, operators, parentheses, and a few names (never arbitrary
#: code)
_SAFE_EXPR = re.compile(r"^[\d\s.+\-*/^()]*(?:(?:sqrt|pi)[\d\s.+\-*/^()]*)*$")


def _thousands(s: str) -> str:
    """1,234,567 -> 1234567 (commas only where they group thousands)."""
    return re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", s)


def to_value(answer: str | None) -> sympy.Expr | None:
    """The number an answer states (e.g. '$1,200.50', '3/4', '\\frac{3}{4}', '25%', '2\\sqrt{3}',
    '15 apples'), as an exact sympy value, or None when it states no number."""
    if answer is None:
        return None
    s = answer.strip()
    for sign in ("=", "≈", "\\approx"):  # "x = 6", "(2 * 4) = 8", "1250 * 3.33 ≈ 4,890": the last result
        if sign in s:
            s = s.rsplit(sign, 1)[1].strip()
    s = _LATEX_FRAC.sub(r"((\1)/(\2))", s)
    s = _LATEX_SQRT.sub(r"sqrt(\1)", s)
    s = s.replace("\\pi", "pi").replace("\\cdot", "*").replace("\\times", "*").replace("×", "*")
    s = s.replace("−", "-").replace("\\left", "").replace("\\right", "").replace("\\", "")
    s = re.sub(r"[$€£¥%]", "", _thousands(s))
    s = re.sub(r"(\d)\s*(sqrt|pi|\()", r"\1*\2", s)
    candidate = s.strip()
    if not _SAFE_EXPR.match(candidate) or not re.search(r"\d|pi", candidate):
        # words around a number ("15 apples", "x = 4 cm"): take the first number, or an a/b fraction
        m = re.search(r"-?\d[\d.]*\s*/\s*\d[\d.]*", s) or _NUMBER.search(s)
        if not m:
            return None
        candidate = m.group(0)
    try:
        value = parse_expr(
            candidate.replace("^", "**"),
            transformations=standard_transformations,
            local_dict={"sqrt": sympy.sqrt, "pi": sympy.pi},
            evaluate=True,
        )
        value = sympy.nsimplify(value, rational=True) if value.is_Float else value
    except (SyntaxError, TypeError, ValueError, ZeroDivisionError, sympy.SympifyError, TokenError_):
        return None
    return value if getattr(value, "is_number", False) and value.is_finite else None


try:
    from tokenize import TokenError as TokenError_
except ImportError:  # pragma: no cover
    TokenError_ = SyntaxError


def equivalent(a: str | None, b: str | None, rel_tol: float = 1e-6) -> bool:
    """Whether two answers state the same number (exactly, or within rel_tol for decimals)."""
    va, vb = to_value(a), to_value(b)
    if va is None or vb is None:
        return False
    try:
        if sympy.simplify(va - vb) == 0:
            return True
        fa, fb = float(va), float(vb)
    except (TypeError, ValueError):
        return False
    return abs(fa - fb) <= rel_tol * max(1.0, abs(fa), abs(fb))


_WORDS = re.compile(r"[a-z0-9]+")


def same_short_answer(a: str | None, b: str | None) -> bool:
    """Numbers compare as numbers; otherwise case/punctuation/article-insensitive text equality."""
    if a is None or b is None:
        return False
    if to_value(a) is not None and to_value(b) is not None:
        return equivalent(a, b)

    def norm(s: str) -> list[str]:
        return [w for w in _WORDS.findall(s.lower()) if w not in {"a", "an", "the"}]

    return bool(norm(a)) and norm(a) == norm(b)


@dataclass
class AgreementCheck:
    verified: bool
    claimed: str | None
    solves: list[str | None]
    agreeing: int
    evidence: dict


def check_by_agreement(
    claimed: str | None, solve_texts: list[str | None], min_agreement: float, compare=equivalent
) -> AgreementCheck:
    """Self-consistency: the claimed answer is verified when at least `min_agreement` of the k independent
    solves reach an equivalent final answer."""
    solves = [extract_final_answer(t).answer for t in solve_texts]
    agreeing = sum(1 for s in solves if compare(claimed, s))
    k = len(solves)
    verified = claimed is not None and k > 0 and agreeing / k >= min_agreement
    evidence = {
        "method": "self_consistency" if k > 1 else "second_solution",
        "k": k,
        "claimed": claimed,
        "claimed_value": str(to_value(claimed)) if claimed is not None else None,
        "solve_answers": solves,
        "agreeing": agreeing,
        "min_agreement": min_agreement,
    }
    return AgreementCheck(verified, claimed, solves, agreeing, evidence)
