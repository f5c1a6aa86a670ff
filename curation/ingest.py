"""Ingest: turn crawl files (WARC / WET / JSONL / parquet; local or any fsspec URI) into raw document rows.

`read_documents` streams one file as Arrow record batches with exactly `RAW_SCHEMA`: documents (WARC
responses carry their `html` bytes; the extract step turns them into `text`) and reject rows (set
`reject_stage="ingest"`) for records that cannot become documents. A file is never read whole into
memory: WARC/WET go record by record through warcio, JSONL line by line, parquet row group by row group.

Damage is contained: a corrupt gzip member or a truncated record ends the file with the rows read so
far plus ONE reject row naming the file and byte offset; bad lines/records are counted rejects; only a
path that does not exist, an unknown format or a parquet file without a `text` column is an error.
"""
from __future__ import annotations

import ast
import gzip
import hashlib
import io
import json
import logging
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any, BinaryIO, Literal
from urllib.parse import unquote, urlparse

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from curation.contract import DOC_FIELDS, REJECT_FIELDS
from curation.steps.base import REJECT_DETAIL

log = logging.getLogger(__name__)

#: Raw HTML bytes for WARC responses (text is filled by the extract step); null for text sources.
RAW_EXTRA_FIELDS = [pa.field("html", pa.binary()), pa.field("content_type", pa.string())]
RAW_SCHEMA = pa.schema([*DOC_FIELDS, *RAW_EXTRA_FIELDS, *REJECT_FIELDS, REJECT_DETAIL])

Format = Literal["auto", "warc", "wet", "jsonl", "parquet"]
STAGE = "ingest"

#: Payload types treated as HTML documents (everything else in a response record is rejected).
HTML_MIME_TYPES = frozenset({"text/html", "application/xhtml+xml"})
CRAWL_ID_RE = re.compile(r"CC-MAIN-\d{4}-\d{2}(?!\d)")
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
MAX_DETAIL_CHARS = 500


class IngestConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Format = "auto"
    crawl_id: str | None = None          # overrides what the WARC headers / filename say
    batch_rows: int = Field(500, ge=1)   # rows per Arrow batch yielded by a reader
    # a batch is also cut when its HTML/text payload passes this many bytes, so a file of big pages
    # cannot pile `batch_rows` x 50 MB into one batch
    batch_bytes: int = Field(64_000_000, ge=1)
    max_record_bytes: int = Field(50_000_000, ge=1)   # larger records are rejected as `record_too_large`


# ---- paths -----------------------------------------------------------------------------------------

def fsspec_uri(path: str) -> str:
    """Hadoop URIs -> what fsspec opens: `file:/abs` -> `/abs`, `s3a://`/`s3n://` -> `s3://`."""
    if path.startswith("file:"):
        return unquote(urlparse(path).path)
    for scheme in ("s3a://", "s3n://"):
        if path.startswith(scheme):
            return "s3://" + path[len(scheme):]
    return path


def open_input(path: str) -> BinaryIO:
    """Open an input file for binary streaming; a missing file is an error naming it."""
    uri = fsspec_uri(path)
    try:
        fs, fs_path = fsspec.core.url_to_fs(uri)
    except ImportError as e:  # e.g. s3:// without s3fs installed
        raise ImportError(f"cannot open input {path!r}: {e}") from e
    try:
        exists = fs.exists(fs_path)
        is_dir = exists and fs.isdir(fs_path)
        handle = fs.open(fs_path, "rb") if exists and not is_dir else None
    except Exception as e:  # object stores: credentials, permissions, endpoint (botocore errors are no OSError)
        raise OSError(f"cannot open input {path!r}: {type(e).__name__}: {e}") from e
    if not exists:
        raise FileNotFoundError(f"input file {path!r} does not exist")
    if is_dir:
        raise IsADirectoryError(f"input {path!r} is a directory, expected a file")
    return handle


def _file_name(path: str) -> str:
    return PurePosixPath(urlparse(path).path or path).name


# ---- format detection ------------------------------------------------------------------------------

_COMPRESSION_SUFFIXES = (".gz", ".gzip", ".bz2", ".xz", ".zst")


