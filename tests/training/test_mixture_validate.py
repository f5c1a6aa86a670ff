"""Mixture validation and plan on real contract datasets (built from the shared samples): every error class
with its message, YAML path and line; all errors at once; plan arithmetic checked against an independent
pyarrow count of the filtered documents."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from fixtures.mixture.sources import build_all

from training.cli import main as cli_main
from training.mixture.plan import plot_plan
from training.mixture.validate import MixtureValidationError, check_mixture


@pytest.fixture(scope="module")
def srcs(tmp_path_factory, shared_data, models) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("mixture_sources")
    built = build_all(shared_data, models, out)
    (out / "datasets.yaml").write_text(
        f"datasets:\n  web_cc: web\n  edu_da: fineweb_c_da\n  dclm: {out}/dclm_quality\n"
    )
    return {**{k: v.parent for k, v in built.items()}, "registry": out / "datasets.yaml"}


def write(tmp_path: Path, text: str, srcs: dict[str, Path]) -> Path:
    p = tmp_path / "mixture.yaml"
    p.write_text(textwrap.dedent(text).format(**{k: str(v) for k, v in srcs.items()}))
    return p


GOOD = """\
name: good
seed: 3
seq_len: 128
tokenizer:
  train: {{vocab_size: 1024}}
phases:
  - name: phase1
    tokens: 100000
    sources:
      - name: web
        dataset: {web}
        filter: "lang = 'en' AND length(text) < 20000"
        weight: 0.75
        max_epochs: 2
      - name: edu
        dataset: {edu}
        weight: 0.25
"""


def problems_of(path: Path) -> list:
    with pytest.raises(MixtureValidationError) as e:
        check_mixture(path)
    return e.value.problems


def by_path(problems) -> dict[str, object]:
    return {p.path: p for p in problems}


def test_valid_mixture_plans_and_matches_an_independent_count(tmp_path, srcs):
    cm = check_mixture(write(tmp_path, GOOD, srcs))
    web, edu = cm.plans
    # Independent count with pyarrow (not DuckDB): English documents under 20,000 characters with text.
    table = ds.dataset(str(srcs["web"] / "v1" / "data")).to_table(columns=["text", "lang"])
    n_chars = pc.utf8_length(table["text"])
    keep = pc.and_(pc.and_(pc.equal(table["lang"], "en"), pc.less(n_chars, 20000)), pc.greater(n_chars, 0))
    assert web.documents == pc.sum(keep).as_py() > 100
    edu_rows = ds.dataset(str(srcs["edu"] / "v1" / "data")).count_rows()
    assert edu.documents == edu_rows == 806
    assert web.assigned_tokens == 75_000 and edu.assigned_tokens == 25_000
    assert web.epochs == pytest.approx(75_000 / web.available_tokens)
    assert web.estimated and not web.over_cap
    # available ~ characters / chars_per_token_estimate (4.0) minus the 1% held out, plus one EOS per document
    chars = pc.sum(pc.filter(n_chars, keep)).as_py()
    assert web.available_tokens == pytest.approx(chars / 4.0 * 0.99 + web.documents, abs=2)
    png = plot_plan(cm.plans, tmp_path / "plan.png")
    assert png.stat().st_size > 5000


def test_registry_names_and_versions_resolve(tmp_path, srcs):
    text = GOOD.replace("dataset: {web}", "dataset: web_cc").replace(
        "dataset: {edu}", "dataset: edu_da\n        version: v1"
    )
    text = text.replace("seq_len: 128", "seq_len: 128\nregistry: {registry}")
    cm = check_mixture(write(tmp_path, text, srcs))
    assert cm.resolved[(0, 0)].version_dir == srcs["web"] / "v1"
    assert cm.resolved[(0, 1)].version == "v1"


def test_registry_roots_follow_environment_variables(tmp_path, srcs, monkeypatch):
    """A deployment's registry names `${PHI_DATA_ROOT}`; an unset variable without a fallback is named."""
    from training.mixture.sources import load_registry

    reg = tmp_path / "datasets.yaml"
    reg.write_text("datasets:\n  web_cc: ${PHI_TEST_ROOT:-fallback}/web\n  other: ${PHI_TEST_UNSET}/x\n")
    monkeypatch.setenv("PHI_TEST_ROOT", str(srcs["web"].parent))
    monkeypatch.setenv("PHI_TEST_UNSET", "/data")
    got = load_registry(reg)
    assert got["web_cc"] == str(srcs["web"]) and got["other"] == "/data/x"
    monkeypatch.delenv("PHI_TEST_ROOT")
    assert load_registry(reg)["web_cc"] == str(tmp_path / "fallback" / "web")
    monkeypatch.delenv("PHI_TEST_UNSET")
    with pytest.raises(ValueError, match="entry 'other': environment variable PHI_TEST_UNSET is not set"):
        load_registry(reg)


