"""MinHash signatures and LSH band keys for whole Arrow batches, vectorised with numpy.

Shingles are word n-grams of normalized text (NFKC, lowercase, `\\w+` tokens: case, punctuation and
layout do not matter). Distinct words are hashed once per batch (pandas' SipHash), n-grams are
combined from word hashes with array arithmetic, and the MinHash of every document is the column-wise
minimum of datasketch's `affine32` permutations over its shingle hashes, reduced per document with
`np.minimum.reduceat`. No Python loop runs per shingle; the loop per document is only the tokenizer.

The result is bit-identical to `datasketch.MinHash(num_perm, seed, hashfunc=<identity>)` fed with the
same 32-bit shingle hashes (tests/curation/test_near_dedup_reference.py checks it), so signatures and buckets
agree with a single-process `datasketch.MinHashLSH` built with the same (bands, rows). On Spark a band is
keyed by a 64-bit hash of its values (`band_hashes`), equal exactly when the band bytes are equal up to
a 64-bit collision.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from datasketch import MinHash
from datasketch.minhash import _fmix  # the finalizer datasketch applies before its affine32 permutations

_WORD = re.compile(r"\w+")
_NGRAM_MUL = np.uint64(0x100000001B3)  # odd multiplier mixing successive word hashes (FNV prime)
_MAX32 = np.uint32(0xFFFFFFFF)
_BAND_BASIS = np.uint64(0xCBF29CE484222325)  # FNV-1a offset basis: start value of a band key
#: shingles per numpy chunk: (chunk x num_perm) uint32 stays ~1 MB at 120 permutations (cache-sized: 2048
#: measured ~40% faster than 16384)
_CHUNK = 2048

SIGNATURE_FIELDS = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("n_shingles", pa.int32()),  # 0 = no words: never a candidate
    pa.field(
        "bands", pa.list_(pa.int64())
    ),  # one 64-bit key per band (see band_hashes); empty for empty docs
    pa.field("shingles", pa.list_(pa.int64())),  # distinct 64-bit shingle hashes (verification); null if off
]
SIGNATURE_SCHEMA = pa.schema(SIGNATURE_FIELDS)


def tokens(text: str | None) -> list[str]:
    """Word tokens of the normalized text; None and empty text have none.

    Same normalization as exact dedup (`normalize_for_hash`: NFKC + lowercase) minus its whitespace
    collapsing, which cannot change `\\w+` tokens and costs half the tokenizer's time.
    """
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower()) if text else []


def _fmix64(h: np.ndarray) -> np.ndarray:
    return _fmix(h, 64)


def shingle_hashes_batch(texts: Sequence[str | None], ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every word n-gram of every text, flattened, plus per-document offsets.

    A document with fewer than `ngram` (but some) words gets one shingle of all its words, so short
    identical texts still collide; a document without words gets no shingle (it is never a candidate).
    """
    toks = pa.array([tokens(t) for t in texts], type=pa.list_(pa.string()))
    n_tok = pc.list_value_length(toks).fill_null(0).to_numpy().astype(np.int64)
    words = toks.flatten()
    if len(words):
        # hash each distinct word of the batch once (Arrow's dictionary encoding), then gather: the same
        # SipHash values as hashing every word, at a third of the cost
        encoded = pc.dictionary_encode(words)
        unique_hash = pd.util.hash_array(encoded.dictionary.to_numpy(zero_copy_only=False), categorize=False)
        word_hash = unique_hash.astype(np.uint64)[encoded.indices.to_numpy()]
    else:
        word_hash = np.zeros(0, dtype=np.uint64)
    word_start = np.concatenate([[0], np.cumsum(n_tok)[:-1]]) if len(n_tok) else np.zeros(0, np.int64)

    window = np.minimum(n_tok, ngram)  # words per shingle in each doc
    n_sh = np.where(n_tok > 0, n_tok - window + 1, 0)  # shingles per doc
    offsets = np.concatenate([[0], np.cumsum(n_sh)]).astype(np.int64)
    total = int(offsets[-1])
    doc_of = np.repeat(np.arange(len(texts)), n_sh)
    first_word = word_start[doc_of] + (np.arange(total) - offsets[:-1][doc_of])
    length = window[doc_of]
    h = np.zeros(total, dtype=np.uint64)
    for k in range(ngram):
        valid = k < length
        idx = np.where(valid, first_word + k, 0)
        mixed = h * _NGRAM_MUL + (word_hash[idx] if total else h)
        h = np.where(valid, mixed, h)
    return _fmix64(h), offsets