def format_from_name(path: str) -> str | None:
    """The format the file name announces, or None when the name alone does not tell."""
    name = _file_name(path).lower()
    for suffix in _COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if name.endswith((".wet", ".warc.wet")):
        return "wet"
    if name.endswith((".warc", ".arc", ".wat", ".warc.wat")):
        # WAT files are WARCs of metadata records: read as WARC they yield no documents (logged)
        return "warc"
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    return None


def format_from_bytes(head: bytes) -> str | None:
    """Sniff a format from the first (decompressed) bytes of a file."""
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if head.startswith(b"WARC/"):
        return "wet" if b"WARC-Type: conversion" in head else "warc"
    if head.lstrip().startswith(b"{"):
        return "jsonl"
    return None


def _gunzip_head(data: bytes, limit: int) -> bytes:
    """Decompress the start of a (possibly multi-member, possibly cut) gzip stream."""
    out = b""
    while data and len(out) < limit:
        member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out += member.decompress(data, limit - len(out))
        if not member.eof:  # cut mid-member or limit reached
            break
        data = member.unused_data  # WARCs are one gzip member per record
    return out


def detect_format(path: str) -> str:
    """warc | wet | jsonl | parquet, from the file name, else from the first bytes."""
    fmt = format_from_name(path)
    if fmt is not None:
        return fmt
    with open_input(path) as f:
        head = f.read(65536)
    if head.startswith(GZIP_MAGIC):
        try:
            head = _gunzip_head(head, 65536)
        except zlib.error as e:
            raise ValueError(f"cannot detect the format of {path!r}: gzip header but bad data ({e})") from e
    fmt = format_from_bytes(head)
    if fmt is None:
        raise ValueError(f"cannot detect the format of {path!r} from its name or first bytes {head[:16]!r};"
                         f" set ingest.format to one of warc, wet, jsonl, parquet")
    return fmt


# ---- batching --------------------------------------------------------------------------------------

class BatchBuilder:
    """Accumulates RAW_SCHEMA rows and cuts Arrow batches by row count or payload bytes."""

    def __init__(self, cfg: IngestConfig, source_format: str, source_file: str, crawl_id: str | None):
        self.cfg = cfg
        self.defaults = {"source_format": source_format, "source_file": source_file, "crawl_id": crawl_id}
        self._new()
        self.kept = 0
        self.reasons: Counter[str] = Counter()

    def _new(self) -> None:
        self.columns: dict[str, list] = {f.name: [] for f in RAW_SCHEMA}
        self.rows = 0
        self.payload_bytes = 0

    def add(self, **row: Any) -> None:
        for key in row:
            if key not in self.columns:
                raise KeyError(f"unknown raw column {key!r}")
        values = {**self.defaults, **{k: v for k, v in row.items() if v is not None}}
        for name, col in self.columns.items():
            col.append(values.get(name))
        self.rows += 1
        self.payload_bytes += len(row.get("html") or b"") + len(row.get("text") or "")
        if row.get("reject_reason"):
            self.reasons[row["reject_reason"]] += 1
        else:
            self.kept += 1

    def reject(self, reason: str, detail: str | None = None, **row: Any) -> None:
        if detail is not None and len(detail) > MAX_DETAIL_CHARS:  # library errors can quote whole records
            detail = detail[:MAX_DETAIL_CHARS] + "..."
        self.add(reject_stage=STAGE, reject_reason=reason, reject_detail=detail, **row)

    def full(self) -> bool:
        return self.rows >= self.cfg.batch_rows or self.payload_bytes >= self.cfg.batch_bytes

    def flush(self) -> Iterator[pa.RecordBatch]:
        if self.rows:
            batch = pa.RecordBatch.from_pydict(self.columns, schema=RAW_SCHEMA)
            self._new()
            yield batch


def stable_id(source_file: str, position: int | str) -> str:
    """An id for a record that has none: stable across reruns of the same file."""
    return hashlib.sha1(f"{source_file}\n{position}".encode()).hexdigest()


def crawl_id_from_name(path: str) -> str | None:
    m = CRAWL_ID_RE.search(_file_name(path))
    return m.group(0) if m else None


# ---- WARC / WET ------------------------------------------------------------------------------------

