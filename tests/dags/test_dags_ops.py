"""The operational guards of the corpus DAGs (issue 14), without the stack: segment discovery through the
curation job's lister on moto's S3 server, a glob that matches nothing is an error, empty nights in the
ledger, the writer lease (one writer per corpus), web_curation's add/replace planning."""

from __future__ import annotations

import gzip
import logging
import socket
import threading
from datetime import timedelta

import pytest

from dags.lib.ledger import NoSegments, SegmentLedger
from dags.lib.lock import CorpusBusy, WriterLock

# ---- segment discovery on object storage (moto's S3 server) ------------------------------------------------


@pytest.fixture(scope="module")
def s3(tmp_path_factory, shared_data):
    """moto's S3 server with three crawl segments under crawl/; the standard AWS variables point at it."""
    import s3fs
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    home = tmp_path_factory.mktemp("aws")
    env = {
        "AWS_ACCESS_KEY_ID": "phi-test",
        "AWS_SECRET_ACCESS_KEY": "phi-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_CONFIG_FILE": str(home / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "none"),
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("AWS_PROFILE", raising=False)
        mp.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        for k, v in env.items():
            mp.setenv(k, v)
        s3fs.S3FileSystem.clear_instance_cache()
        fs = s3fs.S3FileSystem()
        fs.mkdir("phi-nightly")
        warcs = shared_data / "warc_commoncrawl_samples"
        for name in ("whirlwind.warc.gz", "dolma-sample-0001.warc.gz"):
            fs.put_file(str(warcs / name), f"phi-nightly/crawl/{name}")
        fs.pipe_file("phi-nightly/crawl/_SUCCESS", b"")  # a marker, not a segment (the curation job's rule)
        try:
            yield fs
        finally:
            s3fs.S3FileSystem.clear_instance_cache()
            server.stop()


@pytest.mark.parametrize("scheme", ["s3", "s3a"])
def test_the_ledger_discovers_segments_on_s3(tmp_path, s3, shared_data, scheme):
    ledger = SegmentLedger.for_root(tmp_path / "web")
    glob = f"{scheme}://phi-nightly/crawl/*"
    found, pending = ledger.scan([glob])
    expected = [
        f"{scheme}://phi-nightly/crawl/{n}" for n in ("dolma-sample-0001.warc.gz", "whirlwind.warc.gz")
    ]
    assert found == pending == expected
    assert ledger.record(pending[:1], "n1") == 1
    assert (
        ledger.entries()[expected[0]]["bytes"]
        == (shared_data / "warc_commoncrawl_samples" / "dolma-sample-0001.warc.gz").stat().st_size
    )
    assert ledger.discover([glob]) == expected[1:]
    # a new segment lands: the next night finds it
    s3.pipe_file("phi-nightly/crawl/segment-3.jsonl.gz", gzip.compress(b'{"id": "x", "text": "y"}\n'))
    try:
        assert ledger.discover([glob]) == [f"{scheme}://phi-nightly/crawl/segment-3.jsonl.gz", *expected[1:]]
    finally:
        s3.rm_file("phi-nightly/crawl/segment-3.jsonl.gz")


def test_a_glob_matching_nothing_is_an_error_not_an_empty_night(tmp_path, s3):
    ledger = SegmentLedger.for_root(tmp_path / "web")
    with pytest.raises(NoSegments, match="'s3://phi-nightly/crawl/\\*.wrac.gz' matches no file"):
        ledger.scan(["s3://phi-nightly/crawl/*.wrac.gz"])  # a typo
    with pytest.raises(NoSegments, match="location that does not exist \\(s3://phi-nightly/crawl-typo/\\)"):
        ledger.scan(["s3://phi-nightly/crawl-typo/*.warc.gz"])
    with pytest.raises(NoSegments, match="location that does not exist"):
        ledger.scan([str(tmp_path / "no-mount" / "*.warc.gz")])
    (tmp_path / "inbox").mkdir()
    with pytest.raises(NoSegments, match="matches no file"):
        ledger.scan([str(tmp_path / "inbox" / "*.warc.gz")])


def test_an_empty_night_is_recorded_in_the_ledger_and_its_table(tmp_path, shared_data):
    ledger = SegmentLedger.for_root(tmp_path / "web")
    seg = SegmentLedger.key(str(shared_data / "warc_commoncrawl_samples" / "whirlwind.warc.gz"))
    ledger.record([seg], "n1")
    ledger.record_night("n1", "published", 1, 1, "n1", 12)
    found, pending = ledger.scan([seg])
    assert found == [seg] and pending == []
    ledger.record_night("n2", "empty", len(found), 0)
    ledger.record_night("n2", "empty", len(found), 0)  # a retried task: still one line
    assert [(n["run"], n["status"], n["segments_new"]) for n in ledger.nights()] == [
        ("n1", "published", 1),
        ("n2", "empty", 0),
    ]
    table = (tmp_path / "web" / "_ledger" / "nights.md").read_text()
    assert "| n2 | empty | 1 | 0 | - | - |" in table and "| n1 | published | 1 | 1 | n1 | 12 |" in table


# ---- one writer per corpus ---------------------------------------------------------------------------------


def test_the_writer_lease_admits_one_run_at_a_time(tmp_path, caplog):
    lock = WriterLock(tmp_path / "web")
    hour = timedelta(hours=1)
    lock.acquire("nightly_refresh/n1", ttl=hour, wait=timedelta(0))
    lock.acquire("nightly_refresh/n1", ttl=hour, wait=timedelta(0))  # a retry of the holder: re-entrant
    with pytest.raises(CorpusBusy, match="another run is writing this corpus \\(nightly_refresh/n1"):
        lock.acquire("web_curation/m1", ttl=hour, wait=timedelta(seconds=0.3), poll=0.1)
    assert not lock.release("web_curation/m1") and lock.holder()["holder"] == "nightly_refresh/n1"

    # a waiting run gets the lease as soon as the holder releases it
    got = {}
    waiter = threading.Thread(
        target=lambda: got.update(
            lock.acquire("web_curation/m1", ttl=hour, wait=timedelta(seconds=10), poll=0.05)
        )
    )
    waiter.start()
    assert lock.release("nightly_refresh/n1")
    waiter.join(timeout=10)
    assert got["holder"] == "web_curation/m1"

    # a lease whose holder died (no teardown) is broken after its ttl, and logged
    lock.acquire("web_curation/m1", ttl=timedelta(seconds=-1), wait=timedelta(0))
    with caplog.at_level(logging.WARNING, logger="dags.lib.lock"):
        lock.acquire("nightly_refresh/n2", ttl=hour, wait=timedelta(0))
    assert "breaking the stale writer lease of web_curation/m1" in caplog.text
    assert lock.holder()["holder"] == "nightly_refresh/n2"


def test_web_curation_adds_to_the_corpus_unless_told_to_replace(tmp_path, shared_data, caplog):
    from curation.contract import DatasetRoot
    from dags.lib.plan import plan_curation

    warc = str(shared_data / "warc_commoncrawl_samples" / "whirlwind.warc.gz")
    root = tmp_path / "web"
    (root / "v0").mkdir(parents=True)
    DatasetRoot(root).set_current("v0")
    add = plan_curation([warc], root, "v1", edu_registry=tmp_path / "reg", incremental=True)
    assert add["base_version"] == "v0" and not add["replace"]
    with caplog.at_level(logging.WARNING, logger="dags.lib.plan"):
        rep = plan_curation([warc], root, "v2", edu_registry=tmp_path / "reg", incremental=True, replace=True)
    assert rep["base_version"] is None and rep["replace"]
    assert "mode replace" in caplog.text and any("mode replace" in a and "(was v0)" in a for a in rep["argv"])
