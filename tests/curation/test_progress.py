"""Progress on long work (issue 16): `curation run` logs a progress line per interval (files done / total,
documents, docs/s, the active Spark stages' tasks) and ends with its per-stage table; the reporter's pieces
(interval from the environment, the plain-loop Ticker) and the Spark UI switch."""

from __future__ import annotations

import gzip
import logging
import re

import pytest

from curation.cli import main as curation_cli
from curation.contract import DatasetRoot, Manifest
from curation.progress import Ticker, clock, progress_interval, rate_line
from curation.spark import ui_enabled

DOLMA = "webtext_cc2019_dolma_sample/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


def test_curation_run_logs_progress_lines_and_the_stage_table(spark, shared_data, tmp_path, caplog, capsys):
    lines = gzip.decompress((shared_data / DOLMA).read_bytes()).decode().split("\n")
    src = tmp_path / "in"
    src.mkdir()
    for k in range(3):  # three files: one task each, so "files k/3"
        (src / f"part-{k}.jsonl.gz").write_bytes(
            gzip.compress("\n".join(lines[k * 40 : k * 40 + 40]).encode())
        )
    caplog.set_level(logging.INFO, logger="curation.progress")
    out = tmp_path / "out"
    rc = curation_cli(["run", "--input", str(src), "--output", str(out), "--progress-interval", "0.2"])
    assert rc == 0
    progress = [r.getMessage() for r in caplog.records if r.name == "curation.progress"]
    assert any(re.search(r"read \+ python steps · files [0-3]/3 \(\d+%", m) for m in progress), progress
    assert any(re.search(r"· \d[\d,]* docs \(\d[\d,]* docs/s\)", m) for m in progress), progress
    assert any("stage " in m and " tasks " in m for m in progress), progress  # the status tracker's view
    assert progress[-1].startswith("curation run ") and ": done · elapsed" in progress[-1]
    m = Manifest.read(DatasetRoot(out).version_dir(DatasetRoot(out).current()))
    table = capsys.readouterr().out
    assert re.search(r"stage\s+in\s+kept\s+rejected", table)
    for s in m.stages:  # the final table is the manifest's stages
        assert re.search(rf"{s.stage}\s+{s.rows_in}\s+{s.rows_kept}\s+{s.rows_rejected}", table), table
    assert m.stages[0].rows_in == 120


def test_no_progress_lines_with_interval_zero(monkeypatch):
    monkeypatch.setenv("PHI_PROGRESS_INTERVAL", "0")
    assert progress_interval() == 0
    t = Ticker("loop", total=10)
    t.update(5)
    assert t.lines == 0
    t.finish(10)  # the closing line is always logged
    assert t.lines == 1
    monkeypatch.setenv("PHI_PROGRESS_INTERVAL", "soon")
    with pytest.raises(ValueError, match="PHI_PROGRESS_INTERVAL='soon'"):
        progress_interval()
    assert progress_interval(2.5) == 2.5


def test_ticker_logs_rate_and_eta(caplog):
    caplog.set_level(logging.INFO, logger="curation.progress")
    t = Ticker("tokenizing web", total=200, unit="docs", interval=1e-6)
    t.update(50, extra="1,000 tokens")
    msg = caplog.records[-1].getMessage()
    assert re.fullmatch(
        r"tokenizing web · docs 50/200 \(25%, [\d,]+ docs/s\) · elapsed 0:\d\d · ETA \d+:\d\d · 1,000 tokens",
        msg,
    ), msg
    assert clock(3723) == "1:02:03" and clock(65) == "1:05"
    assert "ETA" not in rate_line("x", 10.0, 5, 5)  # nothing left


def test_spark_ui_is_off_in_tests_and_on_otherwise(spark, monkeypatch):
    assert spark.sparkContext.uiWebUrl is None  # the test session was built under pytest
    assert ui_enabled() is False
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    assert ui_enabled() is True
    monkeypatch.setenv("PHI_SPARK_UI", "0")
    assert ui_enabled() is False
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "x")
    monkeypatch.setenv("PHI_SPARK_UI", "1")
    assert ui_enabled() is True
