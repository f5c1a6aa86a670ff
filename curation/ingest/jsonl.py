"""JSONL (plain or gzip), one dolma-style JSON object per line, streamed line by line: bad lines are
counted rejects, never a crash."""
from __future__ import annotations

import ast
import gzip
import json
import logging
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import Any, BinaryIO

import pyarrow as pa

from curation.ingest.batching import BatchBuilder, log_file_summary
from curation.ingest.config import IngestConfig
from curation.ingest.detect import GZIP_MAGIC
from curation.ingest.files import crawl_id_from_name, open_input, stable_id

log = logging.getLogger(__name__)


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
    log_file_summary(path, out, Counter({"blank_line": blank}) if blank else None)


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
