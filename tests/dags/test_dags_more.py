"""Part 2 of the DAGs (edu_classifier, synthetic_data, mixture_build, pretrain): they parse, are wired to the
right pools and Assets, their params reject bad input, and the logic behind them (promotion floors, the
shard merge, the run's training config) behaves. No DAG runs here: see test_dags_chain.py."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from manifest_helpers import make_manifest

from curation.contract import DatasetRoot, Manifest, StageCounts
from curation.paths import REPO_ROOT
from dags.lib.edu import check_floors
from dags.lib.synthetic import merge_shards, shard_run_id, shard_specs
from dags.lib.train import effective_train_config, mixture_name, resolve_mixture

DAGS = REPO_ROOT / "dags"
NEW = ("edu_classifier", "synthetic_data", "mixture_build", "pretrain")


@pytest.fixture(scope="module")
def dags(tmp_path_factory):
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow-home")))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag.dags


def test_new_dags_tasks_pools_and_assets(dags):
    assert set(NEW) <= set(dags)
    tasks = {d: {t.task_id: t for t in dags[d].tasks} for d in NEW}
    assert list(tasks["edu_classifier"]) == [
        "plan",
        "label",
        "train",
        "evaluate",
        "promote",
        "score",
        "validate",
        "publish",
    ]
    assert (
        tasks["edu_classifier"]["label"].pool == "teacher"
        and tasks["edu_classifier"]["score"].pool == "spark"
    )
    assert tasks["edu_classifier"]["evaluate"].retries == 0  # a model below its floors stays below them
    assert tasks["synthetic_data"]["generate"].pool == "teacher"
    assert tasks["mixture_build"]["validate"].retries == 0
    assert set(dags["mixture_build"].tasks[0].downstream_task_ids) == {"plan"}
    assert [t.task_id for t in dags["mixture_build"].roots] == ["validate"]  # validation comes first
    for phase in ("phase1", "phase2"):
        op = tasks["pretrain"][phase]
        assert op.pool == "gpu" and type(op).__name__ == "BashOperator"
        assert "torchrun --standalone" in op.bash_command and f"--phase {phase}" in op.bash_command
    assert tasks["pretrain"]["phase1"].downstream_task_ids == {"phase2"}
    for d in NEW:
        for t in dags[d].tasks:
            assert t.retries in (0, 2) and (t.retries == 0 or t.retry_exponential_backoff)

    outlets = {d: {a.name for t in dags[d].tasks for a in t.outlets} for d in NEW}
    assert outlets == {
        "edu_classifier": {"edu_model", "web_edu"},
        "synthetic_data": {"synthetic"},
        "mixture_build": {"mixture", "pretrain_request"},
        "pretrain": {"pretrained"},
    }

    # the downstream chain follows Assets (the policy in dags/README.md): new labels (or weekly) -> edu;
    # corpora -> mixture; a mixture that opts in -> pretrain
    def names(cond) -> set[str]:
        return {cond.name} if hasattr(cond, "name") else set().union(*(names(c) for c in cond.objects))

    def scheduled_on(dag_id):
        return names(dags[dag_id].timetable.asset_condition)

    assert scheduled_on("edu_classifier") == {"edu_label_files"}
    assert scheduled_on("mixture_build") == {"web_curated", "web_edu", "synthetic"}
    assert scheduled_on("pretrain") == {"pretrain_request"}
    assert (
        type(dags["synthetic_data"].timetable).__name__ == "NullTimetable"
    )  # by hand: teacher time is costly


@pytest.mark.parametrize(
    ("dag_id", "key", "value", "message"),
    [
        ("edu_classifier", "n", 5, "less than the minimum"),  # min 8
        ("edu_classifier", "n", "300", "is not of type"),
        ("edu_classifier", "backend", "gpt4", "is not one of"),
        ("edu_classifier", "base_url", "localhost:8000", "does not match"),
        ("edu_classifier", "min_macro_f1", 1.5, "greater than the maximum"),
        ("edu_classifier", "extra_labels", "a.csv", "is not of type 'array'"),
        ("synthetic_data", "shards", 0, "less than the minimum"),
        ("synthetic_data", "recipes", "recipes.json", "does not match"),
        ("mixture_build", "mixture_yaml", "tiny.json", "does not match"),
        ("mixture_build", "mixture_yaml", None, "is not of type"),
        ("pretrain", "nproc_per_node", 0, "less than the minimum"),
        ("pretrain", "train_config", "conf with space.yaml", "does not match"),
    ],
)
def test_params_reject_bad_input(dags, dag_id, key, value, message):
    from airflow.sdk.exceptions import ParamValidationError

    params = copy.deepcopy(dags[dag_id].params)
    with pytest.raises(ParamValidationError, match=message) as err:
        params[key] = value
    assert key in str(err.value)


def test_params_accept_good_input(dags):
    p = copy.deepcopy(dags["edu_classifier"].params)
    p["backend"], p["base_url"], p["min_human_auc"], p["n"] = "openai_http", "http://vllm:8000/v1", 0.6, 50
    p["extra_labels"] = ["/data/labels.csv"]
    assert p.validate()["min_human_auc"] == 0.6
    p = copy.deepcopy(dags["pretrain"].params)
    p["mixture"], p["nproc_per_node"] = "/data/mixtures/demo", 8
    p.validate()


# ---- dags.lib (no Airflow) -----------------------------------------------------------------------------


def test_floors():
    metrics = {
        "validation": {"macro_f1": 0.41, "spearman": 0.52, "binary_f1": float("nan")},
        "human_agreement": None,
    }
    assert check_floors(metrics, {"min_macro_f1": 0.4, "min_spearman": 0.5, "min_human_auc": None}) == []
    misses = check_floors(metrics, {"min_macro_f1": 0.45, "min_binary_f1": 0.1, "min_human_auc": 0.6})
    assert misses == [
        "validation.binary_f1 is nan, floor min_binary_f1=0.1",
        "human_agreement.auc is None, floor min_human_auc=0.6",
        "validation.macro_f1=0.4100 < min_macro_f1=0.45",
    ]  # by floor name
    with pytest.raises(ValueError, match="unknown promotion floor"):
        check_floors(metrics, {"min_accuracy": 0.5})


def _shard(root: Path, name: str, texts: list[str], dropped: int, verified: list | None = None) -> Path:
    """A shard version in the dataset contract, as `synthesis run --shard` publishes it."""
    staging = DatasetRoot(root).staging_dir(name)
    (staging / "data").mkdir()
    (staging / "rejects").mkdir()
    cols = {"id": [f"{name}-{i}" for i in range(len(texts))], "text": texts}
    if verified is not None:
        cols["verified"] = pa.array(verified, pa.bool_())
    pq.write_table(pa.table(cols), staging / "data" / "part-0.parquet")
    pq.write_table(
        pa.table(
            {
                "id": [f"{name}-r{i}" for i in range(dropped)],
                "text": ["x"] * dropped,
                "reject_stage": ["verify"] * dropped,
                "reject_reason": ["disagree"] * dropped,
            }
        ),
        staging / "rejects" / "part-0.parquet",
    )
    conf = {"shard": name}
    make_manifest(
        "synthetic",
        name,
        len(texts),
        columns=list(cols),
        config=conf,
        rejected_rows=dropped,
        stages=[
            StageCounts(
                stage="generate",
                rows_in=len(texts) + dropped,
                rows_kept=len(texts) + dropped,
                rows_rejected=0,
            ),
            StageCounts(
                stage="verify",
                rows_in=len(texts) + dropped,
                rows_kept=len(texts),
                rows_rejected=dropped,
                reasons={"disagree": dropped} if dropped else {},
            ),
        ],
    ).write(staging)
    return DatasetRoot(root).publish(staging, name, set_current=False)


def _web_texts(shared_data, n: int) -> list[str]:
    import gzip

    src = next((shared_data / "webtext_cc2019_dolma_sample").glob("*.jsonl.gz"))
    with gzip.open(src, "rt") as f:
        return [json.loads(next(f))["text"] for _ in range(n)]


def test_merge_shards_sums_counts_and_is_rerunnable(tmp_path, shared_data):
    texts = _web_texts(shared_data, 5)
    assert shard_specs(2) == ["0/2", "1/2"] and shard_run_id("1/2") == "shard-1-of-2"
    shards = [
        _shard(tmp_path / "shards", "shard-0-of-2", texts[:3], 2),
        _shard(tmp_path / "shards", "shard-1-of-2", texts[3:], 0),
    ]
    for _ in range(2):  # a retried merge rebuilds the same candidate
        merged = merge_shards(shards, tmp_path / "_candidates", "v1")
    assert sorted(p.name for p in (tmp_path / "_candidates").iterdir()) == ["v1"]
    m = Manifest.read(merged)
    m.check()
    assert m.rows == 5 and m.rejected_rows == 2
    assert [(s.stage, s.rows_in, s.rows_kept, s.reasons) for s in m.stages] == [
        ("generate", 7, 7, {}),
        ("verify", 7, 5, {"disagree": 2}),
        ("near_dedup_cross_shard", 5, 5, {}),
    ]
    assert sorted(pq.read_table(merged / "data").column("text").to_pylist()) == sorted(texts)
    from curation.quality_gates import run_gate

    result = run_gate(merged, kind="synthetic")  # the real suite: this toy lacks the contract's columns
    assert not result.success and result.failures


def test_a_failed_merge_leaves_the_previous_candidate_intact(tmp_path, shared_data):
    """merge_shards builds through DatasetRoot.building: a shard that breaks half way through the merge
    leaves the candidate a previous merge published as it was, and no staging folder behind."""
    import shutil

    texts = _web_texts(shared_data, 5)
    shards = [
        _shard(tmp_path / "shards", "shard-0-of-2", texts[:3], 2),
        _shard(tmp_path / "shards", "shard-1-of-2", texts[3:], 0),
    ]
    before = merge_shards(shards, tmp_path / "_candidates", "v1")
    data_before = sorted(pq.read_table(before / "data").column("text").to_pylist())
    broken = tmp_path / "shards" / "shard-1-broken"
    shutil.copytree(shards[1], broken)
    (broken / "data" / "part-0.parquet").write_bytes(
        b"not a parquet file"
    )  # its rejects copy, its data fails
    with pytest.raises(pa.ArrowInvalid):
        merge_shards([shards[0], broken], tmp_path / "_candidates", "v1")
    assert sorted(p.name for p in (tmp_path / "_candidates").iterdir()) == ["v1"]
    m = Manifest.read(before)
    m.check()
    assert m.rows == 5 and sorted(pq.read_table(before / "data").column("text").to_pylist()) == data_before


def test_merge_drops_near_duplicates_across_shards(tmp_path, shared_data, dags):
    """A near-duplicate planted in two shards survives each shard's own post-filter; the DAG's merge task
    keeps one copy (the verified one), records the other as a reject with its reason, and the counts
    reconcile (rows in = kept + dropped by reason)."""
    texts = _web_texts(shared_data, 5)
    words = texts[2].split()  # 212 words: one word changed leaves shingle Jaccard ~0.95
    copy_ = " ".join(words[:100] + ["indeed"] + words[101:])
    shards = [
        _shard(tmp_path / "shards", "shard-0-of-2", texts[:3], 2, verified=[None, None, None]),
        _shard(tmp_path / "shards", "shard-1-of-2", [*texts[3:], copy_], 0, verified=[None, None, True]),
    ]
    merge = dags["synthetic_data"].task_dict["merge"].python_callable  # the DAG's merge path, run in process
    planned = {"candidate_dir": str(tmp_path / "_candidates" / "v2"), "version": "v2"}
    merged = Path(merge([str(d) for d in shards], planned))
    assert merged == tmp_path / "_candidates" / "v2"
    m = Manifest.read(merged)
    m.check()
    cross = m.stages[-1]
    assert (cross.stage, cross.rows_in, cross.rows_kept, cross.rows_rejected, cross.reasons) == (
        "near_dedup_cross_shard",
        6,
        5,
        1,
        {"near_duplicate_cross_shard": 1},
    )
    assert m.rows == 5 and m.rejected_rows == 2 + 1
    data = pq.read_table(merged / "data")
    assert data.num_rows == m.rows
    ids = set(data.column("id").to_pylist())
    assert "shard-1-of-2-2" in ids and "shard-0-of-2-2" not in ids  # the verified copy survives
    rejects = pq.read_table(merged / "rejects")
    assert rejects.num_rows == m.rejected_rows
    [row] = rejects.filter(pc.equal(rejects.column("reject_stage"), "near_dedup_cross_shard")).to_pylist()
    assert row["id"] == "shard-0-of-2-2" and row["reject_reason"] == "near_duplicate_cross_shard"
    assert (
        row["text"] == texts[2]
        and "shard-1-of-2-2" in row["reject_detail"]
        and "Jaccard" in row["reject_detail"]
    )
    # nothing lost: every input row is either kept or a reject of exactly one stage
    shard_rows = sum(Manifest.read(d).rows + Manifest.read(d).rejected_rows for d in shards)
    assert data.num_rows + rejects.num_rows == shard_rows


def test_train_config_and_mixture_resolution(tmp_path):
    build = tmp_path / "mixtures" / "demo" / "v1"
    build.mkdir(parents=True)
    (build / "manifest.json").write_text("{}")
    (tmp_path / "mixtures" / "demo" / "CURRENT").write_text("v1\n")
    assert resolve_mixture(None, None, str(tmp_path / "mixtures" / "demo")) == build
    assert resolve_mixture(None, str(build), "ignored") == build
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        resolve_mixture(str(tmp_path), None, None)
    with pytest.raises(ValueError, match="no mixture given"):
        resolve_mixture(None, None, None)
    cfg = effective_train_config(REPO_ROOT / "configs" / "train" / "tiny-cpu.yaml", build, tmp_path / "run")
    from training.config import load_config

    loaded = load_config(cfg)
    assert Path(loaded.mixture) == build and Path(loaded.out_dir) == tmp_path / "run"
    bad = tmp_path / "bad.yaml"
    bad.write_text("preset: tiny\nseq_len: -3\n")
    with pytest.raises(ValueError, match="bad.yaml.*seq_len"):
        effective_train_config(bad, build, tmp_path / "run2")
    assert mixture_name(REPO_ROOT / "configs" / "demo" / "mixture.yaml") == "demo"
