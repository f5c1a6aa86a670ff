"""Post-filters on planted items: near-duplicates inside the synthetic set (real Common Crawl text, lightly
edited copies) and benchmark items (real GSM8K test / HumanEval) hidden in otherwise synthetic text."""

from __future__ import annotations

import gzip
import json
import re

import pytest

from synthesis.textbook.postfilter import contaminated, load_decontam_index, near_duplicates
from synthesis.textbook.recipes import DecontamFilterConfig, NearDupConfig


def _shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


@pytest.fixture(scope="module")
def sample_docs(shared_data) -> list[str]:
    path = next((shared_data / "webtext_cc2019_dolma_sample").glob("*.jsonl.gz"))
    with gzip.open(path, "rt", encoding="utf-8") as f:
        docs = [json.loads(line)["text"] for line in f]
    return [t for t in docs if len(t.split()) > 150][:40]


@pytest.fixture(scope="module")
def web_texts(sample_docs) -> list[str]:
    """Sample documents that are pairwise dissimilar by brute-force exact Jaccard (the crawl itself holds
    near-copies, which the planted-duplicate tests must not count)."""
    kept: list[tuple[str, set]] = []
    for t in sample_docs:
        sh = _shingles(t)
        if all(_jaccard(sh, other) < 0.5 for _, other in kept):
            kept.append((t, sh))
    return [t for t, _ in kept]


def test_near_copies_in_the_real_crawl_sample_match_brute_force(sample_docs):
    """Every pair the filter links has exact Jaccard >= threshold, and every such pair is linked."""
    ids = [f"d{i}" for i in range(len(sample_docs))]
    drops, _ = near_duplicates(ids, sample_docs, NearDupConfig(threshold=0.7))
    sets = [_shingles(t) for t in sample_docs]
    expected = {
        j for i in range(len(sets)) for j in range(i + 1, len(sets)) if _jaccard(sets[i], sets[j]) >= 0.7
    }
    assert {d.index for d in drops} == expected and expected


def _edit(text: str) -> str:
    """A near copy: a few words changed and a sentence appended (what a teacher repeating itself looks
    like)."""
    words = text.split()
    for i in range(5, len(words), 60):
        words[i] = "edited"
    return " ".join(words) + " In summary, this is what the section covered."


def test_planted_near_duplicates_are_found_and_the_first_copy_kept(web_texts):
    texts = list(web_texts)
    planted = {len(texts): 3, len(texts) + 1: 7, len(texts) + 2: 3}  # copy index -> original index
    texts += [_edit(web_texts[3]), _edit(web_texts[7]), _edit(_edit(web_texts[3]))]
    ids = [f"doc{i}" for i in range(len(texts))]
    drops, pairs = near_duplicates(ids, texts, NearDupConfig(threshold=0.7))
    dropped = {d.index for d in drops}
    assert dropped == set(planted), [d.detail for d in drops]
    for d in drops:
        assert d.reason == "near_duplicate" and f"doc{planted[d.index]}" in d.detail
    assert pairs >= 3


def test_distinct_texts_are_not_near_duplicates(web_texts):
    drops, _ = near_duplicates(
        [f"d{i}" for i in range(len(web_texts))], web_texts, NearDupConfig(threshold=0.7)
    )
    assert drops == []


def test_disabled_near_dedup_drops_nothing(web_texts):
    texts = [web_texts[0], web_texts[0]]
    assert near_duplicates(["a", "b"], texts, NearDupConfig(enabled=False)) == ([], 0)


def test_planted_benchmark_items_are_decontaminated(shared_data, web_texts):
    with open(shared_data / "benchmarks_decontam" / "gsm8k" / "test.jsonl", encoding="utf-8") as f:
        gsm = json.loads(f.readline())["question"]
    with gzip.open(shared_data / "benchmarks_decontam" / "humaneval" / "HumanEval.jsonl.gz", "rt") as f:
        he = json.loads(f.readline())
    texts = [
        "Problem: " + gsm + "\nSolution: we add the numbers step by step.\nFinal answer: 18",
        "Exercise:\n```python\n" + he["prompt"] + he["canonical_solution"] + "\n```",
        web_texts[0],
        "Problem: A farmer has 12 cows and buys 5 more. How many cows are there now?\nFinal answer: 17",
    ]
    cfg = DecontamFilterConfig()
    drops = contaminated(texts, cfg, load_decontam_index(cfg))
    by_index = {d.index: d for d in drops}
    assert set(by_index) == {0, 1}
    assert by_index[0].reason == "benchmark_overlap:gsm8k"
    assert by_index[1].reason == "benchmark_overlap:humaneval" and he["task_id"] in by_index[1].detail


def test_optional_edu_scoring_scores_every_row_and_drops_below_the_floor(shared_data, tmp_path, web_texts):
    """A small real edu model (fasttext on the DCLM human quality labels), promoted in a throwaway
    registry."""
    from curation.edu.labels import read_label_file
    from curation.edu.registry import ModelRegistry
    from curation.edu.train import EduTrainConfig, FastTextParams
    from curation.edu.workflow import train_and_register
    from synthesis.textbook.postfilter import edu_scores
    from synthesis.textbook.recipes import EduFilterConfig

    reg = ModelRegistry(tmp_path / "edu")
    labels = read_label_file(
        shared_data / "quality_labels_dclm_human" / "majority_data_disputed.jsonl", max_score=1
    )
    ref = train_and_register(
        labels,
        EduTrainConfig(fasttext=FastTextParams(dim=16, bucket=20_000), max_score=1, threshold=0.5),
        reg,
        human_labels=None,
    )
    reg.promote(ref.version)
    texts = web_texts[:12]
    scores, none_dropped = edu_scores(texts, EduFilterConfig(model="promoted", registry=str(reg.root)))
    assert len(scores) == len(texts) and none_dropped == []
    floor = float(sorted(scores)[len(scores) // 2])
    _, drops = edu_scores(texts, EduFilterConfig(model=ref.version, registry=str(reg.root), min_score=floor))
    assert {d.index for d in drops} == {i for i, s in enumerate(scores) if s < floor}
    assert all(d.reason == "edu_below_min" for d in drops) and drops
