"""The DAG files: they import cleanly and fast, their params reject bad input, and the logic behind
them (run planning, the segment ledger) behaves. Airflow is imported in fresh subprocesses where the
measurement or its global state matters; params are checked in-process on the parsed DAG objects."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from curation.config import ConfigError
from curation.paths import REPO_ROOT
from dags.lib.ledger import SegmentLedger
from dags.lib.paths import version_id
from dags.lib.plan import plan_curation

DAGS = REPO_ROOT / "dags"
HEAVY = ("pyspark", "great_expectations", "duckdb", "pandas", "matplotlib", "torch", "curation.pipeline")


def airflow_env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "GX_ANALYTICS_ENABLED": "false",
    }


@pytest.fixture(scope="module")
def parsed(tmp_path_factory) -> dict:
    """Parse the DAG folder in a fresh interpreter: import errors, per-file parse time, and which heavy
    modules the DAG files pulled in at top level (a cold process, so nothing is cached)."""
    code = f"""
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
before = set(sys.modules)
bag = DagBag(dag_folder={str(DAGS)!r})
heavy = sorted(m for m in set(sys.modules) - before if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r})
print(json.dumps({{"errors": {{k: str(v) for k, v in bag.import_errors.items()}}, "dags": sorted(bag.dag_ids),
                  "seconds": {{s.file: s.duration.total_seconds() for s in bag.dagbag_stats}}, "heavy": heavy,
                  "tasks": {{d.dag_id: sorted(d.task_ids) for d in bag.dags.values()}}}}))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=airflow_env(tmp_path_factory.mktemp("airflow")),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_dagbag_imports_without_errors(parsed):
    assert parsed["errors"] == {}
    assert {"web_curation", "nightly_refresh"} <= set(parsed["dags"])
    assert {"plan", "curate", "validate", "report", "publish"} <= set(parsed["tasks"]["web_curation"])
    assert {"discover", "anything_new", "record"} <= set(parsed["tasks"]["nightly_refresh"])


def test_dag_files_parse_fast_without_heavy_imports(parsed):
    print("parse seconds per file:", parsed["seconds"])
    assert parsed["seconds"], "no DAG file was parsed"
    for file, seconds in parsed["seconds"].items():
        assert seconds < 2.0, f"{file} took {seconds:.2f}s to parse"
    assert parsed["heavy"] == [], f"DAG files import heavy modules at top level: {parsed['heavy']}"


@pytest.fixture(scope="module")
def dags(tmp_path_factory):
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow-home")))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    return bag.dags


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("input_globs", [], "should be non-empty"),
        ("input_globs", "data/*.warc.gz", "is not of type 'array'"),
        ("input_globs", ["two words.warc"], "does not match"),
        ("crawl_id", "2024-22", "does not match"),
        ("config_path", "curation.json", "does not match"),
        ("config_path", 3, "is not of type"),
    ],
)
def test_web_curation_params_reject_bad_input(dags, key, value, message):
    from airflow.sdk.exceptions import ParamValidationError

    params = copy.deepcopy(dags["web_curation"].params)
    with pytest.raises(ParamValidationError, match=message) as err:
        params[key] = value
    assert key in str(err.value)


def test_web_curation_params_accept_good_input(dags):
    params = copy.deepcopy(dags["web_curation"].params)
    params["input_globs"] = ["s3a://bucket/crawl/*.warc.gz", "/data/x.jsonl.gz"]
    params["crawl_id"] = "CC-MAIN-2024-22"
    params["config_path"] = "/opt/phi/configs/curation.yaml"
    assert params.validate()["crawl_id"] == "CC-MAIN-2024-22"
    params["crawl_id"] = None
    params.validate()


def test_nightly_params_and_schedule(dags):
    from airflow.sdk.exceptions import ParamValidationError

    nightly = dags["nightly_refresh"]
    assert nightly.max_active_runs == 1 and nightly.timetable.expression == "0 3 * * *"
    with pytest.raises(ParamValidationError, match="segment_globs"):
        copy.deepcopy(nightly.params)["segment_globs"] = []


def test_retries_back_off_and_spark_uses_its_pool(dags):
    for dag in dags.values():
        for t in dag.tasks:
            if t.task_id == "curate":
                assert t.pool == "spark" and t.retries == 2 and t.retry_exponential_backoff
            if t.task_id == "validate":
                assert t.retries == 0  # a failing gate will not pass on retry


# ---- dags.lib: planning and the ledger (no Airflow) ------------------------------------------------------


def test_version_id_is_stable_and_path_safe():
    when = dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC)
    v = version_id("scheduled__2026-11-27T03:00:00+00:00", when)
    assert v == version_id("scheduled__2026-11-27T03:00:00+00:00", when)
    assert v.startswith("20261127T030000Z-") and not set(v) & set(":+/ ")
    assert v != version_id("manual__2026-11-27T03:00:00+00:00", when)


def test_plan_builds_the_spark_submit_arguments(tmp_path, shared_data):
    warc = str(shared_data / "warc_commoncrawl_samples" / "whirlwind.warc.gz")
    plan = plan_curation(
        [warc], tmp_path / "web", "v1", crawl_id="CC-MAIN-2024-22", edu_registry=tmp_path / "reg"
    )
    assert plan["argv"][:3] == ["run", "--input", warc]
    assert plan["argv"][plan["argv"].index("--run-id") + 1] == "v1"
    assert plan["candidate_dir"] == str(tmp_path / "web" / "_candidates" / "v1")
    from curation.config import load_config

    assert load_config(plan["config"]).ingest.crawl_id == "CC-MAIN-2024-22"


