"""Ingest: turn crawl files (WARC / WET / JSONL / parquet; local or any fsspec URI) into raw document rows.

`read_documents` streams one file as Arrow record batches with exactly `RAW_SCHEMA`: documents (WARC
responses carry their `html` bytes; the extract step turns them into `text`) and reject rows (set
`reject_stage="ingest"`) for records that cannot become documents. A file is never read whole into
memory: WARC/WET go record by record through warcio, JSONL line by line, parquet row group by row group.

Damage is contained and never published: a gzip file is read only from members that passed their CRC and
length check (`gzmembers`); a damaged member is one `corrupt_gzip` reject naming the file and byte range
and reading resumes at the next good member; a record the file ends inside is `truncated_record` with its
offset; a garbled WARC header is a `corrupt_record` reject and reading resumes at the next record; bad
lines are counted rejects (with file and line number); invalid UTF-8 is counted (`IngestConfig.invalid_utf8`).
Only a path that does not exist, an unknown format or a parquet file without a `text` column is an error.

The package, split by format the way datatrove splits its readers: `config` (RAW_SCHEMA, IngestConfig),
`files` (opening paths/URIs, ids), `detect` (format detection), `batching` (BatchBuilder), `gzmembers`
(verified gzip members), and one reader
module per format (`warc`, `jsonl`, `parquet`). `read_documents` is the entry point.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pyarrow as pa

from curation.ingest.batching import BatchBuilder
from curation.ingest.config import RAW_EXTRA_FIELDS, RAW_SCHEMA, STAGE, Format, IngestConfig
from curation.ingest.detect import detect_format, format_from_bytes, format_from_name
from curation.ingest.files import crawl_id_from_name, fsspec_uri, open_input, stable_id
from curation.ingest.jsonl import jsonl_row, read_jsonl
from curation.ingest.parquet import check_parquet_schema, read_parquet
from curation.ingest.warc import read_warc, warc_record_id


def read_documents(
    path: str, fmt: str, cfg: IngestConfig, flags: Counter[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """Stream one input file as RAW_SCHEMA batches of at most `cfg.batch_rows` rows. `flags` gets, once the
    file is read, how many kept documents carry a caveat (e.g. `invalid_utf8`: bad bytes replaced)."""
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt in ("warc", "wet"):
        return read_warc(path, fmt, cfg, flags)
    if fmt == "jsonl":
        return read_jsonl(path, cfg, flags)
    if fmt == "parquet":
        return read_parquet(path, cfg)
    raise ValueError(f"unknown input format {fmt!r} for {path!r}; expected warc, wet, jsonl or parquet")


__all__ = [
    "RAW_EXTRA_FIELDS",
    "RAW_SCHEMA",
    "STAGE",
    "BatchBuilder",
    "Format",
    "IngestConfig",
    "check_parquet_schema",
    "crawl_id_from_name",
    "detect_format",
    "format_from_bytes",
    "format_from_name",
    "fsspec_uri",
    "jsonl_row",
    "open_input",
    "read_documents",
    "read_jsonl",
    "read_parquet",
    "read_warc",
    "stable_id",
    "warc_record_id",
]
