"""DuckDB views over one dataset version, the names report queries read:

  docs     kept documents (data/*.parquet, or a table version's data files)
  rejects  rejected documents (rejects/*.parquet, or what the run added to <table>_rejects)
  stages   per-stage counts from manifest.json, with `position` (0 = first stage)
  manifest one row: dataset, version, created_at, code_version, rows, rejected_rows

Parquet is read in place by DuckDB (streaming, column-pruned), never loaded into Python.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from curation.contract import DOC_FIELDS, REJECT_FIELDS, Manifest


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _parquet_view(con, name: str, files: list[Path], empty_schema: pa.Schema) -> None:
    if files:
        listing = ", ".join(_sql_str(str(f)) for f in files)
        con.execute(
            f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet([{listing}], union_by_name=true)"
        )
    else:  # a version with no rejects (or no kept rows) still answers queries, with zero rows
        con.register(f"_{name}_empty", empty_schema.empty_table())
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM _{name}_empty")


def attach_version(
    con, data_files: list[Path], reject_files: list[Path], manifest: Manifest
) -> dict[str, set[str]]:
    """Create the views over a version's files (a folder's data/ and rejects/, or a table version's);
    return {view: columns} for checking query requirements."""
    _parquet_view(con, "docs", data_files, pa.schema(DOC_FIELDS))
    _parquet_view(con, "rejects", reject_files, pa.schema([*DOC_FIELDS, *REJECT_FIELDS]))
    stages = pa.table(
        {
            "position": pa.array(range(len(manifest.stages)), pa.int32()),
            "stage": [s.stage for s in manifest.stages],
            "rows_in": pa.array([s.rows_in for s in manifest.stages], pa.int64()),
            "rows_kept": pa.array([s.rows_kept for s in manifest.stages], pa.int64()),
            "rows_rejected": pa.array([s.rows_rejected for s in manifest.stages], pa.int64()),
            "seconds": pa.array([s.seconds for s in manifest.stages], pa.float64()),
        }
    )
    con.register("stages", stages)
    con.register(
        "manifest",
        pa.table(
            {
                "dataset": [manifest.dataset],
                "version": [manifest.version],
                "created_at": [manifest.created_at],
                "code_version": [manifest.code_version],
                "rows": [manifest.rows],
                "rejected_rows": [manifest.rejected_rows],
            }
        ),
    )
    available: dict[str, set[str]] = {}
    for view in ("docs", "rejects", "manifest"):
        available[view] = {row[0] for row in con.execute(f"DESCRIBE {view}").fetchall()}
    if manifest.stages:  # an empty stages table answers nothing useful: report it as missing
        available["stages"] = set(stages.column_names)
    return available
