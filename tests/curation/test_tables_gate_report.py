"""The quality gate and the run report read a table version (`iceberg:<table>@<v>`) as they read a version
folder: same expectations and verdicts, same report tables, from a local and from an S3 (moto) warehouse."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from tables_helpers import moto_s3, warehouse_config
from test_quality_gates_helpers import build_version, rewrite_data

from curation.quality_gates import run_gate
from curation.reports import build_report
from curation.tables import Warehouse
from curation.tables.migrate import publish_rejects, publish_version, rejects_table
from curation.tables.version import open_version


def _use(monkeypatch, cfg) -> Warehouse:
    """Point the environment's catalog (what `iceberg:` references resolve against) at `cfg`."""
    monkeypatch.setenv("PHI_ICEBERG_WAREHOUSE", cfg.warehouse)
    monkeypatch.setenv("PHI_ICEBERG_CATALOG_URI", cfg.resolved_catalog_uri())
    return Warehouse()


def _publish(vdir: Path, wh: Warehouse) -> None:
    publish_version(vdir, wh, "web")
    publish_rejects(vdir, wh, rejects_table("web"))


def _verdict(result) -> tuple:
    return result.success, result.evaluated, sorted((f.expectation, f.column) for f in result.failures)


def _tables(report) -> dict[str, pd.DataFrame]:
    folder = report.html.parent / "tables"
    return {p.stem: pd.read_csv(p) for p in sorted(folder.glob("*.csv"))}


@pytest.mark.parametrize("where", ["local", "s3"])
def test_gate_and_report_read_a_table_version_as_they_read_its_folder(
    where, shared_data, models, tmp_path, monkeypatch
):
    root = tmp_path / "web"
    good = build_version(shared_data, models, root, "v1", limit=120)
    bad = build_version(shared_data, models, root, "v2", limit=120)
    rewrite_data(bad, lambda f: f.assign(lang="xx"))  # every row in a language the run did not keep
    monkeypatch.setenv("PHI_ICEBERG_CACHE", str(tmp_path / "cache"))
    with moto_s3(tmp_path) if where == "s3" else _nothing():
        wh = _use(monkeypatch, warehouse_config(where, tmp_path))
        _publish(good, wh)
        _publish(bad, wh)

        tv = open_version("iceberg:web@v1")
        assert tv.manifest.rows == 120 - tv.manifest.rejected_rows and tv.manifest.stages
        assert tv.manifest.config == {"langid": {"languages": ["en"]}}  # the gate's language list
        assert tv.reject_files, "v1 rejected documents: its rejects come from web_rejects"

        for vdir, ref in ((good, "iceberg:web@v1"), (bad, "iceberg:web@v2")):
            on_folder = run_gate(vdir, engine="pandas", docs_dir=tmp_path / "gates" / vdir.name)
            on_table = run_gate(ref, engine="pandas")
            assert _verdict(on_table) == _verdict(on_folder)
            assert on_table.dataset_dir.startswith(ref.split("@")[0] + "@")  # the snapshot it read
            assert Path(on_table.docs_index).is_file()
        assert _verdict(run_gate("iceberg:web@v2", engine="pandas"))[2] == [
            ("expect_column_values_to_be_in_set", "lang")
        ]
        # time travel: v2 is the current snapshot; v1 still gates as it did
        assert run_gate("iceberg:web@v1", engine="pandas").success

        from_folder = build_report(good, tmp_path / "report-folder")
        from_table = build_report("iceberg:web@v1", tmp_path / "report-table")
        assert from_table.rendered == from_folder.rendered
        for name, frame in _tables(from_folder).items():
            pd.testing.assert_frame_equal(_tables(from_table)[name], frame, check_like=True)
        assert "iceberg:web@" in from_table.html.read_text()


def test_a_table_reference_that_names_nothing_is_a_clear_error(tmp_path, monkeypatch):
    wh = _use(monkeypatch, warehouse_config("local", tmp_path))
    with pytest.raises(ValueError, match="is not a table reference"):
        open_version("iceberg:")
    with pytest.raises(Exception, match="web"):
        open_version("iceberg:web@v9")
    assert not wh.exists("web")


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
