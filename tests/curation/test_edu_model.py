"""Training, evaluation, the registry and local scoring of the edu classifier on real labelled data
(FineWeb-C Danish human edu labels; DCLM human quality labels for agreement)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from curation.edu.labels import read_label_file
from curation.edu.normalize import NormalizationSpec, normalize_batch
from curation.edu.registry import ModelRegistry, file_sha256, read_card
from curation.edu.scorer import EduScorer
from curation.edu.train import EduTrainConfig, FastTextParams, split_side, train
from curation.edu.workflow import default_human_labels, train_and_register

DANISH = "edu_labels_finewebc_danish/fineweb-c_danish.csv"

# small and quick, still the real recipe (softmax over score classes, word bigrams)
SMALL = FastTextParams(dim=16, bucket=20_000, epoch=25, lr=0.5)


@pytest.fixture(scope="module")
def danish(shared_data):
    return read_label_file(shared_data / DANISH, max_score=4)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return ModelRegistry(tmp_path_factory.mktemp("edu_registry"))


@pytest.fixture(scope="module")
def trained(danish, registry):
    cfg = EduTrainConfig(fasttext=SMALL, threshold=1.0, max_score=4, seed=3)
    return train_and_register(danish, cfg, registry, default_human_labels(), notes="test model")


def test_beats_majority_baseline_on_held_out_documents(trained):
    val = trained.card.metrics["validation"]
    assert val["n"] == trained.card.split["validation"] > 100
    assert val["macro_f1"] > val["baseline_macro_f1"] + 0.05
    assert val["spearman"] > 0.2  # edu_score ranks held-out documents with the human labels
    assert val["binary_f1"] > 0.3  # keep decision at 1.0 vs label >= 1


def test_card_and_report(trained, registry):
    card = read_card(trained.dir)
    assert card == trained.card
    assert card.model_sha256 == file_sha256(trained.model_path)
    assert card.classes == [0, 1, 2, 3] and card.normalization == NormalizationSpec()
    assert card.label_counts == {"0": 491, "1": 250, "2": 62, "3": 3}
    assert card.split["train"] + card.split["validation"] == 806
    assert card.params["fasttext"]["wordNgrams"] == 2 and card.params["seed"] == 3
    human = card.metrics["human_agreement"]
    assert human["n"] == 218 and 0.0 <= human["auc"] <= 1.0  # reported as agreement, any value is legitimate
    report_dir = trained.dir / "eval" / "validation"
    for f in ("report.json", "report.md", "confusion.png", "histogram.png", "histogram_human.png"):
        assert (report_dir / f).stat().st_size > 0, f
    report = json.loads((report_dir / "report.json").read_text())
    m = report["labels"]
    assert np.asarray(m["confusion"]["matrix"]).sum() == m["n"]
    assert "macro-F1" in (report_dir / "report.md").read_text()
    assert registry.versions() == [trained.version]


def test_split_is_by_document_and_disjoint(danish):
    cfg = EduTrainConfig()
    norm = normalize_batch(danish.texts)
    val = {t for t in norm if split_side(t, cfg.seed, cfg.validation_fraction)}
    train_side = {t for t in norm if not split_side(t, cfg.seed, cfg.validation_fraction)}
    assert not val & train_side
    assert 0.1 < len(val) / len(set(norm)) < 0.3


def test_training_is_reproducible(danish, tmp_path):
    cfg = EduTrainConfig(fasttext=FastTextParams(dim=8, bucket=5000, epoch=5), max_score=4)
    a = train(danish, cfg, tmp_path / "a")
    b = train(danish, cfg, tmp_path / "b")
    assert file_sha256(a.model_path) == file_sha256(b.model_path)
    assert a.data_hash == b.data_hash


def test_normalisation_identical_at_train_and_score_time(danish, registry, tmp_path):
    """The text fasttext trained on is exactly what the scorer feeds it, including a non-default spec
    (which only reaches the scorer through the model card)."""
    spec = NormalizationSpec(max_chars=300)
    cfg = EduTrainConfig(
        fasttext=FastTextParams(dim=8, bucket=5000, epoch=5), max_score=4, normalization=spec, oversample_to=0
    )  # no resampling: file lines follow the rows
    ref = train_and_register(danish, cfg, registry)
    assert ref.card.normalization == spec
    result = train(danish, cfg, tmp_path, keep_train_file=True)
    trained_lines = (tmp_path / "train.txt").read_text().splitlines()
    scorer = EduScorer(ref)
    raw = result.train.column("text").to_pylist()
    scored_inputs = normalize_batch(raw, scorer.spec)
    assert [line.split(" ", 1)[1] if " " in line else "" for line in trained_lines] == scored_inputs
    # every vocabulary word is a fixed point of the score-time normalisation
    words = [w for w in scorer.model.words if w != "</s>"]
    assert normalize_batch(words, scorer.spec) == words


def test_scores_are_expected_values(trained):
    scorer = EduScorer(trained)
    texts = ["Fotosyntese er den proces, hvor planter omdanner lys til energi.", "Køb billige sko nu!!!"]
    scores, ints = scorer.score(texts)
    labels, probs = scorer.model.predict(normalize_batch(texts), k=-1)
    for s, labs, ps in zip(scores, labels, probs):
        expected = sum(p * int(lab.removeprefix("__label__")) for lab, p in zip(labs, ps)) / ps.sum()
        assert s == pytest.approx(expected)
        assert 0 <= s <= 3
    assert ints.tolist() == np.clip(np.floor(scores + 0.5), 0, 3).astype(int).tolist()


def test_promote_and_resolve(trained, registry):
    with pytest.raises(FileNotFoundError, match="no promoted edu model"):
        ModelRegistry(registry.root / "empty").resolve()
    registry.promote(trained.version)
    assert registry.resolve().version == trained.version
    assert registry.resolve(trained.dir).version == trained.version
    with pytest.raises(FileNotFoundError, match="edu model version 'edu-nope' not found"):
        registry.resolve("edu-nope")


def test_missing_or_corrupt_model_file_is_a_clear_error(trained, tmp_path):
    import shutil

    copy = tmp_path / trained.version
    shutil.copytree(trained.dir, copy)
    ref = ModelRegistry(tmp_path).resolve(copy)
    model = copy / "model.bin"
    data = model.read_bytes()
    model.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(ValueError, match=r"model file .*model.bin is corrupt"):
        EduScorer(ref)
    model.write_bytes(b"\0" * 64)  # garbage
    with pytest.raises(ValueError, match="corrupt"):
        EduScorer(ref)
    model.unlink()
    with pytest.raises(FileNotFoundError, match=r"model file .*model.bin is missing"):
        EduScorer(ref)
    (copy / "card.json").write_text("{not json")
    with pytest.raises(ValueError, match="card.json is invalid"):
        ModelRegistry(tmp_path).resolve(copy)


def test_training_needs_two_classes(danish, tmp_path):
    from curation.edu.labels import LabelSet

    only_zero = danish.table.filter(np.asarray(danish.scores) == 0)
    with pytest.raises(ValueError, match="at least two score classes"):
        train(LabelSet(only_zero), EduTrainConfig(), tmp_path)


def test_cli_train_reference_vs_random_and_config_errors(shared_data, tmp_path, capsys):
    from curation.cli import main

    cfg = tmp_path / "edu.yaml"
    cfg.write_text("fasttext: {dim: 16, bucket: 20000}\nmax_score: 1\nthreshold: 0.5\n")
    reg = tmp_path / "reg"
    rc = main(
        [
            "edu",
            "train",
            "--registry",
            str(reg),
            "--config",
            str(cfg),
            "--human",
            "none",
            "--promote",
            "--reference",
            str(shared_data / "quality_labels_dclm_human" / "majority_data_disputed.jsonl"),
            "--random",
            str(
                shared_data
                / "webtext_cc2019_dolma_sample"
                / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
            ),
            "--reference-n",
            "80",
        ]
    )
    assert rc == 0
    ref = ModelRegistry(reg).resolve()  # promoted by --promote
    counts, dups = ref.card.label_source_counts, ref.card.label_rejects.get("duplicate_text", 0)
    assert (
        counts["reference"] == 80 and counts["random"] + dups == 80
    )  # copies in the crawl sample are counted
    assert "registered " + ref.version in capsys.readouterr().out

    cfg.write_text("fasttext: {dims: 16}\n")
    assert main(["edu", "train", "--registry", str(reg), "--config", str(cfg), "--labels", "x.jsonl"]) == 2
    err = capsys.readouterr().err
    assert str(cfg) in err and "fasttext.dims" in err
    assert main(["edu", "train", "--registry", str(reg), "--reference", "a.jsonl"]) == 2
    assert "needs both --reference and --random" in capsys.readouterr().err


def test_cli_evaluate_writes_report(trained, registry, shared_data, tmp_path, capsys):
    from curation.cli import main

    out = tmp_path / "ev"
    rc = main(
        [
            "edu",
            "evaluate",
            "--registry",
            str(registry.root),
            "--model",
            trained.version,
            "--labels",
            str(shared_data / DANISH),
            "--max-score",
            "4",
            "--human",
            "none",
            "--output",
            str(out),
        ]
    )
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["model_version"] == trained.version and report["labels"]["n"] == 806
    assert report["labels"]["threshold"] == trained.card.threshold and "human_agreement" not in report
    assert (out / "confusion.png").is_file() and "report.md" in capsys.readouterr().out
