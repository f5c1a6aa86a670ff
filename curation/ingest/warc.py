"""WARC / WET (and ARC, read as WARC) through warcio, record by record: WARC responses -> html rows, WET
conversions -> text rows, other record types counted only. A damaged or truncated file ends with the rows
read so far plus one reject row naming the byte offset."""
from __future__ import annotations

import logging
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from curation.ingest.batching import BatchBuilder, log_file_summary
from curation.ingest.config import IngestConfig
from curation.ingest.files import crawl_id_from_name, open_input

log = logging.getLogger(__name__)

#: Payload types treated as HTML documents (everything else in a response record is rejected).
HTML_MIME_TYPES = frozenset({"text/html", "application/xhtml+xml"})


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
    log_file_summary(path, out, skipped)


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
