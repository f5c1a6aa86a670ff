"""The teacher's 0-5 educational score out of its free-form answer: JSON ({"score": .., "rationale": ..},
fenced or bare), an explicit "Educational score: N" line, or an answer that is only the number. Anything else
(no score, out of range, two different scores) is unparseable with the reason, never guessed."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

MAX_SCORE = 5


@dataclass(frozen=True)
class ParsedScore:
    score: int | None
    rationale: str | None
    method: str | None  # json | score_line | bare_number
    error: str | None  # why it is unparseable (None when score is set)


_FENCED = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)
_OBJECT = re.compile(r"\{[^{}]*\}", re.DOTALL)
_SCORE_LINE = re.compile(
    r"(?:educational\s+)?score\s*(?:is|of)?\s*[:=]?\s*\**\s*(-?\d+(?:\.\d+)?)\s*\**"
    r"(?:\s*(?:/|out of)\s*5)?",
    re.IGNORECASE,
)
_BARE = re.compile(r"^\s*\**\s*(-?\d+)\s*\**\s*\.?\s*$")


def _json_candidates(text: str) -> list[Any]:
    found = []
    for chunk in [text.strip(), *_FENCED.findall(text), *_OBJECT.findall(text)]:
        try:
            value = json.loads(chunk)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and "score" in value:
            found.append(value)
    return found


def _check_range(value: Any, method: str, rationale: str | None) -> ParsedScore:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ParsedScore(None, rationale, method, f"score is not a number: {value!r}")
    if number != int(number):
        return ParsedScore(None, rationale, method, f"score is not an integer: {value!r}")
    if not 0 <= int(number) <= MAX_SCORE:
        return ParsedScore(None, rationale, method, f"score {int(number)} outside 0-{MAX_SCORE}")
    return ParsedScore(int(number), rationale, method, None)


def parse_edu_score(text: str | None) -> ParsedScore:
    """The teacher's score, or why there is none. Several mentions must agree; none is guessed."""
    if not text or not text.strip():
        return ParsedScore(None, None, None, "empty answer")
    objects = _json_candidates(text)
    if objects:
        values = {json.dumps(o.get("score")) for o in objects}
        if len(values) > 1:
            return ParsedScore(None, None, "json", f"conflicting JSON scores {sorted(values)}")
        obj = objects[0]
        rationale = next(
            (str(obj[k]) for k in ("rationale", "justification", "reason", "explanation") if k in obj), None
        )
        return _check_range(obj.get("score"), "json", rationale)
    lines = _SCORE_LINE.findall(text)
    if lines:
        if len({float(v) for v in lines}) > 1:
            return ParsedScore(None, text.strip()[:2000], "score_line", f"conflicting scores {lines}")
        m = _SCORE_LINE.search(text)
        rationale = text[: m.start()].strip()[:2000] or None
        return _check_range(lines[0], "score_line", rationale)
    bare = _BARE.match(text)
    if bare:
        return _check_range(bare.group(1), "bare_number", None)
    return ParsedScore(None, text.strip()[:2000], None, "no score found")
