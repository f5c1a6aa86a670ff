"""Checks every generated sample passes whatever its kind: length bounds, language, refusal / assistant
boilerplate, repetition (duplicate lines, one 3-gram dominating), truncation. Each failure is a short
categorical reason plus a detail, recorded on the reject row."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from synthesis.textbook.recipes import TextFilters

_REFUSAL = re.compile(
    r"\b(?:as an ai(?: language model)?|i(?:'m| am) (?:sorry|unable|not able)|i can(?:no|')t "
    r"(?:help|assist|provide|write|do that)|i (?:do not|don't) have (?:access|the ability)|"
    r"my (?:knowledge )?cutoff|openai|"
    r"i hope this helps|feel free to ask|let me know if you (?:need|have|want)|certainly! here(?:'s| is))\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class TextVerdict:
    reason: str | None  # None = passes
    detail: str | None
    signals: dict


@lru_cache(maxsize=1)
def _lid_model():
    from curation.paths import models_dir
    from curation.steps.langid import load_fasttext_model

    return load_fasttext_model(models_dir() / "lid.176.ftz")


def language_of(text: str) -> tuple[str, float]:
    from curation.steps.langid import predict_languages

    return predict_languages(_lid_model(), [text])[0]


def repetition(text: str) -> tuple[float, float]:
    """(fraction of non-empty lines that repeat an earlier line, share of word characters covered by the
    most frequent word 3-gram) - Gopher-style signals that catch a small model looping."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    dup_lines = (len(lines) - len(set(lines))) / len(lines) if lines else 0.0
    words = _WORD.findall(text.lower())
    if len(words) < 6:
        return dup_lines, 0.0
    grams = Counter(zip(words, words[1:], words[2:]))
    gram, count = grams.most_common(1)[0]
    top = count * sum(len(w) for w in gram) / max(1, sum(len(w) for w in words)) if count > 1 else 0.0
    return dup_lines, top


def check_text(
    text: str | None, filters: TextFilters, finish_reason: str | None = None, lang_text: str | None = None
) -> TextVerdict:
    """`lang_text`: the part to judge the language on (default the whole text; code samples pass their
    prose)."""
    if not text or not text.strip():
        return TextVerdict("empty", "no text", {})
    words = len(_WORD.findall(text))
    dup_lines, top_gram = repetition(text)
    signals = {
        "words": words,
        "dup_line_fraction": round(dup_lines, 4),
        "top_3gram_fraction": round(top_gram, 4),
    }
    if filters.reject_truncated and finish_reason == "length":
        return TextVerdict("truncated", "the teacher hit max_tokens", signals)
    if words < filters.min_words:
        return TextVerdict("too_short", f"{words} words < {filters.min_words}", signals)
    if words > filters.max_words:
        return TextVerdict("too_long", f"{words} words > {filters.max_words}", signals)
    refusal = _REFUSAL.search(text)
    if refusal:
        return TextVerdict("refusal_or_boilerplate", f"matched {refusal.group(0)!r}", signals)
    if dup_lines > filters.max_duplicate_line_fraction:
        return TextVerdict("repetitive_lines", f"{dup_lines:.2f} of lines repeat", signals)
    if top_gram > filters.max_top_ngram_fraction:
        return TextVerdict("repetitive_ngrams", f"top 3-gram covers {top_gram:.2f} of characters", signals)
    if filters.lang:
        lang, score = language_of(lang_text if lang_text else text)
        signals.update(lang=lang, lang_score=round(score, 4))
        if lang != filters.lang or score < filters.min_lang_score:
            return TextVerdict("wrong_language", f"{lang} ({score:.2f}), want {filters.lang}", signals)
    return TextVerdict(None, None, signals)
