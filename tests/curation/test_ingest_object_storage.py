"""Curation ingest from object storage, against a real S3 implementation (moto's server on localhost).

The same small real files (Common Crawl WARC + WET, the truncated WARC, a dolma JSONL slice and a parquet
file) are curated once from local paths and once from `s3a://` / `s3://` globs and a bucket "folder": the
documents and every stage's counts must be identical. Credentials and endpoint come only from the standard
AWS variables (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_ENDPOINT_URL), set for the driver (which lists)
and for the Python workers (which read) the way `spark.executorEnv.*` sets them on a cluster.
A missing object, prefix or bucket is the clear "matches no file" error naming the input.
"""

from __future__ import annotations

import gzip
import json
import logging
import shutil
import socket

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.cli import main as curation_cli
from curation.config import CurationConfig
from curation.contract import DatasetRoot, Manifest
from curation.ingest import open_input
from curation.ingest.listing import _hadoop_serves, list_input_files
from curation.pipeline import run

BUCKET = "phi-crawl"
WARC_DIR = "warc_commoncrawl_samples"
DOLMA = "webtext_cc2019_dolma_sample/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
COMPARED = ["id", "text", "url", "title", "date", "crawl_id", "source_format", "lang"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory):
    """The local tree: crawl/ holds two WARCs (one truncated) and a WET, text/ a JSONL slice and a parquet."""
    root = tmp_path_factory.mktemp("local_corpus")
    (root / "crawl").mkdir()
    (root / "text").mkdir()
    for name in ["whirlwind.warc.gz", "resiliparse-clipped-truncated.warc.gz", "whirlwind.warc.wet.gz"]:
        shutil.copy(shared_data / WARC_DIR / name, root / "crawl" / name)
    lines = gzip.decompress((shared_data / DOLMA).read_bytes()).decode().splitlines()
    jsonl = "\n".join(lines[:30]) + "\n"
    (root / "text" / "dolma-head.jsonl.gz").write_bytes(gzip.compress(jsonl.encode()))
    rows = [json.loads(ln) for ln in lines[30:45]]
    pq.write_table(
        pa.table({"id": [r["id"] for r in rows], "text": [r["text"] for r in rows]}),
        root / "text" / "dolma-more.parquet",
    )
    return root


