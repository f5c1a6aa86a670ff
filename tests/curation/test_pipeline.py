"""The curation job end to end on real crawl data: counts reconcile, reruns replace, failures publish
nothing."""

from __future__ import annotations

import gzip
import json

import pyarrow.parquet as pq
import pytest

from curation.config import CurationConfig
from curation.contract import DOC_COLUMNS, DatasetRoot, Manifest
from curation.pipeline import run
from curation.steps.base import FrameStep

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inputs(shared_data):
    return [
        str(shared_data / "warc_commoncrawl_samples" / "*.warc.gz"),
        str(shared_data / "webtext_cc2019_dolma_sample" / "*.jsonl.gz"),
    ]


@pytest.fixture(scope="module")
def published(spark, inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("curated")
    result = run(inputs, out, CurationConfig(), run_id="r1", spark=spark)
    return out, result


def test_counts_reconcile_against_the_written_datasets(published):
    out, result = published
    version = out / "r1"
    m = Manifest.read(version)
    m.check()
    kept = pq.read_table(version / "data")
    rejects = pq.read_table(version / "rejects")
    assert kept.num_rows == m.rows > 0
    assert rejects.num_rows == m.rejected_rows > 0
    # every stage's reasons equal the rejects rows that carry that stage
    by_stage: dict[str, int] = {}
    for s in rejects.column("reject_stage").to_pylist():
        by_stage[s] = by_stage.get(s, 0) + 1
    assert by_stage == {s.stage: s.rows_rejected for s in m.stages if s.rows_rejected}
    assert m.stages[0].rows_in == kept.num_rows + rejects.num_rows
    assert kept.column_names[: len(DOC_COLUMNS)] == DOC_COLUMNS


def test_every_kept_document_is_text_with_language_and_unique(published):
    out, _ = published
    kept = pq.read_table(out / "r1" / "data").to_pydict()
    assert all(t and t.strip() for t in kept["text"])
    assert all(lang == "en" for lang in kept["lang"])
    assert len(set(kept["id"])) == len(kept["id"])
    assert len(set(kept["text_hash"])) == len(kept["text_hash"])


def test_truncated_warc_record_is_a_counted_ingest_reject(published):
    out, _ = published
    rejects = pq.read_table(out / "r1" / "rejects").to_pydict()
    ingest = [
        (f, r)
        for f, r, s in zip(rejects["source_file"], rejects["reject_reason"], rejects["reject_stage"])
        if s == "ingest"
    ]
    assert any("clipped-truncated" in (f or "") for f, _ in ingest), ingest


def test_rerun_of_same_run_id_replaces_not_duplicates(spark, inputs, published):
    out, first = published
    again = run(inputs, out, CurationConfig(), run_id="r1", spark=spark)
    assert DatasetRoot(out).versions() == ["r1"]
    assert again.manifest.rows == first.manifest.rows
    assert pq.read_table(out / "r1" / "data").num_rows == first.manifest.rows


def test_exact_duplicates_across_files_are_removed(spark, shared_data, tmp_path):
    src = shared_data / "webtext_cc2019_dolma_sample" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
    lines = gzip.decompress(src.read_bytes()).decode().splitlines()[:40]
    copy = []
    for (
        ln
    ) in lines:  # same texts, new ids, different whitespace/case: still exact duplicates after normalization
        doc = json.loads(ln)
        doc["id"] = "~copy-" + doc["id"]  # "~" sorts after every base32 id
        doc["text"] = doc["text"].upper().replace("\n", "\n\n")
        copy.append(json.dumps(doc))
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "b.jsonl").write_text("\n".join(copy) + "\n")
    off = {"enabled": False}  # this test is about dedup: every document must reach it
    cfg = CurationConfig.model_validate(
        {
            "langid": {"languages": [], "min_score": 0.0},
            "decontam": off,
            "quality": {"gopher_quality": off, "gopher_repetition": off, "c4": off, "fineweb": off},
        }
    )
    result = run([str(tmp_path / "*.jsonl")], tmp_path / "out", cfg, run_id="d", spark=spark)
    dedup = next(s for s in result.counts if s.stage == "exact_dedup")
    assert dedup.rows_in == 78  # 40 pairs, one of which has a blank text (an ingest reject)
    assert dedup.rows_rejected == 39
    kept_ids = pq.read_table(tmp_path / "out" / "d" / "data").column("id").to_pylist()
    assert not any(i.startswith("~copy-") for i in kept_ids)  # keep rule: same date -> smallest id wins


