"""An n-gram index over benchmark test items, for dropping training documents that contain them.

Text is normalized (NFKC, lower case, words = runs of letters/digits, punctuation and whitespace
dropped) so a page that quotes a problem with different case, punctuation or line breaks still
matches. Every word n-gram (13 by default, as in GPT-3's decontamination) is hashed to 64 bits with a
polynomial over per-word xxhash values, computed with numpy over the whole document at once.

The index is three arrays (unique n-gram hashes, CSR offsets, item numbers) plus the item table, so it
is small, loads fast and is shared by the curation step and the synthesis package:

    index = DecontamIndex.build(default_sources(), ngram_size=13)
    index.save(path); index = DecontamIndex.load(path)
    index.match(text)  # -> Match(benchmark, item_id, matched, item_ngrams) or None
"""

from __future__ import annotations

import csv
import glob
import gzip
import hashlib
import io
import json
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import regex
import xxhash
from pydantic import BaseModel, ConfigDict, Field

from curation.paths import shared_data_dir

log = logging.getLogger(__name__)

_WORD_RE = regex.compile(r"[\w\p{M}]+")
_POLY = np.uint64(0x100000001B3)  # odd multiplier; uint64 arithmetic wraps, which is what we want
_FORMAT_VERSION = 2


# ---- sources -------------------------------------------------------------------------------------


class BenchmarkSource(BaseModel):
    """One benchmark file (or glob) and which fields of each record make up the text of an item."""

    model_config = ConfigDict(extra="forbid")
    name: str  # recorded in reject reasons: benchmark_overlap:<name>
    path: str  # file or glob; relative paths are under benchmarks_dir
    text_fields: list[str] = Field(min_length=1)  # joined with newlines; list values are joined too
    id_field: str | None = None  # default: <file name>:<record number>
    format: Literal["auto", "jsonl", "csv", "parquet"] = "auto"
    drop_regex: str | None = None  # removed from the text first (e.g. GSM8K's <<calc>> notes)


def default_benchmarks_dir() -> Path:
    return shared_data_dir() / "benchmarks_decontam"


def default_sources() -> list[BenchmarkSource]:
    """GSM8K test, HumanEval, MMLU test, MBPP: the shared copies described in their SOURCE.md."""
    return [
        BenchmarkSource(
            name="gsm8k", path="gsm8k/test.jsonl", text_fields=["question", "answer"], drop_regex=r"<<[^>]*>>"
        ),
        BenchmarkSource(
            name="humaneval",
            path="humaneval/HumanEval.jsonl.gz",
            text_fields=["prompt", "canonical_solution", "test"],
            id_field="task_id",
        ),
        BenchmarkSource(
            name="mmlu",
            path="mmlu/test/*_test.csv",
            text_fields=["question", "choice0", "choice1", "choice2", "choice3"],
        ),
        BenchmarkSource(
            name="mbpp", path="mbpp/mbpp.jsonl", text_fields=["text", "code", "test_list"], id_field="task_id"
        ),
    ]


def _detect_format(path: Path) -> str:
    name = path.name.lower()
    for suffix, fmt in (
        (".jsonl", "jsonl"),
        (".jsonl.gz", "jsonl"),
        (".json.gz", "jsonl"),
        (".csv", "csv"),
        (".csv.gz", "csv"),
        (".parquet", "parquet"),
    ):
        if name.endswith(suffix):
            return fmt
    raise ValueError(
        f"benchmark file {path}: cannot tell its format from the name; set format: jsonl|csv|parquet"
    )


@contextmanager
def _open_text(path: Path) -> Iterator[io.TextIOWrapper]:
    with (
        gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb") as raw,
        io.TextIOWrapper(raw, encoding="utf-8", newline="") as f,
    ):
        yield f


def _records(path: Path, fmt: str) -> Iterator[tuple[int, dict]]:
    """(1-based record number, record) for every record of a benchmark file."""
    if fmt == "jsonl":
        with _open_text(path) as f:
            for no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"benchmark file {path} line {no}: not valid JSON ({e})") from None
                if not isinstance(rec, dict):
                    raise ValueError(f"benchmark file {path} line {no}: expected a JSON object")  # noqa: TRY004 (bad data)
                yield no, rec
    elif fmt == "csv":
        with _open_text(path) as f:
            yield from enumerate(csv.DictReader(f), 1)
    else:
        import pyarrow.parquet as pq

        yield from enumerate(pq.read_table(path).to_pylist(), 1)


def _field_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "\n".join(_field_text(v) for v in value)
    return str(value)


