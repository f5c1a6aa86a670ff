"""Tokenize one source into a token cache: Arrow batches from DuckDB (the source's filter applied), encoded
with `encode_batch_fast` (in-process, or spread over worker processes), EOS after each document.

A cache folder holds the source's documents in dataset order, so blending (shuffles, epochs, held-out
split) never re-tokenizes, and a rebuild reuses the cache of every source whose content did not change:
    shard-00000.bin / .idx.npy   tokens (the shared shard format)
    docs.parquet                 id, url, edu_score (when the source has them), tokens (EOS included)
    COMPLETE                     written last
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.progress import Ticker
from training.mixture import sources as S
from training.mixture.tokenizer import encode_documents, load_tokenizer
from training.shards import ShardWriter, document_offsets, open_shard

log = logging.getLogger(__name__)

BATCH_ROWS = 2048
CACHE_SHARD_TOKENS = 1 << 62  # a cache is one file per source: blending memory-maps it whole


@dataclass
class CacheInfo:
    folder: Path
    documents: int
    tokens: int
    skipped_empty: int


def read_batches(
    con, res: S.ResolvedSource, where: str | None, batch_rows: int = BATCH_ROWS
) -> Iterator[pa.RecordBatch]:
    # ids as text whatever their stored type, so every source's rows share one documents.parquet schema
    cols = [
        f'CAST("{c}" AS VARCHAR) AS "{c}"' if c == S.ID_COLUMN else f'"{c}"' for c in S.select_columns(res)
    ]
    rel = S.filtered(con, res, where).project(", ".join(cols))
    yield from rel.to_arrow_reader(batch_rows)


def non_empty(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, int]:
    """Drop documents without text (nothing to train on); the count goes to the manifest."""
    keep = pc.fill_null(pc.greater(pc.utf8_length(batch.column(S.TEXT_COLUMN)), 0), False)
    kept = batch.filter(keep)
    return kept, batch.num_rows - kept.num_rows


# ---- worker processes (spawned: a forked tokenizers pool would deadlock) --------------------------

_worker: dict = {}


def _init_worker(tokenizer_dir: str, eos: int, dtype: str) -> None:
    os.environ["RAYON_NUM_THREADS"] = "1"  # one core per worker; the pool is the parallelism
    _worker.update(tok=load_tokenizer(tokenizer_dir), eos=eos, dtype=np.dtype(dtype))


def _encode_in_worker(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return encode_documents(_worker["tok"], texts, _worker["eos"], _worker["dtype"])


def tokenize_source(
    con,
    res: S.ResolvedSource,
    where: str | None,
    tokenizer_dir: Path,
    eos: int,
    dtype: np.dtype,
    folder: Path,
    workers: int = 1,
    label: str = "",
) -> CacheInfo:
    folder.mkdir(parents=True, exist_ok=True)
    writer = ShardWriter(folder, dtype, shard_tokens=CACHE_SHARD_TOKENS)
    meta: list[pa.RecordBatch] = []
    skipped = docs = tokens = 0
    t0 = time.perf_counter()
    ticker = Ticker(f"tokenizing {label or res.label}", total=res.documents, unit="docs")

    def batches() -> Iterator[pa.RecordBatch]:
        nonlocal skipped
        for b in read_batches(con, res, where):
            kept, dropped = non_empty(b)
            skipped += dropped
            if kept.num_rows:
                meta.append(kept.drop_columns([S.TEXT_COLUMN]))
                yield kept

    def consume(flat: np.ndarray, lengths: np.ndarray) -> None:
        nonlocal docs, tokens
        ends = np.cumsum(lengths)
        for start, end in zip(ends - lengths, ends):
            writer.add_document(flat[start:end])
        docs += len(lengths)
        tokens += int(lengths.sum())
        meta_lengths.append(lengths)
        ticker.update(docs + skipped, extra=f"{tokens:,} tokens ({tokens / ticker.elapsed():,.0f} tok/s)")

    meta_lengths: list[np.ndarray] = []
    if workers <= 1:
        tok = load_tokenizer(tokenizer_dir)
        for b in batches():
            consume(*encode_documents(tok, b.column(S.TEXT_COLUMN).to_pylist(), eos, dtype))
    else:
        ctx = mp.get_context("spawn")
        with ctx.Pool(
            workers, initializer=_init_worker, initargs=(str(tokenizer_dir), eos, dtype.str)
        ) as pool:
            texts = (b.column(S.TEXT_COLUMN).to_pylist() for b in batches())
            for flat, lengths in pool.imap(_encode_in_worker, texts):  # imap keeps input order: deterministic
                consume(flat, lengths)
    writer.close()
    if meta:
        table = pa.Table.from_batches(meta)
    else:
        table = pa.table({S.ID_COLUMN: pa.array([], pa.string())})
    table = table.append_column(
        "tokens", pa.array(np.concatenate(meta_lengths) if meta_lengths else [], pa.int64())
    )
    for name, typ in S.CARRIED_COLUMNS.items():  # same columns for every source, so phases concatenate
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, typ))
        else:
            table = table.set_column(table.column_names.index(name), name, table[name].cast(typ))
    table = table.select([S.ID_COLUMN, *S.CARRIED_COLUMNS, "tokens"])
    pq.write_table(table, folder / "docs.parquet")
    (folder / "COMPLETE").write_text(f"{docs} {tokens}\n")
    secs = time.perf_counter() - t0
    ticker.finish(docs + skipped, extra=f"{tokens:,} tokens")
    log.info(
        "tokenized %s: %d docs, %d tokens, %d empty skipped in %.1fs (%.0f tok/s)",
        label or res.label,
        docs,
        tokens,
        skipped,
        secs,
        tokens / max(secs, 1e-9),
    )
    return CacheInfo(folder, docs, tokens, skipped)


def read_cache(folder: Path, dtype: np.dtype) -> tuple[np.memmap, np.ndarray, pa.Table]:
    """(tokens, document start offsets, docs table) of a complete cache."""
    if not (folder / "COMPLETE").is_file():
        raise FileNotFoundError(f"token cache {folder} is incomplete (no COMPLETE marker)")
    bin_path = folder / "shard-00000.bin"
    return open_shard(bin_path, dtype), document_offsets(bin_path), pq.read_table(folder / "docs.parquet")
