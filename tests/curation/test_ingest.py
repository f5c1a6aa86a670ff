"""Ingest on the real crawl samples (Common Crawl WARC/WET/WAT, wget WARCs, the truncated record, the dolma
JSONL shard) and on damaged input generated in tmp_path: every record ends up a document or a counted
reject."""

from __future__ import annotations

import gzip
import io
import json
import logging
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from curation.ingest import RAW_SCHEMA, IngestConfig, detect_format, fsspec_uri, read_documents, stable_id

WARC_DIR = "warc_commoncrawl_samples"
DOLMA = "webtext_cc2019_dolma_sample/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


def read_all(path, fmt="auto", **cfg) -> pa.Table:
    batches = list(read_documents(str(path), fmt, IngestConfig(**cfg)))
    for b in batches:
        assert b.schema.equals(RAW_SCHEMA)
    return pa.Table.from_batches(batches, schema=RAW_SCHEMA)


def docs(t: pa.Table) -> list[dict]:
    return [r for r in t.to_pylist() if r["reject_reason"] is None]


def rejects(t: pa.Table) -> list[dict]:
    return [r for r in t.to_pylist() if r["reject_reason"] is not None]


def write_warc(path: Path, records: list[tuple[str, str, bytes, str]], warcinfo: dict | None = None) -> Path:
    """records: (url, HTTP status line, body, content type) -> gzipped WARC response records."""
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        if warcinfo is not None:
            writer.write_record(writer.create_warcinfo_record(path.name, warcinfo))
        for url, status, body, ctype in records:
            http = StatusAndHeaders(
                status, [("Content-Type", ctype), ("Content-Length", str(len(body)))], protocol="HTTP/1.1"
            )
            writer.write_record(
                writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http)
            )
    return path


# ---- format detection and paths ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,fmt",
    [
        ("CC-MAIN-x.warc.gz", "warc"),
        ("a.warc", "warc"),
        ("whirlwind.warc.wet.gz", "wet"),
        ("x.wet", "wet"),
        ("whirlwind.warc.wat.gz", "warc"),
        ("d.jsonl.gz", "jsonl"),
        ("d.json.gz", "jsonl"),
        ("d.jsonl", "jsonl"),
        ("part-0.parquet", "parquet"),
        ("s3a://bucket/crawl/x.WARC.GZ", "warc"),
    ],
)
def test_detect_format_from_name(name, fmt):
    assert detect_format(name) == fmt


def test_detect_format_sniffs_ambiguous_names(shared_data, tmp_path):
    for src, fmt in [
        (f"{WARC_DIR}/whirlwind.warc.gz", "warc"),
        (f"{WARC_DIR}/whirlwind.warc.wet.gz", "wet"),
        (DOLMA, "jsonl"),
    ]:
        dst = tmp_path / f"{fmt}-copy.gz"  # name says only "gzip"
        shutil.copy(shared_data / src, dst)
        assert detect_format(f"file:{dst}") == fmt
    pq.write_table(pa.table({"text": ["hello"]}), tmp_path / "noext")
    assert detect_format(str(tmp_path / "noext")) == "parquet"
    (tmp_path / "mystery.bin").write_bytes(b"\x00\x01garbage")
    with pytest.raises(ValueError, match="mystery.bin"):
        detect_format(str(tmp_path / "mystery.bin"))


def test_hadoop_uris_map_to_fsspec():
    assert fsspec_uri("file:/data/x.warc.gz") == "/data/x.warc.gz"
    assert fsspec_uri("file:///data/a%20b.warc.gz") == "/data/a b.warc.gz"
    assert fsspec_uri("s3a://bucket/key/x.warc.gz") == "s3://bucket/key/x.warc.gz"
    assert fsspec_uri("s3n://bucket/key") == "s3://bucket/key"


def test_missing_path_is_a_clear_error(tmp_path):
    missing = tmp_path / "nope.warc.gz"
    with pytest.raises(FileNotFoundError, match="nope.warc.gz"):
        read_all(f"file:{missing}")
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        read_all(tmp_path / "nope.jsonl")


# ---- WARC / WET on real files -----------------------------------------------------------------------


def test_common_crawl_warc(shared_data):
    t = read_all(f"file:{shared_data / WARC_DIR / 'whirlwind.warc.gz'}")
    [doc] = docs(t)
    assert not rejects(t)  # warcinfo / request / metadata are not documents and not rejects
    assert doc["url"] == "https://an.wikipedia.org/wiki/Escopete"
    assert doc["id"] == "2aabeff2-67f5-4608-8466-e87c6296e2b6"
    assert doc["date"] == "2024-05-18T01:58:10Z"
    assert doc["crawl_id"] == "CC-MAIN-2024-22"  # from the warcinfo isPartOf
    assert doc["source_format"] == "warc" and doc["source_file"].endswith("whirlwind.warc.gz")
    assert doc["content_type"].startswith("text/html")
    assert b"Escopete" in doc["html"] and doc["text"] is None