def test_plan_fails_early_on_bad_config_or_input(tmp_path, shared_data):
    warc = str(shared_data / "warc_commoncrawl_samples" / "whirlwind.warc.gz")
    bad = tmp_path / "bad.yaml"
    bad.write_text("langid:\n  min_score: high\nno_such_step: {}\n")
    with pytest.raises(ConfigError) as err:
        plan_curation([warc], tmp_path / "web", "v1", config_path=str(bad), edu_registry=tmp_path / "reg")
    assert "bad.yaml" in str(err.value) and "min_score" in str(err.value) and "no_such_step" in str(err.value)
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        plan_curation([str(tmp_path / "nothing-here" / "*.warc.gz")], tmp_path / "web", "v1")


@pytest.fixture(scope="module")
def edu_registry(shared_data, tmp_path_factory):
    """A promoted edu model (small fasttext on the DCLM human labels, as in test_edu_score)."""
    from curation.edu.labels import read_label_file
    from curation.edu.registry import ModelRegistry
    from curation.edu.train import EduTrainConfig, FastTextParams
    from curation.edu.workflow import train_and_register

    reg = ModelRegistry(tmp_path_factory.mktemp("edu_registry"))
    labels = read_label_file(
        shared_data / "quality_labels_dclm_human/majority_data_disputed.jsonl", max_score=1
    )
    ref = train_and_register(
        labels,
        EduTrainConfig(fasttext=FastTextParams(dim=16, bucket=20_000), max_score=1, threshold=0.5),
        reg,
        human_labels=None,
    )
    reg.promote(ref.version)
    return reg


def test_plan_scores_with_the_promoted_edu_model_or_notes_its_absence(tmp_path, shared_data, edu_registry):
    from curation.config import load_config

    warc = str(shared_data / "warc_commoncrawl_samples" / "whirlwind.warc.gz")
    # no model promoted yet: the run passes through unscored, and says so in the manifest (--note)
    plan = plan_curation([warc], tmp_path / "web", "v1", edu_registry=tmp_path / "empty-registry")
    assert plan["edu_model"] is None and "no promoted edu model" in plan["edu_note"]
    assert plan["argv"][plan["argv"].index("--note") + 1] == plan["edu_note"]
    assert load_config(plan["config"]).edu.enabled is False
    # a promoted model: the edu stage is on, pinned to that version folder (a retry scores with the same
    # model)
    plan = plan_curation([warc], tmp_path / "web", "v2", edu_registry=edu_registry.root)
    cfg = load_config(plan["config"]).edu
    assert (
        plan["edu_model"] == edu_registry.promoted()
        and plan["edu_note"] is None
        and "--note" not in plan["argv"]
    )
    assert cfg.enabled and Path(cfg.model).name == edu_registry.promoted() and cfg.threshold is None
    # a config with its own edu section is used as written
    off = tmp_path / "off.yaml"
    off.write_text("edu:\n  enabled: false\n")
    plan = plan_curation([warc], tmp_path / "web", "v3", config_path=str(off), edu_registry=edu_registry.root)
    assert plan["edu_model"] is None and "disabled by" in plan["edu_note"]
    on = tmp_path / "on.yaml"
    on.write_text("edu:\n  enabled: true\n  threshold: 0.5\n")
    with pytest.raises(FileNotFoundError, match="no edu model is promoted"):
        plan_curation(
            [warc], tmp_path / "web", "v4", config_path=str(on), edu_registry=tmp_path / "empty-registry"
        )
    plan = plan_curation([warc], tmp_path / "web", "v4", config_path=str(on), edu_registry=edu_registry.root)
    assert load_config(plan["config"]).edu.threshold == 0.5 and plan["edu_model"] == edu_registry.promoted()


def test_incremental_plan_builds_on_current(tmp_path, shared_data):
    from curation.contract import DatasetRoot

    warc = str(shared_data / "warc_commoncrawl_samples" / "whirlwind.warc.gz")
    root = tmp_path / "web"
    plan = plan_curation([warc], root, "n1", edu_registry=tmp_path / "reg", incremental=True)
    assert plan["base_version"] is None
    assert plan["argv"][plan["argv"].index("--output") + 1] == str(root / "_deltas")
    assert plan["delta_dir"] == str(root / "_deltas" / "n1") and plan["candidate_dir"] == str(
        root / "_candidates" / "n1"
    )
    (root / "n0").mkdir(parents=True)
    DatasetRoot(root).set_current("n0")
    assert (
        plan_curation([warc], root, "n1", edu_registry=tmp_path / "reg", incremental=True)["base_version"]
        == "n0"
    )


def test_ledger_skips_recorded_segments(tmp_path, shared_data):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("whirlwind.warc.gz", "dolma-sample-0001.warc.gz"):
        (inbox / name).symlink_to(shared_data / "warc_commoncrawl_samples" / name)
    ledger = SegmentLedger.for_root(tmp_path / "web")
    pending = ledger.discover([str(inbox / "*.warc.gz")])
    assert [Path(p).name for p in pending] == ["dolma-sample-0001.warc.gz", "whirlwind.warc.gz"]
    assert ledger.record(pending[:1], "v1") == 1
    assert ledger.discover([str(inbox / "*.warc.gz")]) == pending[1:]
    assert ledger.record(pending, "v2") == 1  # the first one stays with v1
    assert ledger.discover([str(inbox / "*.warc.gz")]) == []
    assert ledger.entries()[pending[0]]["version"] == "v1"


def test_corrupt_ledger_is_a_clear_error(tmp_path):
    ledger = SegmentLedger(tmp_path / "segments.json")
    ledger.path.write_text("{not json")
    with pytest.raises(ValueError, match="segments.json is not valid JSON"):
        ledger.discover(["*.warc.gz"])
