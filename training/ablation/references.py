"""The evaluation suite's data, fixed for a whole ablation and tokenized once with the shared tokenizer.

Reference sets (held-out loss): the held-out slice of every dataset the arms read (documents whose id hash the
mixture build holds out under the ablation's data seed: held out in every arm, whatever its filter, so no arm
trains on them), the decontamination benchmarks' texts (GSM8K, HumanEval, MBPP, MMLU questions) and the user's
text sets. MMLU also gives multiple-choice items scored by log-likelihood (mmlu/test, answers as indices 0-3).
"""

from __future__ import annotations

import csv
import glob as globlib
import gzip
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curation.paths import expand_env
from training.mixture import sources as S
from training.mixture.blend import heldout_mask
from training.mixture.encode import read_batches
from training.mixture.tokenizer import encode_documents, eos_id, load_tokenizer

log = logging.getLogger(__name__)


@dataclass
class DatasetRef:
    reference: str  # as the arm's mixture writes it
    registry: dict[str, str]


@dataclass
class McItem:
    context: list[int]
    choices: list[list[int]]
    answer: int


def _slug(text: str) -> str:
    return (
        re.sub(r"[^A-Za-z0-9_.-]+", "_", text.rstrip("/").split("/")[-1].removesuffix(".parquet")) or "data"
    )


def heldout_texts(ref: DatasetRef, seed: int, fraction: float) -> list[str]:
    res = S.resolve(ref.reference, None, ref.registry, Path.cwd())
    S.describe(S.connect(), res)
    out = []
    for b in read_batches(S.connect(), res, None):
        ids, texts = b.column(S.ID_COLUMN).to_pylist(), b.column(S.TEXT_COLUMN).to_pylist()
        out += [t for t, h in zip(texts, heldout_mask(ids, seed, fraction)) if h and t]
    return out


def _jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _mmlu_rows(folder: Path) -> list[dict]:
    rows = []
    for f in sorted((folder / "mmlu" / "test").glob("*_test.csv")):
        with open(f, newline="") as fh:
            rows += [dict(r, subject=f.stem.removesuffix("_test")) for r in csv.DictReader(fh)]
    return rows


def benchmark_texts(folder: Path) -> dict[str, list[str]]:
    """Reference text per benchmark: question + worked answer, prompt + solution, task + code."""
    out = {}
    if (folder / "gsm8k" / "test.jsonl").is_file():
        out["bench-gsm8k"] = [
            f"{r['question']}\n{r['answer']}" for r in _jsonl(folder / "gsm8k" / "test.jsonl")
        ]
    if (folder / "humaneval" / "HumanEval.jsonl.gz").is_file():
        out["bench-humaneval"] = [
            r["prompt"] + r["canonical_solution"] for r in _jsonl(folder / "humaneval" / "HumanEval.jsonl.gz")
        ]
    if (folder / "mbpp" / "mbpp.jsonl").is_file():
        out["bench-mbpp"] = [f"{r['text']}\n{r['code']}" for r in _jsonl(folder / "mbpp" / "mbpp.jsonl")]
    mmlu = _mmlu_rows(folder)
    if mmlu:
        out["bench-mmlu"] = [
            f"{r['question']}\n" + "\n".join(r[f"choice{k}"] for k in range(4)) for r in mmlu
        ]
    return out


def user_texts(path: str) -> list[str]:
    files = sorted(Path(p) for p in globlib.glob(path)) or [Path(path)]
    out = []
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"eval.texts: {f} does not exist")
        if f.suffix == ".txt":
            out.append(f.read_text())
        elif f.suffix == ".parquet":
            out += [t for (t,) in S.connect().sql(f"SELECT text FROM read_parquet('{f}')").fetchall() if t]
        else:
            out += [r["text"] for r in _jsonl(f) if r.get("text")]
    return out


def mmlu_items(folder: Path, n: int, seed: int, tok, eos: int) -> list[McItem]:
    """n questions drawn (seeded) across the 57 subjects; context "Question: ...\\nAnswer:", choices
    " <text>"."""
    rows = _mmlu_rows(folder)
    if not rows or n == 0:
        return []
    pick = np.random.default_rng(seed).choice(len(rows), size=min(n, len(rows)), replace=False)
    items = []
    for i in sorted(pick):
        r = rows[i]
        ctx = tok.encode(f"Question: {r['question']}\nAnswer:", add_special_tokens=False).ids
        choices = [tok.encode(" " + r[f"choice{k}"], add_special_tokens=False).ids or [eos] for k in range(4)]
        items.append(McItem([eos, *ctx], choices, int(r["answer"])))
    return items


def tokenize_set(tok, texts: list[str], eos: int, max_tokens: int) -> np.ndarray:
    """Documents in their given order, EOS after each, up to max_tokens + 1 tokens."""
    out, n = [], 0
    for start in range(0, len(texts), 256):
        flat, _ = encode_documents(tok, texts[start : start + 256], eos, np.dtype(np.int64))
        out.append(flat)
        n += len(flat)
        if n > max_tokens:
            break
    return np.concatenate(out)[: max_tokens + 1] if out else np.zeros(0, np.int64)


def build_suite(
    suite,
    datasets: list[DatasetRef],
    tokenizer_dir: str,
    eos_token: str,
    seed: int,
    fraction: float,
    folder: Path,
) -> tuple[dict[str, np.ndarray], list[McItem]]:
    """Tokenize every reference set into folder/<name>.npy (once: a rerun reads them back)."""
    folder.mkdir(parents=True, exist_ok=True)
    tok = load_tokenizer(tokenizer_dir)
    eos = eos_id(tok, eos_token)
    texts: dict[str, list[str]] = {}
    if suite.heldout:
        for ref in datasets:
            if ref.reference not in suite.heldout_exclude:
                texts.setdefault(f"heldout-{_slug(ref.reference)}", heldout_texts(ref, seed, fraction))
    bench = Path(expand_env(suite.benchmarks, "eval.benchmarks")) if suite.benchmarks else None
    if bench is not None:
        if not bench.is_dir():
            raise FileNotFoundError(f"eval.benchmarks: {bench} is not a folder")
        texts |= benchmark_texts(bench)
    for ts in suite.texts:
        texts[f"text-{ts.name}"] = user_texts(ts.path)
    sets = {}
    for name, docs in texts.items():
        f = folder / f"{name}.npy"
        if not f.is_file():
            np.save(f, tokenize_set(tok, docs, eos, suite.tokens))
        sets[name] = np.load(f)
        log.info("reference set %s: %d documents, %d tokens", name, len(docs), len(sets[name]))
    items = mmlu_items(bench, suite.mmlu_questions, seed, tok, eos) if bench is not None else []
    return sets, items
