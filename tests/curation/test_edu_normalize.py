"""The edu normalisation: fixed behaviour (golden outputs), one code path for a document and a batch,
and the properties fasttext relies on (one line, single spaces, no punctuation)."""

from __future__ import annotations

import json
import re
import unicodedata

import pandas as pd
import pytest

from curation.edu.normalize import NORMALIZATION_VERSION, NormalizationSpec, normalize, normalize_batch


@pytest.fixture(scope="module")
def golden(fixtures):
    return json.loads((fixtures / "edu" / "normalize_golden.json").read_text())


def test_golden_outputs_unchanged(golden):
    """Any change to what the normaliser outputs must bump NORMALIZATION_VERSION and regenerate this
    fixture: models trained before the change would otherwise be scored with a different normalisation."""
    assert golden["version"] == NORMALIZATION_VERSION
    spec = NormalizationSpec(max_chars=golden["max_chars"])
    got = normalize_batch([c["input"] for c in golden["cases"]], spec)
    mismatches = [
        (c["input"][:60], c["output"][:60], g[:60]) for c, g in zip(golden["cases"], got) if g != c["output"]
    ]
    assert not mismatches


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Hello, World!  It's 3.14", "hello world it s 0 0"),
        ("Line one.\nLine two:\ttabbed", "line one line two tabbed"),
        ("Ｆｕｌｌ－ｗｉｄｔｈ １２３", "full width 0"),
        ("snake_case e-mail@example.com", "snake case e mail example com"),
        ("Year 1999, page 42-43", "year 0 page 0 0"),
        (None, ""),
        ("", ""),
        ("?!... ---", ""),
    ],
)
def test_recipe(text, expected):
    assert normalize(text) == expected


def test_single_document_equals_batch_on_real_text(shared_data):
    texts = pd.read_csv(shared_data / "edu_labels_finewebc_danish" / "fineweb-c_danish.csv").text.tolist()[
        :200
    ]
    batch = normalize_batch(texts)
    assert [normalize(t) for t in texts] == batch


def test_output_is_one_fasttext_line_of_words(shared_data):
    texts = pd.read_json(
        shared_data / "quality_labels_dclm_human" / "majority_data_disputed.jsonl", lines=True
    ).text.tolist()
    for out in normalize_batch(texts):
        assert "\n" not in out and "  " not in out and out == out.strip()
        assert out == out.lower()
        # only letters, digits and combining marks survive, separated by single spaces
        assert all(c == " " or unicodedata.category(c)[0] in "LNM" for c in out)
        assert not re.search(r"\d\d", out)  # digit runs collapsed to a single 0
    # idempotent: normalised text is a fixed point (so vocabulary words score as themselves)
    once = normalize_batch(texts)
    assert normalize_batch(once) == once


def test_max_chars_truncates_before_normalising():
    spec = NormalizationSpec(max_chars=100)
    text = "word " * 100
    assert normalize(text, spec) == ("word " * 20).strip()
    assert normalize(text, NormalizationSpec(max_chars=None)) == ("word " * 100).strip()


def test_spec_rejects_unknown_fields_and_versions():
    with pytest.raises(ValueError):
        NormalizationSpec(version="edu-norm-v0")
    with pytest.raises(ValueError):
        NormalizationSpec(lowercase=False)
