"""Ablation and search results as a dataset (curation.contract layout) so sql/ can query them:
OUTPUT/results/<run_id>/{data/results.parquet, manifest.json} + CURRENT. One row per (arm, seed, metric,
reference set)."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curation.contract import DatasetRoot, Manifest, code_version, config_hash, new_run_id, now_iso

SCHEMA = pa.schema(
    [
        pa.field("study", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("arm", pa.string()),
        pa.field("seed", pa.int64()),
        pa.field("metric", pa.string()),
        pa.field("reference_set", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("tokens", pa.int64()),
        pa.field("preset", pa.string()),
    ]
)


def result_rows(study: str, kind: str, preset: str, results: list[dict]) -> list[dict]:
    rows = []
    for r in results:
        base = {
            "study": study,
            "kind": kind,
            "arm": r["arm"],
            "seed": r["seed"],
            "tokens": sum(r["tokens"].values()),
            "preset": preset,
        }
        for ref, loss in r["losses"].items():
            rows.append(base | {"metric": "loss", "reference_set": ref, "value": loss})
        rows.append(base | {"metric": "mean_loss", "reference_set": None, "value": r["mean_loss"]})
        if r.get("mmlu_items"):
            rows.append(base | {"metric": "mmlu_acc", "reference_set": "mmlu", "value": r["mmlu_acc"]})
    return [
        dict(row, value=None if row["value"] is None or math.isnan(row["value"]) else row["value"])
        for row in rows
    ]


def publish_results(
    root: Path,
    study: str,
    kind: str,
    preset: str,
    results: list[dict],
    config: dict,
    inputs: list[str],
    extra: dict,
) -> Path:
    rows = result_rows(study, kind, preset, results)
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    version = new_run_id()
    dr = DatasetRoot(root, table=False)  # a study's results, not a corpus: no table
    dr.clean_stale_staging()
    staging = dr.staging_dir(version)
    (staging / "data").mkdir()
    pq.write_table(table, staging / "data" / "results.parquet")
    m = Manifest(
        dataset=f"{kind}_results",
        version=version,
        created_at=now_iso(),
        code_version=code_version(),
        inputs=inputs,
        config=config,
        config_hash=config_hash(config),
        rows=table.num_rows,
        columns=table.column_names,
        extra=extra,
    )
    m.check()
    m.write(staging)
    return dr.publish(staging, version)


def latest_results(output: str | Path) -> dict:
    """The report files and the current results version of a study's output folder."""
    out = Path(output)
    root = DatasetRoot(out / "results")
    if root.current() is None:
        raise FileNotFoundError(f"{out}: no results published (did the study run?)")
    return {
        "results": str(root.version_dir(root.current())),
        "report": str(out / "report" / "report.md"),
        "files": sorted(str(p) for p in (out / "report").glob("*") if p.is_file()),
    }
