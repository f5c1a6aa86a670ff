"""End-to-end `dag.test()` runs of the DAGs on real crawl files: Spark through SparkSubmitOperator
(`spark_default` = local[2]), the great-expectations gate, the DuckDB report, publication and the Asset.

Each run happens in a fresh interpreter with its own AIRFLOW_HOME (SQLite, migrated once per module), so
Airflow's global settings and ORM never leak into other tests.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagtest_helpers import DagTest

from curation.contract import DatasetRoot

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    run = DagTest.with_spark(tmp_path_factory)
    run.registry = run.data / "edu_models"
    return run


def samples(shared_data: Path, name: str) -> str:
    return str(shared_data / "warc_commoncrawl_samples" / name)


def test_failing_expectation_blocks_publication(airflow, shared_data):
    """whirlwind.warc.gz holds one Aragonese page: curation keeps no English document, the gate's
    row-count expectation fails, and the version is never published (the report still shows why)."""
    before = airflow.root.versions()
    result = airflow("web_curation", {"input_globs": [samples(shared_data, "whirlwind.warc.gz")]})
    assert result["tasks"] == {
        "writer_lock": "success",
        "plan": "success",
        "curate": "success",
        "append": "success",
        "validate": "failed",
        "report": "success",
        "publish": "upstream_failed",
        "writer_unlock": "success",
    }, result["log"][-4000:]
    assert result["state"] == "failed"
    assert airflow.root.versions() == before and result["events"] == []
    candidates = DatasetRoot(airflow.root.root / "_candidates")
    candidate = candidates.version_dir(candidates.current())  # left for inspection, never published
    gate = json.loads((candidate / "quality" / "gate.json").read_text())
    assert gate["success"] is False
    assert any(f["expectation"] == "expect_table_row_count_to_be_between" for f in gate["failures"])
    page = (candidate / "report" / "report.html").read_text()
    assert "quality gate web_curated: FAILED" in page


def test_web_curation_publishes_a_validated_version(airflow, shared_data, tmp_path):
    """No edu model is promoted yet (the nightly test below promotes one): the version is unscored, and
    its manifest says why. Near-dedup is on in its config, so the run also leaves the corpus's band index,
    promoted with the version."""
    config = tmp_path / "curation.yaml"
    config.write_text("output_partitions: 1\nnear_dedup:\n  enabled: true\n")
    result = airflow(
        "web_curation",
        {
            "input_globs": [samples(shared_data, "dolma-sample-0000.warc.gz")],
            "crawl_id": "CC-MAIN-2024-22",
            "config_path": str(config),
        },
    )
    assert result["tasks"] == {
        t: "success"
        for t in ("writer_lock", "plan", "curate", "append", "validate", "report", "publish", "writer_unlock")
    }, result["log"][-4000:]
    version = airflow.root.current()
    vdir = airflow.root.version_dir(version)
    manifest = json.loads((vdir / "manifest.json").read_text())
    assert manifest["rows"] > 0 and manifest["config"]["output_partitions"] == 1
    data = pq.read_table(vdir / "data", columns=["crawl_id", "lang"])
    assert set(data.column("crawl_id").to_pylist()) == {"CC-MAIN-2024-22"}  # the param reached the job
    assert len(list((vdir / "data").glob("*.parquet"))) == 1
    assert json.loads((vdir / "quality" / "gate.json").read_text())["success"] is True
    assert (vdir / "report" / "report.html").is_file()
    assert not (airflow.root.root / "_candidates" / version).exists()
    assert result["events"][-1]["version"] == version and result["events"][-1]["rows"] == manifest["rows"]
    assert "edu_score" not in manifest["columns"] and "edu" not in [s["stage"] for s in manifest["stages"]]
    assert any("no promoted edu model" in n for n in manifest["extra"]["notes"])
    assert "edu scoring skipped: no promoted edu model" in result["log"]
    # the band index describes exactly this version (built from its kept documents, no base), live with it
    index = DatasetRoot(airflow.root.root / "_near_index")
    assert index.current() == version and index_ids(index, version) == ids_of(vdir)
    assert manifest["config"]["near_dedup"]["index_dir"] == str(index.root / "_staged" / version)
    assert not (index.root / "_staged" / version).exists()


def promote_edu_model(registry: Path, shared_data: Path) -> str:
    """A small promoted edu model (fasttext on the DCLM human labels, as in test_edu_score)."""
    from curation.edu.labels import read_label_file
    from curation.edu.registry import ModelRegistry
    from curation.edu.train import EduTrainConfig, FastTextParams
    from curation.edu.workflow import train_and_register

    reg = ModelRegistry(registry)
    labels = read_label_file(
        shared_data / "quality_labels_dclm_human" / "majority_data_disputed.jsonl", max_score=1
    )
    ref = train_and_register(
        labels,
        EduTrainConfig(fasttext=FastTextParams(dim=16, bucket=20_000), max_score=1, threshold=0.5),
        reg,
        human_labels=None,
    )
    return reg.promote(ref.version).version


def ids_of(vdir: Path) -> set[str]:
    return set(pq.read_table(vdir / "data", columns=["id"]).column("id").to_pylist())


def inodes(vdir: Path) -> set[int]:
    return {p.stat().st_ino for p in (vdir / "data").glob("*.parquet")}


def index_ids(index: DatasetRoot, version: str) -> set[str]:
    return set(pq.read_table(index.version_dir(version) / "bands", columns=["id"]).column("id").to_pylist())


def plant_near_copy(vdir: Path, among: set[str], path: Path) -> tuple[str, str]:
    """A JSONL segment holding one document: the longest of `among` in `vdir` with three words changed
    (in place: lines and spacing as they were, so line-based quality filters see the same document)."""
    docs = [r for r in pq.read_table(vdir / "data", columns=["id", "text"]).to_pylist() if r["id"] in among]
    original = max(docs, key=lambda r: len(r["text"].split()))
    text, spans = original["text"], [m.span() for m in re.finditer(r"\S+", original["text"])]
    assert len(spans) >= 300, len(spans)
    for k in sorted((len(spans) // 4, len(spans) // 2, 3 * len(spans) // 4), reverse=True):
        text = text[: spans[k][0]] + f"planted{k}" + text[spans[k][1] :]
    path.write_text(
        json.dumps({"id": "planted-near-copy", "text": text, "url": "https://example.org/planted"}) + "\n"
    )
    return "planted-near-copy", original["id"]


def test_nightly_refresh_publishes_whole_corpus_versions(airflow, shared_data, tmp_path):
    """Night 1 and night 2 each curate only their new segments (scored with the promoted edu model,
    near-deduplicated against the published band index) and publish the whole corpus: the previous
    version's documents (hard-linked) + the night's new ones. Night 2 carries a planted near copy of a
    night-1 document: dropped as a near duplicate. A third run over the same segments processes nothing."""
    from curation.append import STAGE
    from curation.contract import Manifest

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "segment-0001.warc.gz").symlink_to(samples(shared_data, "dolma-sample-0001.warc.gz"))
    conf = {"segment_globs": [str(inbox / "*")]}
    model = promote_edu_model(airflow.registry, shared_data)
    before = set(airflow.root.versions())
    base = airflow.root.current()  # web_curation's version when the module runs whole, else none
    base_ids = ids_of(airflow.root.version_dir(base)) if base else set()
    index = DatasetRoot(airflow.root.root / "_near_index")
    if base:  # as if the base had been published without a band index: night 1 must rebuild it
        (index.root / "CURRENT").unlink()

    def night(
        expect_base: str | None, expect_base_ids: set[str], segments: list[str]
    ) -> tuple[str, Manifest, dict]:
        result = airflow("nightly_refresh", conf)
        assert set(result["tasks"].values()) == {"success"}, result["log"][-4000:]
        version = airflow.root.current()
        vdir = airflow.root.version_dir(version)
        m = Manifest.read(vdir)
        m.check()
        delta = Manifest.read(airflow.root.root / "_deltas" / version)
        assert m.base_version == expect_base and delta.inputs == [str(inbox / s) for s in segments]
        assert m.base_rows == (
            Manifest.read(airflow.root.version_dir(expect_base)).rows if expect_base else 0
        )
        # the whole corpus: every earlier document plus what the night added, counts reconciling
        new = m.stages[-1].rows_kept
        assert m.stages[-1].stage == STAGE and m.stages[:-1] == delta.stages and new > 0
        assert m.rows == m.base_rows + new == len(ids_of(vdir))
        assert expect_base_ids <= ids_of(vdir) and len(ids_of(vdir) - expect_base_ids) == new
        assert ids_of(vdir) - expect_base_ids <= ids_of(airflow.root.root / "_deltas" / version)
        # scored with the promoted model; the manifest names it
        assert "edu" in [s.stage for s in delta.stages] and m.extra["edu"]["model"] == model
        scored = pq.read_table(vdir / "data", columns=["id", "edu_score", "edu_model"]).to_pylist()
        assert {r["edu_model"] for r in scored if r["id"] not in expect_base_ids} == {model}
        assert all(0.0 <= r["edu_score"] <= 1.0 for r in scored if r["edu_score"] is not None)
        assert result["events"][-1] == {"version": version, "path": str(vdir), "rows": m.rows}
        # near-dedup ran against the index of the base version, staged in the run's own root (never the
        # live index), and the index went live only in publish, after the corpus version
        assert "near_dedup" in [s.stage for s in delta.stages]
        assert delta.config["near_dedup"]["index_dir"] == str(index.root / "_staged" / version)
        assert m.extra["near_dedup_index"]["base"] == expect_base
        assert index.current() == version and ids_of(vdir) <= index_ids(index, version)
        assert Manifest.read(index.version_dir(version)).extra["parent"] == expect_base
        log = result["log"]
        published, promoted = (
            log.find(f"published {vdir} (gate passed"),
            log.find(f"promoted: CURRENT = {version}"),
        )
        assert 0 <= published < promoted, log[-4000:]
        return version, m, result

    night1, m1, _ = night(base, base_ids, ["segment-0001.warc.gz"])
    assert m1.extra["near_dedup_index"]["rebuilt"] == bool(base)  # no index described the base
    ids1 = ids_of(airflow.root.version_dir(night1))
    ledger = json.loads((airflow.root.root / "_ledger" / "segments.json").read_text())
    assert ledger[str(inbox / "segment-0001.warc.gz")]["version"] == night1

    # night 2: one new segment landed, and a small one holding a near copy of a night-1 document
    (inbox / "segment-0002.jsonl.gz").symlink_to(
        shared_data / "webtext_cc2019_dolma_sample" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
    )
    planted, original = plant_near_copy(
        airflow.root.version_dir(night1), ids1 - base_ids, inbox / "segment-0003.jsonl"
    )
    night2, m2, result = night(night1, ids1, ["segment-0002.jsonl.gz", "segment-0003.jsonl"])
    assert m2.rows > m1.rows and night2 != night1
    assert m2.extra["near_dedup_index"]["rebuilt"] is False  # night 1's index, hard-linked
    # the planted copy is dropped as a near duplicate of the published original, which stays
    assert planted not in ids_of(airflow.root.version_dir(night2)) and original in ids_of(
        airflow.root.version_dir(night2)
    )
    rejects = pq.read_table(
        airflow.root.root / "_deltas" / night2 / "rejects"
    ).to_pylist()  # linked into night 2
    hit = [(r["reject_stage"], r["reject_reason"], r["reject_detail"]) for r in rejects if r["id"] == planted]
    assert hit == [("near_dedup", "near_duplicate", f"kept {original}")], hit
    near_stage = next(s for s in m2.stages if s.stage == "near_dedup")
    assert near_stage.reasons.get("near_duplicate", 0) >= 1
    # night 1's files are in night 2 as hard links (same schema: both scored), not copies
    assert inodes(airflow.root.version_dir(night1)) <= inodes(airflow.root.version_dir(night2))
    assert m2.extra["files"]["base_linked"] == len(inodes(airflow.root.version_dir(night1)))
    ledger = json.loads((airflow.root.root / "_ledger" / "segments.json").read_text())
    assert {ledger[str(inbox / s)]["version"] for s in ("segment-0001.warc.gz", "segment-0002.jsonl.gz")} == {
        night1,
        night2,
    }

    # the same segments again: nothing to do, nothing published, the index stays
    third = airflow("nightly_refresh", conf)
    assert third["tasks"]["discover"] == "success" and third["tasks"]["anything_new"] == "success"
    skipped = {t for t, s in third["tasks"].items() if s == "skipped"}
    assert skipped == {
        "writer_lock",
        "plan",
        "curate",
        "append",
        "validate",
        "report",
        "publish",
        "record",
        "writer_unlock",
    }
    assert set(airflow.root.versions()) == before | {night1, night2} and airflow.root.current() == night2
    assert len(third["events"]) == len(result["events"]) and index.current() == night2
    nights = [
        json.loads(x) for x in (airflow.root.root / "_ledger" / "nights.jsonl").read_text().splitlines()
    ]
    assert [(n["status"], n["segments_new"], n["version"]) for n in nights] == [
        ("published", 1, night1),
        ("published", 2, night2),
        ("empty", 0, None),
    ]
    assert not (airflow.root.root / "_writer.lock").exists()  # every run gave the writer lease back

    # a mistyped glob is a failed, alerted night, never a quiet empty one
    typo = airflow("nightly_refresh", {"segment_globs": [str(inbox / "*.wrac.gz")]})
    assert typo["state"] == "failed" and typo["tasks"]["discover"] == "failed"
    alerts = [
        json.loads(x)
        for x in (airflow.root.root.parent / "_alerts" / "alerts.jsonl").read_text().splitlines()
    ]
    assert (alerts[-1]["dag_id"], alerts[-1]["task_id"]) == ("nightly_refresh", "discover")
    assert "matches no file" in alerts[-1]["message"] and airflow.root.current() == night2
