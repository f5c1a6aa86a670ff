"""Quality heuristics on real documents: each rule on real positives/negatives, agreement with human
labels, signals as columns, C4 line removal, shared per-document stats, config validation."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from curation.steps.base import DocBatch
from curation.steps.quality import (
    C4Config,
    C4Quality,
    FineWebConfig,
    FineWebQuality,
    GopherQuality,
    GopherQualityConfig,
    GopherRepetition,
    GopherRepetitionConfig,
    QualityConfig,
    quality_steps,
)
from curation.steps.quality.text_stats import TextStats, stats_for

CASES = json.loads((Path(__file__).parents[1] / "fixtures" / "quality" / "rule_cases.json").read_text())


@pytest.fixture(scope="module")
def dolma(shared_data) -> dict[str, str]:
    with gzip.open(shared_data / CASES["source"], "rt") as f:
        return {d["id"]: d["text"] for d in map(json.loads, f)}


@pytest.fixture(scope="module")
def dclm(shared_data) -> list[dict]:
    path = shared_data / "quality_labels_dclm_human" / "majority_data_disputed.jsonl"
    return [json.loads(line) for line in path.open()]


# ---- one rule at a time --------------------------------------------------------------------------

_GQ_RULES = {
    "word_count_below_min": "min_doc_words",
    "mean_word_len_above_max": "max_avg_word_length",
    "mean_word_len_below_min": "min_avg_word_length",
    "ellipsis_ratio": "max_symbol_word_ratio",
    "ellipsis_lines_frac": "max_ellipsis_lines_ratio",
    "bullet_lines_frac": "max_bullet_lines_ratio",
    "alpha_words_frac": "min_alpha_words_ratio",
    "stop_words_below_min": "min_stop_words",
}
_GR_SCALARS = ["dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac"]
_FW_RULES = {
    "line_punct_ratio": "line_punct_thr",
    "short_line_ratio": "short_line_thr",
    "char_dup_ratio": "char_duplicates_ratio",
    "list_ratio": "new_line_ratio",
}


def only_rule(reason: str):
    """A filter of the reason's family with every threshold disabled except the one behind `reason`."""
    family, rule = reason.split(":")
    if family == "gopher_quality":
        off = {f: None for f in {*_GQ_RULES.values(), "max_doc_words"}}
        off[_GQ_RULES[rule]] = getattr(GopherQualityConfig(), _GQ_RULES[rule])
        return GopherQuality(GopherQualityConfig(**off))
    if family == "gopher_repetition":
        defaults = GopherRepetitionConfig()
        kw = {f: None for f in _GR_SCALARS} | {"top_n_grams": {}, "dup_n_grams": {}}
        if rule in _GR_SCALARS:
            kw[rule] = getattr(defaults, rule)
        else:  # top_<n>gram_char_frac / dup_<n>gram_char_frac
            kind, n = rule.split("_")[0], int(rule.split("_")[1].removesuffix("gram"))
            field = f"{kind}_n_grams"
            kw[field] = {n: getattr(defaults, field)[n]}
        return GopherRepetition(GopherRepetitionConfig(**kw))
    if family == "c4_quality":
        return C4Quality(C4Config())  # document-level C4 rules are few; the others only drop lines
    if family == "fineweb_quality":
        off = {f: None for f in _FW_RULES.values()}
        off[_FW_RULES[rule]] = getattr(FineWebConfig(), _FW_RULES[rule])
        return FineWebQuality(FineWebConfig(**off))
    raise AssertionError(reason)


POSITIVES = [(reason, doc_id) for reason, docs in CASES["positives"].items() for doc_id, _ in docs]


@pytest.mark.parametrize("reason,doc_id", POSITIVES, ids=[f"{r}-{d[:6]}" for r, d in POSITIVES])
def test_rule_rejects_its_real_positive(dolma, reason, doc_id):
    flt = only_rule(reason)
    got, signals = flt.evaluate(dolma[doc_id])
    assert got == reason
    assert signals, "the failing rule's signal is recorded"


@pytest.mark.parametrize("reason", sorted(CASES["positives"]))
def test_rule_spares_real_negatives(dolma, reason):
    flt = only_rule(reason)
    for doc_id, _ in CASES["negatives"]:
        got, _ = flt.evaluate(dolma[doc_id])
        assert got is None, f"{doc_id} wrongly rejected by {got}"


def test_negatives_pass_the_full_chain_with_every_signal_filled(dolma):
    ids = [d for d, _ in CASES["negatives"]]
    batch = DocBatch({"id": ids, "text": [dolma[d] for d in ids]})
    steps = quality_steps(QualityConfig())
    for step in steps:
        step.apply(batch)
    assert batch["reject_stage"] == [None] * len(ids)
    for step in steps:
        for field in step.fields():
            assert all(v is not None for v in batch[field.name]), field.name


# ---- exact semantics on real text ---------------------------------------------------------------


def test_duplicate_line_and_ngram_fractions_are_exact(dolma):
    lines = [line for line in dolma["blj5uzvcoa4iybpd5o6kom5nir6ngmoj"].split("\n") if line.strip()][:10]
    assert len(set(lines)) == 10
    text = "\n".join(lines + lines[:4])  # 4 of 14 lines repeat earlier ones
    st = TextStats(text)
    _, signals = GopherRepetition(GopherRepetitionConfig()).evaluate(text)
    assert signals["gopher_rep_dup_line_frac"] == pytest.approx(4 / 14)
    assert signals["gopher_rep_dup_line_char_frac"] == pytest.approx(sum(map(len, lines[:4])) / len(text))
    # the repeated block is 4 whole lines of words: every 5-gram inside it repeats
    repeated_words = sum(len(TextStats(line).words) for line in lines[:4])
    assert st.duplicate_ngram_chars(5) > 0
    assert st.duplicate_ngram_chars(5) <= sum(len(w) for w in TextStats("\n".join(lines[:4])).words)
    assert repeated_words >= 5


