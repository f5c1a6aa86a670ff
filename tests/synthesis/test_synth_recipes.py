"""Recipes (validation with errors naming recipe and field), seed draws and the plan (deterministic, no exact
prompt repeats, disjoint shards), and web seeds taken from a contract dataset ranked by edu_score."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from curation.contract import DOC_FIELDS, DatasetRoot, Manifest, code_version, now_iso
from curation.paths import REPO_ROOT
from synthesis.textbook.generators import GENERATORS
from synthesis.textbook.plan import Shard, build_plan
from synthesis.textbook.recipes import load_recipes, parse_recipes
from synthesis.textbook.seeds import load_web_pool, make_extract

CONFIGS = REPO_ROOT / "configs" / "synthesis"


def _minimal(**recipe) -> dict:
    base = {"name": "r1", "generator": "math", "n": 5, "topics": {"math": 1}}
    return {"recipes": [{**base, **recipe}]}


def test_shipped_recipe_files_validate_and_cover_all_generators():
    full = load_recipes(CONFIGS / "recipes.yaml")
    assert {r.generator for r in full.recipes} == set(GENERATORS)  # ground-truth math (math_exercise) too
    demo = load_recipes(CONFIGS / "demo.yaml")
    assert {r.generator for r in demo.recipes} == set(GENERATORS)
    assert sum(r.n for r in demo.recipes) <= 24  # the demo stays a few minutes on CPU
    chain = load_recipes(REPO_ROOT / "configs" / "demo" / "synthetic.yaml")  # the demo chain's recipes
    assert {r.generator for r in chain.recipes} == set(GENERATORS)
    assert Path(full.web_seeds.source).is_file()  # ${PHI_SHARED_DATA} expanded


@pytest.mark.parametrize(
    "recipe, needle",
    [
        ({"sampling": {"temperature": 9}}, "recipe 'r1' field 'sampling.temperature'"),
        ({"generator": "poetry"}, "recipe 'r1' field 'generator'"),
        ({"topics": {"astrology": 1}}, "unknown pool(s) ['astrology']"),
        ({"topics": {"math": -1}}, "recipe 'r1' field 'topics'"),
        ({"styles": {"sonnet": 1}}, "unknown style(s) ['sonnet']"),
        ({"n": 0}, "recipe 'r1' field 'n'"),
        ({"filters": {"min_words": 10, "max_words": 5}}, "recipe 'r1' field 'filters'"),
        ({"verify": {"k": 3, "typo": 1}}, "recipe 'r1' field 'verify.typo'"),
    ],
)
def test_bad_recipe_errors_name_recipe_and_field(recipe, needle, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_minimal(**recipe)))
    with pytest.raises(ValueError) as e:
        load_recipes(path)
    assert str(path) in str(e.value) and needle in str(e.value)


def test_set_level_errors(tmp_path):
    twice = {"recipes": [_minimal()["recipes"][0], _minimal()["recipes"][0]]}
    with pytest.raises(ValueError, match="repeated: \\['r1'\\]"):
        parse_recipes(twice, "x.yaml")
    with pytest.raises(ValueError, match="web_share > 0 but the file has no web_seeds"):
        parse_recipes(_minimal(web_share=0.5), "x.yaml")
    with pytest.raises(ValueError, match="expected a mapping"):
        parse_recipes(["not", "a", "mapping"], "x.yaml")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_recipes(tmp_path / "missing.yaml")


def _prompts(plan) -> list[str]:
    return [s.request.messages[-1].content for s in plan.samples]


def test_plan_is_deterministic_and_never_repeats_a_prompt():
    rs = load_recipes(CONFIGS / "demo.yaml").model_copy(update={"web_seeds": None})
    rs.recipes[0].web_share = 0.0
    a, b = build_plan(rs, None), build_plan(rs, None)
    assert _prompts(a) == _prompts(b)
    assert [s.request.sampling.seed for s in a.samples] == [s.request.sampling.seed for s in b.samples]
    assert len(set(_prompts(a))) == len(a.samples) == sum(r.n for r in rs.recipes)
    other = build_plan(rs.model_copy(update={"seed": 1}), None)
    assert _prompts(other) != _prompts(a)


def test_small_pools_exhaust_instead_of_repeating():
    # 1 topic x 1 audience x 1 style = one possible prompt: 1 planned, the rest counted as exhausted
    rs = parse_recipes(
        {
            "recipes": [
                {
                    "name": "tiny",
                    "generator": "textbook",
                    "n": 4,
                    "topics": {"only": 1},
                    "topic_lists": {"only": ["tides"]},
                    "audiences": {"general": 1},
                    "styles": {"textbook": 1},
                }
            ]
        }
    )
    plan = build_plan(rs, None)
    assert plan.planned == {"tiny": 1} and plan.exhausted == {"tiny": 3}


def test_shards_are_disjoint_and_cover_the_plan():
    rs = load_recipes(CONFIGS / "demo.yaml").model_copy(update={"web_seeds": None})
    rs.recipes[0].web_share = 0.0
    whole = {s.sample_id for s in build_plan(rs, None).samples}
    parts = [{s.sample_id for s in build_plan(rs, None, Shard(i, 3)).samples} for i in range(3)]
    assert set().union(*parts) == whole and sum(len(p) for p in parts) == len(whole)
    assert Shard.parse("2/3") == Shard(2, 3)
    with pytest.raises(ValueError, match="--shard '3/3'"):
        Shard.parse("3/3")


@pytest.fixture(scope="module")
def curated_dataset(tmp_path_factory, shared_data) -> Path:
    """A contract dataset built from the real Common Crawl sample, with edu_score and lang columns."""
    path = next((shared_data / "webtext_cc2019_dolma_sample").glob("*.jsonl.gz"))
    with gzip.open(path, "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for _, line in zip(range(120), f)]
    rows = [
        {
            "id": d["id"],
            "text": d["text"],
            "url": None,
            "title": None,
            "date": None,
            "crawl_id": "CC-MAIN-2019-30",
            "source_format": "jsonl",
            "source_file": path.name,
            "lang": "en" if i % 4 else "de",
            "lang_score": 0.9,
            "edu_score": (i * 37 % 100) / 20.0,
        }
        for i, d in enumerate(docs)
    ]
    schema = pa.schema([*DOC_FIELDS, pa.field("edu_score", pa.float64())])
    root = DatasetRoot(tmp_path_factory.mktemp("curated"))
    staging = root.staging_dir("v1")
    (staging / "data").mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), staging / "data" / "part-0.parquet")
    Manifest(
        dataset="web_curated",
        version="v1",
        created_at=now_iso(),
        code_version=code_version(),
        inputs=[],
        config={},
        config_hash="x",
        rows=len(rows),
    ).write(staging)
    root.publish(staging, "v1")
    return root.root


def test_web_seeds_come_from_the_best_documents_of_a_contract_dataset(curated_dataset):
    rs = parse_recipes(
        {
            "web_seeds": {
                "source": str(curated_dataset),
                "max_chars": 600,
                "min_chars": 200,
                "pool_size": 10,
                "lang": "en",
            },
            "recipes": [
                {"name": "w", "generator": "textbook", "n": 30, "topics": {"science": 1}, "web_share": 1.0}
            ],
        }
    )
    pool = load_web_pool(rs.web_seeds)
    table = pq.read_table(next((curated_dataset / "v1" / "data").glob("*.parquet"))).to_pylist()
    eligible = sorted(
        (r for r in table if r["lang"] == "en" and len(r["text"]) >= 200),
        key=lambda r: (-r["edu_score"], r["id"]),
    )
    assert [d.id for d in pool] == [r["id"] for r in eligible[:10]]
    assert all(len(d.extract) <= 600 for d in pool)
    plan = build_plan(rs, pool)
    for s in plan.samples:
        assert s.seed.web is not None and s.seed.web.extract in s.request.messages[-1].content
    assert len({s.seed.web.id for s in plan.samples}) > 3


def test_extract_is_cut_at_a_sentence_end():
    text = "First sentence here. " * 100
    cut = make_extract(text, 1000)
    assert len(cut) <= 1000 and cut.endswith(".")
