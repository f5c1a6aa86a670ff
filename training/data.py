"""Training data: the mixture build's packed shards, memory-mapped, served in a deterministic order.

A phase's shards form a list of fixed windows of `seq_len + 1` tokens (window k of a shard starts at
k*seq_len; the leftover tail of each shard, < seq_len tokens, is skipped). The order is a keyed pseudo-random
permutation of the windows per epoch (a Feistel network with cycle walking), so the windows of any (seed,
step, rank) are computed in O(batch) without materialising a permutation of the whole dataset. The loader's
only state is the next step, which goes into the checkpoint; a background thread prepares the next batches
(pinned memory on CUDA).
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from training.shards import open_shard, token_dtype


# ---------------------------------------------------------------------------------------------- the manifest
@dataclass
class TokenFiles:
    """One token stream made of shard files (a phase's training shards, or one held-out source)."""

    name: str
    paths: list[Path]
    tokens: list[int]


@dataclass
class MixtureBuild:
    root: Path
    manifest: dict
    vocab_size: int
    eos_id: int
    dtype: np.dtype
    train: dict[str, TokenFiles]  # phase -> training shards
    heldout: dict[str, dict[str, TokenFiles]]  # phase -> source -> held-out shards


def _check_files(files: TokenFiles, dtype: np.dtype, where: str) -> None:
    for path, tokens in zip(files.paths, files.tokens):
        if not path.is_file():
            raise FileNotFoundError(f"{where}: shard {path} listed in manifest.json does not exist")
        size = path.stat().st_size
        if size != tokens * dtype.itemsize:
            raise ValueError(
                f"{where}: shard {path} has {size} bytes but manifest.json says tokens={tokens} "
                f"({tokens * dtype.itemsize} bytes of {dtype.name})"
            )


def read_mixture(root: str | Path) -> MixtureBuild:
    """Read and check a mixture build (DEVELOPERS.md, "The mixture build output"); errors name file and
    field."""
    root = Path(root)
    path = root / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"mixture build {root}: manifest.json not found (run `python -m training mixture build`)"
        )
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON: {e}") from None

    def field(obj: dict, key: str, where: str):
        if not isinstance(obj, dict) or key not in obj:
            raise ValueError(f"{path}: field {where}.{key} missing")
        return obj[key]

    tok = field(manifest, "tokenizer", "<root>")
    vocab_size, eos_id = int(field(tok, "vocab_size", "tokenizer")), int(field(tok, "eos_id", "tokenizer"))
    dtype = token_dtype(vocab_size)
    if np.dtype(manifest.get("dtype", dtype.name)) != dtype:
        raise ValueError(
            f"{path}: field dtype={manifest['dtype']!r} does not fit vocab_size={vocab_size} "
            f"(expected {dtype.name})"
        )
    train, heldout = {}, {}
    for i, phase in enumerate(field(manifest, "phases", "<root>")):
        where = f"phases[{i}]"
        name = field(phase, "name", where)
        folder = root / field(phase, "dir", where)
        shards = field(phase, "shards", where)
        train[name] = TokenFiles(
            name,
            [folder / field(s, "file", f"{where}.shards") for s in shards],
            [int(field(s, "tokens", f"{where}.shards")) for s in shards],
        )
        _check_files(train[name], dtype, f"{path} {where} ({name})")
        heldout[name] = {}
        for source, hshards in (phase.get("heldout") or {}).items():
            files = TokenFiles(
                source,
                [folder / field(s, "file", f"{where}.heldout.{source}") for s in hshards],
                [int(field(s, "tokens", f"{where}.heldout.{source}")) for s in hshards],
            )
            _check_files(files, dtype, f"{path} {where}.heldout.{source}")
            heldout[name][source] = files
    return MixtureBuild(root, manifest, vocab_size, eos_id, dtype, train, heldout)


