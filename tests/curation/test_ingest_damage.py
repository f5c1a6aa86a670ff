"""Damaged input, read directly through the ingest readers (fast; the end-to-end cases are in
test_pipeline_damage.py). Every damaged file is built here from the shared samples; every case checks that
nothing altered is kept, that what follows the damage is recovered, and that records read = kept +
rejected."""

from __future__ import annotations

import gzip
import json
import re
import uuid
from collections import Counter

import pyarrow as pa
import pytest

from curation.ingest import RAW_SCHEMA, IngestConfig, read_documents
from curation.ingest.gzmembers import scan_members

WARC_DIR = "warc_commoncrawl_samples"
SAMPLES = [
    "dolma-sample-0000.warc.gz",
    "dolma-sample-0001.warc.gz",
    "resiliparse-warcfile-CC-MAIN-2020-34.warc.gz",
]
DOLMA = "webtext_cc2019_dolma_sample/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
RECORD_ID = re.compile(rb"WARC-Record-ID: <urn:uuid:[0-9A-Fa-f-]+>")


def read_all(path, **cfg) -> list[dict]:
    batches = list(read_documents(str(path), "auto", IngestConfig(**cfg)))
    return pa.Table.from_batches(batches, schema=RAW_SCHEMA).to_pylist()


def kept(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["reject_reason"] is None]


def rejected(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["reject_reason"] is not None]


def members(path) -> list[bytes]:
    """The decompressed gzip members of a sample file (one WARC record each)."""
    with open(path, "rb") as fh:
        spans = [(m.start, m.end) for m in scan_members(fh, lambda head: True)]
    data = path.read_bytes()
    return [gzip.decompress(data[a:b]) for a, b in spans]


def thousand_record_warc(shared_data, path) -> list[int]:
    """1,000 response records (the samples' responses, cycled, each with a fresh record id), one gzip member
    each. Returns the members' byte offsets."""
    responses = [
        m
        for name in SAMPLES
        for m in members(shared_data / WARC_DIR / name)
        if b"WARC-Type: response" in m[:2000]
    ]
    offsets, pos = [], 0
    with open(path, "wb") as fh:
        for i in range(1000):
            record = RECORD_ID.sub(
                f"WARC-Record-ID: <urn:uuid:{uuid.UUID(int=i)}>".encode(),
                responses[i % len(responses)],
                count=1,
            )
            member = gzip.compress(record, compresslevel=1)
            offsets.append(pos)
            fh.write(member)
            pos += len(member)
    return offsets


def flip(data: bytes, at: int, n: int = 8) -> bytes:
    return data[:at] + bytes(b ^ 0x5A for b in data[at : at + n]) + data[at + n :]