@pytest.fixture(scope="module")
def s3(corpus, spark):
    """moto's S3 server with the corpus uploaded; AWS_* set for this process and for the Python workers."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield from _bucket_with_corpus(f"http://127.0.0.1:{port}", corpus, spark)
    finally:
        server.stop()


def _bucket_with_corpus(endpoint: str, corpus, spark):
    import s3fs

    env = {
        "AWS_ACCESS_KEY_ID": "phi-test",
        "AWS_SECRET_ACCESS_KEY": "phi-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        # never pick up a developer's ~/.aws profile (these files do not exist)
        "AWS_CONFIG_FILE": str(corpus / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(corpus / "no-aws-credentials"),
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("AWS_PROFILE", raising=False)
        mp.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        for k, v in env.items():
            mp.setenv(k, v)  # the driver: listing, format sniffing
            # the Python workers that read the files: what `--conf spark.executorEnv.K=V` puts there
            mp.setitem(spark.sparkContext.environment, k, v)
        s3fs.S3FileSystem.clear_instance_cache()
        fs = s3fs.S3FileSystem()
        fs.mkdir(BUCKET)
        for path in corpus.rglob("*"):
            if path.is_file():
                fs.put_file(str(path), f"{BUCKET}/{path.relative_to(corpus)}")
        try:
            yield fs
        finally:
            s3fs.S3FileSystem.clear_instance_cache()


def _kept_and_rejects(version_dir) -> tuple[dict, list]:
    data = pq.read_table(version_dir / "data").to_pylist()
    rejects = pq.read_table(version_dir / "rejects").to_pylist()

    def rid(r):  # damage rejects have the id `<source_file>#<offset>`: compare the file name, not its folder
        src = r["source_file"]
        return r["id"].replace(src, src.rsplit("/", 1)[-1]) if src and r["id"].startswith(src) else r["id"]

    return (
        {r["id"]: {c: r[c] for c in COMPARED} for r in data},
        sorted((rid(r), r["reject_stage"], r["reject_reason"]) for r in rejects),
    )


@pytest.fixture(scope="module")
def local_run(spark, corpus, s3, tmp_path_factory):
    # under the s3 fixture's worker environment too: both runs share the Python workers (models load once)
    out = tmp_path_factory.mktemp("out_local")
    inputs = [str(corpus / "crawl" / "*.warc.gz"), str(corpus / "crawl" / "*.wet.gz"), str(corpus / "text")]
    return run(inputs, out, CurationConfig(), run_id="local", spark=spark)


def test_s3a_and_s3_inputs_give_the_same_documents_and_counts_as_local(
    s3, spark, local_run, tmp_path, capsys
):
    inputs = [f"s3a://{BUCKET}/crawl/*.warc.gz", f"s3://{BUCKET}/crawl/*.wet.gz", f"s3a://{BUCKET}/text/"]
    assert [f for f, _ in list_input_files(spark, inputs, "auto")] == [
        f"s3a://{BUCKET}/crawl/resiliparse-clipped-truncated.warc.gz",
        f"s3a://{BUCKET}/crawl/whirlwind.warc.gz",
        f"s3://{BUCKET}/crawl/whirlwind.warc.wet.gz",
        f"s3a://{BUCKET}/text/dolma-head.jsonl.gz",
        f"s3a://{BUCKET}/text/dolma-more.parquet",
    ]

    # the entry `python -m curation run` uses, in process (it picks up the active SparkSession)
    argv = ["run", "--output", str(tmp_path / "out"), "--run-id", "s3"]
    for i in inputs:
        argv += ["--input", i]
    assert curation_cli(argv) == 0
    assert "documents kept" in capsys.readouterr().out

    remote = Manifest.read(tmp_path / "out" / "s3")
    remote.check()
    local = local_run.manifest
    assert [(s.stage, s.rows_in, s.rows_kept, s.reasons) for s in remote.stages] == [
        (s.stage, s.rows_in, s.rows_kept, s.reasons) for s in local.stages
    ]
    assert remote.rows == local.rows > 0
    # the WARC page, the truncated record, the WET page, the JSONL lines, the parquet rows
    assert remote.stages[0].rows_in == 1 + 1 + 1 + 30 + 15

    kept_remote, rejects_remote = _kept_and_rejects(tmp_path / "out" / "s3")
    kept_local, rejects_local = _kept_and_rejects(local_run.version_dir)
    assert kept_remote == kept_local
    assert rejects_remote == rejects_local
    assert ("ingest", "truncated_record") in {(s, r) for _, s, r in rejects_remote}
    sources = set(pq.read_table(tmp_path / "out" / "s3" / "rejects").column("source_file").to_pylist()) | set(
        pq.read_table(tmp_path / "out" / "s3" / "data").column("source_file").to_pylist()
    )
    # source_file is recorded as given (s3a:// stays s3a://)
    assert sources <= {f for f, _ in list_input_files(spark, inputs, "auto")}
    assert {f.split("://")[0] for f in sources} == {"s3a", "s3"}


@pytest.mark.parametrize(
    "missing",
    [
        f"s3a://{BUCKET}/nope/*.warc.gz",  # a glob that matches nothing
        f"s3://{BUCKET}/crawl/gone.warc.gz",  # one object that is not there
        f"s3a://{BUCKET}/crawl/*.arc.gz",  # nothing of that kind in an existing prefix
        "s3a://no-such-bucket-phi/crawl/*.warc.gz",  # a bucket that does not exist
    ],
)
def test_missing_s3_input_is_a_clear_error_naming_it_and_publishes_nothing(s3, spark, tmp_path, missing):
    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match=f"input '{missing.replace('*', '[*]')}' matches no file"):
        run([f"s3a://{BUCKET}/crawl/*.warc.gz", missing], out, CurationConfig(), run_id="x", spark=spark)
    assert DatasetRoot(out).versions() == []


def test_object_gone_between_listing_and_reading_is_an_error_naming_it(s3):
    with pytest.raises(FileNotFoundError, match=f"s3a://{BUCKET}/crawl/vanished.warc.gz"):
        open_input(f"s3a://{BUCKET}/crawl/vanished.warc.gz")
    with open_input(f"s3a://{BUCKET}/crawl/whirlwind.warc.gz") as fh:
        assert fh.read(2) == b"\x1f\x8b"


def test_listing_uses_hadoop_only_for_schemes_the_jvm_serves(spark, corpus):
    served: dict[str, bool] = {}
    assert _hadoop_serves(spark, str(corpus), served)
    assert _hadoop_serves(spark, f"file:{corpus}", served)
    assert not _hadoop_serves(spark, f"s3://{BUCKET}/x", served)
    try:  # s3a: through Hadoop exactly when the hadoop-aws jar is on the classpath
        spark.sparkContext._jvm.java.lang.Class.forName("org.apache.hadoop.fs.s3a.S3AFileSystem")
        has_s3a = True
    except Exception:  # noqa: BLE001 -- py4j wraps the ClassNotFoundException
        has_s3a = False
    assert _hadoop_serves(spark, f"s3a://{BUCKET}/x", served) == has_s3a
    with pytest.raises(ValueError, match="nosuchfs://x/y"):
        list_input_files(spark, ["nosuchfs://x/y/*.warc.gz"], "auto")


def test_missing_credentials_are_an_error_naming_the_input(s3, spark, monkeypatch):
    import s3fs

    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(k)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata probe (a 1 s timeout each)
    s3fs.S3FileSystem.clear_instance_cache()  # cached instances hold the credentials they were made with
    try:
        with pytest.raises(OSError, match=f"s3a://{BUCKET}/crawl/whirlwind.warc.gz.*NoCredentialsError"):
            open_input(f"s3a://{BUCKET}/crawl/whirlwind.warc.gz")
        with pytest.raises(OSError, match=f"input 's3://{BUCKET}/crawl/[*].warc.gz'.*NoCredentialsError"):
            list_input_files(spark, [f"s3://{BUCKET}/crawl/*.warc.gz"], "auto")
    finally:
        s3fs.S3FileSystem.clear_instance_cache()


def test_dedup_reads_a_plain_s3_folder_like_the_local_one(s3, spark, corpus, tmp_path):
    """`curation dedup --input s3://bucket/folder/` (plain JSONL.gz + parquet, issue 16): listed and read
    through the same resolver and readers as a local folder, with the same documents and counts."""
    from curation.dedup.job import run_near_dedup
    from curation.dedup.near_config import NearDedupConfig

    remote = run_near_dedup(f"s3://{BUCKET}/text/", tmp_path / "s3", NearDedupConfig(), spark=spark)
    local = run_near_dedup(corpus / "text", tmp_path / "local", NearDedupConfig(), spark=spark)
    counts = [(s.stage, s.rows_in, s.rows_kept, s.rows_rejected) for s in remote.manifest.stages]
    assert counts == [(s.stage, s.rows_in, s.rows_kept, s.rows_rejected) for s in local.manifest.stages]
    assert counts[0][:2] == ("ingest", 45) and remote.manifest.inputs == [f"s3://{BUCKET}/text/"]
    assert _kept_and_rejects(remote.version_dir)[0].keys() == _kept_and_rejects(local.version_dir)[0].keys()