def shingle_hashes(text: str | None, ngram: int) -> np.ndarray:
    """The 64-bit shingle hashes of one document (same values as the batch function)."""
    return shingle_hashes_batch([text], ngram)[0]


def minhash_input(h64: np.ndarray) -> np.ndarray:
    """The 32-bit values MinHash permutes (datasketch's affine32 scheme takes 32-bit hashes)."""
    return (h64 & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def distinct_per_doc(values: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort and de-duplicate each document's segment of `values`; returns (values, offsets)."""
    n_docs = len(offsets) - 1
    doc_of = np.repeat(np.arange(n_docs), np.diff(offsets))
    order = np.lexsort((values, doc_of))
    v, d = values[order], doc_of[order]
    keep = np.ones(len(v), dtype=bool)
    keep[1:] = (v[1:] != v[:-1]) | (d[1:] != d[:-1])
    counts = np.bincount(d[keep], minlength=n_docs)
    return v[keep], np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


@dataclass(frozen=True)
class LshParams:
    num_perm: int
    bands: int
    rows: int
    seed: int
    ngram: int

    @cached_property
    def permutations(self) -> tuple[np.ndarray, np.ndarray]:
        a, b = MinHash(num_perm=self.num_perm, seed=self.seed, scheme="affine32").permutations
        return a.astype(np.uint32), b.astype(np.uint32)

    def signatures(self, h64: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """(n_docs, num_perm) uint32 MinHash values; documents without shingles are all-max."""
        a, b = self.permutations
        hv = _fmix(minhash_input(h64), 32)
        n_docs = len(offsets) - 1
        sig = np.full((n_docs, self.num_perm), _MAX32, dtype=np.uint32)
        nonempty = np.flatnonzero(np.diff(offsets) > 0)
        # group whole documents into chunks of about _CHUNK shingles, so reduceat never splits a document
        start = 0
        while start < len(nonempty):
            stop = start + 1
            base = offsets[nonempty[start]]
            while stop < len(nonempty) and offsets[nonempty[stop] + 1] - base <= _CHUNK:
                stop += 1
            docs = nonempty[start:stop]
            lo, hi = offsets[docs[0]], offsets[docs[-1] + 1]
            phv = hv[lo:hi, None] * a[None, :] + b[None, :]  # uint32 wraparound = mod 2^32
            sig[docs] = np.minimum.reduceat(phv, offsets[docs] - lo, axis=0)
            start = stop
        return sig

    def band_keys(self, sig: np.ndarray) -> np.ndarray:
        """(n_docs, bands) array of band keys, each the band's `rows` values as bytes."""
        used = np.ascontiguousarray(sig[:, : self.bands * self.rows])
        return used.view(np.dtype((np.void, 4 * self.rows))).reshape(len(sig), self.bands)

    def band_hashes(self, sig: np.ndarray) -> np.ndarray:
        """(n_docs, bands) int64 band keys: the band's `rows` values folded FNV-1a style, then fmix64.

        A fixed-width long instead of the band's bytes makes every Spark step over buckets hash and sort
        8 bytes instead of a binary. Two different bands share a key only by a 64-bit collision (~1e-9 at
        1e5 documents per band); such a false candidate is dropped by verification like any other.
        """
        used = sig[:, : self.bands * self.rows].reshape(len(sig), self.bands, self.rows).astype(np.uint64)
        h = np.full((len(sig), self.bands), _BAND_BASIS, dtype=np.uint64)
        for r in range(self.rows):
            h = (h ^ used[:, :, r]) * _NGRAM_MUL
        return _fmix64(h).view(np.int64)


def signature_batch(batch: pa.RecordBatch, params: LshParams, with_shingles: bool) -> pa.RecordBatch:
    """One Arrow batch of documents (`id`, `text`) -> its signature rows (SIGNATURE_SCHEMA)."""
    texts = batch.column("text").to_pylist()
    h64, offsets = shingle_hashes_batch(texts, params.ngram)
    n_docs = len(texts)
    counts = np.diff(offsets)
    n_shingles = pa.array(counts.astype(np.int32))
    keys = params.band_hashes(params.signatures(h64, offsets))
    has = counts > 0
    key_values = pa.array(keys[has].ravel())
    band_offsets = np.concatenate([[0], np.cumsum(np.where(has, params.bands, 0))]).astype(np.int32)
    bands = pa.ListArray.from_arrays(pa.array(band_offsets), key_values)
    if with_shingles:
        values, sh_off = distinct_per_doc(h64, offsets)
        shingles = pa.ListArray.from_arrays(
            pa.array(sh_off.astype(np.int32)), pa.array(values.view(np.int64))
        )
    else:
        shingles = pa.nulls(n_docs, pa.list_(pa.int64()))
    return pa.RecordBatch.from_arrays(
        [batch.column("id"), n_shingles, bands, shingles], schema=SIGNATURE_SCHEMA
    )


def signature_batches(
    batches: Iterable[pa.RecordBatch], params: LshParams, with_shingles: bool
) -> Iterator[pa.RecordBatch]:
    """The mapInArrow body: signature rows for every incoming batch."""
    for batch in batches:
        if batch.num_rows:
            yield signature_batch(batch, params, with_shingles)


#: Documents per Spark partition when a whole corpus version is signed (a band index rebuild). A corpus's
#: parquet files split into ~128 MB scan partitions of ~100k documents, and a partition's signature rows
#: carry each document's shingle set (~1k longs): ~0.8 GB of JVM heap per task, which ran a 2g driver out
#: of memory at 500k documents (bench/scale.py). 10k documents per partition keep a task under ~100 MB.
CORPUS_DOCS_PER_PARTITION = 10_000


def corpus_signatures(spark, corpus_version, params: LshParams, with_shingles: bool):
    """`compute_signatures` over every document of a published corpus version (a version folder or a table
    version `iceberg:<table>@<ref>`), in partitions of CORPUS_DOCS_PER_PARTITION documents (its manifest's
    row count decides how many)."""
    from curation.dataset_version import open_dataset_version

    version = open_dataset_version(corpus_version)
    rows = version.manifest.rows
    parts = max(spark.sparkContext.defaultParallelism, -(-rows // CORPUS_DOCS_PER_PARTITION))
    if not version.data_files:  # an empty corpus: an empty index
        docs = spark.createDataFrame([], "id string, text string")
    else:
        docs = spark.read.parquet(*[f.resolve().as_uri() for f in version.data_files]).select("id", "text")
    return compute_signatures(docs.repartition(parts), params, with_shingles)


def compute_signatures(df, params: LshParams, with_shingles: bool):
    """(id, text, ...) Spark frame -> signature frame (SIGNATURE_SCHEMA), one Arrow-batched Python pass.
    Shared by the near-dedup step and the band index's rebuild from a corpus."""
    from pyspark.sql.pandas.types import from_arrow_schema

    def _map(batches):
        yield from signature_batches(batches, params, with_shingles)

    return df.select("id", "text").mapInArrow(_map, from_arrow_schema(SIGNATURE_SCHEMA))
