"""Issue 17: the shared tokenizer artifact, proxy-model ablations and RegMix-style mixture search, on real data:
Dolma CC web pages (fasttext language ID) and FineWeb-C documents with human edu scores
(tests/fixtures/mixture/sources.py), the decontamination benchmarks as reference text, MMLU for accuracy."""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from fixtures.mixture.sources import build_edu, build_web

from training.cli import main as training_cli

REPO = Path(__file__).resolve().parents[1]

BASE = """\
name: base
seed: 0
seq_len: 64
heldout_fraction: 0.05
tokenizer:
  train: {{vocab_size: 512, sample_documents: 1500}}
phases:
  - name: phase1
    tokens: 60000
    sources:
      - {{name: web, dataset: "{web}", weight: 0.5, max_epochs: 8}}
      - {{name: edu, dataset: "{edu}", weight: 0.5, max_epochs: 8}}
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory, shared_data, models) -> dict:
    root = tmp_path_factory.mktemp("ablation")
    web = build_web(shared_data, models, root / "web").parent
    edu = build_edu(shared_data, models, root / "edu").parent
    (root / "base.yaml").write_text(BASE.format(web=web, edu=edu))
    assert training_cli(["tokenizer", "train", "--mixture", str(root / "base.yaml"), "--output",
                         str(root / "tok")]) == 0
    return {"root": root, "web": web, "edu": edu, "base": root / "base.yaml", "tok": root / "tok"}


# ---------------------------------------------------------------------------------------------- tokenizer
def test_tokenizer_artifact_has_a_hash_and_is_reproducible_and_never_overwritten(env, tmp_path):
    meta = json.loads((env["tok"] / "tokenizer.meta.json").read_text())
    assert meta["hash"] == hashlib.sha256((env["tok"] / "tokenizer.json").read_bytes()).hexdigest()
    assert meta["vocab_size"] == 512 and meta["eos_id"] == 0
    assert [s["name"] for s in meta["trained_on"]["sources"]] == ["web", "edu"]
    # same mixture, same settings -> the same vocabulary, byte for byte (a version is its hash)
    assert training_cli(["tokenizer", "train", "--mixture", str(env["base"]), "--output", str(tmp_path / "again")]) == 0
    assert json.loads((tmp_path / "again" / "tokenizer.meta.json").read_text())["hash"] == meta["hash"]
    with pytest.raises(FileExistsError, match="never overwritten"):
        from training.mixture.artifact import train_artifact
        train_artifact(env["base"], env["tok"])


def test_a_mixture_naming_the_artifact_builds_with_it_instead_of_training_its_own(env, tmp_path):
    mix = yaml.safe_load(env["base"].read_text())
    mix["tokenizer"] = {"path": str(env["tok"])}
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(mix))
    assert training_cli(["mixture", "build", str(tmp_path / "m.yaml"), "--output", str(tmp_path / "b")]) == 0
    tok = json.loads((tmp_path / "b" / "manifest.json").read_text())["tokenizer"]
    meta = json.loads((env["tok"] / "tokenizer.meta.json").read_text())
    assert tok["how"] == "loaded" and tok["hash"] == meta["hash"]
    assert (tmp_path / "b" / "tokenizer" / "tokenizer.json").read_bytes() == (env["tok"] / "tokenizer.json").read_bytes()