def test_crawl_with_many_records_and_batching(shared_data):
    path = shared_data / WARC_DIR / "resiliparse-warcfile-CC-MAIN-2020-34.warc.gz"
    batches = list(read_documents(str(path), "warc", IngestConfig(batch_rows=5)))
    assert [b.num_rows for b in batches] == [5, 5, 5, 1]
    t = pa.Table.from_batches(batches)
    assert len(docs(t)) == 16
    assert set(t.column("crawl_id").to_pylist()) == {"CC-MAIN-2020-34"}
    assert len(set(t.column("id").to_pylist())) == 16
    # a config crawl id overrides the headers
    assert set(read_all(path, crawl_id="CC-MAIN-2099-01").column("crawl_id").to_pylist()) == {
        "CC-MAIN-2099-01"
    }


def test_wget_warc_brackets_and_no_crawl_id(shared_data):
    t = read_all(shared_data / WARC_DIR / "dolma-sample-0000.warc.gz")
    got = docs(t)
    assert len(got) == 22 and not rejects(t)
    assert all(d["url"].startswith("https://") and not d["url"].startswith("<") for d in got)
    assert all(not d["id"].startswith(("<", "urn:")) for d in got)
    assert {d["crawl_id"] for d in got} == {None}  # not Common Crawl: nothing to invent


def test_truncated_record_is_one_reject(shared_data):
    path = shared_data / WARC_DIR / "resiliparse-clipped-truncated.warc.gz"
    t = read_all(path)
    assert not docs(t)
    [rej] = rejects(t)
    assert rej["reject_stage"] == "ingest" and rej["reject_reason"] == "truncated_record"
    assert rej["id"] == f"{path}#0"
    assert "houstonpress.com" in rej["url"] and "ends early" in rej["reject_detail"]


def test_wet_conversion_records(shared_data):
    t = read_all(shared_data / WARC_DIR / "whirlwind.warc.wet.gz")
    [doc] = docs(t)
    assert doc["source_format"] == "wet" and doc["html"] is None and doc["title"] is None
    assert "Escopete" in doc["text"] and doc["crawl_id"] == "CC-MAIN-2024-22"


def test_wat_file_yields_nothing_and_says_so(shared_data, caplog):
    with caplog.at_level(logging.INFO, logger="curation.ingest"):
        t = read_all(shared_data / WARC_DIR / "whirlwind.warc.wat.gz")
    assert t.num_rows == 0
    assert "no documents" in caplog.text and "metadata" in caplog.text


# ---- WARC damage and odd records (generated) -----------------------------------------------------------


def test_corrupt_gzip_member_is_one_reject_and_reading_resumes(shared_data, tmp_path):
    src = (shared_data / WARC_DIR / "resiliparse-warcfile-CC-MAIN-2020-34.warc.gz").read_bytes()
    clean = docs(read_all(shared_data / WARC_DIR / "resiliparse-warcfile-CC-MAIN-2020-34.warc.gz"))
    bad = tmp_path / "corrupt.warc.gz"
    bad.write_bytes(src[:50_000] + bytes(b ^ 0xFF for b in src[50_000:50_200]) + src[50_200:])
    t = read_all(bad)
    got = docs(t)
    # one record (one gzip member) is lost, the ones after it are read again; nothing read is altered
    assert len(got) == len(clean) - 1
    clean_html = {d["id"]: d["html"] for d in clean}
    assert all(clean_html[d["id"]] == d["html"] for d in got)
    [rej] = rejects(t)
    assert rej["reject_reason"] == "corrupt_gzip" and rej["reject_stage"] == "ingest"
    offset = int(rej["id"].rsplit("#", 1)[1])
    assert rej["id"] == f"{bad}#{offset}" and offset <= 50_000 and f"bytes {offset}-" in rej["reject_detail"]


def test_file_cut_mid_record(shared_data, tmp_path):
    src = (shared_data / WARC_DIR / "resiliparse-warcfile-CC-MAIN-2020-34.warc.gz").read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(src[:70_000])
    t = read_all(cut)
    assert len(docs(t)) == 7
    [rej] = rejects(t)
    assert rej["id"].startswith(f"{cut}#") and rej["reject_detail"]


