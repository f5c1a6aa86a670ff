"""Packed token shards: the on-disk format the mixture build writes and the trainer memory-maps.

A phase folder holds `shard-NNNNN.bin` (raw little-endian token ids, dtype from the vocab size, documents
concatenated with EOS after each) and `shard-NNNNN.idx.npy` (int64 start offset of every document in the
shard, for round trips and per-document statistics). The mixture manifest lists the shards with their
token counts; a training sample is a window of `seq_len + 1` consecutive tokens.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 while every id fits (halves disk and page-cache traffic), else uint32."""
    return np.dtype("<u2") if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype("<u4")


@dataclass
class ShardInfo:
    file: str  # name of the .bin file, relative to the phase folder
    tokens: int
    documents: int

    def to_dict(self) -> dict:
        return asdict(self)


class ShardWriter:
    """Append token arrays; roll over to a new shard after `shard_tokens` tokens (documents never split
    across shards, so a shard may run over by one document)."""

    def __init__(self, folder: str | Path, dtype: np.dtype, shard_tokens: int = 1 << 26):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.dtype = np.dtype(dtype)
        self.shard_tokens = shard_tokens
        self.shards: list[ShardInfo] = []
        self._fh = None
        self._offsets: list[int] = []
        self._count = 0

    def _open(self) -> None:
        name = f"shard-{len(self.shards):05d}.bin"
        self._fh = open(self.folder / name, "wb")
        self.shards.append(ShardInfo(file=name, tokens=0, documents=0))
        self._offsets, self._count = [], 0

    def _close(self) -> None:
        if self._fh is None:
            return
        self._fh.close()
        info = self.shards[-1]
        info.tokens, info.documents = self._count, len(self._offsets)
        np.save(
            self.folder / info.file.replace(".bin", ".idx.npy"), np.asarray(self._offsets, dtype=np.int64)
        )
        self._fh = None

    def add_document(self, tokens: np.ndarray) -> None:
        """`tokens` must already end with EOS."""
        if self._fh is None:
            self._open()
        arr = np.asarray(tokens, dtype=self.dtype)
        self._offsets.append(self._count)
        self._fh.write(arr.tobytes())
        self._count += len(arr)
        if self._count >= self.shard_tokens:
            self._close()

    def close(self) -> list[ShardInfo]:
        self._close()
        return self.shards


def open_shard(path: str | Path, dtype: np.dtype) -> np.memmap:
    """Memory-map a shard read-only (no copy, no per-step work proportional to its size)."""
    return np.memmap(path, dtype=np.dtype(dtype), mode="r")


def document_offsets(bin_path: str | Path) -> np.ndarray:
    return np.load(str(bin_path).replace(".bin", ".idx.npy"))
