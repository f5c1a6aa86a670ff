"""Per-run HTML reports: DuckDB queries from sql/*.sql over a dataset version, each rendered as a table
and (when its header asks for one) a matplotlib PNG, in one self-contained folder:

    <output>/report.html   <output>/plots/<query>.png   <output>/tables/<query>.csv   <output>/report.json

    from curation.reports import build_report
    build_report("out/web", "out/web/<version>/report")
"""

from curation.reports.build import ReportResult, build_report

__all__ = ["ReportResult", "build_report"]