def test_garbage_and_empty_files(tmp_path, caplog):
    (tmp_path / "junk.warc.gz").write_bytes(b"\x00" * 4096)
    [rej] = rejects(read_all(tmp_path / "junk.warc.gz"))
    assert rej["reject_reason"] == "corrupt_record" and rej["id"].endswith("junk.warc.gz#0")
    assert len(rej["reject_detail"]) < 600  # library messages quoting the bytes are capped
    (tmp_path / "empty.warc.gz").write_bytes(b"")
    with caplog.at_level(logging.INFO, logger="curation.ingest"):
        assert read_all(tmp_path / "empty.warc.gz").num_rows == 0
    assert "empty.warc.gz: no documents" in caplog.text


def test_non_html_statuses_sizes_and_crawl_id_from_name(tmp_path):
    page = (
        b"<html><head><title>t</title></head><body><p>"
        + "Grüße aus Köln".encode("latin-1")
        + b"</p></body></html>"
    )
    path = write_warc(
        tmp_path / "CC-MAIN-2021-04-part.warc.gz",
        [
            ("https://a.example/page", "200 OK", page, "text/html; charset=iso-8859-1"),
            ("https://a.example/logo.png", "200 OK", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "image/png"),
            ("https://a.example/gone", "404 Not Found", b"<html>not found</html>", "text/html"),
            ("https://a.example/blank", "200 OK", b"   ", "text/html"),
            ("https://a.example/big", "200 OK", b"<html>" + b"x" * 5000 + b"</html>", "text/html"),
        ],
    )
    t = read_all(path, max_record_bytes=4000)
    [doc] = docs(t)
    assert doc["url"] == "https://a.example/page" and doc["html"] == page  # raw bytes, decoded by extract
    assert doc["crawl_id"] == "CC-MAIN-2021-04"  # no warcinfo: taken from the file name
    reasons = {r["url"]: r["reject_reason"] for r in rejects(t)}
    assert reasons == {
        "https://a.example/logo.png": "unsupported_content_type",
        "https://a.example/gone": "http_status",
        "https://a.example/blank": "empty_document",
        "https://a.example/big": "record_too_large",
    }


# ---- JSONL ------------------------------------------------------------------------------------------


def test_dolma_jsonl_shard(shared_data):
    t = read_all(shared_data / DOLMA)
    assert t.num_rows == 697
    got = docs(t)
    assert len(got) + len(rejects(t)) == 697
    assert {r["reject_reason"] for r in rejects(t)} <= {"missing_text"}
    first = got[0]
    assert first["id"] == "blj5uzvcoa4iybpd5o6kom5nir6ngmoj"
    assert first["url"] == "http://16thfleet.wikidot.com/chatter:anewhome"  # metadata.warc_url
    assert first["date"] == "2019-07-17T12:15:59.000Z"
    assert first["source_format"] == "jsonl" and first["html"] is None
    assert all(d["text"].strip() for d in got)


def test_jsonl_bad_lines_are_counted_rejects(tmp_path):
    lines = [
        json.dumps(
            {"id": "a", "text": "first document", "metadata": {"url": "https://x.example/a"}}
        ).encode(),
        b'{"id": "b", "text": "unterminated',
        json.dumps({"id": "c"}).encode(),
        json.dumps({"id": "d", "text": "   "}).encode(),
        b"[1, 2, 3]",
        json.dumps(
            {"text": "no id here", "metadata": "{'url': 'https://x.example/py', 'warc_date': '2019'}"}
        ).encode(),
        b'{"id": "e", "text": "caf\xe9 na\xefve bytes"}',  # latin-1 bytes: not UTF-8
        b'{"id": "f", "text": "lone surrogate \\ud800 escaped", "url": "https://x.example/\\udfff"}',
        b"",
    ]
    path = tmp_path / "docs.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    t = read_all(path)
    by_id = {r["id"]: r for r in t.to_pylist()}
    assert by_id["a"]["url"] == "https://x.example/a" and by_id["a"]["reject_reason"] is None
    assert by_id[stable_id(str(path), 2)]["reject_reason"] == "invalid_json"
    assert by_id["c"]["reject_reason"] == "missing_text"
    assert by_id["d"]["reject_reason"] == "missing_text"
    assert by_id[stable_id(str(path), 5)]["reject_reason"] == "invalid_json"
    no_id = by_id[stable_id(str(path), 6)]
    assert no_id["reject_reason"] is None and no_id["url"] == "https://x.example/py"  # Python-dict metadata
    assert by_id["e"]["reject_reason"] is None and by_id["e"]["text"].startswith("caf")
    assert by_id["f"]["reject_reason"] is None and by_id["f"]["text"].startswith("lone surrogate ")
    assert t.num_rows == 8  # the blank line is not a record
    # ids are stable across reruns
    assert read_all(path).column("id").to_pylist() == t.column("id").to_pylist()


