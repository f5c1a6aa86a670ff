"""The mixture's tokenizer: train a byte-level BPE with HF `tokenizers` on a sample of the phase-1 sources,
or load a tokenizer folder the user gives (e.g. the teacher's). Saved with the shards; hashed into the
manifest. Also the Arrow-batched document encoder the build and the benchmark share."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import shutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from curation.progress import Ticker

log = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"


def load_tokenizer(path: str | Path) -> Tokenizer:
    """A folder holding tokenizer.json, or the tokenizer.json file itself."""
    p = Path(path)
    f = p / TOKENIZER_FILE if p.is_dir() else p
    if not f.is_file():
        raise FileNotFoundError(f"tokenizer: no {TOKENIZER_FILE} at {p}")
    try:
        return Tokenizer.from_file(str(f))
    except Exception as e:  # noqa: BLE001 - the Rust side raises a bare Exception with the serde message
        raise ValueError(f"tokenizer {f} does not load: {e}") from None


def eos_id(tok: Tokenizer, eos_token: str) -> int:
    i = tok.token_to_id(eos_token)
    if i is None:
        raise ValueError(
            f"tokenizer has no token {eos_token!r} to use as end-of-document"
            f" (set tokenizer.eos_token to one of its special tokens)"
        )
    return i


def train_bpe(
    texts: Iterable[str], vocab_size: int, min_frequency: int, eos_token: str, length: int | None = None
) -> Tokenizer:
    """Byte-level BPE (GPT-2 style, lossless on any UTF-8 text) with EOS as the only special token (id 0)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[eos_token],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=sys.stderr.isatty(),  # the library's own bar, in a terminal only
    )
    tok.train_from_iterator(_ticking(texts, length), trainer=trainer, length=length)
    log.info("trained byte-level BPE: vocab %d (asked %d)", tok.get_vocab_size(), vocab_size)
    return tok


def _ticking(texts: Iterable[str], length: int | None) -> Iterator[str]:
    """The training texts, with a progress line per interval while the sample is read (curation.progress),
    and one when the reading ends and the merges are computed."""
    ticker = Ticker("tokenizer training: reading the sample", total=length, unit="docs")
    n = chars = 0
    for text in texts:
        n += 1
        chars += len(text)
        ticker.update(n, extra=f"{chars:,} chars")
        yield text
    ticker.finish(n, extra=f"{chars:,} chars; computing the merges")


def save_tokenizer(tok: Tokenizer, folder: str | Path, eos_token: str) -> Path:
    """tokenizer.json plus a tokenizer_config.json so `transformers.AutoTokenizer` can load the folder too."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / TOKENIZER_FILE))
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "eos_token": eos_token,
                "bos_token": eos_token,
                "unk_token": eos_token,
                "model_max_length": 1_000_000_000,
            },
            indent=2,
        )
    )
    return out


def copy_tokenizer(src: str | Path, folder: str | Path, eos_token: str) -> Path:
    """Copy a user-given tokenizer as is (its own tokenizer_config.json, chat template, special tokens map
    included); add our tokenizer_config.json only where it has none."""
    p, out = Path(src), Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    files = [f for f in p.iterdir() if f.is_file()] if p.is_dir() else [p]
    for f in files:
        shutil.copyfile(f, out / (TOKENIZER_FILE if f == p else f.name))
    if not (out / "tokenizer_config.json").is_file():
        (out / "tokenizer_config.json").write_text(
            json.dumps({"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": eos_token}, indent=2)
        )
    return out


def tokenizer_hash(folder: str | Path) -> str:
    return hashlib.sha256((Path(folder) / TOKENIZER_FILE).read_bytes()).hexdigest()


def encode_documents(
    tok: Tokenizer, texts: list[str], eos: int, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    """Encode a batch (Rust-parallel, no offsets) and pack it: flat token array with EOS after each document,
    plus each document's length (EOS included). Ids stream straight into one numpy array (no per-document
    arrays), then one vectorised insert places the EOS tokens."""
    encodings = tok.encode_batch_fast(texts, add_special_tokens=False)
    raw = np.fromiter((len(e) for e in encodings), dtype=np.int64, count=len(encodings))
    body = np.fromiter(
        itertools.chain.from_iterable(e.ids for e in encodings), dtype=dtype, count=int(raw.sum())
    )
    return np.insert(body, np.cumsum(raw), np.asarray(eos, dtype=dtype)), raw + 1


def iter_sample_texts(batches: Iterator[list[str]], limit: int) -> Iterator[str]:
    n = 0
    for batch in batches:
        for t in batch:
            if n >= limit:
                return
            yield t
            n += 1


META_FILE = "tokenizer.meta.json"


def write_meta(folder: str | Path, eos_token: str, trained_on: dict) -> dict:
    """tokenizer.meta.json beside tokenizer.json: the hash (what a build's manifest records as tokenizer.hash,
    so arms built from this folder can be checked for one vocabulary), vocab size, EOS and what it was trained
    on."""
    from curation.contract import code_version, now_iso

    out = Path(folder)
    tok = load_tokenizer(out)
    meta = {
        "hash": tokenizer_hash(out),
        "vocab_size": tok.get_vocab_size(),
        "eos_token": eos_token,
        "eos_id": eos_id(tok, eos_token),
        "trained_on": trained_on,
        "created_at": now_iso(),
        "code_version": code_version(),
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=2))
    return meta
