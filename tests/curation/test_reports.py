"""DuckDB + matplotlib run reports over dataset versions built from the real Dolma sample."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import pyarrow.parquet as pq
import pytest
from test_quality_gates_helpers import build_version, rewrite_data

from curation.cli import main as cli_main
from curation.reports import build_report
from curation.reports.queries import discover, parse_query

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def version(tmp_path_factory, shared_data, models) -> Path:
    return build_version(shared_data, models, tmp_path_factory.mktemp("rep") / "web", "v1", limit=250)


@pytest.fixture(scope="module")
def report(version):
    return build_report(version)


def table(report, name) -> pd.DataFrame:
    return pd.read_csv(report.html.parent / "tables" / f"{name}.csv")


def test_every_curation_query_renders_and_edu_waits_for_its_column(report):
    curation_queries = {q.name for q in discover() if q.name.startswith("curation_")}
    assert curation_queries <= set(report.rendered)
    skipped = {s.name: s.skipped for s in report.sections if s.skipped}
    assert skipped == {"report_edu_histogram": "dataset lacks docs.edu_score"}
    page = report.html.read_text()
    for s in report.sections:
        if s.plot:
            png = report.html.parent / s.plot
            assert png.read_bytes()[:8] == PNG_MAGIC
            assert f"src='{s.plot}'" in page
    assert "Drop reasons per stage" in page and "no quality gate has run" in page


def test_drop_reasons_match_the_rejects(report, version):
    rejects = pq.read_table(version / "rejects").to_pandas()
    expected = rejects.groupby(["reject_stage", "reject_reason"]).size()
    got = table(report, "curation_drop_reasons")
    assert len(got) == len(expected)
    for (stage, reason), n in expected.items():
        row = got[got["reason"] == f"{stage} / {reason}"]
        assert row["documents"].item() == n


def test_funnel_and_dedup_rate_follow_the_manifest(report, version):
    import json

    stages = json.loads((version / "manifest.json").read_text())["stages"]
    funnel = table(report, "curation_stage_funnel")
    assert funnel["stage"].tolist() == [s["stage"] for s in stages]
    assert funnel["rows_kept"].tolist() == [s["rows_kept"] for s in stages]
    dedup = table(report, "curation_dedup_rate")
    exact = next(s for s in stages if s["stage"] == "exact_dedup")
    assert dedup["duplicates"].item() == exact["rows_rejected"]
    assert dedup["dedup_rate_pct"].item() == pytest.approx(
        100 * exact["rows_rejected"] / exact["rows_in"], abs=0.01
    )


def test_top_domains_counted_from_urls(report, version):
    docs = pq.read_table(version / "data").to_pandas()
    hosts = (
        docs["url"].map(lambda u: re.sub(r"^www\.", "", urlsplit(u.lower()).hostname or "")).value_counts()
    )
    got = table(report, "curation_top_domains")
    assert got["documents"].iloc[0] == hosts.iloc[0]
    assert got.set_index("domain")["documents"].to_dict() == {
        d: n for d, n in hosts.items() if d in set(got["domain"])
    }
    lengths = table(report, "curation_length_histogram")
    assert lengths["documents"].sum() == len(docs)


def test_edu_histogram_appears_once_scores_exist(tmp_path, shared_data, models):
    v = build_version(shared_data, models, tmp_path / "scored", "v1", limit=120)
    rewrite_data(v, lambda df: df.assign(edu_score=[(i % 11) / 2 for i in range(len(df))]))
    result = build_report(v, tmp_path / "out")
    assert "report_edu_histogram" in result.rendered
    hist = pd.read_csv(tmp_path / "out" / "tables" / "report_edu_histogram.csv")
    assert hist["documents"].sum() == pq.read_table(v / "data").num_rows
    assert hist["edu_bucket"].min() == 0.0 and hist["edu_bucket"].max() == 5.0


def test_report_shows_a_failed_gate(tmp_path, shared_data, models):
    from curation.quality_gates import run_gate

    v = build_version(shared_data, models, tmp_path / "web", "v1", limit=120)
    rewrite_data(v, lambda df: df.assign(lang_score=5.0))
    assert not run_gate(v).success
    page = build_report(v).html.read_text()
    assert "quality gate web_curated: FAILED" in page and "expect_column_values_to_be_between" in page
    assert "Data Docs" in page


def test_cli_report(version, tmp_path, capsys):
    assert cli_main(["report", "--input", str(version.parent), "--output", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert f"report: {tmp_path / 'r' / 'report.html'}" in out
    assert cli_main(["report", "--input", str(tmp_path / "nope")]) == 2
    assert "nope does not exist" in capsys.readouterr().err


def test_broken_query_files_are_named(tmp_path, version):
    bad_header = tmp_path / "curation_bad.sql"
    bad_header.write_text("-- title: x\n-- chart: pie label=a value=b\nSELECT 1;\n")
    with pytest.raises(ValueError, match="curation_bad.sql: bad '-- chart:' header"):
        parse_query(bad_header)
    bad_sql = tmp_path / "curation_typo.sql"
    bad_sql.write_text("-- title: typo\n-- requires: docs\nSELECT no_such_column FROM docs;\n")
    with pytest.raises(ValueError, match="curation_typo.sql failed"):
        build_report(version, tmp_path / "out", queries=[parse_query(bad_sql)])
