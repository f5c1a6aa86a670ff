"""Which reader a file needs: warc | wet | jsonl | parquet, from its name, else from its first bytes."""

from __future__ import annotations

import zlib

from curation.ingest.files import file_name, open_input

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"

_COMPRESSION_SUFFIXES = (".gz", ".gzip", ".bz2", ".xz", ".zst")


def format_from_name(path: str) -> str | None:
    """The format the file name announces, or None when the name alone does not tell."""
    name = file_name(path).lower()
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
        raise ValueError(
            f"cannot detect the format of {path!r} from its name or first bytes {head[:16]!r};"
            f" set ingest.format to one of warc, wet, jsonl, parquet"
        )
    return fmt
