"""Blend a phase's sources into packed shards at their target token ratios (Megatron-style).

Each next document comes from the source furthest behind its target share of the tokens emitted so far
(argmax of weight * emitted_total - emitted_by_source), so the mix tracks the targets at every point, not just
at the end, and the order is a pure function of the seed. Within a source, documents are drawn in a seeded
permutation per epoch; a source repeats (up to `max_epochs`) when its budget exceeds one epoch.
Held-out documents (chosen by a hash of seed and document id) are written to heldout/<source>/ and never to
the training shards.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from training.shards import ShardInfo, ShardWriter

log = logging.getLogger(__name__)


def id_hashes(ids: list[str], seed: int) -> np.ndarray:
    return np.fromiter(
        (xxhash.xxh64_intdigest(f"{seed}:{i}".encode()) for i in ids), dtype=np.uint64, count=len(ids)
    )


def heldout_mask(ids: list[str], seed: int, fraction: float) -> np.ndarray:
    """True for held-out documents. A function of (seed, id) only, so a document is held out in every
    source (filter) that contains it and across phases."""
    if fraction <= 0:
        return np.zeros(len(ids), dtype=bool)
    return id_hashes(ids, seed) < np.uint64(min(int(fraction * 2**64), 2**64 - 1))


def heldout_for_source(ids: list[str], seed: int, fraction: float) -> np.ndarray:
    """The held-out mask of one source; a small source the hash gives no held-out document still gets one
    (its lowest hash), so the trainer can evaluate every source."""
    held = heldout_mask(ids, seed, fraction)
    if fraction > 0 and not held.any() and len(ids) > 1:
        held[int(np.argmin(id_hashes(ids, seed)))] = True
    return held


def stream_seed(seed: int, source_key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{source_key}".encode()).digest()[:8], "little")


@dataclass
class SourceStream:
    """A source's training documents in per-epoch seeded permutations."""

    name: str
    weight: float
    docs: np.ndarray  # indices into the cache of the training (non-held-out) documents
    lengths: np.ndarray  # token length of every cached document (EOS included)
    seed: int
    epoch: int = 0
    pos: int = 0
    order: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        self.order = self._permutation(0)

    def _permutation(self, epoch: int) -> np.ndarray:
        return self.docs[np.random.default_rng([self.seed, epoch]).permutation(len(self.docs))]

    def _roll(self) -> None:
        if self.pos == len(self.order):
            self.epoch += 1
            self.order, self.pos = self._permutation(self.epoch), 0

    def upcoming(self, k: int) -> np.ndarray:
        """The next (up to) k documents of the current epoch, in order."""
        self._roll()
        return self.order[self.pos : self.pos + k]

    def next(self, skip: int = 0) -> tuple[int, int]:
        """(cache document index, epoch). `skip` > 0 takes the document that many places ahead instead,
        swapping it with the head so the skipped ones stay next in line (each document still once per
        epoch)."""
        self._roll()
        if skip:
            i, j = self.pos, self.pos + skip
            self.order[i], self.order[j] = self.order[j], self.order[i]
        doc = int(self.order[self.pos])
        self.pos += 1
        return doc, self.epoch

    @property
    def available_tokens(self) -> int:
        return int(self.lengths[self.docs].sum())


ENDGAME_WINDOW = 16  # documents a source may look ahead in its permutation during the end game


def schedule(streams: list[SourceStream], budget: int) -> list[tuple[int, int, int]]:
    """The blended order: (source index, cache document index, epoch) until `budget` tokens are emitted.

    Megatron's rule on tokens instead of samples: the next document comes from the source furthest behind its
    target share of everything emitted so far, so the mix tracks the targets at every point within about one
    document. Documents are never split, so that one document would also be the final error; in the end game
    (the last two longest-documents' worth of the budget) the source furthest behind therefore takes, from its
    next ENDGAME_WINDOW documents, the one whose length best closes its gap. (A lookahead over the whole
    phase was tried: it postpones long documents to the end and overshoots the budget.) Ties go to the first
    candidate, so the order is a pure function of the streams."""
    weights = np.array([s.weight for s in streams], dtype=np.float64)
    emitted = np.zeros(len(streams), dtype=np.float64)
    longest = max(int(s.lengths[s.docs].max()) for s in streams)
    total = 0
    out = []
    while total < budget:
        deficit = weights * total - emitted
        d = int(np.argmax(deficit))
        skip = 0
        if budget - total <= 2 * longest:
            cand = streams[d].lengths[streams[d].upcoming(ENDGAME_WINDOW)]
            # taking x tokens from d moves its gap from deficit[d] to deficit[d] - (1 - w_d) x
            skip = int(np.argmin(np.abs(deficit[d] - (1 - weights[d]) * cand)))
        doc, epoch = streams[d].next(skip)
        n = int(streams[d].lengths[doc])
        out.append((d, doc, epoch))
        emitted[d] += n
        total += n
    return out


