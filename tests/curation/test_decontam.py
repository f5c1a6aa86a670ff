"""Decontamination: planted GSM8K/HumanEval/MMLU/MBPP items in real web pages are caught (verbatim and
lightly reformatted), near-misses and the real web samples are spared, user-supplied sources work,
bad sources and index files are clear errors, and the step runs in the pipeline."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.decontam_index import BenchmarkSource, DecontamIndex, default_benchmarks_dir
from curation.steps.base import DocBatch
from curation.steps.decontam import DecontamConfig, Decontaminate

FIXTURES = Path(__file__).parents[1] / "fixtures" / "decontam"
DOLMA = "webtext_cc2019_dolma_sample/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


@pytest.fixture(scope="module")
def index(shared_data) -> DecontamIndex:
    return DecontamIndex.build()  # the four default benchmarks from the shared data


@pytest.fixture(scope="module")
def web_page(shared_data) -> str:
    """A real English web page (Dolma sample) to plant benchmark text into."""
    with gzip.open(shared_data / DOLMA, "rt") as f:
        return next(d["text"] for d in map(json.loads, f) if d["id"] == "blj5uzvcoa4iybpd5o6kom5nir6ngmoj")


@pytest.fixture(scope="module")
def gsm8k(shared_data) -> list[dict]:
    return [json.loads(line) for line in (default_benchmarks_dir() / "gsm8k" / "test.jsonl").open()]


@pytest.fixture(scope="module")
def humaneval(shared_data) -> list[dict]:
    with gzip.open(default_benchmarks_dir() / "humaneval" / "HumanEval.jsonl.gz", "rt") as f:
        return [json.loads(line) for line in f]


def plant(page: str, inserted: str) -> str:
    half = len(page) // 2
    return page[:half] + "\n\n" + inserted + "\n\n" + page[half:]


def test_verbatim_gsm8k_question_is_caught(index, web_page, gsm8k):
    item = gsm8k[41]
    m = index.match(plant(web_page, item["question"]))
    assert m is not None and m.benchmark == "gsm8k" and m.item_id == "test.jsonl:42"
    assert m.matched >= 3


def test_reformatted_gsm8k_problem_and_worked_answer_are_caught(index, web_page, gsm8k):
    item = gsm8k[100]
    # a homework-help page: upper-cased question, punctuation changed, the answer re-typed without the
    # <<calculator>> annotations and with its lines joined
    question = item["question"].upper().replace(",", " ;").replace("?", " ??")
    answer = " ".join(
        line.split("<<")[0] + line.split(">>")[-1] if "<<" in line else line
        for line in item["answer"].splitlines()
    )
    m = index.match(plant(web_page, f"Q: {question}\nSolution — {answer}"))
    assert m is not None and (m.benchmark, m.item_id) == ("gsm8k", "test.jsonl:101")


def test_humaneval_prompt_and_solution_in_a_blog_code_block_are_caught(index, web_page, humaneval):
    task = humaneval[0]
    # re-indented with tabs, blank lines dropped, inside a markdown fence
    code = "\n".join(
        line.replace("    ", "\t")
        for line in (task["prompt"] + task["canonical_solution"]).splitlines()
        if line.strip()
    )
    m = index.match(plant(web_page, f"My solution:\n```python\n{code}\n```"))
    assert m is not None and (m.benchmark, m.item_id) == ("humaneval", "HumanEval/0")


def test_mmlu_question_with_lettered_choices_is_caught(index, web_page):
    with open(default_benchmarks_dir() / "mmlu" / "test" / "anatomy_test.csv", newline="") as f:
        row = next(csv.DictReader(f))
    quiz = (
        row["question"]
        + "\n"
        + "\n".join(f"({letter}) {row[f'choice{k}']}" for k, letter in enumerate("ABCD"))
    )
    m = index.match(plant(web_page, quiz))
    assert m is not None and (m.benchmark, m.item_id) == ("mmlu", "anatomy_test.csv:1")


def test_mbpp_task_is_caught(index, web_page):
    rec = json.loads((default_benchmarks_dir() / "mbpp" / "mbpp.jsonl").open().readline())
    m = index.match(plant(web_page, rec["text"] + "\n" + rec["code"].replace("\r\n", "\n")))
    assert m is not None and (m.benchmark, m.item_id) == ("mbpp", "1")


def test_near_misses_on_the_same_topics_are_spared(index, web_page):
    for line in (FIXTURES / "near_misses.jsonl").open():
        case = json.loads(line)
        assert index.match(plant(web_page, case["text"])) is None, case["topic"]


def test_a_short_partial_quote_is_below_the_threshold(index, web_page, gsm8k):
    words = gsm8k[41]["question"].split()
    assert len(words) >= 30
    partial = " ".join(words[:14])  # 2 shared 13-grams < min_matches=3
    counts = index.overlaps(plant(web_page, partial))
    assert max(counts.values()) == 2
    assert index.match(plant(web_page, partial)) is None
    assert index.match(plant(web_page, partial), min_matches=2) is not None


def test_real_web_samples_have_no_false_positives(index, shared_data):
    with gzip.open(shared_data / DOLMA, "rt") as f:
        texts = [d["text"] for d in map(json.loads, f)]
    texts += [
        json.loads(line)["text"]
        for line in (shared_data / "quality_labels_dclm_human" / "majority_data_disputed.jsonl").open()
    ]
    hits = [m for m in map(index.match, texts) if m is not None]
    assert hits == []


def test_step_rejects_with_benchmark_and_item(index, tmp_path, web_page, gsm8k):
    path = index.save(tmp_path / "idx.npz")
    step = Decontaminate(DecontamConfig(), index_path=str(path))
    step.setup()
    batch = DocBatch({"id": ["clean", "dirty"], "text": [web_page, plant(web_page, gsm8k[5]["question"])]})
    step.apply(batch)
    assert batch["reject_stage"] == [None, "decontam"]
    assert batch["reject_reason"][1] == "benchmark_overlap:gsm8k"
    assert "test.jsonl:6" in batch["reject_detail"][1] and "13-grams" in batch["reject_detail"][1]
    assert batch["decontam_max_matches"][0] == 0 and batch["decontam_max_matches"][1] >= 3


def test_save_load_round_trip_and_bad_files(index, tmp_path, gsm8k):
    path = index.save(tmp_path / "idx.npz")
    again = DecontamIndex.load(path)
    assert len(again) == len(index) and again.ngram_size == 13
    assert again.match(gsm8k[0]["question"]) == index.match(gsm8k[0]["question"])
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        DecontamIndex.load(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk" * 100)
    with pytest.raises(ValueError, match="junk.npz.*not a decontamination index"):
        DecontamIndex.load(tmp_path / "junk.npz")
    step = Decontaminate(DecontamConfig(ngram_size=8), index_path=str(path))
    with pytest.raises(ValueError, match="13-grams but decontam.ngram_size is 8"):
        step.setup()


def test_user_supplied_jsonl_csv_parquet_sources(tmp_path, gsm8k):
    q = [g["question"] for g in gsm8k[:6]]
    (tmp_path / "mine.jsonl").write_text(
        "\n".join(json.dumps({"uid": f"u{i}", "body": t}) for i, t in enumerate(q[:2]))
    )
    with open(tmp_path / "mine.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["prompt", "extra"])
        w.writerows([[t, "x"] for t in q[2:4]])
    pq.write_table(pa.table({"problem": q[4:6], "hint": ["a", "b"]}), tmp_path / "mine.parquet")
    idx = DecontamIndex.build(
        [
            BenchmarkSource(name="private_jsonl", path="mine.jsonl", text_fields=["body"], id_field="uid"),
            BenchmarkSource(name="private_csv", path=str(tmp_path / "mine.csv"), text_fields=["prompt"]),
            BenchmarkSource(name="private_pq", path="mine.parquet", text_fields=["problem", "hint"]),
        ],
        base_dir=tmp_path,
    )
    assert len(idx) == 6
    assert (idx.match(q[1]).benchmark, idx.match(q[1]).item_id) == ("private_jsonl", "u1")
    assert (idx.match(q[3]).benchmark, idx.match(q[3]).item_id) == ("private_csv", "mine.csv:2")
    assert idx.match(q[4]).benchmark == "private_pq"


def test_bad_sources_are_clear_errors(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"question": "what"}\n{"oops": 1}\n')
    with pytest.raises(ValueError, match=r"a\.jsonl record 2: no field\(s\) \['question'\]"):
        DecontamIndex.build(
            [BenchmarkSource(name="x", path="a.jsonl", text_fields=["question"])], base_dir=tmp_path
        )
    (tmp_path / "b.jsonl").write_text('{"question": "fine"}\nnot json\n')
    with pytest.raises(ValueError, match=r"b\.jsonl line 2: not valid JSON"):
        DecontamIndex.build(
            [BenchmarkSource(name="x", path="b.jsonl", text_fields=["question"])], base_dir=tmp_path
        )
    with pytest.raises(FileNotFoundError, match="missing/\\*.jsonl matches no file"):
        DecontamIndex.build(
            [BenchmarkSource(name="x", path="missing/*.jsonl", text_fields=["q"])], base_dir=tmp_path
        )


def test_extra_sources_add_to_the_defaults_and_config_is_strict(tmp_path):
    cfg = DecontamConfig.model_validate(
        {"extra_sources": [{"name": "mine", "path": "/x.jsonl", "text_fields": ["t"]}]}
    )
    assert [s.name for s in cfg.all_sources()] == ["gsm8k", "humaneval", "mmlu", "mbpp", "mine"]
    assert cfg.index_file_name() != DecontamConfig().index_file_name()
    with pytest.raises(ValueError):
        DecontamConfig.model_validate({"ngram": 13})


# ---- inside the pipeline ---------------------------------------------------------------------------


@pytest.mark.slow
def test_pipeline_run_drops_planted_items_and_keeps_signals(spark, shared_data, tmp_path, web_page, gsm8k):
    """The whole Python pass on Spark local[2]: the driver builds and ships the index and the langid
    model, workers load them once; planted documents land in rejects with their benchmark item."""
    import shutil

    from curation.contract import iter_parquet_files
    from curation.pipeline import run

    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(shared_data / DOLMA, inputs / "dolma.jsonl.gz")
    planted = [
        {"id": "planted-gsm8k", "text": plant(web_page, gsm8k[7]["question"])},
        {"id": "planted-gsm8k-2", "text": plant(web_page, gsm8k[300]["question"].lower())},
    ]
    (inputs / "planted.jsonl").write_text("\n".join(json.dumps(d) for d in planted) + "\n")

    result = run([str(inputs / "*")], tmp_path / "out", spark=spark, run_id="t1")
    stages = {c.stage: c for c in result.counts}
    for name in (
        "langid",
        "gopher_quality",
        "gopher_repetition",
        "c4_quality",
        "fineweb_quality",
        "decontam",
    ):
        assert name in stages
    assert stages["decontam"].reasons == {"benchmark_overlap:gsm8k": 2}
    assert stages["langid"].reasons.get("lang_not_allowed", 0) > 100

    rejects = pa.concat_tables([pq.read_table(p) for p in iter_parquet_files(result.version_dir, "rejects")])
    dec = rejects.filter(pa.compute.equal(rejects["reject_stage"], "decontam")).to_pylist()
    assert {r["id"] for r in dec} == {"planted-gsm8k", "planted-gsm8k-2"}
    assert any("test.jsonl:8 shares" in r["reject_detail"] for r in dec)
    data = pa.concat_tables([pq.read_table(p) for p in iter_parquet_files(result.version_dir, "data")])
    assert data.num_rows == result.manifest.rows > 0
    assert set(data["lang"].to_pylist()) == {"en"}
    for col in (
        "gopher_q_word_count",
        "gopher_rep_dup_line_frac",
        "c4_sentences",
        "fineweb_line_punct_frac",
        "decontam_max_matches",
    ):
        assert data[col].null_count == 0, col

    # workers find the shipped index by the name derived from the config alone (no rebuild per worker)
    from curation.spark import local_copy

    name = DecontamConfig().index_file_name()
    found = spark.sparkContext.parallelize([name], 1).map(
        lambda n: (local_copy(n), Path(local_copy(n)).is_file())
    )
    ((path, is_file),) = found.collect()
    assert is_file and path != name