def test_unknown_key_is_reported_with_path_line_and_allowed_keys(tmp_path, srcs):
    text = GOOD.replace("        max_epochs: 2\n", "        max_epochs: 2\n        wieght: 0.5\n")
    (p,) = problems_of(write(tmp_path, text, srcs))
    assert p.path == "phases[0].sources[0].wieght"
    assert p.line == 15
    assert "unknown key 'wieght'" in p.message and "weight" in p.message and "max_epochs" in p.message


def test_negative_weight(tmp_path, srcs):
    text = GOOD.replace("weight: 0.25", "weight: -0.25")
    found = by_path(problems_of(write(tmp_path, text, srcs)))
    assert "phases[0].sources[1].weight" in found
    assert found["phases[0].sources[1].weight"].line == 17
    assert "must be > 0" in found["phases[0].sources[1].weight"].message


def test_weights_that_do_not_normalise(tmp_path, srcs):
    text = GOOD.replace("weight: 0.25", "weight: 0.35")
    (p,) = problems_of(write(tmp_path, text, srcs))
    assert p.path == "phases[0].sources" and p.line == 9
    assert "sum to 1.1" in p.message and "0.6818" in p.message


def test_missing_dataset_and_unknown_registry_name(tmp_path, srcs):
    text = GOOD.replace("dataset: {web}", "dataset: {web}_nope").replace(
        "dataset: {edu}", "dataset: edu_missing"
    )
    found = by_path(problems_of(write(tmp_path, text, srcs)))
    assert "does not exist" in found["phases[0].sources[0].dataset"].message
    assert found["phases[0].sources[0].dataset"].line == 11
    assert "not a registered dataset" in found["phases[0].sources[1].dataset"].message


def test_filter_that_does_not_parse(tmp_path, srcs):
    text = GOOD.replace("\"lang = 'en' AND length(text) < 20000\"", "\"lang = 'en' AND\"")
    (p,) = problems_of(write(tmp_path, text, srcs))
    assert p.path == "phases[0].sources[0].filter" and p.line == 12
    assert "does not parse" in p.message


def test_filter_naming_a_missing_column_lists_the_real_ones(tmp_path, srcs):
    # edu_score exists in the FineWeb-C dataset, not in the Dolma web dataset
    text = GOOD.replace("\"lang = 'en' AND length(text) < 20000\"", '"edu_score >= 3"')
    (p,) = problems_of(write(tmp_path, text, srcs))
    assert p.path == "phases[0].sources[0].filter"
    assert "names a column the dataset lacks" in p.message and "edu_score" in p.message
    assert "lang_score" in p.message  # the available columns are listed


def test_filter_that_is_not_a_second_statement(tmp_path, srcs):
    text = GOOD.replace("\"lang = 'en' AND length(text) < 20000\"", "\"lang = 'en'; DROP TABLE x\"")
    (p,) = problems_of(write(tmp_path, text, srcs))
    assert p.path == "phases[0].sources[0].filter"


def test_filter_selecting_nothing(tmp_path, srcs):
    text = GOOD.replace("dataset: {edu}", 'dataset: {edu}\n        filter: "edu_int >= 4"')
    (p,) = problems_of(write(tmp_path, text, srcs))
    assert p.path == "phases[0].sources[1].filter" and "selects no documents" in p.message


def test_budget_beyond_the_repetition_cap(tmp_path, srcs):
    text = GOOD.replace("tokens: 100000", "tokens: 5000000")
    found = problems_of(write(tmp_path, text, srcs))
    assert {p.path for p in found} == {"phases[0].tokens"}
    assert found[0].line == 8
    assert any("source 'web'" in p.message and "max_epochs 2" in p.message for p in found)
    assert any("source 'edu'" in p.message and "max_epochs 1" in p.message for p in found)


