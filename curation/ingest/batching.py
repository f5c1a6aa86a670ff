"""Cutting reader output into RAW_SCHEMA Arrow batches, and the per-file summary every reader logs."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from curation.ingest.config import MAX_DETAIL_CHARS, RAW_SCHEMA, STAGE, IngestConfig

log = logging.getLogger(__name__)


class BatchBuilder:
    """Accumulates RAW_SCHEMA rows and cuts Arrow batches by row count or payload bytes."""

    def __init__(self, cfg: IngestConfig, source_format: str, source_file: str, crawl_id: str | None):
        self.cfg = cfg
        self.defaults = {"source_format": source_format, "source_file": source_file, "crawl_id": crawl_id}
        self._new()
        self.kept = 0
        self.reasons: Counter[str] = Counter()
        self.flags: Counter[str] = Counter()  # kept documents with a caveat (e.g. invalid_utf8 replaced)

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


def log_file_summary(path: str, out: BatchBuilder, skipped: Counter | None = None) -> None:
    rejected = sum(out.reasons.values())
    if not out.kept and not rejected:
        log.warning(
            "%s: no documents in file (empty, or only non-document records: %s)", path, dict(skipped or {})
        )
        return
    log.info(
        "%s: %d documents, %d rejected %s; non-document records skipped: %s%s",
        path,
        out.kept,
        rejected,
        dict(out.reasons),
        dict(skipped or {}),
        f"; flagged: {dict(out.flags)}" if out.flags else "",
    )