def test_jsonl_truncated_gzip_keeps_nothing_unverified(shared_data, tmp_path):
    # the dolma shard is one gzip member: cut in half, no line of it can be checked against its CRC
    src = (shared_data / DOLMA).read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(src[: len(src) // 2])
    [rej] = read_all(cut).to_pylist()
    assert rej["reject_reason"] == "corrupt_gzip" and rej["id"] == f"{cut}#0"
    assert f"bytes 0-{len(src) // 2}" in rej["reject_detail"] and "cut" in rej["reject_detail"]


def test_jsonl_oversized_line(tmp_path):
    path = tmp_path / "big.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps({"id": "big", "text": "x" * 10_000}) + "\n")
        f.write(json.dumps({"id": "small", "text": "fine"}) + "\n")
    t = read_all(path, max_record_bytes=1000)
    assert [(r["id"], r["reject_reason"]) for r in t.to_pylist()] == [
        (stable_id(str(path), 1), "record_too_large"),
        ("small", None),
    ]


# ---- parquet ----------------------------------------------------------------------------------------


def test_parquet_row_groups_and_missing_values(tmp_path):
    path = tmp_path / "docs.parquet"
    table = pa.table(
        {
            "text": ["one", None, "three", "  ", "five"],
            "url": ["u1", "u2", None, "u4", "u5"],
            "extra": [1, 2, 3, 4, 5],
        }
    )
    pq.write_table(table, path, row_group_size=2)
    t = read_all(path, batch_rows=2)
    assert t.num_rows == 5
    assert [r["reject_reason"] for r in t.to_pylist()] == [None, "missing_text", None, "missing_text", None]
    assert t.column("id").to_pylist()[4] == stable_id(str(path), 4)
    assert set(t.column("source_format").to_pylist()) == {"parquet"}
    assert t.column("url").to_pylist() == ["u1", "u2", None, "u4", "u5"]


def test_parquet_without_text_column_names_the_file(tmp_path):
    path = tmp_path / "notext.parquet"
    pq.write_table(pa.table({"body": ["x"]}), path)
    with pytest.raises(ValueError, match="notext.parquet.*'text'"):
        read_all(path)


def test_parquet_empty_and_corrupt(tmp_path):
    (tmp_path / "empty.parquet").write_bytes(b"")
    assert read_all(tmp_path / "empty.parquet").num_rows == 0
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    [rej] = rejects(read_all(tmp_path / "bad.parquet"))
    assert rej["reject_reason"] == "corrupt_parquet" and "bad.parquet" in rej["id"]


# ---- any fsspec filesystem, and streaming -------------------------------------------------------------


def test_reads_through_fsspec_uris(shared_data):
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/crawl/whirlwind.warc.gz", (shared_data / WARC_DIR / "whirlwind.warc.gz").read_bytes())
    try:
        assert detect_format("memory://crawl/whirlwind.warc.gz") == "warc"
        [doc] = docs(read_all("memory://crawl/whirlwind.warc.gz"))
        assert doc["url"] == "https://an.wikipedia.org/wiki/Escopete"
        with pytest.raises(FileNotFoundError, match="memory://crawl/missing.warc.gz"):
            read_all("memory://crawl/missing.warc.gz")
    finally:
        fs.rm("/crawl", recursive=True)


def test_warc_is_streamed_not_loaded(tmp_path):
    import tracemalloc

    # 300 distinct 100 kB pages: 30 MB of HTML; reading 10-row batches must hold about one batch at a time
    pages = [
        (
            f"https://s.example/{i}",
            "200 OK",
            b"<html><body><p>" + (f"page {i} ".encode() * 12_500) + b"</p></body></html>",
            "text/html",
        )
        for i in range(300)
    ]
    path = write_warc(tmp_path / "big.warc.gz", pages)
    del pages
    next(iter(read_documents(str(path), "warc", IngestConfig(batch_rows=1))))  # lazy imports out of the count
    tracemalloc.start()
    rows = 0
    for batch in read_documents(str(path), "warc", IngestConfig(batch_rows=10)):
        rows += batch.num_rows
        del batch
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert rows == 300
    assert peak < 8_000_000, f"peak {peak / 1e6:.1f} MB while streaming 30 MB of HTML"
