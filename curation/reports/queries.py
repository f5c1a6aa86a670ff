"""The report queries: plain SQL files in sql/ with a small header that says what they need and how
to plot them, so a stage owner adds a report section by adding one file.

    -- title: Drop reasons per stage
    -- about: one line of explanation (repeatable)
    -- requires: rejects.reject_reason, stages      <- views / view.column the query reads
    -- chart: barh label=reason value=documents     <- optional: bar | barh, label and value columns

A query whose requirements the dataset does not meet (e.g. edu_score before scoring exists) is listed
in the report as skipped, with the reason, instead of failing the report.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from curation.paths import REPO_ROOT

_HEADER = re.compile(r"^--\s*(title|about|requires|chart)\s*:\s*(.*)$")
CHART_KINDS = ("bar", "barh")


def sql_dir() -> Path:
    return Path(os.environ.get("PHI_SQL_DIR", REPO_ROOT / "sql"))


@dataclass
class Chart:
    kind: str
    label: str
    value: str


@dataclass
class ReportQuery:
    name: str
    path: Path
    sql: str
    title: str
    about: str = ""
    requires: list[str] = field(default_factory=list)
    chart: Chart | None = None

    def missing(self, available: dict[str, set[str]]) -> list[str]:
        """Requirements (view or view.column) that the loaded dataset does not provide."""
        out = []
        for req in self.requires:
            view, _, column = req.partition(".")
            if view not in available or (column and column not in available[view]):
                out.append(req)
        return out


def parse_query(path: Path) -> ReportQuery:
    text = path.read_text()
    meta: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = _HEADER.match(line.strip())
        if m:
            meta.setdefault(m.group(1), []).append(m.group(2).strip())
    if "title" not in meta:
        raise ValueError(f"{path}: report query has no '-- title:' header line")
    chart = None
    if "chart" in meta:
        spec = meta["chart"][0].split()
        opts = dict(part.split("=", 1) for part in spec[1:] if "=" in part)
        if not spec or spec[0] not in CHART_KINDS or not {"label", "value"} <= opts.keys():
            raise ValueError(
                f"{path}: bad '-- chart:' header {meta['chart'][0]!r};"
                f" expected '<{'|'.join(CHART_KINDS)}> label=<column> value=<column>'"
            )
        chart = Chart(spec[0], opts["label"], opts["value"])
    requires = [r.strip() for line in meta.get("requires", []) for r in line.split(",") if r.strip()]
    return ReportQuery(
        name=path.stem,
        path=path,
        sql=text,
        title=meta["title"][0],
        about=" ".join(meta.get("about", [])),
        requires=requires,
        chart=chart,
    )


def discover(
    directory: Path | None = None, prefixes: tuple[str, ...] = ("curation_", "report_")
) -> list[ReportQuery]:
    d = directory or sql_dir()
    if not d.is_dir():
        raise FileNotFoundError(f"report query folder {d} does not exist (set PHI_SQL_DIR)")
    return [parse_query(p) for p in sorted(d.glob("*.sql")) if p.name.startswith(prefixes)]
