"""Run the report queries over a dataset version and write the report folder."""

from __future__ import annotations

import html
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from curation.contract import Manifest, now_iso
from curation.dataset_version import VersionView, open_dataset_version
from curation.reports.plots import plot
from curation.reports.queries import ReportQuery, discover
from curation.reports.views import attach_version

log = logging.getLogger(__name__)

TABLE_ROWS = 50  # rows shown per table in the HTML; the CSV has them all


@dataclass
class Section:
    name: str
    title: str
    rows: int = 0
    plot: str | None = None  # relative to the report folder
    table: str | None = None
    skipped: str | None = None  # why the query did not run


@dataclass
class ReportResult:
    html: Path
    version_dir: str  # the folder read, or iceberg:<table>@<snapshot>
    sections: list[Section] = field(default_factory=list)

    @property
    def rendered(self) -> list[str]:
        return [s.name for s in self.sections if s.skipped is None]


def build_report(
    dataset: str | Path, output: str | Path | None = None, queries: list[ReportQuery] | None = None
) -> ReportResult:
    """Report on a dataset version: a version folder, a root meaning its CURRENT version, or a table version
    `iceberg:<table>[@<run id | snapshot id>]` (curation/tables/version.py).

    Default output: `<version>/report/` (out/tables/<table>@<snapshot>/report for a table version). A query
    that fails is an error naming its SQL file.
    """
    import duckdb

    src = open_dataset_version(dataset)
    manifest = src.manifest
    out = Path(output) if output is not None else src.evidence_dir / "report"
    (out / "plots").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    queries = discover() if queries is None else queries
    sections, frames = [], {}
    with duckdb.connect() as con:
        con.execute("SET threads TO 2")  # a report must not starve the Spark job beside it
        available = attach_version(con, src.data_files, src.reject_files, manifest)
        for q in queries:
            missing = q.missing(available)
            if missing:
                sections.append(Section(q.name, q.title, skipped=f"dataset lacks {', '.join(missing)}"))
                continue
            try:
                frame = con.execute(q.sql).df()
            except duckdb.Error as e:
                raise ValueError(f"report query {q.path} failed: {e}") from e
            section = Section(q.name, q.title, rows=len(frame), table=f"tables/{q.name}.csv")
            frame.to_csv(out / section.table, index=False)
            if q.chart is not None and len(frame):
                section.plot = str(
                    plot(frame, q.chart, q.title, out / "plots" / f"{q.name}.png").relative_to(out)
                )
            sections.append(section)
            frames[q.name] = frame
    gate = _gate_verdict(src.quality_dir)
    page = out / "report.html"
    page.write_text(_render(manifest, src, queries, sections, frames, gate))
    (out / "report.json").write_text(
        json.dumps(
            {
                "dataset": manifest.dataset,
                "version": manifest.version,
                "generated_at": now_iso(),
                "version_dir": src.label,
                "gate": gate,
                "sections": [asdict(s) for s in sections],
            },
            indent=2,
            default=str,
        )
    )
    log.info("report for %s %s: %s", manifest.dataset, manifest.version, page)
    return ReportResult(html=page, version_dir=src.label, sections=sections)


def _gate_verdict(quality_dir: Path) -> dict | None:
    path = quality_dir / "gate.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _table_html(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p class='muted'>no rows</p>"
    shown = frame.head(TABLE_ROWS)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if pd.isna(v) else str(v))}</td>" for v in row) + "</tr>"
        for row in shown.itertuples(index=False)
    )
    more = (
        f"<p class='muted'>{len(frame) - TABLE_ROWS} more rows in the CSV</p>"
        if len(frame) > TABLE_ROWS
        else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def _gate_html(gate: dict | None, quality_dir: Path) -> str:
    if gate is None:
        return "<p class='muted'>no quality gate has run on this version</p>"
    ok = gate.get("success")
    items = "".join(
        f"<li><code>{html.escape(f['expectation'])}</code> on {html.escape(str(f.get('column')))}:"
        f" {html.escape(str(f.get('unexpected_count') or f.get('observed') or f.get('error')))}"
        f" e.g. {html.escape(repr((f.get('sample') or [])[:5]))}</li>"
        for f in gate.get("failures", [])
    )
    docs = quality_dir / "data_docs" / "index.html"
    link = f" &middot; <a href='{html.escape(docs.as_uri())}'>Data Docs</a>" if docs.is_file() else ""
    verdict = "PASSED" if ok else "FAILED"
    return (
        f"<p class='{'ok' if ok else 'bad'}'>quality gate {html.escape(str(gate.get('kind')))}: {verdict}"
        f" ({gate.get('evaluated', 0) - len(gate.get('failures', []))}/{gate.get('evaluated', 0)}"
        f" expectations){link}</p>" + (f"<ul>{items}</ul>" if items else "")
    )


def _render(
    manifest: Manifest,
    src: VersionView,
    queries: list[ReportQuery],
    sections: list[Section],
    frames: dict[str, pd.DataFrame],
    gate: dict | None,
) -> str:
    by_name = {q.name: q for q in queries}
    facts = [
        ("dataset", manifest.dataset),
        ("version", manifest.version),
        ("created", manifest.created_at),
        ("code", manifest.code_version),
        ("kept documents", manifest.rows),
        ("rejected documents", manifest.rejected_rows),
        ("inputs", ", ".join(manifest.inputs)),
        ("config hash", manifest.config_hash),
        ("read from", src.label),
    ]
    parts = [
        f"<h1>{html.escape(manifest.dataset)} &middot; {html.escape(manifest.version)}</h1>",
        "<table class='facts'>"
        + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts)
        + "</table>",
        "<h2>Quality gate</h2>",
        _gate_html(gate, src.quality_dir),
    ]
    for s in sections:
        q = by_name[s.name]
        parts.append(f"<h2 id='{html.escape(s.name)}'>{html.escape(s.title)}</h2>")
        if q.about:
            parts.append(f"<p class='muted'>{html.escape(q.about)}</p>")
        if s.skipped:
            parts.append(f"<p class='muted'>skipped: {html.escape(s.skipped)}</p>")
            continue
        if s.plot:
            parts.append(f"<img src='{html.escape(s.plot)}' alt='{html.escape(s.title)}'>")
        parts.append(_table_html(frames[s.name]))
        parts.append(
            f"<details><summary>query ({html.escape(q.path.name)}) &middot; "
            f"<a href='{html.escape(s.table)}'>CSV</a></summary><pre>{html.escape(q.sql)}</pre></details>"
        )
    style = (
        "body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;"
        "text-align:left;font-size:90%}.muted{color:#777}.ok{color:#1a7f37;font-weight:bold}"
        ".bad{color:#c62828;font-weight:bold}img{max-width:100%}pre{background:#f6f6f6;padding:.5em}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(manifest.dataset)}"
        f" {html.escape(manifest.version)}</title><style>{style}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>\n"
    )