def _strip_brackets(value: str | None) -> str | None:
    """wget writes WARC 1.0 URIs and ids as `<...>`."""
    if value is None:
        return None
    value = value.strip()
    return value[1:-1] if value.startswith("<") and value.endswith(">") else value


def warc_record_id(value: str | None) -> str | None:
    value = _strip_brackets(value)
    if value and value.lower().startswith("urn:uuid:"):
        value = value[len("urn:uuid:"):]
    return value


def _warcinfo_fields(payload: bytes) -> dict[str, str]:
    fields = {}
    for line in payload.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    return fields


def _mime(value: str | None) -> str | None:
    return value.split(";", 1)[0].strip().lower() or None if value else None


def _looks_like_html(head: bytes) -> bool:
    start = head[:1024].lstrip().lower()
    return start.startswith((b"<!doctype html", b"<html")) or b"<html" in start


def _unread_bytes(record) -> int:
    """Drain what is left of the record's block; the bytes its Content-Length promised but the file did
    not hold (a truncated file, or a corrupt gzip member warcio stopped at) -- 0 for a whole record."""
    raw = record.raw_stream
    while raw.read(1 << 16):
        pass
    return max(int(getattr(raw, "limit", 0) or 0), 0)


def _read_payload(record, limit: int) -> tuple[bytes, bool, int]:
    """(payload de-chunked and decompressed, too large?, bytes missing from the record)."""
    data = record.content_stream().read(limit + 1)
    return data, len(data) > limit, _unread_bytes(record)


def read_warc(path: str, fmt: str, cfg: IngestConfig) -> Iterator[pa.RecordBatch]:
    """WARC responses -> html rows; WET conversions -> text rows; other record types are counted only."""
    out = BatchBuilder(cfg, fmt, path, cfg.crawl_id)
    skipped: Counter[str] = Counter()
    with open_input(path) as fh:
        iterator = ArchiveIterator(fh, arc2warc=True)
        records = iter(iterator)
        while True:
            try:
                record = next(records)
            except StopIteration:
                break
            except Exception as e:  # noqa: BLE001 -- warcio raises assorted types on damaged input
                # (ArchiveLoadFailed, zlib.error, EOFError, even AttributeError on a cut header); it
                # cannot resync after that: keep what was read, record the failure once
                _reject_damage(out, path, getattr(iterator, "offset", 0), e)
                break
            # where warcio started this record: what get_record_offset() returns, but that call reads
            # the record to its end first, losing the payload
            offset = getattr(iterator, "offset", 0)
            try:
                if not _handle_record(record, offset, path, cfg, out, skipped):
                    break  # the file ended inside this record: nothing follows it
            except (ArchiveLoadFailed, zlib.error, EOFError, OSError, ValueError) as e:
                _reject_damage(out, path, offset, e)
                break
            if out.full():
                yield from out.flush()
    yield from out.flush()
    _log_file_summary(path, out, skipped)


def _reject_damage(out: BatchBuilder, path: str, offset: int, error: BaseException) -> None:
    gz = isinstance(error, (zlib.error, EOFError)) or "gzip" in str(error).lower()
    reason = "corrupt_gzip" if gz else "corrupt_record"
    log.warning("%s: %s at offset %d: %s", path, reason, offset, str(error)[:200])
    out.reject(reason, f"{type(error).__name__}: {error}", id=f"{path}#{offset}")


def _handle_record(record, offset: int, path: str, cfg: IngestConfig, out: BatchBuilder,
                   skipped: Counter) -> bool:
    rec_type = record.rec_type
    if rec_type == "warcinfo":
        info = _warcinfo_fields(record.content_stream().read(1_000_000))
        if out.defaults["crawl_id"] is None:
            out.defaults["crawl_id"] = info.get("ispartof") or None
        skipped[rec_type] += 1
        return True
    if rec_type not in ("response", "conversion"):
        skipped[rec_type] += 1  # request / metadata / resource / revisit: not documents
        missing = _unread_bytes(record)
        if missing:
            _reject_truncated(out, path, offset, missing, record, {"id": warc_record_id(
                record.rec_headers.get_header("WARC-Record-ID")), "url": None})
        return not missing
    if out.defaults["crawl_id"] is None:
        out.defaults["crawl_id"] = crawl_id_from_name(path)
    return _warc_record(record, offset, path, cfg, out)


