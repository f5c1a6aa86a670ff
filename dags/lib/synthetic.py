"""The synthetic_data DAG's logic: plan the shards of a `synthesis run`, and merge the shard versions
(each published by its own `synthesis run --shard i/n`) into one candidate version of the dataset
contract, which the `synthetic` gate validates before it is published.

Idempotent: shards publish under `<root>/_shards/<version>/shard-i-of-n` (a rerun of a shard replaces
it and its teacher store resumes), and the merge rebuilds `<root>/_candidates/<version>` from scratch.
"""
from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

SHARDS = "_shards"


def shard_specs(count: int) -> list[str]:
    if count < 1:
        raise ValueError(f"shards must be >= 1, got {count}")
    return [f"{i}/{count}" for i in range(count)]


def shard_run_id(spec: str) -> str:
    i, n = spec.split("/")
    return f"shard-{i}-of-{n}"


def check_recipes(path: str | Path) -> dict:
    """Load and validate the recipes file (clear error naming the file and field); a summary for XCom."""
    from synthesis.textbook.recipes import load_recipes

    rs = load_recipes(path)
    return {"name": rs.name, "recipes": {r.name: r.n for r in rs.recipes}}


def merge_shards(shard_dirs: list[str | Path], candidate_root: str | Path, version: str) -> Path:
    """One contract version from the shard versions: their data and rejects files side by side, stage
    counts summed per stage (each shard's chain holds, so the sum's does), the shards listed in `extra`."""
    from curation.contract import (
        Manifest,
        StageCounts,
        code_version,
        config_hash,
        iter_parquet_files,
        now_iso,
    )

    shard_dirs = [Path(d) for d in shard_dirs]
    manifests = [Manifest.read(d) for d in shard_dirs]
    staging = Path(candidate_root) / f".staging-{version}"
    final = Path(candidate_root) / version
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "data").mkdir(parents=True)
    (staging / "rejects").mkdir()
    for d in shard_dirs:
        for part in ("data", "rejects"):
            for f in iter_parquet_files(d, part):
                shutil.copy2(f, staging / part / f"{d.name}-{f.name}")
    order = [s.stage for s in manifests[0].stages] if manifests else []
    stages = []
    for name in order:
        rows = [s for m in manifests for s in m.stages if s.stage == name]
        reasons: Counter = Counter()
        for s in rows:
            reasons.update(s.reasons)
        stages.append(StageCounts(stage=name, rows_in=sum(s.rows_in for s in rows),
                                  rows_kept=sum(s.rows_kept for s in rows),
                                  rows_rejected=sum(s.rows_rejected for s in rows), reasons=dict(reasons)))
    conf = {"shards": [m.version for m in manifests], "shard_configs": [m.config_hash for m in manifests]}
    manifest = Manifest(
        dataset="synthetic", version=version, created_at=now_iso(), code_version=code_version(),
        inputs=[str(d) for d in shard_dirs], config=conf, config_hash=config_hash(conf), stages=stages,
        rows=sum(m.rows for m in manifests), rejected_rows=sum(m.rejected_rows for m in manifests),
        columns=manifests[0].columns if manifests else [],
        extra={"shards": {m.version: {"rows": m.rows, **{k: m.extra.get(k) for k in
                                                          ("teacher_model", "teacher_backend", "totals")}}
                          for m in manifests}})
    manifest.check()
    manifest.write(staging)
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    return final
