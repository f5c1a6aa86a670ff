"""A text source read through DuckDB: a dataset (root or version), a table version, parquet, JSONL or CSV with
a `text` column.

Edu-label sampling, the reference-vs-random recipe and the synthetic-textbook seed pool all read sources this
way, so large corpora stream instead of loading, and every reader fails with the same clear errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from curation.contract import iter_parquet_files, resolve_version_dir
from curation.paths import is_table_reference

if TYPE_CHECKING:
    import duckdb


def _sql_str(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def duckdb_source(path: str | Path) -> str:
    """A DuckDB table expression over a text source: a dataset (root or version), a table version
    (`iceberg:<table>[@<run id | snapshot id>]`: its snapshot's files), parquet, JSONL or CSV."""
    if is_table_reference(path):
        from curation.tables.read import table_version_files

        sid, files = table_version_files(str(path))
        if not files:
            raise ValueError(f"text source {path}: snapshot {sid} has no data files")
        return f"read_parquet([{', '.join(_sql_str(f) for f in files)}])"
    path = Path(path)
    if path.is_dir():
        files = list(iter_parquet_files(resolve_version_dir(path)))
        if not files:
            raise ValueError(f"text source {path}: no data/*.parquet")
        return f"read_parquet([{', '.join(_sql_str(f) for f in files)}])"
    if not path.is_file():
        raise FileNotFoundError(f"text source {path} does not exist")
    name = path.name.lower()
    if name.endswith(".parquet"):
        return f"read_parquet({_sql_str(path)})"
    if name.endswith((".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson")):
        return f"read_json({_sql_str(path)}, format='newline_delimited')"
    if name.endswith((".csv", ".csv.gz")):
        return f"read_csv({_sql_str(path)})"
    raise ValueError(
        f"text source {path}: unsupported format (dataset folder, .parquet, .jsonl[.gz] or .csv)"
    )


@dataclass(frozen=True)
class TextSource:
    """An open source: query `table` on `con`. `id_expr` is the document id as text: the `id` column, else the
    text's sha1, so that a source without ids still orders and samples deterministically."""

    con: duckdb.DuckDBPyConnection
    table: str
    columns: list[str]
    id_expr: str


@contextmanager
def open_text_source(path: str | Path, what: str) -> Iterator[TextSource]:
    """Open `path` in a fresh DuckDB connection, closed on exit. `what` names the source in errors (e.g.
    "label-edu input X"): no `text` column, or any DuckDB error inside the block, is a ValueError."""
    import duckdb

    table = duckdb_source(path)
    con = duckdb.connect()
    try:
        columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {table}").fetchall()]
        if "text" not in columns:
            raise ValueError(f"{what}: no `text` column (columns: {columns})")
        yield TextSource(con, table, columns, "CAST(id AS VARCHAR)" if "id" in columns else "sha1(text)")
    except duckdb.Error as e:
        raise ValueError(f"{what}: could not read: {e}") from e
    finally:
        con.close()