def _reject_truncated(out: BatchBuilder, path: str, offset: int, missing: int, record, meta: dict) -> None:
    declared = record.rec_headers.get_header("Content-Length")
    log.warning("%s: record %s at offset %d ends early (%d bytes missing)", path, meta["id"], offset, missing)
    out.reject("truncated_record", f"record {meta['id']} ({meta['url']}) ends early: {missing} of {declared}"
                                   f" declared bytes missing (truncated file or corrupt gzip member)",
               **{**meta, "id": f"{path}#{offset}"})


def _warc_record(record, offset: int, path: str, cfg: IngestConfig, out: BatchBuilder) -> bool:
    """Add one response/conversion record as a document or a reject. False when the file is truncated."""
    headers = record.rec_headers
    rec_type = record.rec_type
    meta: dict[str, Any] = {
        "id": warc_record_id(headers.get_header("WARC-Record-ID")) or f"{path}#{offset}",
        "url": _strip_brackets(headers.get_header("WARC-Target-URI")),
        "date": headers.get_header("WARC-Date"),
        "source_format": "wet" if rec_type == "conversion" else "warc",
    }
    declared = headers.get_header("Content-Length")
    if declared and declared.strip().isdigit() and int(declared) > cfg.max_record_bytes:
        out.reject("record_too_large", f"Content-Length {declared.strip()} > max_record_bytes"
                                       f" {cfg.max_record_bytes}", **meta)
        return True
    mime = None
    if rec_type == "response":
        http = record.http_headers
        status = http.get_statuscode() if http is not None else None
        content_type = http.get_header("Content-Type") if http is not None else None
        # Common Crawl's Tika-identified type beats the server's claim; absent elsewhere (wget)
        mime = _mime(headers.get_header("WARC-Identified-Payload-Type")) or _mime(content_type)
        meta["content_type"] = content_type
        if status and not status.startswith("2"):
            out.reject("http_status", f"HTTP status {status}", **meta)
            return True
        if mime is not None and mime not in HTML_MIME_TYPES:
            out.reject("unsupported_content_type", mime, **meta)
            return True
    else:
        meta["content_type"] = headers.get_header("Content-Type")

    payload, too_large, missing = _read_payload(record, cfg.max_record_bytes)
    if missing:
        _reject_truncated(out, path, offset, missing, record, meta)
        return False
    if too_large:
        out.reject("record_too_large", f"payload over max_record_bytes {cfg.max_record_bytes}", **meta)
        return True
    if rec_type == "response":
        if not payload.strip():
            out.reject("empty_document", "response has an empty body", **meta)
        elif mime is None and not _looks_like_html(payload):
            out.reject("unsupported_content_type", "no content type and the payload is not HTML", **meta)
        else:
            out.add(html=payload, **meta)
        return True
    # WET conversion records hold the text Common Crawl already extracted (UTF-8 by spec; be lenient)
    text = payload.decode("utf-8", "replace")
    if not text.strip():
        out.reject("missing_text", "conversion record has no text", **meta)
    else:
        out.add(text=text, **meta)
    return True


def _log_file_summary(path: str, out: BatchBuilder, skipped: Counter | None = None) -> None:
    rejected = sum(out.reasons.values())
    if not out.kept and not rejected:
        log.warning("%s: no documents in file (empty, or only non-document records: %s)", path,
                    dict(skipped or {}))
        return
    log.info("%s: %d documents, %d rejected %s; non-document records skipped: %s", path, out.kept,
             rejected, dict(out.reasons), dict(skipped or {}))


# ---- JSONL -----------------------------------------------------------------------------------------

def _metadata_dict(value: Any) -> dict:
    """Dolma `metadata`: a dict, or (as in some dumps) the repr of a Python dict; anything else -> {}."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip():
        for parse in (json.loads, ast.literal_eval):
            try:
                parsed = parse(value)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                continue
            if isinstance(parsed, dict):
                return parsed
    return {}


def _utf8_safe(value: str) -> str:
    """JSON escapes can encode lone surrogates (`"\\ud800"`), which Arrow cannot store: replace them."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8")


