"""WARC / WET (and ARC, read as WARC) through warcio, record by record: WARC responses -> html rows, WET
conversions -> text rows, other record types counted only. Damage costs only the damaged records: each is
one reject row naming the file and byte offset, and reading resumes at the next good record."""

from __future__ import annotations

import bisect
import io
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
from curation.ingest.detect import GZIP_MAGIC
from curation.ingest.files import crawl_id_from_name, open_input
from curation.ingest.gzmembers import RangeReader, ok_spans, scan_members

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
        value = value[len("urn:uuid:") :]
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


def read_warc(
    path: str, fmt: str, cfg: IngestConfig, flags: Counter[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """WARC responses -> html rows; WET conversions -> text rows; other record types are counted only.

    A .gz file is read only from gzip members that passed their CRC/length check (gzmembers); a damaged
    member is one reject at its offset and reading goes on at the next good member. In a plain file a
    record whose header warcio cannot parse is one reject and reading goes on at the next `WARC/1.` line."""
    out = BatchBuilder(cfg, fmt, path, cfg.crawl_id)
    skipped: Counter[str] = Counter()
    with open_input(path) as fh:
        size = fh.seek(0, io.SEEK_END)
        fh.seek(0)
        plain = fh.read(2) != GZIP_MAGIC
        if not plain:
            members = list(scan_members(fh, lambda head: head.startswith(b"WARC/")))
            for m in members:
                if m.status != "ok":
                    _reject_member(out, path, m)
            starts = [m.start for m in members if m.status == "ok"]
            spans = ok_spans(members)

            def resume(offset: int) -> int | None:  # the next verified member: one record per member
                i = bisect.bisect_right(starts, offset)
                return starts[i] if i < len(starts) else None
        else:
            spans = [(0, size)] if size else []

            def resume(offset: int) -> int | None:
                return _next_warc_line(fh, offset + 1, size)

        for start, end in spans:
            pos: int | None = start
            while pos is not None and pos < end:
                pos = yield from _read_span(fh, pos, end, resume, plain, path, cfg, out, skipped)
    yield from out.flush()
    log_file_summary(path, out, skipped)
    if flags is not None:
        flags.update(out.flags)


def _read_span(
    fh,
    start: int,
    end: int,
    resume,
    plain: bool,
    path: str,
    cfg: IngestConfig,
    out: BatchBuilder,
    skipped: Counter,
) -> Iterator[pa.RecordBatch]:
    """Read records from bytes [start, end) of the file; returns where to go on (None: nothing follows).
    `plain`: an uncompressed WARC, where no gzip member ended cleanly around each record."""
    iterator = ArchiveIterator(RangeReader(fh, start, end), arc2warc=True)
    records = iter(iterator)
    while True:
        try:
            record = next(records)
        except StopIteration:
            return end
        except Exception as e:  # noqa: BLE001 -- warcio raises assorted types on damaged input
            # (ArchiveLoadFailed, ValueError on a non-numeric Content-Length, even AttributeError on a
            # cut header): reject this record and resume at the next one
            # (warcio's offset can be off, even negative, inside a member holding several records: the
            # clamp makes sure reading always moves forward)
            offset = start + max(getattr(iterator, "offset", 0), 0)
            _reject_damage(out, path, offset, e)
            return resume(offset)
        # where warcio started this record: what get_record_offset() returns, but that call reads
        # the record to its end first, losing the payload
        offset = start + getattr(iterator, "offset", 0)
        if plain and _header_cut(fh, offset, end):
            out.reject(
                "truncated_record",
                f"the file ends inside the header of the record at offset {offset}",
                id=f"{path}#{offset}",
            )
            return None
        declared = record.rec_headers.get_header("Content-Length")
        if declared is not None and not declared.strip().isdigit():
            out.reject(
                "corrupt_record",
                f"record at offset {offset}: Content-Length {declared[:40]!r} is not a"
                f" number; skipped to the next record",
                id=f"{path}#{offset}",
            )
            return resume(offset)
        try:
            if not _handle_record(record, offset, path, cfg, out, skipped):
                return None  # the file ended inside this record: nothing follows it
        except (ArchiveLoadFailed, zlib.error, EOFError, OSError, ValueError) as e:
            _reject_damage(out, path, offset, e)
            return resume(offset)
        if out.full():
            yield from out.flush()


def _header_cut(fh, offset: int, end: int) -> bool:
    """True when the file ends before the header block of the record at `offset` does (warcio then
    yields a record with the headers read so far and an empty body)."""
    fh.seek(offset)
    window = fh.read(min(1 << 16, end - offset))
    return b"\r\n\r\n" not in window and b"\n\n" not in window and offset + len(window) >= end


def _next_warc_line(fh, after: int, size: int) -> int | None:
    """Offset of the next line starting with `WARC/1.` at or after `after` in a plain WARC."""
    pos = after
    while pos < size:
        fh.seek(pos)
        window = fh.read(1 << 16)
        i = window.find(b"\nWARC/1.")
        if i >= 0:
            return pos + i + 1
        pos += max(len(window) - 8, 1)
    return None


def _reject_member(out: BatchBuilder, path: str, member) -> None:
    """A gzip member that failed its check (or that the file ends inside): none of its bytes are read."""
    head = _warc_head_fields(member.head)
    if member.status == "truncated":
        reason = "truncated_record"
        detail = (
            f"record {head.get('warc-record-id')} ({head.get('warc-target-uri')}) at offset {member.start}"
            f" ends early: the file ends inside its gzip member ({member.end - member.start} bytes)"
        )
    else:
        reason = "corrupt_gzip"
        detail = (
            f"{path} bytes {member.start}-{member.end}: gzip member(s) failed the CRC/length check"
            f" ({member.error}); skipped to the next good member"
        )
    log.warning("%s: %s at offset %d", path, reason, member.start)
    out.reject(reason, detail, id=f"{path}#{member.start}", url=_strip_brackets(head.get("warc-target-uri")))


def _warc_head_fields(head: bytes) -> dict[str, str]:
    """WARC header fields from the first bytes of a record (for reject details only, never for documents)."""
    block = head.split(b"\r\n\r\n", 1)[0] if head.startswith(b"WARC/") else b""
    return _warcinfo_fields(block)


def _reject_damage(out: BatchBuilder, path: str, offset: int, error: BaseException) -> None:
    gz = isinstance(error, (zlib.error, EOFError)) or "gzip" in str(error).lower()
    reason = "corrupt_gzip" if gz else "corrupt_record"
    log.warning("%s: %s at offset %d: %s", path, reason, offset, str(error)[:200])
    out.reject(reason, f"{type(error).__name__}: {error}", id=f"{path}#{offset}")


def _handle_record(
    record, offset: int, path: str, cfg: IngestConfig, out: BatchBuilder, skipped: Counter
) -> bool:
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
            _reject_truncated(
                out,
                path,
                offset,
                missing,
                record,
                {"id": warc_record_id(record.rec_headers.get_header("WARC-Record-ID")), "url": None},
            )
        return not missing
    if out.defaults["crawl_id"] is None:
        out.defaults["crawl_id"] = crawl_id_from_name(path)
    return _warc_record(record, offset, path, cfg, out)


def _reject_truncated(out: BatchBuilder, path: str, offset: int, missing: int, record, meta: dict) -> None:
    declared = record.rec_headers.get_header("Content-Length")
    log.warning("%s: record %s at offset %d ends early (%d bytes missing)", path, meta["id"], offset, missing)
    out.reject(
        "truncated_record",
        f"record {meta['id']} ({meta['url']}) ends early: {missing} of {declared}"
        f" declared bytes missing (truncated file or corrupt gzip member)",
        **{**meta, "id": f"{path}#{offset}"},
    )


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
        out.reject(
            "record_too_large",
            f"Content-Length {declared.strip()} > max_record_bytes {cfg.max_record_bytes}",
            **meta,
        )
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
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as e:
        if cfg.invalid_utf8 == "reject":
            out.reject("invalid_utf8", f"{path} offset {offset}: {e}", **meta)
            return True
        out.flags["invalid_utf8"] += 1
        text = payload.decode("utf-8", "replace")
    if not text.strip():
        out.reject("missing_text", "conversion record has no text", **meta)
    else:
        out.add(text=text, **meta)
    return True
