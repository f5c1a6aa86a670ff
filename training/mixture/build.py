"""`mixture build`: validated YAML -> tokenizer + per-source token caches + one packed folder per phase +
manifest.json (layout in DEVELOPERS.md, "The mixture build output").

Incremental: every artefact carries a key over exactly what it depends on: the tokenizer (its config and the
content of the phase-1 sources it is trained on), each source cache (source content + filter + tokenizer),
each phase (its config, its sources' cache keys, seed, tokenizer). A rebuild into the same --output reuses
(hard links) whatever key is unchanged and says what it rebuilt and why. The new build is assembled beside the
old one and swapped in at the end, so a failed build leaves the previous one intact.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curation.contract import code_version, now_iso, replace_dir
from training.mixture import sources as S
from training.mixture.blend import CachedSource, heldout_mask, write_phase
from training.mixture.encode import non_empty, read_batches, read_cache, tokenize_source
from training.mixture.pins import hold_table_snapshots
from training.mixture.tokenizer import (
    copy_tokenizer,
    eos_id,
    load_tokenizer,
    save_tokenizer,
    tokenizer_hash,
    train_bpe,
)
from training.mixture.validate import CheckedMixture, check_mixture
from training.shards import token_dtype

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump when the build's layout changes: forces a full rebuild


def _code_hash(*modules: str) -> str:
    """Hash of the modules that produce an artefact: editing the encoder or the blend invalidates what they
    made."""
    here = Path(__file__).parent
    return hashlib.sha256(b"".join((here / f"{m}.py").read_bytes() for m in modules)).hexdigest()[:16]


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


@dataclass
class BuildResult:
    output: Path
    manifest: dict
    rebuilt: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _link_tree(src: Path, dst: Path) -> None:
    """Reuse a previous build's folder without copying bytes (same filesystem: the staging dir is a
    sibling)."""
    shutil.copytree(src, dst, copy_function=os.link)


def _previous_manifest(out: Path) -> dict | None:
    path = out / "manifest.json"
    if not path.is_file():
        return None
    try:
        m = json.loads(path.read_text())
    except json.JSONDecodeError:
        log.warning("previous manifest %s is unreadable: rebuilding everything", path)
        return None
    return m if m.get("build", {}).get("format_version") == FORMAT_VERSION else None


# ---- tokenizer -------------------------------------------------------------------------------------


def tokenizer_sample(cm: CheckedMixture, con, limit: int) -> Iterator[str]:
    """Up to `limit` training texts from the phase-1 sources, each source contributing by its weight; the
    pick is a hash of (seed, id), so it is deterministic and streams, and held-out documents are excluded."""
    cfg = cm.config
    for j, src in enumerate(cfg.phases[0].sources):
        res, st = cm.resolved[(0, j)], cm.stats[(0, j)]
        want = max(1, round(src.weight * limit))
        rate = min(1.0, want / max(st.documents - st.empty, 1))
        got = 0
        for b in read_batches(con, res, src.filter):
            b, _ = non_empty(b)
            ids = b.column(S.ID_COLUMN).to_pylist()
            held = heldout_mask(ids, cfg.seed, cfg.heldout_fraction)
            pick = heldout_mask(ids, cfg.seed + 1, rate)  # an independent hash stream at `rate`
            for text, h, p in zip(b.column(S.TEXT_COLUMN).to_pylist(), held, pick):
                if p and not h and got < want:
                    got += 1
                    yield text
            if got >= want:
                break
        log.info("tokenizer sample: %d documents from %s", got, src.name)


def _tokenizer(
    cm: CheckedMixture,
    con,
    content: dict,
    prev: dict | None,
    prev_dir: Path,
    staging: Path,
    result: BuildResult,
) -> tuple[str, str]:
    """Put the tokenizer in staging/tokenizer; return (key, how)."""
    tcfg = cm.config.tokenizer
    dest = staging / "tokenizer"
    if tcfg.path:
        key = _key(
            "path",
            tokenizer_hash(Path(tcfg.path))
            if Path(tcfg.path).is_dir()
            else hashlib.sha256(Path(tcfg.path).read_bytes()).hexdigest(),
            tcfg.eos_token,
        )
    else:
        phase1 = [(s.name, s.weight, content[(0, j)]) for j, s in enumerate(cm.config.phases[0].sources)]
        key = _key(
            "train",
            tcfg.train.model_dump(),
            tcfg.eos_token,
            cm.config.seed,
            cm.config.heldout_fraction,
            phase1,
        )
    if prev and prev.get("tokenizer", {}).get("key") == key and (prev_dir / "tokenizer").is_dir():
        _link_tree(prev_dir / "tokenizer", dest)
        result.reused.append("tokenizer")
        return key, "reused"
    result.rebuilt.append("tokenizer")
    if tcfg.path:
        copy_tokenizer(tcfg.path, dest, tcfg.eos_token)
        how = "loaded"
    else:
        t = tcfg.train
        tok = train_bpe(
            tokenizer_sample(cm, con, t.sample_documents), t.vocab_size, t.min_frequency, tcfg.eos_token
        )
        save_tokenizer(tok, dest, tcfg.eos_token)
        how = "trained"
    if prev:
        if prev.get("tokenizer", {}).get("hash") == tokenizer_hash(dest):
            result.notes.append(
                f"tokenizer {how} again (its inputs changed) and came out identical: token caches stay valid"
            )
        else:
            result.notes.append("tokenizer changed: every source is re-tokenized and every phase rebuilt")
    return key, how


# ---- the build -------------------------------------------------------------------------------------


def build(
    mixture_path: str | Path, output: str | Path, workers: int = 1, shared_cache: str | Path | None = None
) -> BuildResult:
    """`shared_cache`: a folder of source token caches shared by many builds (an ablation's arms read the same
    sources with one tokenizer); a cache is keyed by exactly what it depends on, so any build may reuse it."""
    t0 = time.perf_counter()
    cm = check_mixture(mixture_path)
    out = Path(output).resolve()
    if out.exists() and not (out / "manifest.json").is_file() and (not out.is_dir() or any(out.iterdir())):
        # the build replaces --output wholesale: never do that to a folder that is not a previous build
        raise ValueError(
            f"--output {out} exists and is not a mixture build (no manifest.json); "
            f"give an empty or new folder"
        )
    prev = _previous_manifest(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.staging-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    result = BuildResult(out, {})
    try:
        _build_into(cm, out, prev, staging, workers, result, Path(shared_cache) if shared_cache else None)
        replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    hold_table_snapshots(cm)
    result.seconds = time.perf_counter() - t0
    return result


def _share(folder: Path, shared: Path, key: str) -> None:
    """Offer a finished cache to other builds: linked into place under a temporary name, then renamed."""
    if (shared / key).exists():
        return
    tmp = shared / f".{key}.{uuid.uuid4().hex[:8]}"
    _link_tree(folder, tmp)
    try:
        tmp.rename(shared / key)
    except OSError:  # another build shared the same key first
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class _StagedTokenizer:
    """What the caches, the phases and the manifest need to know of the tokenizer in staging/tokenizer."""

    dir: Path
    eos: int
    vocab_size: int
    dtype: np.dtype
    hash: str

    @classmethod
    def load(cls, tok_dir: Path, eos_token: str) -> _StagedTokenizer:
        tok = load_tokenizer(tok_dir)
        vocab_size = tok.get_vocab_size()
        return cls(
            tok_dir, eos_id(tok, eos_token), vocab_size, token_dtype(vocab_size), tokenizer_hash(tok_dir)
        )


def _build_into(
    cm: CheckedMixture,
    out: Path,
    prev: dict | None,
    staging: Path,
    workers: int,
    result: BuildResult,
    shared: Path | None = None,
) -> None:
    cfg = cm.config
    con = S.connect()
    content = {
        ij: S.content_hash(res, cfg.phases[ij[0]].sources[ij[1]].filter) for ij, res in cm.resolved.items()
    }

    tok_key, tok_how = _tokenizer(cm, con, content, prev, out, staging, result)
    tok = _StagedTokenizer.load(staging / "tokenizer", cfg.tokenizer.eos_token)
    cache_keys = _source_caches(cm, con, content, tok, prev, out, staging, workers, result, shared)
    prev_phases = {p["name"]: p for p in prev.get("phases", [])} if prev else {}
    phases = [
        _phase(cm, i, content, cache_keys, tok, prev_phases.get(phase.name), out, staging, result)
        for i, phase in enumerate(cfg.phases)
    ]

    manifest = {
        "name": cfg.name,
        "seed": cfg.seed,
        "seq_len": cfg.seq_len,
        "dtype": tok.dtype.name,
        "tokenizer": {
            "path": "tokenizer",
            "vocab_size": tok.vocab_size,
            "eos_id": tok.eos,
            "eos_token": cfg.tokenizer.eos_token,
            "hash": tok.hash,
            "key": tok_key,
            "how": tok_how,
        },
        "mixture_yaml": cm.text,
        "phases": phases,
        "created_at": now_iso(),
        "code_version": code_version(),
        "build": {
            "format_version": FORMAT_VERSION,
            "caches": sorted(set(cache_keys.values())),
            "rebuilt": result.rebuilt,
            "reused": result.reused,
            "notes": result.notes,
        },
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2))
    result.manifest = manifest


def _source_caches(
    cm: CheckedMixture,
    con,
    content: dict,
    tok: _StagedTokenizer,
    prev: dict | None,
    out: Path,
    staging: Path,
    workers: int,
    result: BuildResult,
    shared: Path | None,
) -> dict[tuple[int, int], str]:
    """Token caches in staging/cache, one per distinct (content, tokenizer): a source used by two phases is
    tokenized once. Returns each (phase, source)'s cache key."""
    cfg = cm.config
    prev_caches = set(prev.get("build", {}).get("caches", [])) if prev else set()
    cache_keys: dict[tuple[int, int], str] = {}
    for (i, j), res in cm.resolved.items():
        key = _key(content[(i, j)], tok.hash, FORMAT_VERSION, _code_hash("encode", "sources"))
        cache_keys[(i, j)] = key
        folder = staging / "cache" / key
        if folder.exists():
            continue
        name = f"{cfg.phases[i].name}/{cfg.phases[i].sources[j].name}"
        if key in prev_caches and (out / "cache" / key / "COMPLETE").is_file():
            _link_tree(out / "cache" / key, folder)
            result.reused.append(f"source {name}")
        elif shared is not None and (shared / key / "COMPLETE").is_file():
            _link_tree(shared / key, folder)
            result.reused.append(f"source {name} (shared cache)")
        else:
            tokenize_source(
                con, res, cfg.phases[i].sources[j].filter, tok.dir, tok.eos, tok.dtype, folder, workers, name
            )
            result.rebuilt.append(f"source {name}")
            if shared is not None:
                shared.mkdir(parents=True, exist_ok=True)
                _share(folder, shared, key)
    return cache_keys