@pytest.fixture(scope="module")
def big_warc(shared_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("warc") / "thousand.warc.gz"
    offsets = thousand_record_warc(shared_data, path)
    clean = {r["id"]: r for r in read_all(path)}
    assert len(clean) == 1000
    return path, offsets, clean


def test_corrupt_member_in_a_thousand_record_warc_is_one_counted_loss(big_warc, tmp_path):
    path, offsets, clean = big_warc
    data = path.read_bytes()
    bad = tmp_path / "bad.warc.gz"
    bad.write_bytes(flip(data, (offsets[500] + offsets[501]) // 2))  # inside member 500's deflate data
    rows = read_all(bad)
    assert len(rows) == 1000  # records read = kept + rejected
    [lost] = [r for r in rows if r["reject_reason"] == "corrupt_gzip"]
    assert len(rejected(rows)) == len(rejected([*clean.values()])) + 1
    assert lost["reject_reason"] == "corrupt_gzip" and lost["id"] == f"{bad}#{offsets[500]}"
    assert f"bytes {offsets[500]}-{offsets[501]}" in lost["reject_detail"]
    docs = kept(rows)
    assert len(docs) >= 995 and str(uuid.UUID(int=500)) not in {d["id"] for d in docs}
    assert all(d["html"] == clean[d["id"]]["html"] for d in docs)  # nothing altered


def test_crc_trailer_damage_alone_loses_that_record_only(big_warc, tmp_path):
    path, offsets, clean = big_warc
    data = bytearray(path.read_bytes())
    data[offsets[300] - 8] ^= 0xFF  # the CRC-32 of member 299: its deflate data decodes fine
    bad = tmp_path / "crc.warc.gz"
    bad.write_bytes(bytes(data))
    rows = read_all(bad)
    assert len(rows) == 1000
    [lost] = [r for r in rows if r["reject_reason"] == "corrupt_gzip"]
    assert lost["id"] == f"{bad}#{offsets[299]}" and "incorrect data check" in lost["reject_detail"]
    assert str(uuid.UUID(int=299)) not in {d["id"] for d in kept(rows)}
    assert all(d["html"] == clean[d["id"]]["html"] for d in kept(rows))


def test_damaged_request_member_costs_no_response(shared_data, tmp_path):
    src = shared_data / WARC_DIR / "dolma-sample-0000.warc.gz"
    with open(src, "rb") as fh:
        spans = list(scan_members(fh, lambda head: True))
    clean = read_all(src)
    data = src.read_bytes()
    request = next(m for m in spans[20:] if b"WARC-Type: request" in m.head)
    bad = tmp_path / "request.warc.gz"
    bad.write_bytes(flip(data, (request.start + request.end) // 2))
    rows = read_all(bad)
    assert [r["id"] for r in kept(rows)] == [r["id"] for r in kept(clean)]
    [lost] = rejected(rows)
    assert lost["reject_reason"] == "corrupt_gzip" and lost["id"] == f"{bad}#{request.start}"


@pytest.fixture(scope="module")
def plain_warc(shared_data) -> bytes:
    return gzip.decompress(
        (shared_data / WARC_DIR / "resiliparse-warcfile-CC-MAIN-2020-34.warc.gz").read_bytes()
    )


def test_plain_warc_garbled_header_is_one_reject_and_reading_resumes(plain_warc, tmp_path):
    at = plain_warc.index(b"WARC/1.0", 100_000)
    bad = tmp_path / "garbled.warc"
    bad.write_bytes(plain_warc[:at] + b"XXXX/1.0 garbage" + plain_warc[at + 16 :])
    (tmp_path / "clean.warc").write_bytes(plain_warc)
    clean_ids = [r["id"] for r in kept(read_all(tmp_path / "clean.warc"))]
    rows = read_all(bad)
    assert [r["id"] for r in kept(rows)] == clean_ids  # the garbled record is a metadata record
    [rej] = rejected(rows)
    assert rej["reject_reason"] == "corrupt_record" and rej["id"] == f"{bad}#{at}"


def test_plain_warc_non_numeric_content_length(plain_warc, tmp_path):
    at = plain_warc.index(b"WARC/1.0", 100_000)
    cl = plain_warc.index(b"Content-Length:", at)
    bad = tmp_path / "cl.warc"
    bad.write_bytes(plain_warc[:cl] + b"Content-Length: abc" + plain_warc[plain_warc.index(b"\r\n", cl) :])
    (tmp_path / "clean.warc").write_bytes(plain_warc)
    rows = read_all(bad)
    assert [r["id"] for r in kept(rows)] == [r["id"] for r in kept(read_all(tmp_path / "clean.warc"))]
    [rej] = rejected(rows)
    assert rej["reject_reason"] == "corrupt_record" and rej["id"] == f"{bad}#{at}"
    assert "'abc' is not a number" in rej["reject_detail"]


def test_warc_cut_inside_a_header_is_truncated_record(plain_warc, tmp_path):
    at = plain_warc.index(b"\r\n\r\nWARC/1.0", 200_000) + 4
    cut = tmp_path / "cut.warc"
    cut.write_bytes(plain_warc[: at + 100])
    rows = read_all(cut)
    [rej] = rejected(rows)
    assert rej["reject_reason"] == "truncated_record" and rej["id"] == f"{cut}#{at}"
    assert len(rows) == len(kept(read_all(cut))) + 1


def test_warc_gz_cut_inside_a_member_is_truncated_record(shared_data, tmp_path):
    src = shared_data / WARC_DIR / "resiliparse-warcfile-CC-MAIN-2020-34.warc.gz"
    with open(src, "rb") as fh:
        spans = list(scan_members(fh, lambda head: True))
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(src.read_bytes()[: spans[30].start + 40])  # 40 bytes into member 30: inside its header
    rows = read_all(cut)
    [rej] = rejected(rows)
    assert rej["reject_reason"] == "truncated_record" and rej["id"] == f"{cut}#{spans[30].start}"
    assert f"offset {spans[30].start}" in rej["reject_detail"]


# ---- JSONL ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dolma_lines(shared_data) -> list[bytes]:
    return gzip.decompress((shared_data / DOLMA).read_bytes()).splitlines(keepends=True)


def test_bit_flipped_jsonl_gz_keeps_no_altered_text(shared_data, dolma_lines, tmp_path):
    clean = {json.loads(line)["id"]: json.loads(line)["text"] for line in dolma_lines}
    # the shard as is (one member) and as 5 members (as concatenated shards are), 8 bytes flipped halfway
    parts = [b"".join(dolma_lines[i::5]) for i in range(5)]
    for name, data in [
        ("one.jsonl.gz", (shared_data / DOLMA).read_bytes()),
        ("five.jsonl.gz", b"".join(gzip.compress(p) for p in parts)),
    ]:
        bad = tmp_path / name
        bad.write_bytes(flip(data, len(data) // 2))
        rows = read_all(bad)
        docs = kept(rows)
        assert all(d["text"] == clean[d["id"]] for d in docs), name
        lost = [r for r in rows if r["reject_reason"] == "corrupt_gzip"]
        assert len(lost) == 1 and lost[0]["id"].startswith(f"{bad}#"), name
        if name == "five.jsonl.gz":  # member 2 is lost; the four intact members are read in full
            assert len(rows) - 1 == len(dolma_lines) - len(dolma_lines[2::5])
            assert f"after line {2 * len(dolma_lines[0::5])}" in lost[0]["reject_detail"]


def test_jsonl_bad_json_and_invalid_utf8(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        b'{"id": "a", "text": "fine"}\nnot json at all\n{"id": "b", "text": "caf\xe9 latin-1"}\n'
    )
    flags = Counter()
    rows = pa.Table.from_batches(
        list(read_documents(str(path), "auto", IngestConfig(), flags)), schema=RAW_SCHEMA
    ).to_pylist()
    assert flags == {"invalid_utf8": 1}
    [bad_json] = [r for r in rows if r["reject_reason"] == "invalid_json"]
    assert f"{path} line 2:" in bad_json["reject_detail"]
    assert [(r["id"], r["text"]) for r in kept(rows)] == [("a", "fine"), ("b", "caf\ufffd latin-1")]
    rows = read_all(path, invalid_utf8="reject")
    [bad_utf8] = [r for r in rows if r["reject_reason"] == "invalid_utf8"]
    assert f"{path} line 3:" in bad_utf8["reject_detail"] and len(kept(rows)) == 1


# ---- parquet ----------------------------------------------------------------------------------------------


def test_parquet_bad_row_group_costs_only_itself(dolma_lines, tmp_path):
    import pyarrow.parquet as pq

    texts = [json.loads(line)["text"] for line in dolma_lines[:90]]
    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"id": [f"d{i}" for i in range(90)], "text": texts}), path, row_group_size=30)
    page = pq.ParquetFile(path).metadata.row_group(1).column(1).data_page_offset  # group 1's text pages
    data = bytearray(path.read_bytes())
    data[page : page + 16] = b"\xff" * 16  # an unreadable page header
    path.write_bytes(bytes(data))
    rows = read_all(path)
    assert len(rows) == 60 + 1  # the two good groups' rows (documents or missing_text) + one reject
    assert [r["id"] for r in kept(rows)] == [
        f"d{i}" for i in [*range(30), *range(60, 90)] if texts[i].strip()
    ]
    assert all(r["text"] == texts[int(r["id"][1:])] for r in kept(rows))
    [rej] = [r for r in rows if r["reject_reason"] == "corrupt_parquet"]
    assert rej["reject_reason"] == "corrupt_parquet" and rej["id"] == f"{path}#30"
    assert "row group 1 (rows 30-60)" in rej["reject_detail"]
