"""Shared by the Iceberg table tests: real documents (the dolma Common Crawl sample), warehouses (local
folder, moto's S3 server, a PostgreSQL catalog) and writing data files the way a job does."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.contract import DOC_COLUMNS, DOC_FIELDS, text_hash
from curation.tables import TablesConfig, data_location

DOLMA = "webtext_cc2019_dolma_sample/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
BUCKET = "phi-lake"
#: The contract's document types, nullable as in Spark-written parquet (all-None columns would infer as null)
TYPES = {f.name: f.type for f in DOC_FIELDS} | {"text_hash": pa.string()}


def real_docs(shared_data: Path, n: int, start: int = 0) -> list[dict]:
    """`n` documents of the dolma sample (from line `start`) as contract rows (DOC_COLUMNS + text_hash)."""
    lines = gzip.decompress((shared_data / DOLMA).read_bytes()).decode().splitlines()[start : start + n]
    assert len(lines) == n, f"the dolma sample has fewer than {start + n} documents"
    rows = []
    for line in lines:
        rec = json.loads(line)
        row = {c: None for c in DOC_COLUMNS}
        meta = rec.get("metadata") or {}
        row.update(
            id=rec["id"],
            text=rec["text"],
            url=meta.get("url"),
            source_format="jsonl",
            lang="en",
            lang_score=1.0,
            text_hash=text_hash(rec["text"].lower()),
        )
        rows.append(row)
    return rows


def to_table(rows: list[dict]) -> pa.Table:
    """Rows as Arrow with the contract's column types (extra columns inferred)."""
    inferred = pa.Table.from_pylist(rows).schema
    return pa.Table.from_pylist(
        rows, schema=pa.schema([pa.field(f.name, TYPES.get(f.name, f.type)) for f in inferred])
    )


def write_files(table, run_id: str, batches: list[list[dict]]) -> list[str]:
    """Write one parquet file per batch into a fresh attempt folder of `run_id`, as a job would; their
    URIs."""
    loc = data_location(table, run_id)
    paths = []
    for k, rows in enumerate(batches):
        path = f"{loc}/part-{k:05d}-{uuid.uuid4().hex[:8]}.parquet"
        with table.io.new_output(path).create(overwrite=True) as out:
            pq.write_table(to_table(rows), out)
        paths.append(path)
    return paths


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def moto_s3(tmp: Path) -> Iterator[str]:
    """moto's S3 server on a free port with bucket BUCKET; AWS_* set for this process and its children."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "phi-test",
        "AWS_SECRET_ACCESS_KEY": "phi-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-creds"),
    }
    try:
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
            yield endpoint
    finally:
        server.stop()


@contextmanager
def moto_s3_with_spark(tmp: Path, spark) -> Iterator[str]:
    """`moto_s3`, with the AWS_* variables also given to the Spark session's Python workers (they read and
    write S3 too, and were started before the variables existed)."""
    import os

    with moto_s3(tmp) as endpoint, pytest.MonkeyPatch.context() as mp:
        for k in [k for k in os.environ if k.startswith("AWS_")]:
            mp.setitem(spark.sparkContext.environment, k, os.environ[k])
        yield endpoint


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the local PostgreSQL (127.0.0.1:5432, trust), dropped afterwards; its SQLAlchemy
    URL."""
    import psycopg2

    name = f"phi_iceberg_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:  # FORCE: a catalog engine of the test may still hold a pooled connection
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def warehouse_config(kind: str, tmp: Path, catalog_uri: str | None = None) -> TablesConfig:
    """local: SQLite + folder; s3: SQLite + s3://BUCKET/<unique prefix> (moto must be running); postgres: the
    given catalog URL + a local folder."""
    if kind == "s3":
        return TablesConfig(
            warehouse=f"s3://{BUCKET}/wh-{uuid.uuid4().hex[:8]}", catalog_uri=f"sqlite:///{tmp}/catalog.db"
        )
    return TablesConfig(warehouse=str(tmp / "warehouse"), catalog_uri=catalog_uri)
