"""C4 rules (Raffel et al. 2020, section 2.2, and tensorflow_datasets' c4_utils): line-level cleaning
plus document-level drops for "lorem ipsum", curly brackets and too few sentences.

Lines that fail a line rule (a word over 1000 chars, no terminal punctuation, fewer than 3 words,
"javascript", cookie/terms-of-use wording) are removed from the text when `remove_lines` is on (C4's
semantics); the signals say how many lines survived either way.

The default keeps lines without terminal punctuation (`filter_no_terminal_punct: false`), as FineWeb's
recipe does when it runs C4 next to its own line-punctuation rule; C4 itself sets it true.
"""

from __future__ import annotations

import re

import pyarrow as pa

from curation.steps.quality.rule_filter import FilterConfig, RuleFilter, Verdict
from curation.steps.quality.text_stats import TextStats

_CITATION_RE = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
_END_PUNCTUATION = (".", "?", "!", '"', "'")
_POLICY_PHRASES = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)
# a sentence ends at terminal punctuation (plus closing quotes/brackets) followed by space or line end
_SENTENCE_END_RE = re.compile(r"[.!?。！？]+[\"'”’)\]]*(?=\s|$)")


def count_sentences(line: str) -> int:
    ends = list(_SENTENCE_END_RE.finditer(line))
    tail = line[ends[-1].end() :] if ends else line
    return len(ends) + (1 if tail.strip() else 0)


class C4Config(FilterConfig):
    remove_lines: bool = True  # rewrite the text to the lines that pass the line rules
    remove_citations: bool = True  # strip wikipedia-style [1] / [edit] / [citation needed]
    filter_no_terminal_punct: bool = False
    min_num_sentences: int | None = 5  # over kept lines; None disables
    min_words_per_line: int | None = 3
    max_word_length: int | None = 1000
    filter_lorem_ipsum: bool = True
    filter_javascript: bool = True
    filter_curly_bracket: bool = True
    filter_policy: bool = True

    def build(self) -> C4Quality:
        return C4Quality(self)


class C4Quality(RuleFilter):
    name = "c4_quality"

    def __init__(self, cfg: C4Config):
        self.cfg = cfg
        self.signal_types = {"c4_lines": pa.int64(), "c4_lines_kept": pa.int64(), "c4_sentences": pa.int64()}

    def judge(self, st: TextStats) -> Verdict:
        cfg = self.cfg
        v = Verdict()
        kept: list[str] = []
        sentences = 0
        v.signals["c4_lines"] = len(st.lines)
        for raw in st.lines:
            line = raw.strip()
            words = line.split()
            if cfg.max_word_length is not None and any(len(w) > cfg.max_word_length for w in words):
                continue
            if cfg.remove_citations:
                line = _CITATION_RE.sub("", line)
            if cfg.filter_no_terminal_punct and (not line.endswith(_END_PUNCTUATION) or line.endswith("...")):
                continue
            if cfg.min_words_per_line is not None and len(words) < cfg.min_words_per_line:
                continue
            lower = line.lower()
            if cfg.filter_lorem_ipsum and "lorem ipsum" in lower:
                v.rule, v.detail = "lorem_ipsum", f"line contains 'lorem ipsum': {line[:80]!r}"
                return v
            if cfg.filter_javascript and "javascript" in lower:
                continue
            if cfg.filter_curly_bracket and "{" in line:
                v.rule, v.detail = "curly_bracket", f"line contains '{{': {line[:80]!r}"
                return v
            if cfg.filter_policy and any(p in lower for p in _POLICY_PHRASES):
                continue
            if cfg.min_num_sentences is not None:
                sentences += count_sentences(line)
            kept.append(line)
        v.signals["c4_lines_kept"] = len(kept)
        v.signals["c4_sentences"] = sentences
        if cfg.min_num_sentences is not None and sentences < cfg.min_num_sentences:
            return v.fail("too_few_sentences", sentences, "<", cfg.min_num_sentences)
        if not kept:
            return v.fail("no_lines_kept", 0, "==", 0)
        if cfg.remove_lines:
            cleaned = "\n".join(kept).strip()
            if cleaned != st.text:
                v.replacement_text = cleaned
        return v
