"""Ingest: turn crawl files (WARC / WET / JSONL / parquet; local or any fsspec URI) into raw document rows.

STUB (owned by the ingest+extract work): `read_documents` yields Arrow record batches with RAW_SCHEMA.
"""
from __future__ import annotations

from typing import Iterator, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from curation.contract import DOC_FIELDS, REJECT_FIELDS
from curation.steps.base import REJECT_DETAIL

#: Raw HTML bytes for WARC responses (text is filled by the extract step); null for text sources.
RAW_EXTRA_FIELDS = [pa.field("html", pa.binary()), pa.field("content_type", pa.string())]
RAW_SCHEMA = pa.schema([*DOC_FIELDS, *RAW_EXTRA_FIELDS, *REJECT_FIELDS, REJECT_DETAIL])

Format = Literal["auto", "warc", "wet", "jsonl", "parquet"]


class IngestConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Format = "auto"
    crawl_id: str | None = None          # overrides what the WARC headers / filename say
    batch_rows: int = 500                # rows per Arrow batch yielded by a reader
    max_record_bytes: int = 50_000_000   # larger records are rejected as `record_too_large`


def detect_format(path: str) -> str:
    raise NotImplementedError


def read_documents(path: str, fmt: str, cfg: IngestConfig) -> Iterator[pa.RecordBatch]:
    raise NotImplementedError
