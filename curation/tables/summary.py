"""The `phi.*` properties of a snapshot's summary: how a run describes its snapshot (`summary_properties`,
`manifest_summary`, written by curation/tables/commit.py) and how readers get the description back
(`summary_value`)."""

from __future__ import annotations

import json
from typing import Any

from curation.contract_manifest import Manifest

RUN_ID = "phi.run-id"
PREFIX = "phi."


def _property(key: str) -> str:
    return PREFIX + key.replace("_", "-")


def summary_properties(run_id: str, summary: dict[str, Any] | None) -> dict[str, str]:
    """`phi.*` snapshot properties: strings stay as they are, everything else is JSON."""
    props = {RUN_ID: run_id}
    for key, value in (summary or {}).items():
        props[_property(key)] = value if isinstance(value, str) else json.dumps(value)
    return props


def summary_value(summary, key: str, default: Any = None) -> Any:
    """What `summary_properties` stored under `key` (e.g. "stages", "base_snapshot_id"), decoded; `default`
    when the snapshot has no such property."""
    raw = summary.get(_property(key)) if summary is not None else None
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        return raw  # strings are stored as they are


def manifest_summary(manifest: Manifest) -> dict[str, Any]:
    """What a folder-contract manifest says about a version, as `commit_version`'s `summary`: everything a
    gate or a report needs to read the snapshot as a version (curation/tables/version.py), config included
    (~3 KB: the gate's language list comes from it). Not the input list, only its length: a night of a web
    crawl reads thousands of files, and every snapshot's summary is kept in the table's metadata file."""
    out: dict[str, Any] = {
        "dataset": manifest.dataset,
        "input_files": len(manifest.inputs),
        "config": manifest.config,
        "rows": manifest.rows,
        "rejected_rows": manifest.rejected_rows,
        "config_hash": manifest.config_hash,
        "code_version": manifest.code_version,
        "created_at": manifest.created_at,
        "stages": [s.model_dump(exclude_none=True) for s in manifest.stages],
    }
    if manifest.base_version:
        out.update(base_version=manifest.base_version, base_rows=manifest.base_rows)
    return out