def test_all_errors_at_once_in_line_order(tmp_path, srcs):
    text = """\
    name: broken
    seq_len: -1
    colour: blue
    tokenizer:
      train: {{vocab_size: 1024}}
      path: /somewhere
    phases:
      - name: phase1
        tokens: 100000
        sources:
          - {{name: web, dataset: {web}, filter: "nope > 1", weight: 0.5}}
          - {{name: edu, dataset: /does/not/exist, weight: 0.6}}
      - name: phase2
        tokens: 1000
        sources:
          - {{name: q, dataset: {quality}, weight: -1}}
    """
    problems = problems_of(write(tmp_path, text, srcs))
    got = {(p.path, p.line) for p in problems}
    assert {
        ("seq_len", 2),
        ("colour", 3),
        ("tokenizer", 4),
        ("phases[0].sources[0].filter", 11),
        ("phases[0].sources[1].dataset", 12),
        ("phases[0].sources", 10),
        ("phases[1].sources[0].weight", 16),
    } <= got
    assert [p.line for p in problems] == sorted(p.line for p in problems)
    rendered = str(MixtureValidationError(str(tmp_path / "mixture.yaml"), problems))
    assert f"{tmp_path / 'mixture.yaml'}:3: colour: unknown key 'colour'" in rendered


def test_cli_validate_and_plan(tmp_path, srcs, capsys):
    good = write(tmp_path, GOOD, srcs)
    assert cli_main(["mixture", "validate", str(good)]) == 0
    assert cli_main(["mixture", "plan", str(good), "--plot", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    assert "phase1" in out and "75,000" in out and (tmp_path / "p.png").is_file()
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("weight: 0.25", "weight: 0.5"))
    assert cli_main(["mixture", "validate", str(bad)]) == 1
    assert "weights sum to 1.25" in capsys.readouterr().out


def test_invalid_yaml_names_the_line(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("name: x\nphases: [\n  - a: 1\n")
    with pytest.raises(ValueError, match=r"m.yaml:\d+: not valid YAML"):
        check_mixture(p)


def _example_with_registry(tmp_path: Path, name: str, registry: dict[str, Path]) -> Path:
    """Copy a shipped example mixture, pointing its registry at the test datasets."""
    repo = Path(__file__).resolve().parents[2]
    (tmp_path / "datasets.yaml").write_text(
        "datasets:\n" + "".join(f"  {k}: {v}\n" for k, v in registry.items())
    )
    p = tmp_path / name
    p.write_text((repo / "configs" / "mixtures" / name).read_text())
    return p


def test_example_tiny_mixture_validates_on_contract_web_data(tmp_path, srcs):
    cm = check_mixture(_example_with_registry(tmp_path, "tiny.yaml", {"web_curated": srcs["web"]}))
    assert [p.phase for p in cm.plans] == ["phase1", "phase2", "phase2"]
    assert all(not p.over_cap for p in cm.plans)


def test_example_phi3_mixture_is_valid_except_budgets_on_sample_data(tmp_path, srcs):
    """Every key, dataset and filter of the phi-3-style mixture checks out against contract datasets with the
    columns it filters on (edu_score, lang, lang_score). The samples can't meet its billions-of-tokens
    budgets, and the only edu-scored sample (FineWeb-C) is Danish, so its English edu filters select
    nothing."""
    path = _example_with_registry(
        tmp_path, "main.yaml", {"web_edu": srcs["edu"], "synthetic_textbooks": srcs["quality"]}
    )
    problems = problems_of(path)
    for p in problems:
        assert p.path.endswith(".tokens") or (
            p.path.endswith(".filter") and "selects no documents" in p.message
        ), p
    assert {p.path for p in problems if p.path.endswith(".filter")} == {
        "phases[0].sources[0].filter",
        "phases[1].sources[0].filter",
        "phases[1].sources[2].filter",
    }
    # (a phase's budget is checked once all its sources are valid, so no budget problems are listed here)


def test_plain_parquet_without_the_contract_columns_is_refused(tmp_path, srcs):
    """A plain parquet file is accepted as a source, but only with a string `text` column (a missing `id` is
    derived from the text: tests/training/test_mixture_plain.py)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = ds.dataset(str(srcs["quality"] / "v1" / "data")).to_table(columns=["text", "quality_label"])
    pq.write_table(rows.rename_columns(["body", "quality_label"]), tmp_path / "no_text.parquet")
    pq.write_table(
        pa.table({"id": pa.array(range(rows.num_rows)), "text": rows["quality_label"]}),
        tmp_path / "int_text.parquet",
    )
    text = GOOD.replace("dataset: {web}", f"dataset: {tmp_path}/no_text.parquet").replace(
        "dataset: {edu}", f"dataset: {tmp_path}/int_text*.parquet"
    )
    found = by_path(problems_of(write(tmp_path, text, srcs)))
    msg = found["phases[0].sources[0].dataset"].message
    assert "no_text.parquet' has no 'text' column (columns: ['body', 'quality_label'])" in msg
    assert "column 'text' is BIGINT" in found["phases[0].sources[1].dataset"].message