def iter_items(source: BenchmarkSource, base_dir: Path) -> Iterator[tuple[str, str]]:
    """(item id, text) of every item of a source; a missing file or field is an error naming it."""
    pattern = Path(source.path) if Path(source.path).is_absolute() else base_dir / source.path
    files = sorted(Path(p) for p in glob.glob(str(pattern)))
    if not files:
        raise FileNotFoundError(f"benchmark source {source.name!r}: {pattern} matches no file")
    drop = re.compile(source.drop_regex) if source.drop_regex else None
    for path in files:
        fmt = _detect_format(path) if source.format == "auto" else source.format
        for no, rec in _records(path, fmt):
            missing = [f for f in source.text_fields if f not in rec]
            if missing:
                raise ValueError(
                    f"benchmark file {path} record {no}: no field(s) {missing} "
                    f"(has {sorted(rec)}); fix text_fields of source {source.name!r}"
                )
            text = "\n".join(_field_text(rec[f]) for f in source.text_fields)
            if drop is not None:
                text = drop.sub(" ", text)
            if source.id_field is not None:
                if source.id_field not in rec:
                    raise ValueError(f"benchmark file {path} record {no}: no id field {source.id_field!r}")
                item_id = str(rec[source.id_field])
            else:
                item_id = f"{path.name}:{no}"
            yield item_id, text


# ---- hashing -------------------------------------------------------------------------------------


def normalize_words(text: str) -> list[str]:
    return _WORD_RE.findall(unicodedata.normalize("NFKC", text).lower())


def ngram_hashes(text: str, n: int) -> np.ndarray:
    """Unique 64-bit hashes of the document's word n-grams (empty if it has fewer than n words).

    N-grams that are mostly numbers ("1 2 3 ... 13", table rows) carry no benchmark content and
    match page-number lists on ordinary web pages, so an n-gram needs at least half its words to be
    non-numeric to count (on both the index and the query side)."""
    words = normalize_words(text)
    m = len(words) - n + 1
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    word_h = np.fromiter(
        (xxhash.xxh3_64_intdigest(w.encode()) for w in words), dtype=np.uint64, count=len(words)
    )
    wordy = np.fromiter((not w.isdigit() for w in words), dtype=np.int32, count=len(words))
    wordy_prefix = np.concatenate(([0], np.cumsum(wordy)))
    informative = (wordy_prefix[n:] - wordy_prefix[:m]) * 2 >= n
    acc = word_h[:m].copy()
    for k in range(1, n):
        acc *= _POLY
        acc += word_h[k : k + m]
    return np.unique(acc[informative])


# ---- the index -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    benchmark: str
    item_id: str
    matched: int  # distinct n-grams the document shares with the item
    item_ngrams: int  # distinct (indexed) n-grams the item has

    def describe(self, n: int) -> str:
        return f"{self.benchmark} item {self.item_id} shares {self.matched}/{self.item_ngrams} {n}-grams"


