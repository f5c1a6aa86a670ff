"""What every ingest reader produces: the raw row schema, the reject stage name, and the ingest config."""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from curation.contract import DOC_FIELDS, REJECT_FIELDS
from curation.steps.base import REJECT_DETAIL

#: Raw HTML bytes for WARC responses (text is filled by the extract step); null for text sources.
RAW_EXTRA_FIELDS = [pa.field("html", pa.binary()), pa.field("content_type", pa.string())]
RAW_SCHEMA = pa.schema([*DOC_FIELDS, *RAW_EXTRA_FIELDS, *REJECT_FIELDS, REJECT_DETAIL])

Format = Literal["auto", "warc", "wet", "jsonl", "parquet"]
STAGE = "ingest"

MAX_DETAIL_CHARS = 500


class IngestConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Format = "auto"
    crawl_id: str | None = None  # overrides what the WARC headers / filename say
    batch_rows: int = Field(500, ge=1)  # rows per Arrow batch yielded by a reader
    # a batch is also cut when its HTML/text payload passes this many bytes, so a file of big pages
    # cannot pile `batch_rows` x 50 MB into one batch
    batch_bytes: int = Field(64_000_000, ge=1)
    max_record_bytes: int = Field(50_000_000, ge=1)  # larger records are rejected as `record_too_large`
    # text that is not valid UTF-8 (JSONL lines, WET records): "keep" replaces the bad bytes with U+FFFD and
    # counts the documents (logged per file, summed in the manifest's extra.ingest); "reject" makes each an
    # `invalid_utf8` reject
    invalid_utf8: Literal["keep", "reject"] = "keep"
