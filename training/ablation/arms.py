"""Arms -> mixture YAMLs that differ only in what the arm changes, then built with the shared tokenizer.

Every arm's mixture gets the ablation's tokenizer folder, data seed, held-out fraction, the proxy's seq_len
and the same per-phase budget (the proxy's steps x tokens/step plus what shard tails leave unread), so arms
differ only in their data. An arm whose mixture would train its own tokenizer (`tokenizer.train`) gets the
shared one instead; an arm that names a tokenizer folder with another hash is refused: losses under two
vocabularies do not compare."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import yaml

from training.mixture.tokenizer import META_FILE, TOKENIZER_FILE, tokenizer_hash

SHARD_TOKENS = 1 << 20
_EDU = re.compile(r"edu_score\s*>=?\s*-?[0-9.]+(?:e-?[0-9]+)?")


def shared_tokenizer(path: str | Path) -> dict:
    """The shared tokenizer's hash and EOS (from tokenizer.meta.json when the folder is an artifact)."""
    p = Path(path)
    if not (p / TOKENIZER_FILE).is_file():
        raise FileNotFoundError(
            f"tokenizer {p}: no {TOKENIZER_FILE} (train one with `python -m training tokenizer"
            " train --mixture BASE.yaml --output DIR`)"
        )
    meta = json.loads((p / META_FILE).read_text()) if (p / META_FILE).is_file() else {}
    return {
        "path": str(p.resolve()),
        "hash": tokenizer_hash(p),
        "eos_token": meta.get("eos_token", "<|endoftext|>"),
    }


def steps_for(tokens: int, global_batch_tokens: int) -> int:
    return max(1, tokens // global_batch_tokens)


def build_budget(steps: int, global_batch_tokens: int, seq_len: int) -> int:
    """Tokens to build so that `steps` steps never wrap: each shard's tail (< seq_len) is not served."""
    want = steps * global_batch_tokens
    return want + seq_len * (want // SHARD_TOKENS + 2)


def _with_edu_threshold(where: str | None, threshold: float) -> str:
    clause = f"edu_score >= {threshold:g}"
    if where and _EDU.search(where):
        return _EDU.sub(clause, where)
    return f"({where}) AND {clause}" if where else clause


def apply_variations(mix: dict, variations: list, where: str) -> dict:
    """The base mixture with each variation applied (weights renormalised per phase after a scale)."""
    out = copy.deepcopy(mix)
    phases = {p.get("name"): p for p in out.get("phases", [])}
    for k, v in enumerate(variations):
        at = f"{where}.variations[{k}]"
        if v.phase not in phases:
            raise ValueError(f"{at}: base mixture has no phase {v.phase!r} (it has {sorted(phases)})")
        sources = {s.get("name"): s for s in phases[v.phase]["sources"]}
        if v.source not in sources:
            raise ValueError(f"{at}: phase {v.phase!r} has no source {v.source!r} (it has {sorted(sources)})")
        src = sources[v.source]
        if v.filter is not None:
            src["filter"] = v.filter or None
        elif v.dataset is not None:
            src["dataset"] = v.dataset
            src.pop("version", None)
        elif v.edu_threshold is not None:
            src["filter"] = _with_edu_threshold(src.get("filter"), v.edu_threshold)
        else:
            src["weight"] = src["weight"] * v.scale_weight
            total = sum(s["weight"] for s in phases[v.phase]["sources"])
            for s in phases[v.phase]["sources"]:
                s["weight"] = s["weight"] / total
    return out


def arm_mixture(
    mix: dict,
    source_file: Path,
    name: str,
    tok: dict,
    budgets: dict[str, int],
    seq_len: int,
    data_seed: int,
    heldout_fraction: float,
) -> dict:
    """Pin everything but the data: tokenizer, seed, held-out fraction, seq_len, phases and their budgets."""
    out = copy.deepcopy(mix)
    given = (mix.get("tokenizer") or {}).get("path")
    if given:
        p = Path(given) if Path(given).is_absolute() else source_file.parent / given
        if not p.exists():
            p = Path(given)  # mixtures resolve tokenizer.path against the working directory
        if tokenizer_hash(p) != tok["hash"]:
            raise ValueError(
                f"arm {name!r} ({source_file}): its tokenizer.path {given} (hash "
                f"{tokenizer_hash(p)[:12]}) is not the ablation's tokenizer {tok['path']} (hash "
                f"{tok['hash'][:12]}): losses under two vocabularies do not compare"
            )
    out["name"] = f"{mix.get('name', 'mixture')}-{name}"
    out["tokenizer"] = {"path": tok["path"], "eos_token": tok["eos_token"]}
    out.update(seed=data_seed, heldout_fraction=heldout_fraction, seq_len=seq_len, shard_tokens=SHARD_TOKENS)
    if isinstance(out.get("registry"), str) and not Path(out["registry"]).is_absolute():
        out["registry"] = str((source_file.parent / out["registry"]).resolve())
    phases = {p["name"]: p for p in out.get("phases", [])}
    missing = sorted(set(budgets) - set(phases))
    if missing:
        raise ValueError(f"arm {name!r} ({source_file}): no phase {missing} (it has {sorted(phases)})")
    out["phases"] = [dict(phases[p], tokens=budgets[p]) for p in budgets]
    return out


def write_yaml(data: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
