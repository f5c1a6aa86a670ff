"""Parquet, row group by row group: `text` is required, the other document columns are taken when present;
an unreadable row group is one `corrupt_parquet` reject (file, row group, row range) and reading goes on."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.contract import DOC_FIELDS, REJECT_FIELDS
from curation.ingest.batching import BatchBuilder
from curation.ingest.config import RAW_SCHEMA, STAGE, IngestConfig
from curation.ingest.files import crawl_id_from_name, open_input, stable_id
from curation.steps.base import REJECT_DETAIL

log = logging.getLogger(__name__)


def _parquet_batch(batch: pa.RecordBatch, path: str, first_row: int, crawl_id: str | None) -> pa.RecordBatch:
    """Raw rows from a parquet batch: DOC columns taken when present, missing ids hashed, blank text
    rejected."""
    n = batch.num_rows
    cols: dict[str, pa.Array] = {}
    for f in RAW_SCHEMA:
        if f.name in batch.schema.names and f.name not in (
            "html",
            "content_type",
            *[r.name for r in REJECT_FIELDS],
            REJECT_DETAIL.name,
        ):
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


def check_parquet_schema(path: str) -> None:
    """On the driver, before any task starts: a parquet input must have a `text` column (its footer says).
    An unreadable footer is left to the reader, where it is a counted `corrupt_parquet` reject."""
    with open_input(path) as fh:
        if fh.seek(0, io.SEEK_END) == 0:
            return
        fh.seek(0)
        try:
            names = pq.read_schema(fh).names
        except (pa.ArrowInvalid, OSError):
            return
    if "text" not in names:
        raise ValueError(f"parquet input {path!r} has no 'text' column (columns: {names})")


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
        row = kept = rejected = 0
        for group in range(pf.num_row_groups):
            # a whole row group is decoded before any of its rows leave: a bad one costs only itself
            group_rows = pf.metadata.row_group(group).num_rows
            try:
                table = pf.read_row_group(group, columns=wanted)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as e:
                log.warning(
                    "%s: row group %d (rows %d-%d) unreadable: %s", path, group, row, row + group_rows, e
                )
                out.reject(
                    "corrupt_parquet",
                    f"{path} row group {group} (rows {row}-{row + group_rows}): {type(e).__name__}: {e}",
                    id=f"{path}#{row}",
                )
                yield from out.flush()
                row += group_rows
                continue
            for batch in table.to_batches(max_chunksize=cfg.batch_rows):
                raw = _parquet_batch(batch, path, row, crawl_id)
                row += batch.num_rows
                good = raw.column("reject_stage").null_count
                kept, rejected = kept + good, rejected + raw.num_rows - good
                yield raw
    log.info("%s: %d documents, %d rejected (missing_text) from %d rows", path, kept, rejected, row)