def _phase(
    cm: CheckedMixture,
    i: int,
    content: dict,
    cache_keys: dict[tuple[int, int], str],
    tok: _StagedTokenizer,
    old: dict | None,
    out: Path,
    staging: Path,
    result: BuildResult,
) -> dict:
    """Phase i's packed folder in staging (reused from the previous build `old` when its key is unchanged);
    returns its manifest entry."""
    cfg = cm.config
    phase = cfg.phases[i]
    pkey = _key(
        phase.model_dump(),
        [cache_keys[(i, j)] for j in range(len(phase.sources))],
        cfg.seed,
        cfg.heldout_fraction,
        cfg.shard_tokens,
        tok.hash,
        FORMAT_VERSION,
        _code_hash("blend"),
    )
    if old and old.get("key") == pkey and (out / old["dir"]).is_dir():
        _link_tree(out / old["dir"], staging / phase.name)
        result.reused.append(f"phase {phase.name}")
        return {**old, "dir": phase.name}
    cached = []
    for j, s in enumerate(phase.sources):
        tokens, offsets, docs = read_cache(staging / "cache" / cache_keys[(i, j)], tok.dtype)
        cached.append(CachedSource(s.name, s.weight, s.max_epochs, cache_keys[(i, j)], tokens, offsets, docs))
    pr = write_phase(
        cached,
        phase.tokens,
        cfg.seed,
        cfg.heldout_fraction,
        staging / phase.name,
        tok.dtype,
        cfg.shard_tokens,
    )
    srcs = []
    for j, s in enumerate(phase.sources):
        res = cm.resolved[(i, j)]
        st = cm.stats[(i, j)]
        srcs.append(
            {
                "name": s.name,
                "dataset": res.label,
                "version": res.version,
                "files": list(res.files),  # what was read: a rebuild can read the same files
                "filter": s.filter,
                **pr.per_source[s.name],
                "max_epochs": s.max_epochs,
                "skipped_empty": st.empty,
                "content_hash": content[(i, j)],
                "cache": cache_keys[(i, j)],
            }
        )
    result.rebuilt.append(f"phase {phase.name}")
    return {
        "name": phase.name,
        "dir": phase.name,
        "key": pkey,
        "tokens": pr.tokens,
        "budget": phase.tokens,
        "shards": [sh.to_dict() for sh in pr.shards],
        "sources": srcs,
        "heldout": pr.heldout,
        "documents_table": "documents.parquet",
    }
