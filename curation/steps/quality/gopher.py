"""Gopher quality and repetition rules (Rae et al. 2021, "Scaling Language Models", appendix A1).

Defaults are the paper's thresholds, as datatrove's GopherQualityFilter / GopherRepetitionFilter use them.
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from curation.steps.quality.rule_filter import FilterConfig, RuleFilter, Verdict, ratio
from curation.steps.quality.text_stats import TextStats, duplicate_counts

#: The Gopher paper's stop words; a document needs `min_stop_words` distinct ones (case-sensitive).
GOPHER_STOP_WORDS = ["the", "be", "to", "of", "and", "that", "have", "with"]


class GopherQualityConfig(FilterConfig):
    # each threshold: None disables that rule
    min_doc_words: int | None = 50  # counted over non-symbol words
    max_doc_words: int | None = 100_000
    min_avg_word_length: float | None = 3
    max_avg_word_length: float | None = 10
    max_symbol_word_ratio: float | None = 0.1  # '#' and '...'/'…' per word, each separately
    max_bullet_lines_ratio: float | None = 0.9
    max_ellipsis_lines_ratio: float | None = 0.3
    min_alpha_words_ratio: float | None = 0.8  # words with an alphabetic character / all tokens
    min_stop_words: int | None = 2
    stop_words: list[str] = Field(default_factory=lambda: list(GOPHER_STOP_WORDS))

    def build(self) -> GopherQuality:
        return GopherQuality(self)


class GopherQuality(RuleFilter):
    name = "gopher_quality"

    def __init__(self, cfg: GopherQualityConfig):
        self.cfg = cfg
        self.stop_words = frozenset(cfg.stop_words)
        self.signal_types = {
            f"gopher_q_{s}": t
            for s, t in [
                ("word_count", pa.int64()),
                ("mean_word_len", pa.float64()),
                ("hash_ratio", pa.float64()),
                ("ellipsis_ratio", pa.float64()),
                ("bullet_lines_frac", pa.float64()),
                ("ellipsis_lines_frac", pa.float64()),
                ("alpha_words_frac", pa.float64()),
                ("stop_words", pa.int64()),
            ]
        }

    def judge(self, st: TextStats) -> Verdict:
        cfg, text = self.cfg, st.text
        n_tokens = len(st.words)
        words = st.non_symbol_words
        lines = st.lines or [""]
        sig = {
            "gopher_q_word_count": len(words),
            "gopher_q_mean_word_len": ratio(sum(map(len, words)), len(words)),
            "gopher_q_hash_ratio": ratio(text.count("#"), n_tokens),
            "gopher_q_ellipsis_ratio": ratio(text.count("...") + text.count("…"), n_tokens),
            "gopher_q_bullet_lines_frac": sum(1 for s in lines if s.lstrip().startswith(("•", "-")))
            / len(lines),
            "gopher_q_ellipsis_lines_frac": sum(1 for s in lines if s.rstrip().endswith(("...", "…")))
            / len(lines),
            "gopher_q_alpha_words_frac": ratio(st.alpha_word_count, n_tokens),
            "gopher_q_stop_words": len(self.stop_words.intersection(st.words)),
        }
        v = Verdict(signals=sig)
        n, mean = sig["gopher_q_word_count"], sig["gopher_q_mean_word_len"]
        if cfg.min_doc_words is not None and n < cfg.min_doc_words:
            return v.fail("word_count_below_min", n, "<", cfg.min_doc_words)
        if cfg.max_doc_words is not None and n > cfg.max_doc_words:
            return v.fail("word_count_above_max", n, ">", cfg.max_doc_words)
        if mean is None:  # only reachable with min_doc_words disabled: nothing to measure
            return v.fail("word_count_below_min", 0, "<", 1)
        if cfg.min_avg_word_length is not None and mean < cfg.min_avg_word_length:
            return v.fail("mean_word_len_below_min", mean, "<", cfg.min_avg_word_length)
        if cfg.max_avg_word_length is not None and mean > cfg.max_avg_word_length:
            return v.fail("mean_word_len_above_max", mean, ">", cfg.max_avg_word_length)
        if cfg.max_symbol_word_ratio is not None:
            if sig["gopher_q_hash_ratio"] > cfg.max_symbol_word_ratio:
                return v.fail("hash_ratio", sig["gopher_q_hash_ratio"], ">", cfg.max_symbol_word_ratio)
            if sig["gopher_q_ellipsis_ratio"] > cfg.max_symbol_word_ratio:
                return v.fail(
                    "ellipsis_ratio", sig["gopher_q_ellipsis_ratio"], ">", cfg.max_symbol_word_ratio
                )
        if (
            cfg.max_bullet_lines_ratio is not None
            and sig["gopher_q_bullet_lines_frac"] > cfg.max_bullet_lines_ratio
        ):
            return v.fail(
                "bullet_lines_frac", sig["gopher_q_bullet_lines_frac"], ">", cfg.max_bullet_lines_ratio
            )
        if (
            cfg.max_ellipsis_lines_ratio is not None
            and sig["gopher_q_ellipsis_lines_frac"] > cfg.max_ellipsis_lines_ratio
        ):
            return v.fail(
                "ellipsis_lines_frac", sig["gopher_q_ellipsis_lines_frac"], ">", cfg.max_ellipsis_lines_ratio
            )
        if (
            cfg.min_alpha_words_ratio is not None
            and sig["gopher_q_alpha_words_frac"] < cfg.min_alpha_words_ratio
        ):
            return v.fail(
                "alpha_words_frac", sig["gopher_q_alpha_words_frac"], "<", cfg.min_alpha_words_ratio
            )
        if cfg.min_stop_words is not None and sig["gopher_q_stop_words"] < cfg.min_stop_words:
            return v.fail("stop_words_below_min", sig["gopher_q_stop_words"], "<", cfg.min_stop_words)
        return v


class GopherRepetitionConfig(FilterConfig):
    # each threshold: None disables that rule
    dup_para_frac: float | None = 0.3
    dup_para_char_frac: float | None = 0.2
    dup_line_frac: float | None = 0.3
    dup_line_char_frac: float | None = 0.2
    # n -> max fraction of characters in the most frequent n-gram
    top_n_grams: dict[int, float] = Field(default_factory=lambda: {2: 0.2, 3: 0.18, 4: 0.16})
    # n -> max fraction of characters in repeated n-grams
    dup_n_grams: dict[int, float] = Field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}
    )

    def build(self) -> GopherRepetition:
        return GopherRepetition(self)


class GopherRepetition(RuleFilter):
    name = "gopher_repetition"

    def __init__(self, cfg: GopherRepetitionConfig):
        self.cfg = cfg
        self.top_n = sorted(cfg.top_n_grams.items())
        self.dup_n = sorted(cfg.dup_n_grams.items())
        names = [
            "dup_para_frac",
            "dup_para_char_frac",
            "dup_line_frac",
            "dup_line_char_frac",
            *[f"top_{n}gram_char_frac" for n, _ in self.top_n],
            *[f"dup_{n}gram_char_frac" for n, _ in self.dup_n],
        ]
        self.signal_types = {f"gopher_rep_{s}": pa.float64() for s in names}

    def judge(self, st: TextStats) -> Verdict:
        cfg, text = self.cfg, st.text
        v = Verdict()
        sig = v.signals
        if not text:
            return v.fail("empty", 0, "==", 0)
        n_chars = len(text)

        def check(rule: str, value: float, limit: float | None) -> bool:
            sig[f"gopher_rep_{rule}"] = value
            if limit is not None and value > limit:
                v.fail(rule, value, ">", limit)
                return True
            return False

        paras = st.paragraphs
        dup_paras, dup_para_chars = duplicate_counts(paras)
        if check("dup_para_frac", dup_paras / len(paras), cfg.dup_para_frac) or check(
            "dup_para_char_frac", dup_para_chars / n_chars, cfg.dup_para_char_frac
        ):
            return v
        lines = st.newline_runs
        dup_lines, dup_line_chars = duplicate_counts(lines)
        if check("dup_line_frac", dup_lines / len(lines), cfg.dup_line_frac) or check(
            "dup_line_char_frac", dup_line_chars / n_chars, cfg.dup_line_char_frac
        ):
            return v
        for n, limit in self.top_n:
            if check(f"top_{n}gram_char_frac", st.top_ngram_chars(n) / n_chars, limit):
                return v
        no_repeats_below = None  # a repeated n-gram implies a repeated (n-1)-gram, so once n repeats nothing,
        for n, limit in self.dup_n:  # no longer n-gram does either
            if no_repeats_below is not None and n > no_repeats_below:
                frac = 0.0
            else:
                frac = st.duplicate_ngram_chars(n) / n_chars
                if frac == 0.0:
                    no_repeats_below = n
            if check(f"dup_{n}gram_char_frac", frac, limit):
                return v
        return v
