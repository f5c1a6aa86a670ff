"""JSONL (plain or gzip), one dolma-style JSON object per line, streamed line by line: bad lines are
counted rejects, never a crash."""

from __future__ import annotations

import ast
import gzip
import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import pyarrow as pa

from curation.ingest.batching import BatchBuilder, log_file_summary
from curation.ingest.config import IngestConfig
from curation.ingest.detect import GZIP_MAGIC
from curation.ingest.files import crawl_id_from_name, open_input, stable_id
from curation.ingest.gzmembers import RangeReader, scan_members

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


def read_jsonl(path: str, cfg: IngestConfig, flags: Counter[str] | None = None) -> Iterator[pa.RecordBatch]:
    """One JSON object per line (plain or gzip): bad lines are counted rejects, never a crash.

    A gzip file is read only from members that passed their CRC/length check (gzmembers): a damaged
    member is one `corrupt_gzip` reject naming its byte range, and reading goes on at the next good one."""
    out = BatchBuilder(cfg, "jsonl", path, cfg.crawl_id or crawl_id_from_name(path))
    pos = _LinePos()
    with open_input(path) as raw:
        if raw.read(2) != GZIP_MAGIC:
            raw.seek(0)
            yield from _read_lines(raw, path, cfg, out, pos)
        else:
            members = list(scan_members(raw, lambda head: head.lstrip().startswith(b"{")))
            for m in members:
                if m.status != "ok":
                    what = (
                        "failed the CRC/length check"
                        if m.status == "corrupt"
                        else "is cut (the file ends inside it)"
                    )
                    log.warning(
                        "%s: corrupt_gzip at bytes %d-%d after line %d", path, m.start, m.end, pos.lineno
                    )
                    out.reject(
                        "corrupt_gzip",
                        f"{path} bytes {m.start}-{m.end} (after line {pos.lineno}): gzip member"
                        f" {what}: {m.error}; none of its lines are read",
                        id=f"{path}#{m.start}",
                    )
                    continue
                with gzip.GzipFile(fileobj=RangeReader(raw, m.start, m.end), mode="rb") as stream:
                    yield from _read_lines(stream, path, cfg, out, pos)
    yield from out.flush()
    log_file_summary(path, out, Counter({"blank_line": pos.blank}) if pos.blank else None)
    if flags is not None:
        flags.update(out.flags)


@dataclass
class _LinePos:
    """Where a JSONL file's reading stands, across its gzip members."""

    lineno: int = 0
    blank: int = 0


def _read_lines(
    stream: BinaryIO, path: str, cfg: IngestConfig, out: BatchBuilder, pos: _LinePos
) -> Iterator[pa.RecordBatch]:
    while line := stream.readline(cfg.max_record_bytes + 1):
        pos.lineno += 1
        if len(line) > cfg.max_record_bytes and not line.endswith(b"\n"):
            while (chunk := stream.readline(1 << 20)) and not chunk.endswith(b"\n"):
                pass  # skip the rest of the over-long line without holding it
            out.reject(
                "record_too_large",
                f"line {pos.lineno} is over max_record_bytes {cfg.max_record_bytes}",
                id=stable_id(path, pos.lineno),
            )
        elif not line.strip():
            pos.blank += 1
        else:
            _jsonl_line(line, pos.lineno, path, out)
        if out.full():
            yield from out.flush()


def _jsonl_line(line: bytes, lineno: int, path: str, out: BatchBuilder) -> None:
    try:
        text_line = line.decode("utf-8")
    except UnicodeDecodeError as e:
        if out.cfg.invalid_utf8 == "reject":
            out.reject("invalid_utf8", f"{path} line {lineno}: {e}", id=stable_id(path, lineno))
            return
        # replaced rather than fatal by default: one bad byte should not cost the whole document
        out.flags["invalid_utf8"] += 1
        text_line = line.decode("utf-8", "replace")
    try:
        obj = json.loads(text_line)
    except ValueError as e:
        out.reject("invalid_json", f"{path} line {lineno}: {e}", id=stable_id(path, lineno))
        return
    if not isinstance(obj, dict):
        out.reject(
            "invalid_json",
            f"{path} line {lineno}: expected an object, got {type(obj).__name__}",
            id=stable_id(path, lineno),
        )
        return
    row = jsonl_row(obj, path, lineno)
    text = row["text"]
    if isinstance(text, str):
        text = row["text"] = _utf8_safe(text)
    if not isinstance(text, str) or not text.strip():
        row["text"] = None
        out.reject(
            "missing_text",
            f"line {lineno}: 'text' is {'blank' if isinstance(text, str) else repr(text)[:50]}",
            **row,
        )
        return
    out.add(**row)
