"""Language ID on real multilingual text: Danish FineWeb-C, English DCLM, German/Polish trafilatura pages
and the multilingual Dolma sample; thresholds and allowed languages; missing/corrupt model errors."""

from __future__ import annotations

import csv
import gzip
import json
import sys

import pytest
from pydantic import ValidationError

from curation.steps.base import DocBatch
from curation.steps.langid import LangIdConfig, LanguageId, load_fasttext_model


@pytest.fixture(scope="module")
def step(models) -> LanguageId:
    s = LanguageId(LangIdConfig(languages=[]))
    s.setup()
    return s


def run(step: LanguageId, texts: list[str]) -> DocBatch:
    batch = DocBatch({"id": [str(i) for i in range(len(texts))], "text": list(texts)})
    step.apply(batch)
    return batch


def test_danish_finewebc_is_danish(step, shared_data):
    csv.field_size_limit(sys.maxsize)
    with open(shared_data / "edu_labels_finewebc_danish" / "fineweb-c_danish.csv", newline="") as f:
        texts = [row["text"] for _, row in zip(range(300), csv.DictReader(f))]
    batch = run(step, texts)
    assert sum(lang == "da" for lang in batch["lang"]) / len(texts) >= 0.97
    assert all(0.0 <= s <= 1.0 for s in batch["lang_score"])


def test_dclm_english_is_english(step, shared_data):
    texts = [
        json.loads(line)["text"]
        for line in (shared_data / "quality_labels_dclm_human" / "majority_data_disputed.jsonl").open()
    ]
    batch = run(step, texts)
    assert sum(lang == "en" for lang in batch["lang"]) / len(texts) >= 0.97


@pytest.mark.parametrize("tlds,lang,min_chars", [(("de", "at"), "de", 80), (("pl",), "pl", 30)])
def test_trafilatura_pages_match_their_country(step, shared_data, tlds, lang, min_chars):
    pages = json.load((shared_data / "html_trafilatura_eval" / "evaldata.json").open())
    texts = [
        " ".join(p.get("with", []))
        for url, p in pages.items()
        if "://" in url and url.split("/")[2].rsplit(".", 1)[-1] in tlds
    ]
    texts = [t for t in texts if len(t) >= min_chars]
    assert len(texts) >= 10
    batch = run(step, texts)
    assert sum(got == lang for got in batch["lang"]) / len(texts) >= 0.9


def test_dolma_sample_filtered_to_english(shared_data, models):
    with gzip.open(
        shared_data / "webtext_cc2019_dolma_sample" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz",
        "rt",
    ) as f:
        texts = [json.loads(line)["text"] for line in f]
    s = LanguageId(LangIdConfig())  # defaults: en, min_score 0.65
    batch = run(s, texts)
    reasons = batch["reject_reason"]
    kept = [i for i in range(batch.n) if reasons[i] is None]
    assert kept and all(batch["lang"][i] == "en" and batch["lang_score"][i] >= 0.65 for i in kept)
    foreign = [i for i in range(batch.n) if reasons[i] == "lang_not_allowed"]
    assert len({batch["lang"][i] for i in foreign}) >= 5, "the sample is multilingual"
    assert all("not in ['en']" in batch["reject_detail"][i] for i in foreign)
    empty = [i for i in range(batch.n) if not (texts[i] or "").strip()]
    assert empty and all(reasons[i] == "empty_text" for i in empty)
    assert len(kept) + sum(r is not None for r in reasons) == len(texts)


def test_min_score_rejects_uncertain_text(shared_data, models):
    texts = [
        "Tervetuloa! Welcome! Willkommen! Bienvenue!",  # mixed greeting: low confidence
        json.loads(
            (shared_data / "quality_labels_dclm_human" / "majority_data_disputed.jsonl").open().readline()
        )["text"],
    ]
    s = LanguageId(LangIdConfig(languages=[], min_score=0.9))
    batch = run(s, texts)
    assert batch["reject_reason"][0] == "lang_score_below_min"
    assert batch["lang_score"][0] < 0.9 and "< 0.9" in batch["reject_detail"][0]
    assert batch["reject_reason"][1] is None


def test_missing_model_is_a_clear_error(tmp_path):
    missing = tmp_path / "lid.176.bin"
    s = LanguageId(LangIdConfig(model_path=str(missing)))
    with pytest.raises(FileNotFoundError, match=r"lid\.176\.bin.*make setup"):
        s.setup()


def test_corrupt_model_is_a_clear_error(tmp_path):
    bad = tmp_path / "lid.176.ftz"
    bad.write_bytes(b"this is not a fasttext model" * 10)
    with pytest.raises(ValueError, match=rf"{bad}.*not a valid fasttext model.*make setup"):
        load_fasttext_model(bad)


def test_config_rejects_bad_language_codes_and_scores():
    with pytest.raises(ValidationError, match="lid.176 codes"):
        LangIdConfig(languages=["English"])
    with pytest.raises(ValidationError):
        LangIdConfig(min_score=1.5)
    with pytest.raises(ValidationError):
        LangIdConfig(model="x")