def test_missing_input_is_a_clear_error_and_publishes_nothing(spark, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        run(
            [str(tmp_path / "nope" / "*.warc.gz")],
            tmp_path / "out",
            CurationConfig(),
            run_id="x",
            spark=spark,
        )
    assert DatasetRoot(tmp_path / "out").versions() == []
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".staging")]


class _RecordingStep(FrameStep):
    """A frame step that rejects short documents and records which driver hooks the pipeline called."""

    name = "toy_short"

    def __init__(self, fail_in: str | None = None):
        self.calls: list[str] = []
        self.fail_in = fail_in

    def _hook(self, hook: str) -> None:
        self.calls.append(hook)
        if hook == self.fail_in:
            raise RuntimeError(f"toy step fails in {hook}")

    def prepare_driver(self, spark, work_dir) -> None:
        self._hook("prepare_driver")

    def bind(self, spark, staging, run_id) -> None:
        self._hook("bind")

    def apply(self, df):
        from pyspark.sql import functions as F

        self._hook("apply")
        short = F.length("text") < 2000
        return df.filter(~short), (
            df.filter(short)
            .withColumn("reject_stage", F.lit(self.name))
            .withColumn("reject_reason", F.lit("toy_short:length"))
            .withColumn("reject_detail", F.lit(None).cast("string"))
        )

    def manifest_extra(self) -> dict:
        self._hook("manifest_extra")
        return {"toy": "extra"}

    def write_extra(self, staging) -> dict:
        self._hook("write_extra")
        return {}

    def commit(self) -> None:
        self._hook("commit")

    def abort(self) -> None:
        self._hook("abort")


def test_frame_step_hooks_are_called_in_order_and_abort_publishes_nothing(spark, shared_data, tmp_path):
    """The FrameStep contract (curation/steps/base.py): every hook called, in order; its rejects and manifest
    extra land in the version; a hook that fails aborts the step and publishes nothing."""
    src = shared_data / "webtext_cc2019_dolma_sample" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
    (tmp_path / "a.jsonl").write_text(
        "\n".join(gzip.decompress(src.read_bytes()).decode().splitlines()[:30]) + "\n"
    )
    off = {"enabled": False}
    cfg = CurationConfig.model_validate(
        {
            "langid": {"languages": [], "min_score": 0.0},
            "decontam": off,
            "exact_dedup": off,
            "quality": {"gopher_quality": off, "gopher_repetition": off, "c4": off, "fineweb": off},
        }
    )
    step = _RecordingStep()
    result = run(
        [str(tmp_path / "a.jsonl")], tmp_path / "out", cfg, run_id="ok", spark=spark, frame_steps=[step]
    )
    assert step.calls == ["prepare_driver", "bind", "apply", "manifest_extra", "write_extra", "commit"]
    toy = result.counts[-1]
    assert toy.stage == "toy_short" and 0 < toy.rows_rejected < toy.rows_in
    assert toy.reasons == {"toy_short:length": toy.rows_rejected} and result.manifest.extra["toy"] == "extra"

    failing = _RecordingStep(fail_in="write_extra")
    with pytest.raises(RuntimeError, match="fails in write_extra"):
        run(
            [str(tmp_path / "a.jsonl")],
            tmp_path / "out",
            cfg,
            run_id="bad",
            spark=spark,
            frame_steps=[failing],
        )
    assert failing.calls[-2:] == ["write_extra", "abort"] and "commit" not in failing.calls
    assert (
        DatasetRoot(tmp_path / "out").versions() == ["ok"] and DatasetRoot(tmp_path / "out").current() == "ok"
    )
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
