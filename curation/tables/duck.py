"""DuckDB over a table version: the views the report queries in sql/ read (`docs`, `stages`), from a snapshot.

DuckDB's own Iceberg extension is not usable here (the `duckdb-extension-iceberg` wheel pins duckdb==1.5.5, we
run duckdb 2.x, and DuckDB downloads extensions at run time otherwise), so pyiceberg plans the scan and DuckDB
reads:

- local warehouse, no delete files: a view over `read_parquet([planned files], union_by_name=true)`: DuckDB
  streams the files itself, with its own column and row-group pruning (columns added later read NULL in older
  files, as in Iceberg);
- otherwise (an s3:// warehouse, or delete files to apply): pyiceberg reads the scan to Arrow (projected on
  `columns`) and DuckDB queries that.
"""

from __future__ import annotations

import pyarrow as pa

from curation.tables.read import Ref, read_arrow, snapshot_id
from curation.tables.summary import summary_value


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def attach_table(con, table, view: str = "docs", ref: Ref = None, columns: tuple[str, ...] = ("*",)) -> str:
    """Create DuckDB view `view` over version `ref` (run id, snapshot id, None = current) of `table`.
    Returns how it reads: "parquet" (DuckDB reads the planned files) or "arrow" (pyiceberg reads)."""
    sid = snapshot_id(table, ref)
    tasks = list(table.scan(snapshot_id=sid).plan_files()) if sid is not None else []
    local = all(t.file.file_path.startswith(("file://", "/")) for t in tasks)
    if tasks and local and not any(t.delete_files for t in tasks):
        listing = ", ".join(_sql_str(t.file.file_path.removeprefix("file://")) for t in tasks)
        select = "*" if columns == ("*",) else ", ".join(f'"{c}"' for c in columns)
        con.execute(
            f"CREATE OR REPLACE VIEW {view} AS SELECT {select}"
            f" FROM read_parquet([{listing}], union_by_name=true)"
        )
        return "parquet"
    arrow = read_arrow(table, sid, columns=columns)
    con.register(f"_{view}_arrow", arrow)
    con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM _{view}_arrow")
    return "arrow"


def attach_stages(con, table, ref: Ref = None, view: str = "stages") -> None:
    """View `view`: the per-stage counts the snapshot's summary carries (`phi.stages`), as the reports'
    `stages`."""
    sid = snapshot_id(table, ref)
    summary = table.metadata.snapshot_by_id(sid).summary if sid is not None else None
    stages = summary_value(summary, "stages", [])
    con.register(
        f"_{view}_arrow",
        pa.table(
            {
                "position": pa.array(range(len(stages)), pa.int32()),
                "stage": pa.array([s["stage"] for s in stages], pa.string()),
                "rows_in": pa.array([s["rows_in"] for s in stages], pa.int64()),
                "rows_kept": pa.array([s["rows_kept"] for s in stages], pa.int64()),
                "rows_rejected": pa.array([s["rows_rejected"] for s in stages], pa.int64()),
                "seconds": pa.array([s.get("seconds") for s in stages], pa.float64()),
            }
        ),
    )
    con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM _{view}_arrow")
