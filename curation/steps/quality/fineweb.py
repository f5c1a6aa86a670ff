"""FineWeb's own rules (Penedo et al. 2024, "The FineWeb Datasets"): line punctuation, short lines,
duplicated line characters and newline-per-word ratio, with the thresholds of the FineWeb recipe."""

from __future__ import annotations

import pyarrow as pa
import regex

from curation.steps.quality.rule_filter import FilterConfig, RuleFilter, Verdict, ratio
from curation.steps.quality.text_stats import TextStats, duplicate_counts

# Unicode's Sentence_Terminal property: terminal punctuation of every script (., !, ?, 。, ।, ...)
_SENTENCE_TERMINAL = regex.compile(r"\p{Sentence_Terminal}")
_terminal_cache: dict[str, bool] = {}


def ends_with_terminal(line: str) -> bool:
    ch = line[-1:]
    known = _terminal_cache.get(ch)
    if known is None:
        known = _terminal_cache[ch] = bool(ch) and _SENTENCE_TERMINAL.match(ch) is not None
    return known


class FineWebConfig(FilterConfig):
    line_punct_thr: float | None = 0.12  # min fraction of lines ending in terminal punctuation
    line_punct_exclude_zero: bool = False  # true: a document with no such line at all passes
    short_line_thr: float | None = 0.67  # max fraction of lines of <= short_line_length chars
    short_line_length: int = 30
    char_duplicates_ratio: float | None = 0.01  # max fraction of chars in repeated lines
    new_line_ratio: float | None = 0.3  # max newlines per word

    def build(self) -> FineWebQuality:
        return FineWebQuality(self)


class FineWebQuality(RuleFilter):
    name = "fineweb_quality"

    def __init__(self, cfg: FineWebConfig):
        self.cfg = cfg
        self.signal_types = {
            f"fineweb_{s}": pa.float64()
            for s in ("line_punct_frac", "short_line_frac", "dup_line_char_frac", "newline_word_ratio")
        }

    def judge(self, st: TextStats) -> Verdict:
        cfg, text = self.cfg, st.text
        v = Verdict()
        sig = v.signals
        lines = st.nonblank_lines
        if not lines:
            return v.fail("empty", 0, "==", 0)
        n = len(lines)
        punct = sig["fineweb_line_punct_frac"] = sum(1 for line in lines if ends_with_terminal(line)) / n
        if (
            cfg.line_punct_thr is not None
            and punct < cfg.line_punct_thr
            and not (punct == 0 and cfg.line_punct_exclude_zero)
        ):
            return v.fail("line_punct_ratio", punct, "<", cfg.line_punct_thr)
        short = sig["fineweb_short_line_frac"] = (
            sum(1 for line in lines if len(line) <= cfg.short_line_length) / n
        )
        if cfg.short_line_thr is not None and short > cfg.short_line_thr:
            return v.fail("short_line_ratio", short, ">", cfg.short_line_thr)
        dup = sig["fineweb_dup_line_char_frac"] = (
            ratio(duplicate_counts(lines)[1], len(text) - text.count("\n")) or 0.0
        )
        if cfg.char_duplicates_ratio is not None and dup > cfg.char_duplicates_ratio:
            return v.fail("char_dup_ratio", dup, ">", cfg.char_duplicates_ratio)
        per_word = sig["fineweb_newline_word_ratio"] = ratio(text.count("\n"), len(st.words))
        if per_word is None:
            return v.fail("no_words", 0, "==", 0)
        if cfg.new_line_ratio is not None and per_word > cfg.new_line_ratio:
            return v.fail("list_ratio", per_word, ">", cfg.new_line_ratio)
        return v