class DecontamIndex:
    def __init__(
        self,
        ngram_size: int,
        hashes: np.ndarray,
        offsets: np.ndarray,
        item_of: np.ndarray,
        item_benchmark: list[str],
        item_ids: list[str],
        item_ngrams: np.ndarray,
    ):
        self.ngram_size = ngram_size
        self.hashes = hashes  # sorted unique n-gram hashes
        self.offsets = offsets  # items of hashes[j] are item_of[offsets[j]:offsets[j+1]]
        self.item_of = item_of
        self.item_benchmark = item_benchmark
        self.item_ids = item_ids
        self.item_ngrams = item_ngrams  # per item: how many of its n-grams are in the index

    def __len__(self) -> int:
        return len(self.item_ids)

    # ---- build ---------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        sources: list[BenchmarkSource] | None = None,
        ngram_size: int = 13,
        max_items_per_ngram: int | None = 10,
        base_dir: str | Path | None = None,
    ) -> DecontamIndex:
        """Index every item of every source. N-grams shared by more than `max_items_per_ngram` items
        are boilerplate (licence headers, test harness lines) and would only cause false positives."""
        if ngram_size < 1:
            raise ValueError(f"ngram_size must be >= 1, got {ngram_size}")
        sources = default_sources() if sources is None else sources
        base = Path(base_dir) if base_dir else default_benchmarks_dir()
        benchmarks, ids, per_item = [], [], []
        for src in sources:
            n_items = n_short = 0
            for item_id, text in iter_items(src, base):
                h = ngram_hashes(text, ngram_size)
                n_items += 1
                if len(h) == 0:
                    n_short += 1  # shorter than one n-gram: cannot be matched at this n
                    continue
                benchmarks.append(src.name)
                ids.append(item_id)
                per_item.append(h)
            log.info(
                "decontam source %s: %d items (%d without an indexable %d-gram)",
                src.name,
                n_items,
                n_short,
                ngram_size,
            )
        if not per_item:
            raise ValueError("decontamination index is empty: no benchmark item has enough words")
        all_h = np.concatenate(per_item)
        all_items = np.repeat(np.arange(len(per_item), dtype=np.int32), [len(h) for h in per_item])
        order = np.lexsort((all_items, all_h))
        all_h, all_items = all_h[order], all_items[order]
        uniq, counts = np.unique(all_h, return_counts=True)
        if max_items_per_ngram is not None:
            keep = counts <= max_items_per_ngram
            dropped = int((~keep).sum())
            if dropped:
                log.info(
                    "decontam: dropped %d n-grams shared by more than %d items", dropped, max_items_per_ngram
                )
            mask = np.repeat(keep, counts)
            uniq, counts, all_items = uniq[keep], counts[keep], all_items[mask]
        offsets = np.zeros(len(uniq) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        item_ngrams = np.bincount(all_items, minlength=len(ids)).astype(np.int32)
        log.info("decontam index: %d items, %d distinct %d-grams", len(ids), len(uniq), ngram_size)
        return cls(ngram_size, uniq, offsets, all_items, benchmarks, ids, item_ngrams)

    # ---- persistence ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps(
            {
                "version": _FORMAT_VERSION,
                "ngram_size": self.ngram_size,
                "benchmark": self.item_benchmark,
                "ids": self.item_ids,
            }
        )
        tmp = p.with_name(p.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(
                f,
                hashes=self.hashes,
                offsets=self.offsets,
                item_of=self.item_of,
                item_ngrams=self.item_ngrams,
                meta=np.frombuffer(meta.encode(), dtype=np.uint8),
            )
        tmp.replace(p)  # readers never see a half-written index
        return p

    @classmethod
    def load(cls, path: str | Path) -> DecontamIndex:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"decontamination index not found at {p}")
        try:
            with np.load(p) as z:
                meta = json.loads(z["meta"].tobytes().decode())
                arrays = {k: z[k] for k in ("hashes", "offsets", "item_of", "item_ngrams")}
        except (ValueError, KeyError, OSError) as e:
            raise ValueError(f"{p} is not a decontamination index ({e}); rebuild it") from e
        if meta.get("version") != _FORMAT_VERSION:
            raise ValueError(f"{p}: index format {meta.get('version')} != {_FORMAT_VERSION}; rebuild it")
        return cls(
            meta["ngram_size"],
            arrays["hashes"],
            arrays["offsets"],
            arrays["item_of"],
            meta["benchmark"],
            meta["ids"],
            arrays["item_ngrams"],
        )

    # ---- lookup --------------------------------------------------------------------------------
    def overlaps(self, text: str) -> Counter[int]:
        """Item number -> distinct n-grams the text shares with that item (only items it touches)."""
        counts: Counter[int] = Counter()
        q = ngram_hashes(text, self.ngram_size)
        if len(q) == 0:
            return counts
        pos = np.searchsorted(self.hashes, q)
        pos[pos == len(self.hashes)] = 0
        for j in pos[self.hashes[pos] == q].tolist():
            counts.update(self.item_of[self.offsets[j] : self.offsets[j + 1]].tolist())
        return counts

    def match(self, text: str, min_matches: int = 3) -> Match | None:
        """The benchmark item the text overlaps most among those it shares at least `min_matches`
        n-grams with (or all of the item's n-grams, for items with fewer than that); else None."""
        return self.match_counts(self.overlaps(text), min_matches)

    def match_counts(self, counts: Counter[int], min_matches: int) -> Match | None:
        passing = [
            (item, m) for item, m in counts.items() if m >= min(min_matches, int(self.item_ngrams[item]))
        ]
        if not passing:
            return None
        best, matched = max(passing, key=lambda kv: (kv[1], -kv[0]))
        return Match(self.item_benchmark[best], self.item_ids[best], matched, int(self.item_ngrams[best]))


def sources_fingerprint(
    sources: list[BenchmarkSource], ngram_size: int, max_items_per_ngram: int | None, base_dir: Path
) -> str:
    """A short stable name for an index built from this configuration (used to ship it to workers)."""
    payload = json.dumps(
        {
            "sources": [s.model_dump() for s in sources],
            "n": ngram_size,
            "max": max_items_per_ngram,
            "base": str(base_dir),
            "v": _FORMAT_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