# ---------------------------------------------------------------------------------------------- windows
class Windows:
    """Fixed windows of seq_len + 1 tokens over memory-mapped shards."""

    def __init__(self, files: TokenFiles, dtype: np.dtype, seq_len: int):
        self.name, self.seq_len = files.name, seq_len
        self.shards = [open_shard(p, dtype) for p in files.paths]
        per_shard = np.array([max(0, (t - 1) // seq_len) for t in files.tokens], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(per_shard)])  # first window id of each shard
        self.count = int(self.starts[-1])
        if self.count == 0:
            raise ValueError(
                f"{files.name}: {sum(files.tokens)} tokens in {len(files.paths)} shard(s) give no "
                f"window of seq_len+1={seq_len + 1} tokens"
            )
        desc = [(p.name, t) for p, t in zip(files.paths, files.tokens)]
        self.fingerprint = hashlib.sha256(json.dumps([desc, seq_len]).encode()).hexdigest()[:16]

    def gather(self, ids: np.ndarray) -> np.ndarray:
        """(len(ids), seq_len + 1) int64 tokens; work proportional to the batch, not to the shards."""
        shard_of = np.searchsorted(self.starts, ids, side="right") - 1
        out = np.empty((len(ids), self.seq_len + 1), dtype=np.int64)
        for row, (s, w) in enumerate(zip(shard_of, ids)):
            start = int(w - self.starts[s]) * self.seq_len
            out[row] = self.shards[s][start : start + self.seq_len + 1]
        return out


# ---------------------------------------------------------------------------------------------- the order
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray, key: np.uint64) -> np.ndarray:
    """splitmix64 finaliser of x ^ key (uint64 arithmetic wraps, as intended)."""
    x = x ^ key
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


class Permutation:
    """A keyed bijection of range(n): a 4-round Feistel network on the smallest even-width bit domain
    covering n, with cycle walking to stay inside range(n). O(1) memory, vectorised over a batch of
    indices."""

    def __init__(self, n: int, seed: int, epoch: int):
        self.n = n
        self.half = max(1, ((n - 1).bit_length() + 1) // 2)
        self.mask = np.uint64((1 << self.half) - 1)
        self.keys = np.random.SeedSequence([seed, epoch]).generate_state(4, dtype=np.uint64)

    def _round_trip(self, x: np.ndarray) -> np.ndarray:
        shift = np.uint64(self.half)
        left, right = x >> shift, x & self.mask
        for key in self.keys:
            left, right = right, left ^ (_mix(right, key) & self.mask)
        return (left << shift) | right

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        x = self._round_trip(np.asarray(idx, dtype=np.uint64))
        outside = x >= self.n
        while outside.any():  # expected < 4 walks: the domain is < 4n
            x[outside] = self._round_trip(x[outside])
            outside = x >= self.n
        return x.astype(np.int64)


def window_ids(count: int, seed: int, positions: np.ndarray) -> np.ndarray:
    """Window ids at global stream positions: epoch = position // count, shuffled per epoch."""
    epochs, offsets = np.divmod(positions, count)
    out = np.empty_like(positions)
    for epoch in np.unique(epochs):
        sel = epochs == epoch
        out[sel] = Permutation(count, seed, int(epoch))(offsets[sel])
    return out


# ---------------------------------------------------------------------------------------------- the loader
class TrainLoader:
    """Yields, per optimizer step, a (grad_accum, micro_batch, seq_len + 1) int64 tensor for this rank.

    Step s of the run uses stream positions [s*B, (s+1)*B) (B = global batch in sequences); rank r takes the
    r-th contiguous slice. So the data of a step depends only on (seed, step, rank, world size), and a run on
    1 process sees exactly the sequences that N processes see together."""

    def __init__(
        self,
        windows: Windows,
        *,
        seed: int,
        global_batch: int,
        micro_batch: int,
        rank: int,
        world_size: int,
        prefetch: int = 4,
        pin_memory: bool = False,
    ):
        if global_batch % (micro_batch * world_size):
            raise ValueError(
                f"global batch {global_batch} not divisible by micro_batch {micro_batch} x "
                f"world_size {world_size}"
            )
        self.windows, self.seed = windows, seed
        self.global_batch, self.micro_batch = global_batch, micro_batch
        self.rank, self.world_size = rank, world_size
        self.per_rank = global_batch // world_size
        self.prefetch, self.pin_memory = prefetch, pin_memory
        self.step = 0  # the next step to hand out
        self._queue: queue.Queue | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def batch_for_step(self, step: int) -> torch.Tensor:
        positions = (
            step * self.global_batch + self.rank * self.per_rank + np.arange(self.per_rank, dtype=np.int64)
        )
        tokens = self.windows.gather(window_ids(self.windows.count, self.seed, positions))
        batch = torch.from_numpy(tokens).view(-1, self.micro_batch, self.windows.seq_len + 1)
        return batch.pin_memory() if self.pin_memory else batch

    def _produce(self, first_step: int) -> None:
        step = first_step
        try:
            while not self._stop.is_set():
                item = (step, self.batch_for_step(step))
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                step += 1
        except BaseException as e:  # noqa: BLE001 -- handed to the training loop, not swallowed
            self._queue.put((step, e))

    def next(self) -> torch.Tensor:
        if self._thread is None:
            self._queue = queue.Queue(maxsize=self.prefetch)
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._produce, args=(self.step,), daemon=True, name=f"loader-{self.windows.name}"
            )
            self._thread.start()
        step, batch = self._queue.get()
        if isinstance(batch, BaseException):
            raise RuntimeError(f"data loader for {self.windows.name} failed at step {step}") from batch
        assert step == self.step, f"loader out of order: got step {step}, expected {self.step}"
        self.step += 1
        return batch

    def close(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "seed": self.seed,
            "global_batch": self.global_batch,
            "data": self.windows.fingerprint,
        }

    def load_state_dict(self, state: dict) -> None:
        mine = self.state_dict()
        for key in ("seed", "global_batch", "data"):
            if state.get(key) != mine[key]:
                raise ValueError(
                    f"checkpoint data-loader state does not match this run: {key} was "
                    f"{state.get(key)!r}, now {mine[key]!r}"
                )
        self.close()
        self.step = int(state["step"])


def eval_windows(windows: Windows, max_tokens: int, rank: int, world_size: int) -> np.ndarray:
    """The first windows of a held-out source (fixed across evals), this rank's share. Every rank gets the
    same number (FSDP needs every rank in every forward), so up to world_size - 1 windows are left out."""
    n = min(windows.count, max(1, max_tokens // windows.seq_len))
    n -= n % world_size
    return np.arange(n, dtype=np.int64)[rank::world_size]
