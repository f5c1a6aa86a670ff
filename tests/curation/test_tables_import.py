"""`python -m curation tables import`: a folder-contract corpus built by the real nightly code
(curation.append: v1 from a first night, v2 hard-links v1's files and adds a night, v3's night brings edu
columns so the base files are rewritten) becomes a table whose snapshot history matches the versions: run ids
in order, rows per snapshot = manifest rows, each version's documents readable by its run id. Local and S3
(moto) warehouses."""

from __future__ import annotations

import json
import re

import pyarrow.parquet as pq
import pytest
from tables_helpers import moto_s3, real_docs, to_table, warehouse_config

from curation.append import append_version
from curation.cli import main as curation_cli
from curation.contract import DatasetRoot, Manifest, StageCounts, iter_parquet_files
from curation.tables import Warehouse, read_arrow, versions


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    with moto_s3(tmp_path_factory.mktemp("aws")) as endpoint:
        yield endpoint


def _night(root, name: str, rows: list[dict], files: int = 2):
    """A curated delta (what a nightly curation run publishes): `files` data files, one quality reject."""
    n = len(rows)
    with DatasetRoot(root).building(name) as b:
        (b.staging / "data").mkdir()
        (b.staging / "rejects").mkdir()
        step = -(-n // files)
        for k in range(files):
            pq.write_table(
                to_table(rows[k * step : (k + 1) * step]), b.staging / "data" / f"part-{k}-{name}.parquet"
            )
        reject = {
            **rows[0],
            "id": f"{name}-short",
            "reject_stage": "quality",
            "reject_reason": "quality:too_short",
        }
        pq.write_table(to_table([reject]), b.staging / "rejects" / f"part-0-{name}.parquet")
        b.manifest(
            dataset="web_curated",
            inputs=[name],
            config={"night": name},
            rows=n,
            rejected_rows=1,
            stages=[
                StageCounts(
                    stage="quality",
                    rows_in=n + 1,
                    rows_kept=n,
                    rows_rejected=1,
                    reasons={"quality:too_short": 1},
                )
            ],
        )
    return b.final


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory):
    """Three whole-corpus versions as nightly_refresh builds them; CURRENT rolled back to v2 by an
    operator."""
    docs = real_docs(shared_data, 45)
    tmp = tmp_path_factory.mktemp("contract")
    root, deltas = tmp / "corpus", tmp / "_deltas"
    append_version(_night(deltas, "v1", docs[:20]), None, root, "v1")
    again = [{**docs[3], "id": "renamed-copy"}]  # an already published text: dropped by published_dedup
    append_version(_night(deltas, "v2", docs[20:32] + again), root, root, "v2")
    scored = [{**d, "edu_score": 1.0 + i / 10} for i, d in enumerate(docs[32:45])]
    append_version(_night(deltas, "v3", scored), root, root, "v3")
    DatasetRoot(root).set_current("v2")
    return root


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_a_three_version_corpus_imports_as_its_snapshot_history(kind, corpus, tmp_path, request, capsys):
    if kind == "s3":
        request.getfixturevalue("s3_endpoint")
    config = warehouse_config(kind, tmp_path)
    manifests = {v: Manifest.read(corpus / v) for v in ["v1", "v2", "v3"]}
    assert manifests["v2"].stages[-1].rows_rejected == 1 and "edu_score" in manifests["v3"].columns
    cli = [
        "tables",
        "import",
        "--root",
        str(corpus),
        "--table",
        "web",
        "--warehouse",
        config.warehouse,
        "--catalog-uri",
        config.resolved_catalog_uri(),
    ]
    assert curation_cli(cli) == 0
    out = capsys.readouterr().out
    table = Warehouse(config).table("web")
    history = versions(table)
    assert [v["run_id"] for v in history] == ["v1", "v2", "v3"]
    assert [v["rows"] for v in history] == [manifests[v].rows for v in ["v1", "v2", "v3"]] == [20, 32, 45]
    # v2 linked v1's files: an append of its night; v3 rewrote them (new column): the whole table replaced
    assert [v["operation"] for v in history] == ["append", "append", "overwrite"]  # v1: nothing to replace
    assert [v["current"] for v in history] == [False, True, False]  # CURRENT said v2
    for v, m in manifests.items():
        want = sorted(pq.read_table(corpus / v / "data", columns=["id"]).column("id").to_pylist())
        assert sorted(read_arrow(table, v, columns=("id",)).column("id").to_pylist()) == want
        props = table.metadata.snapshot_by_id(
            table.metadata.refs[v].snapshot_id
        ).summary.additional_properties
        assert json.loads(props["phi.stages"]) == [s.model_dump(exclude_none=True) for s in m.stages]
        assert props["phi.config-hash"] == m.config_hash and props.get("phi.base-version") == m.base_version
    # a file is copied once: v2 copies only its night's files, not the v1 files it hard-links
    files = {v: len(list((corpus / v / "data").glob("*.parquet"))) for v in manifests}
    copied = {v: int(n) for v, n in re.findall(r"^(v\d)\s.*files copied (\d+)$", out, re.MULTILINE)}
    assert copied == {"v1": files["v1"], "v2": files["v2"] - files["v1"], "v3": files["v3"]}
    assert read_arrow(table, "v3", columns=("edu_score",)).column("edu_score").null_count == 32

    # every version's rejects, appended to web_rejects: one snapshot per version that rejected something
    rejects = Warehouse(config).table("web_rejects")
    with_rejects = [v for v, m in manifests.items() if m.rejected_rows]
    assert with_rejects and [h["run_id"] for h in versions(rejects)] == with_rejects
    cols = ["id", "reject_stage", "reject_reason"]
    want = [r for v in with_rejects for r in pq.read_table(corpus / v / "rejects", columns=cols).to_pylist()]
    assert sorted(read_arrow(rejects, columns=tuple(cols)).to_pylist(), key=str) == sorted(want, key=str)

    assert curation_cli(cli) == 0  # a second import finds every version committed
    assert capsys.readouterr().out.count("skipped") == 3
    assert len(Warehouse(config).table("web").metadata.snapshots) == 3
    assert len(Warehouse(config).table("web_rejects").metadata.snapshots) == len(with_rejects)


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_duckdb_queries_the_imported_table_as_the_folder_version(kind, corpus, tmp_path, request):
    """The report SQL in sql/ runs unchanged over a table version (pyiceberg plans, DuckDB reads) and answers
    exactly what it answers over the same version's folder; on S3 through pyiceberg's Arrow scan."""
    import duckdb

    from curation.reports.queries import sql_dir
    from curation.reports.views import attach_version
    from curation.tables.duck import attach_stages, attach_table
    from curation.tables.migrate import import_root

    if kind == "s3":
        request.getfixturevalue("s3_endpoint")
    config = warehouse_config(kind, tmp_path)
    import_root(corpus, Warehouse(config), "web")
    table = Warehouse(config).table("web")
    queries = [
        (sql_dir() / f"{q}.sql").read_text()
        for q in ("curation_languages", "curation_length_histogram", "curation_stage_funnel")
    ]
    for version in ("v2", "v3"):
        folder, lake = duckdb.connect(), duckdb.connect()
        files = [list(iter_parquet_files(corpus / version, part)) for part in ("data", "rejects")]
        attach_version(folder, *files, Manifest.read(corpus / version))
        how = attach_table(lake, table, "docs", ref=version)
        attach_stages(lake, table, ref=version)
        assert how == ("parquet" if kind == "local" else "arrow")
        for sql in queries:
            assert lake.execute(sql).fetchall() == folder.execute(sql).fetchall()
    lake = duckdb.connect()
    attach_table(lake, table, "night", ref="v3", columns=("id", "edu_score"))
    assert lake.execute("SELECT count(*), count(edu_score) FROM night").fetchall() == [(45, 13)]
    attach_table(lake, table, "docs")  # the current version: v2 (CURRENT), read with its own schema
    assert lake.execute("SELECT count(*) FROM docs").fetchall() == [(32,)]
    assert "edu_score" not in {r[0] for r in lake.execute("DESCRIBE docs").fetchall()}
