"""One way for tests to describe a dataset version they wrote by hand (synthetic shards, mixture sources)."""

from __future__ import annotations

from typing import Any

from curation.contract import Manifest, StageCounts, config_hash, now_iso


def make_manifest(
    dataset: str,
    version: str,
    rows: int,
    *,
    columns: list[str],
    stages: list[StageCounts] | None = None,
    rejected_rows: int = 0,
    config: dict[str, Any] | None = None,
) -> Manifest:
    """A checked manifest; `stages` default to one `generate` stage that kept every row."""
    config = config or {}
    m = Manifest(
        dataset=dataset,
        version=version,
        created_at=now_iso(),
        code_version="test",
        inputs=[],
        config=config,
        config_hash=config_hash(config),
        rows=rows,
        rejected_rows=rejected_rows,
        columns=columns,
        stages=stages
        if stages is not None
        else [StageCounts(stage="generate", rows_in=rows, rows_kept=rows, rows_rejected=0)],
    )
    m.check()
    return m