def test_top_ngram_counts_the_most_frequent_pair():
    st = TextStats("to be or not to be , to be sure")
    # ("to", "be") occurs 3 times: 3 * len("to be")
    assert st.top_ngram_chars(2) == 3 * 5


def test_c4_drops_javascript_and_policy_lines_and_rewrites_text(dolma):
    original = dolma["x4ta76qugdlmekjkk5omvxtinnvitz3i"]
    text = (
        original + "\nPlease enable JavaScript to view the comments powered by Disqus."
        "\nThis site uses cookies to improve it."
    )
    batch = DocBatch({"id": ["a"], "text": [text]})
    step = C4Quality(C4Config())
    step.apply(batch)
    assert batch["reject_stage"] == [None]
    assert "JavaScript" not in batch["text"][0] and "uses cookies" not in batch["text"][0]
    assert batch["c4_lines"][0] - batch["c4_lines_kept"][0] >= 2


def test_c4_document_rules_on_real_text(dolma):
    prose = dolma["blj5uzvcoa4iybpd5o6kom5nir6ngmoj"]
    c4 = C4Quality(C4Config())
    assert c4.evaluate(prose)[0] is None
    assert (
        c4.evaluate(prose + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.")[0]
        == "c4_quality:lorem_ipsum"
    )
    assert c4.evaluate(prose + "\nvar x = { a: 1 } and more words.")[0] == "c4_quality:curly_bracket"


def test_stats_are_shared_between_filters_until_text_changes(dolma):
    batch = DocBatch(
        {"id": ["a"], "text": [dolma["blj5uzvcoa4iybpd5o6kom5nir6ngmoj"] + "\nEnable javascript now please."]}
    )
    first = stats_for(batch, 0)
    GopherQuality(GopherQualityConfig()).apply(batch)
    assert stats_for(batch, 0) is first  # same object: words split once
    C4Quality(C4Config()).apply(batch)  # drops the javascript line -> new text
    assert stats_for(batch, 0) is not first
    assert stats_for(batch, 0).text == batch["text"][0]


# ---- agreement with humans ----------------------------------------------------------------------


def _fisher_one_sided(a: int, b: int, c: int, d: int) -> float:
    """P(X >= a) for the 2x2 table [[a, b], [c, d]] under the hypergeometric null."""
    row1, col1, n = a + b, a + c, a + b + c + d
    return sum(
        math.comb(col1, k) * math.comb(n - col1, row1 - k) for k in range(a, min(row1, col1) + 1)
    ) / math.comb(n, row1)


def test_filters_agree_with_dclm_human_labels_better_than_chance(dclm):
    batch = DocBatch({"id": [str(i) for i in range(len(dclm))], "text": [d["text"] for d in dclm]})
    for step in quality_steps(QualityConfig()):
        step.apply(batch)
    kept = [d["label"] for d, st in zip(dclm, batch["reject_stage"]) if st is None]
    rejected = [d["label"] for d, st in zip(dclm, batch["reject_stage"]) if st is not None]
    good_kept, good_rej = sum(kept), sum(rejected)
    assert good_kept / len(kept) > good_rej / len(rejected) + 0.1
    p = _fisher_one_sided(good_kept, len(kept) - good_kept, good_rej, len(rejected) - good_rej)
    assert p < 0.01, p


# ---- whole-batch behaviour -----------------------------------------------------------------------


def test_every_dolma_doc_gets_a_decision_and_reasons_name_rules(dolma):
    ids = list(dolma)
    batch = DocBatch({"id": ids, "text": [dolma[i] for i in ids]})
    steps = quality_steps(QualityConfig())
    for step in steps:
        step.apply(batch)
    stages = {s.name for s in steps}
    rejected = [i for i in range(batch.n) if batch["reject_stage"][i] is not None]
    assert 0 < len(rejected) < batch.n
    for i in rejected:
        stage, reason = batch["reject_stage"][i], batch["reject_reason"][i]
        assert stage in stages and reason.startswith(stage + ":")
        assert batch["reject_detail"][i]
    # empty pages in the sample are counted rejects, not crashes
    empty = [i for i in range(batch.n) if not batch["text"][i]]
    assert empty and all(batch["reject_reason"][i] == "gopher_quality:word_count_below_min" for i in empty)


def test_none_text_is_a_reject_not_a_crash():
    batch = DocBatch({"id": ["x"], "text": [None]})
    for step in quality_steps(QualityConfig()):
        step.apply(batch)
    assert batch["reject_reason"] == ["gopher_quality:word_count_below_min"]


def test_config_validates_at_the_edge():
    cfg = QualityConfig.model_validate(
        {"gopher_repetition": {"top_n_grams": {"2": 0.3}}, "c4": {"enabled": False}}
    )
    assert cfg.gopher_repetition.top_n_grams == {2: 0.3}
    assert [s.name for s in quality_steps(cfg)] == ["gopher_quality", "gopher_repetition", "fineweb_quality"]
    assert [f.name for f in GopherRepetition(cfg.gopher_repetition).fields()][
        -1
    ] == "gopher_rep_dup_10gram_char_frac"
    with pytest.raises(ValidationError, match="min_words"):
        QualityConfig.model_validate({"gopher_quality": {"min_words": 5}})
    with pytest.raises(ValidationError):
        QualityConfig.model_validate({"gopher_repetition": {"top_n_grams": {"two": 0.3}}})