def _first_str(*values: Any) -> str | None:
    for v in values:
        if v is not None and not isinstance(v, (dict, list)) and str(v).strip():
            return _utf8_safe(str(v))
    return None


def jsonl_row(obj: dict, source_file: str, lineno: int) -> dict[str, Any]:
    """Map one dolma-style JSON object to raw document columns (text/id checked by the caller)."""
    meta = _metadata_dict(obj.get("metadata"))
    return {
        "id": _first_str(obj.get("id")) or stable_id(source_file, lineno),
        "text": obj.get("text"),
        # dolma's metadata.url lacks the scheme; warc_url is the fetched URI
        "url": _first_str(obj.get("url"), meta.get("warc_url"), meta.get("url")),
        "title": _first_str(obj.get("title"), meta.get("title")),
        "date": _first_str(obj.get("date"), meta.get("warc_date"), meta.get("date"), obj.get("created")),
        "crawl_id": _first_str(obj.get("crawl_id"), meta.get("crawl_id")),
    }


def _open_maybe_gzip(path: str) -> BinaryIO:
    raw = open_input(path)
    head = raw.read(2)
    raw.seek(0)
    return gzip.GzipFile(fileobj=raw, mode="rb") if head == GZIP_MAGIC else raw  # type: ignore[return-value]


def read_jsonl(path: str, cfg: IngestConfig) -> Iterator[pa.RecordBatch]:
    """One JSON object per line (plain or gzip): bad lines are counted rejects, never a crash."""
    out = BatchBuilder(cfg, "jsonl", path, cfg.crawl_id or crawl_id_from_name(path))
    blank = 0
    lineno, offset = 0, 0
    with _open_maybe_gzip(path) as stream:
        try:
            while True:
                line = stream.readline(cfg.max_record_bytes + 1)
                if not line:
                    break
                lineno += 1
                offset += len(line)
                if len(line) > cfg.max_record_bytes and not line.endswith(b"\n"):
                    while (chunk := stream.readline(1 << 20)) and not chunk.endswith(b"\n"):
                        offset += len(chunk)  # skip the rest of the over-long line without holding it
                    offset += len(chunk)
                    out.reject("record_too_large", f"line {lineno} is over max_record_bytes {cfg.max_record_bytes}",
                               id=stable_id(path, lineno))
                elif not line.strip():
                    blank += 1
                else:
                    _jsonl_line(line, lineno, path, out)
                if out.full():
                    yield from out.flush()
        except (OSError, EOFError, zlib.error) as e:
            reason = "corrupt_gzip" if isinstance(e, (gzip.BadGzipFile, EOFError, zlib.error)) else "read_error"
            log.warning("%s: %s after line %d (uncompressed offset %d): %s", path, reason, lineno, offset, e)
            out.reject(reason, f"after line {lineno}: {type(e).__name__}: {e}", id=f"{path}#{offset}")
    yield from out.flush()
    _log_file_summary(path, out, Counter({"blank_line": blank}) if blank else None)


def _jsonl_line(line: bytes, lineno: int, path: str, out: BatchBuilder) -> None:
    # invalid UTF-8 is replaced rather than fatal: one bad byte should not cost the whole document
    text_line = line.decode("utf-8", "replace")
    try:
        obj = json.loads(text_line)
    except ValueError as e:
        out.reject("invalid_json", f"line {lineno}: {e}", id=stable_id(path, lineno))
        return
    if not isinstance(obj, dict):
        out.reject("invalid_json", f"line {lineno}: expected an object, got {type(obj).__name__}",
                   id=stable_id(path, lineno))
        return
    row = jsonl_row(obj, path, lineno)
    text = row["text"]
    if isinstance(text, str):
        text = row["text"] = _utf8_safe(text)
    if not isinstance(text, str) or not text.strip():
        row["text"] = None
        out.reject("missing_text", f"line {lineno}: 'text' is {'blank' if isinstance(text, str) else repr(text)[:50]}",
                   **row)
        return
    out.add(**row)


