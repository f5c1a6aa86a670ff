"""Damaged and empty input through the whole curation job on Spark (the reader-level cases are in
test_ingest_damage.py): the manifest reconciles records read with kept + rejected, no altered text is
published, an empty run leaves CURRENT where it was, a parquet input without `text` is one error line."""

from __future__ import annotations

import gzip

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.cli import main as curation_main
from curation.config import CurationConfig
from curation.contract import DatasetRoot, Manifest
from curation.ingest.gzmembers import scan_members
from curation.pipeline import (
    EXIT_EMPTY_RUN,
    EmptyRunError,
    build_python_steps,
    process_files,
    processed_schema,
    run,
)

pytestmark = pytest.mark.slow

WARC = "warc_commoncrawl_samples/dolma-sample-0000.warc.gz"
DOLMA = "webtext_cc2019_dolma_sample/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


def flip(data: bytes, at: int, n: int = 8) -> bytes:
    return data[:at] + bytes(b ^ 0x5A for b in data[at : at + n]) + data[at + n :]


@pytest.fixture(scope="module")
def damaged(shared_data, tmp_path_factory):
    """A WARC.gz with one response member corrupt and a 3-member .jsonl.gz with bytes flipped in member 1."""
    d = tmp_path_factory.mktemp("damaged")
    src = (shared_data / WARC).read_bytes()
    with open(shared_data / WARC, "rb") as fh:
        members = list(scan_members(fh, lambda head: True))
    victim = next(m for m in members[20:] if b"WARC-Type: response" in m.head)
    (d / "crawl.warc.gz").write_bytes(flip(src, (victim.start + victim.end) // 2))
    lines = gzip.decompress((shared_data / DOLMA).read_bytes()).splitlines(keepends=True)[:150]
    lines[0] = lines[0].replace(
        b"A New Home?", b"A New Home\xe9", 1
    )  # invalid UTF-8: kept, replaced, counted
    parts = [gzip.compress(b"".join(lines[i::3])) for i in range(3)]
    data = b"".join(parts)
    (d / "shard.jsonl.gz").write_bytes(flip(data, len(parts[0]) + len(parts[1]) // 2))
    # what the job's Python steps make of the clean lines (they normalise text), without Spark
    (clean_dir := tmp_path_factory.mktemp("clean") / "shard.jsonl").write_bytes(b"".join(lines))
    cfg = CurationConfig()
    schema = processed_schema(build_python_steps(cfg))
    rows = pa.Table.from_batches(
        list(process_files(iter([(str(clean_dir), "jsonl")]), cfg.model_dump_json(), schema)), schema=schema
    ).to_pylist()
    clean = {r["id"]: r["text"] for r in rows if r["reject_stage"] is None}
    assert len(clean) > 10
    return d, victim.start, clean


def test_damaged_inputs_publish_no_altered_text_and_reconcile(spark, damaged, tmp_path):
    d, victim_offset, clean = damaged
    out = tmp_path / "out"
    result = run([str(d / "*")], out, CurationConfig(), run_id="r1", spark=spark)
    m = Manifest.read(result.version_dir)
    read = m.extra["ingest"]
    assert (
        read["records_read"] == sum(read["files"].values()) == m.stages[0].rows_in == m.rows + m.rejected_rows
    )
    rejects = pq.read_table(result.version_dir / "rejects").to_pylist()
    lost = {r["id"] for r in rejects if r["reject_reason"] == "corrupt_gzip"}
    assert f"file:{d / 'crawl.warc.gz'}#{victim_offset}" in lost and len(lost) == 2  # Hadoop lists file: URIs
    kept = pq.read_table(result.version_dir / "data").to_pylist()
    from_jsonl = [r for r in kept if r["source_format"] == "jsonl"]
    assert from_jsonl and all(r["text"] == clean[r["id"]] for r in from_jsonl)
    assert any(r["source_format"] == "warc" for r in kept)  # the records after the damaged member
    assert read["flagged"] == {f"invalid_utf8:file:{d / 'shard.jsonl.gz'}": 1}


def test_empty_run_leaves_current_where_it_was(spark, shared_data, tmp_path):
    out = tmp_path / "out"
    lines = gzip.decompress((shared_data / DOLMA).read_bytes()).splitlines(keepends=True)[:60]
    (tmp_path / "good.jsonl").write_bytes(b"".join(lines))
    good = run([str(tmp_path / "good.jsonl")], out, CurationConfig(), run_id="good", spark=spark)
    assert good.manifest.rows > 0 and DatasetRoot(out).current() == "good"
    (tmp_path / "empty.jsonl").write_bytes(b"")
    with pytest.raises(EmptyRunError, match="nothing published"):
        run([str(tmp_path / "empty.jsonl")], out, CurationConfig(), run_id="empty", spark=spark)
    assert DatasetRoot(out).current() == "good" and DatasetRoot(out).versions() == ["good"]
    # the CLI says so with its documented exit status; --allow-empty publishes the empty version
    argv = ["run", "--input", str(tmp_path / "empty.jsonl"), "--output", str(out), "--run-id", "empty"]
    assert curation_main(argv) == EXIT_EMPTY_RUN
    assert DatasetRoot(out).current() == "good"
    assert curation_main([*argv, "--allow-empty"]) == 0
    assert DatasetRoot(out).current() == "empty" and Manifest.read(out / "empty").rows == 0


def test_parquet_without_text_is_one_error_line_before_any_task(spark, tmp_path, capsys):
    bad = tmp_path / "in" / "shard.parquet"
    bad.parent.mkdir()
    pq.write_table(pa.table({"id": ["a"], "body": ["some text"]}), bad)
    jobs_before = len(spark.sparkContext.statusTracker().getJobIdsForGroup())
    rc = curation_main(["run", "--input", str(bad.parent), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err == [f"error: parquet input 'file:{bad}' has no 'text' column (columns: ['id', 'body'])"]
    assert len(spark.sparkContext.statusTracker().getJobIdsForGroup()) == jobs_before
    assert not (tmp_path / "out" / "CURRENT").exists()