@dataclass
class CachedSource:
    name: str
    weight: float
    max_epochs: float
    key: str  # cache key: content + tokenizer
    tokens: np.ndarray  # memory-mapped cache tokens
    offsets: np.ndarray  # start of each cached document
    docs: pa.Table  # id, url, edu_score, tokens
    lengths: np.ndarray = field(init=False)  # tokens per cached document (EOS included)

    def __post_init__(self) -> None:
        self.lengths = self.docs["tokens"].to_numpy()


@dataclass
class PhaseResult:
    shards: list[ShardInfo]
    heldout: dict[str, list[dict]]
    per_source: dict[str, dict]
    tokens: int


def _documents_rows(split: str, src: CachedSource, idx: np.ndarray, epochs: np.ndarray) -> pa.Table:
    """documents.parquet rows (without shard/offset) for documents `idx` of one source."""
    t = src.docs.take(pa.array(idx, pa.int64()))
    n = t.num_rows
    return pa.table(  # typed, so an empty split (no held-out document) concatenates with the others
        {
            "split": pa.array([split] * n, pa.string()),
            "source": pa.array([src.name] * n, pa.string()),
            "id": t["id"],
            "url": t["url"],
            "edu_score": t["edu_score"],
            "tokens": t["tokens"],
            "epoch": pa.array(epochs, pa.int32()),
        }
    )


def _with_locations(rows: pa.Table, shards: list[ShardInfo], folder: Path, prefix: str = "") -> pa.Table:
    """Add each document's shard file and start offset; `rows` are in the order the documents were written."""
    shard = np.repeat([prefix + sh.file for sh in shards], [sh.documents for sh in shards]).tolist()
    return rows.append_column("shard", pa.array(shard, pa.string())).append_column(
        "offset", pa.array(_offsets_in_shards(shards, folder), pa.int64())
    )


def _streams(
    sources: list[CachedSource], budget: int, seed: int, heldout_fraction: float, phase: str
) -> tuple[list[SourceStream], list[np.ndarray]]:
    """Split each source into held-out and training documents; refuse a budget beyond a repetition cap."""
    streams, heldout_idx = [], []
    for s in sources:
        ids = s.docs["id"].to_pylist()
        held = heldout_for_source(ids, seed, heldout_fraction)
        if held.all():
            raise ValueError(
                f"source {s.name!r}: all {len(ids)} documents are held out"
                f" (heldout_fraction {heldout_fraction}); lower it"
            )
        stream = SourceStream(s.name, s.weight, np.flatnonzero(~held), s.lengths, stream_seed(seed, s.key))
        needed = s.weight * budget / stream.available_tokens
        if needed > s.max_epochs:
            raise ValueError(
                f"phase {phase}: source {s.name!r} needs {needed:.2f} epochs of its"
                f" {stream.available_tokens:,} training tokens for {s.weight:g} x {budget:,},"
                f" over max_epochs {s.max_epochs:g}"
            )
        streams.append(stream)
        heldout_idx.append(np.flatnonzero(held))
    return streams, heldout_idx