# ---- parquet ---------------------------------------------------------------------------------------

def _parquet_batch(batch: pa.RecordBatch, path: str, first_row: int, crawl_id: str | None) -> pa.RecordBatch:
    """Raw rows from a parquet batch: DOC columns taken when present, missing ids hashed, blank text rejected."""
    n = batch.num_rows
    cols: dict[str, pa.Array] = {}
    for f in RAW_SCHEMA:
        if f.name in batch.schema.names and f.name not in ("html", "content_type", *[r.name for r in REJECT_FIELDS],
                                                            REJECT_DETAIL.name):
            cols[f.name] = pc.cast(batch.column(f.name), f.type)
        else:
            cols[f.name] = pa.nulls(n, f.type)
    generated = pa.array([stable_id(path, first_row + i) for i in range(n)], pa.string())
    cols["id"] = pc.coalesce(cols["id"], generated)
    cols["source_format"] = pc.coalesce(cols["source_format"], pa.scalar("parquet"))
    cols["source_file"] = pc.coalesce(cols["source_file"], pa.scalar(path))
    if crawl_id is not None:
        cols["crawl_id"] = pc.coalesce(cols["crawl_id"], pa.scalar(crawl_id))
    blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(cols["text"]), ""), True)
    cols["reject_stage"] = pc.if_else(blank, pa.scalar(STAGE), pa.nulls(n, pa.string()))
    cols["reject_reason"] = pc.if_else(blank, pa.scalar("missing_text"), pa.nulls(n, pa.string()))
    cols["reject_detail"] = pc.if_else(blank, pa.scalar("'text' is null or blank"), pa.nulls(n, pa.string()))
    return pa.RecordBatch.from_arrays([cols[f.name] for f in RAW_SCHEMA], schema=RAW_SCHEMA)


def read_parquet(path: str, cfg: IngestConfig) -> Iterator[pa.RecordBatch]:
    """Parquet by row group; `text` is required, other document columns are taken when present."""
    out = BatchBuilder(cfg, "parquet", path, None)  # for the single-reject case and the summary
    crawl_id = cfg.crawl_id or crawl_id_from_name(path)
    with open_input(path) as fh:
        size = fh.seek(0, io.SEEK_END)
        fh.seek(0)
        if size == 0:
            log.warning("%s: empty file, no documents", path)
            return
        try:
            pf = pq.ParquetFile(fh)
        except (pa.ArrowInvalid, OSError) as e:
            log.warning("%s: not a readable parquet file: %s", path, e)
            out.reject("corrupt_parquet", f"{type(e).__name__}: {e}", id=f"{path}#0")
            yield from out.flush()
            return
        names = pf.schema_arrow.names
        if "text" not in names:
            raise ValueError(f"parquet input {path!r} has no 'text' column (columns: {names})")
        wanted = [f.name for f in DOC_FIELDS if f.name in names]
        row = 0
        kept = rejected = 0
        try:
            for batch in pf.iter_batches(batch_size=cfg.batch_rows, columns=wanted):
                raw = _parquet_batch(batch, path, row, crawl_id)
                row += batch.num_rows
                good = raw.column("reject_stage").null_count
                kept, rejected = kept + good, rejected + raw.num_rows - good
                yield raw
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as e:
            log.warning("%s: unreadable after row %d: %s", path, row, e)
            out.reject("corrupt_parquet", f"after row {row}: {type(e).__name__}: {e}", id=f"{path}#{row}")
            yield from out.flush()
    log.info("%s: %d documents, %d rejected (missing_text) from %d rows", path, kept, rejected, row)


# ---- entry point -----------------------------------------------------------------------------------

def read_documents(path: str, fmt: str, cfg: IngestConfig) -> Iterator[pa.RecordBatch]:
    """Stream one input file as RAW_SCHEMA batches of at most `cfg.batch_rows` rows."""
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt in ("warc", "wet"):
        return read_warc(path, fmt, cfg)
    if fmt == "jsonl":
        return read_jsonl(path, cfg)
    if fmt == "parquet":
        return read_parquet(path, cfg)
    raise ValueError(f"unknown input format {fmt!r} for {path!r}; expected warc, wet, jsonl or parquet")
