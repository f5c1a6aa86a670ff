"""Run the mixture SQL reports (sql/mixture_<name>.sql, DuckDB) over one or two built mixtures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from curation.paths import REPO_ROOT

SQL_DIR = REPO_ROOT / "sql"
REPORTS = ("composition", "tokens_by_source", "tokens_by_domain", "tokens_by_edu", "compare")


@dataclass
class Report:
    name: str
    columns: list[str]
    rows: list[tuple]

    def as_dicts(self) -> list[dict]:
        return [dict(zip(self.columns, r)) for r in self.rows]


def _build_dir(path: str | Path, what: str) -> str:
    p = Path(path).resolve()
    if not (p / "manifest.json").is_file():
        raise FileNotFoundError(f"{what} {p} is not a mixture build (no manifest.json)")
    return str(p)


def run_report(name: str, build: str | Path, other: str | Path | None = None) -> Report:
    if name not in REPORTS:
        raise ValueError(f"unknown report {name!r}; choose one of {', '.join(REPORTS)}")
    if name == "compare" and other is None:
        raise ValueError("report `compare` needs a second build (--other DIR)")
    con = duckdb.connect()
    con.execute("SET VARIABLE build = ?", [_build_dir(build, "--build")])
    if other is not None:
        con.execute("SET VARIABLE other = ?", [_build_dir(other, "--other")])
    rel = con.sql((SQL_DIR / f"mixture_{name}.sql").read_text())
    return Report(name, list(rel.columns), rel.fetchall())


def format_table(report: Report) -> str:
    cells = [report.columns] + [
        ["" if v is None else (f"{v:.5g}" if isinstance(v, float) else str(v)) for v in r]
        for r in report.rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(report.columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