def _write_training(
    sources: list[CachedSource],
    order: list[tuple[int, int, int]],
    folder: Path,
    dtype: np.dtype,
    shard_tokens: int,
) -> tuple[list[ShardInfo], pa.Table]:
    writer = ShardWriter(folder, dtype, shard_tokens)
    for d, doc, _ in order:
        s = sources[d]
        start = int(s.offsets[doc])
        writer.add_document(s.tokens[start : start + int(s.lengths[doc])])
    shards = writer.close()
    # documents.parquet rows: taken per source (vectorised), then put back in write order.
    plan = np.array(order, dtype=np.int64).reshape(-1, 3)
    parts = []
    for d, s in enumerate(sources):
        mine = np.flatnonzero(plan[:, 0] == d)
        rows = _documents_rows("train", s, plan[mine, 1], plan[mine, 2])
        parts.append(rows.append_column("pos", pa.array(mine, pa.int64())))
    rows = pa.concat_tables(parts).sort_by("pos").drop_columns(["pos"])
    return shards, _with_locations(rows, shards, folder)


def _write_heldout(
    sources: list[CachedSource],
    heldout_idx: list[np.ndarray],
    folder: Path,
    dtype: np.dtype,
    shard_tokens: int,
) -> tuple[dict[str, list[dict]], list[pa.Table]]:
    heldout, tables = {}, []
    for s, idx in zip(sources, heldout_idx):
        if len(idx) == 0:  # heldout_fraction 0 (or a one-document source): nothing to write or evaluate
            continue
        sub = folder / "heldout" / s.name
        hw = ShardWriter(sub, dtype, shard_tokens)
        for doc in idx:
            start = int(s.offsets[doc])
            hw.add_document(s.tokens[start : start + int(s.lengths[doc])])
        infos = hw.close()
        heldout[s.name] = [{**i.to_dict(), "file": f"heldout/{s.name}/{i.file}"} for i in infos]
        rows = _documents_rows("heldout", s, idx, np.zeros(len(idx), dtype=np.int64))
        tables.append(_with_locations(rows, infos, sub, prefix=f"heldout/{s.name}/"))
    return heldout, tables


def write_phase(
    sources: list[CachedSource],
    budget: int,
    seed: int,
    heldout_fraction: float,
    folder: Path,
    dtype: np.dtype,
    shard_tokens: int,
) -> PhaseResult:
    """Write one phase: training shards, held-out shards per source, and documents.parquet (one row per
    written document: split, source, id, url, edu_score, tokens, epoch, shard file, offset in the shard)."""
    streams, heldout_idx = _streams(sources, budget, seed, heldout_fraction, folder.name)
    order = schedule(streams, budget)
    shards, train_table = _write_training(sources, order, folder, dtype, shard_tokens)
    heldout, held_tables = _write_heldout(sources, heldout_idx, folder, dtype, shard_tokens)
    pq.write_table(pa.concat_tables([train_table, *held_tables]), folder / "documents.parquet")

    total = int(sum(sh.tokens for sh in shards))
    src_of = [d for d, _, _ in order]
    emitted = np.bincount(
        src_of, weights=[sources[d].lengths[doc] for d, doc, _ in order], minlength=len(sources)
    )
    count = np.bincount(src_of, minlength=len(sources))
    per_source = {}
    for d, (s, stream, idx) in enumerate(zip(sources, streams, heldout_idx)):
        per_source[s.name] = {
            "documents": int(count[d]),
            "tokens": int(emitted[d]),
            "epochs": float(emitted[d]) / stream.available_tokens,
            "target_weight": s.weight,
            "realised_weight": float(emitted[d]) / total if total else 0.0,
            "available_documents": len(stream.docs),
            "available_tokens": stream.available_tokens,
            "heldout_documents": len(idx),
            "heldout_tokens": int(s.lengths[idx].sum()),
        }
    log.info(
        "phase %s: %d tokens in %d shard(s); %s",
        folder.name,
        total,
        len(shards),
        ", ".join(f"{k} {v['realised_weight']:.4f}/{v['target_weight']:.4f}" for k, v in per_source.items()),
    )
    return PhaseResult(shards, heldout, per_source, total)


def _offsets_in_shards(shards: list[ShardInfo], folder: Path) -> list[int]:
    """Start offset of every written document within its shard, read back from the shard indexes."""
    out: list[int] = []
    for sh in shards:
        out.extend(np.load(folder / sh.file.replace(".bin", ".idx.npy")).tolist())
    return out
