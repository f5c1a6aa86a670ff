"""Datasets as Iceberg tables (curation/tables): one snapshot per run id, idempotent and retry-safe commits,
killed jobs' orphan files, concurrent writers, schema evolution, time travel and rollback. Every test runs on
a local warehouse (SQLite catalog) and on an S3 warehouse (moto's server, a real S3 protocol); the commit
and concurrency tests also on a PostgreSQL catalog (the real stack's). Documents are the dolma CC sample."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tables_helpers import moto_s3, postgres_database, real_docs, to_table, warehouse_config, write_files

from curation.tables import (
    TablesConfig,
    Warehouse,
    commit_version,
    data_files,
    read_arrow,
    remove_orphan_files,
    rollback,
    snapshot_id,
    versions,
    written_files,
)
from curation.tables.catalog import TableNotFound
from curation.tables.maintenance import referenced_files


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    with moto_s3(tmp_path_factory.mktemp("aws")) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def docs(shared_data):
    return real_docs(shared_data, 60)


def _config(request, kind: str, tmp_path: Path):
    if kind == "s3":
        request.getfixturevalue("s3_endpoint")
    if kind == "postgres":
        ctx = postgres_database()
        uri = ctx.__enter__()
        request.addfinalizer(lambda: ctx.__exit__(None, None, None))
        return warehouse_config("local", tmp_path, catalog_uri=uri)
    return warehouse_config(kind, tmp_path)


@pytest.fixture(params=["local", "s3"])
def config(request, tmp_path) -> TablesConfig:
    return _config(request, request.param, tmp_path)


@pytest.fixture(params=["local", "s3", "postgres"])
def any_config(request, tmp_path) -> TablesConfig:
    return _config(request, request.param, tmp_path)


@pytest.fixture(params=["s3", "postgres"])
def racing_config(request, tmp_path) -> TablesConfig:
    """Both catalogs (SQLite, PostgreSQL) and both file systems in two runs: conflicts are the catalog's to
    detect, the file system only has to hold the files."""
    return _config(request, request.param, tmp_path)


def _ids(table, ref=None) -> list[str]:
    return sorted(read_arrow(table, ref, columns=("id",)).column("id").to_pylist())


def _summary(table, run_id: str) -> dict:
    return table.metadata.snapshot_by_id(snapshot_id(table, run_id)).summary.additional_properties


def test_a_run_is_one_snapshot_and_committing_it_again_is_a_no_op(any_config, docs):
    wh = Warehouse(any_config)
    batches = [docs[0:10], docs[10:20], docs[20:25]]
    table = wh.ensure("web", _schema(batches))
    files = write_files(table, "r1", batches)
    assert written_files(files[0].rsplit("/", 1)[0]) == sorted(files)  # what a writer lists to commit
    stages = [{"stage": "quality", "rows_in": 30, "rows_kept": 25, "rows_rejected": 5}]
    first = commit_version(
        table, files, "r1", {"rows": 25, "stages": stages, "config_hash": "abc", "code_version": "deadbeef"}
    )
    again = commit_version(wh.table("web"), files, "r1", {"rows": 25})
    table = wh.table("web")
    assert first.created and not again.created and again.snapshot_id == first.snapshot_id
    assert len(table.metadata.snapshots) == 1
    props = _summary(table, "r1")
    assert props["phi.run-id"] == "r1" and props["phi.config-hash"] == "abc"
    assert props["phi.code-version"] == "deadbeef" and json.loads(props["phi.stages"]) == stages
    assert props["added-data-files"] == "3" and props["total-records"] == "25"
    assert table.metadata.refs["r1"].snapshot_id == first.snapshot_id  # the version's tag
    assert _ids(table) == sorted(d["id"] for d in docs[:25])
    assert sorted(data_files(table, "r1")) == sorted(files)


_KILLED_JOB = """
import json, os, signal, sys
sys.path.insert(0, "tests")
from tables_helpers import real_docs, write_files
from curation.tables import TablesConfig, Warehouse, commit, commit_version
config, shared, when = TablesConfig(**json.loads(sys.argv[1])), sys.argv[2], sys.argv[3]
table = Warehouse(config).table("web")
files = write_files(table, "night", [real_docs(__import__("pathlib").Path(shared), 10, 30)])
kill = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
if when == "before-commit":
    kill()
commit.tag_snapshot = kill  # after the snapshot is committed, before it is tagged
commit_version(table, files, "night", {"rows": 10})
"""


def _job(config: TablesConfig, shared_data: Path, when: str) -> int:
    return subprocess.run(
        [sys.executable, "-c", _KILLED_JOB, config.model_dump_json(), str(shared_data), when],
        check=False,
        timeout=120,
    ).returncode


def test_a_killed_job_leaves_the_table_unchanged_and_its_retry_commits_once(config, docs, shared_data):
    wh = Warehouse(config)
    table = wh.ensure("web", _schema([docs[:10]]))
    commit_version(table, write_files(table, "base", [docs[:10]]), "base")
    before = _ids(table)

    assert _job(config, shared_data, "before-commit") == -9  # files written, nothing committed
    table = wh.table("web")
    assert len(table.metadata.snapshots) == 1 and _ids(table) == before
    orphans = {f for f in _all_files(table) if f not in referenced_files(table)}
    assert len(orphans) == 1  # there, but no reader plans it

    assert _job(config, shared_data, "after-commit") == -9  # committed, killed before the tag
    table = wh.table("web")
    assert len(table.metadata.snapshots) == 2 and "night" not in table.metadata.refs
    retry = commit_version(table, write_files(table, "night", [docs[30:40]]), "night", {"rows": 10})
    table = wh.table("web")
    assert not retry.created and len(table.metadata.snapshots) == 2  # the retry found its run: once
    assert table.metadata.refs["night"].snapshot_id == retry.snapshot_id  # and repaired the tag
    assert _ids(table) == sorted(before + [d["id"] for d in docs[30:40]])

    assert remove_orphan_files(table) == []  # grace period: young files are spared
    removed = remove_orphan_files(table, older_than=dt.timedelta(0))
    assert len(removed) == 2 and {r.rsplit("/", 1)[-1] for r in removed} >= {
        o.rsplit("/", 1)[-1] for o in orphans
    }  # the killed attempt's and the retry's unused file
    assert _ids(wh.table("web")) == sorted(before + [d["id"] for d in docs[30:40]])
    assert all(f in referenced_files(table) for f in _all_files(table))


def _all_files(table) -> list[str]:
    import fsspec

    from curation.tables.maintenance import _key

    fs, root = fsspec.core.url_to_fs(f"{table.location()}/data")
    return [_key(p) for p in fs.find(root)]


_WRITER = """
import json, pathlib, sys, time
sys.path.insert(0, "tests")
from tables_helpers import real_docs, write_files
from curation.tables import TablesConfig, Warehouse, commit_version
config, shared, k, sync = TablesConfig(**json.loads(sys.argv[1])), sys.argv[2], int(sys.argv[3]), sys.argv[4]
table = Warehouse(config).table("web")
docs = real_docs(pathlib.Path(shared), 60)
shared_files = write_files(table, "shared", [docs[40:45]])
mine = [(f"w{k}-{j}", write_files(table, f"w{k}-{j}", [docs[k * 20 + j * 5:k * 20 + j * 5 + 5]]))
        for j in range(4)]
pathlib.Path(sync, f"ready-{k}").touch()
while not pathlib.Path(sync, "go").exists():
    time.sleep(0.01)
commit_version(table, shared_files, "shared")
for run, files in mine:
    commit_version(table, files, run)
"""


def test_two_writers_committing_at_once_both_land_and_one_run_id_lands_once(
    racing_config, docs, shared_data, tmp_path
):
    wh = Warehouse(racing_config)
    wh.ensure("web", _schema([docs[:5]]))
    sync = tmp_path / "sync"
    sync.mkdir()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WRITER,
                racing_config.model_dump_json(),
                str(shared_data),
                str(k),
                str(sync),
            ]
        )
        for k in range(2)
    ]
    deadline = time.monotonic() + 120
    while not all((sync / f"ready-{k}").exists() for k in range(2)) and time.monotonic() < deadline:
        time.sleep(0.05)
    (sync / "go").touch()
    assert [p.wait(timeout=180) for p in procs] == [0, 0]
    table = wh.table("web")
    runs = [v["run_id"] for v in versions(table)]
    assert sorted(runs) == sorted(["shared"] + [f"w{k}-{j}" for k in range(2) for j in range(4)])
    ids = read_arrow(table, columns=("id",)).column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 45  # nothing lost, nothing twice
    assert sorted(ids) == sorted(d["id"] for d in docs[:45])


def test_new_columns_evolve_the_schema_without_rewriting_old_files(config, docs):
    wh = Warehouse(config)
    table = wh.ensure("web", _schema([docs[:10]]))
    old_files = write_files(table, "r1", [docs[:10]])
    commit_version(table, old_files, "r1")
    scored = [{**d, "edu_score": 2.5 + i / 10, "edu_int": i % 5} for i, d in enumerate(docs[10:20])]
    commit_version(table, write_files(table, "r2", [scored]), "r2")
    table = wh.table("web")
    assert [f.name for f in table.schema().fields][-2:] == ["edu_score", "edu_int"]
    assert set(old_files) <= set(data_files(table))  # the old file is still read as it is
    now = read_arrow(table, columns=("id", "edu_score")).to_pylist()
    assert sum(r["edu_score"] is None for r in now) == 10 and len(now) == 20
    assert "edu_score" not in read_arrow(table, "r1").column_names  # r1 read with its own schema
    # a column that only a later file of the run brings (the first file's footer does not show it)
    mixed = [docs[20:25], [{**d, "quality_tag": f"q{i}"} for i, d in enumerate(docs[25:30])]]
    commit_version(table, write_files(table, "r3", mixed), "r3")
    tags = read_arrow(wh.table("web"), columns=("quality_tag",)).column("quality_tag")
    assert len(tags) == 30 and tags.null_count == 25


def test_time_travel_by_run_id_or_snapshot_id_and_rollback(config, docs):
    wh = Warehouse(config)
    table = wh.ensure("web", _schema([docs[:10]]))
    for k in range(3):
        commit_version(table, write_files(table, f"n{k}", [docs[k * 10 : k * 10 + 10]]), f"n{k}")
    pinned = snapshot_id(table, "n1")
    frozen = _ids(table, pinned)
    commit_version(table, write_files(table, "n3", [docs[30:40]]), "n3")
    table = wh.table("web")
    assert _ids(table, pinned) == _ids(table, "n1") == frozen == sorted(d["id"] for d in docs[:20])
    assert [v["rows"] for v in versions(table)] == [10, 20, 30, 40]
    rollback(table, "n1")
    table = wh.table("web")
    assert _ids(table) == frozen and [v["current"] for v in versions(table)] == [False, True, False, False]
    commit_version(table, write_files(table, "n4", [docs[40:50]]), "n4")  # the history forks after n1
    assert _ids(wh.table("web")) == sorted(frozen + [d["id"] for d in docs[40:50]])
    assert _ids(wh.table("web"), "n3") == sorted(d["id"] for d in docs[:40])
    with pytest.raises(TableNotFound, match="no version .* 'n9'"):
        snapshot_id(table, "n9")
    with pytest.raises(TableNotFound, match="no Iceberg table 'phi.missing'"):
        wh.table("missing")


def _schema(batches):
    return to_table(batches[0]).schema


def test_spark_written_files_are_committed_as_one_snapshot(spark, tmp_path, docs):
    """The production shape: Spark (the compute engine) writes the run's files under the table, the driver
    commits what it wrote. Local warehouse only: this Spark has no S3A connector jars."""
    from pyspark.sql.pandas.types import to_arrow_schema

    from curation.tables import data_location, written_files

    frame = spark.createDataFrame(to_table(docs)).repartition(3)
    wh = Warehouse(warehouse_config("local", tmp_path))
    table = wh.ensure("web", to_arrow_schema(frame.schema))
    out = data_location(table, "spark-run")
    frame.write.parquet(out)
    files = written_files(out)
    assert len(files) == 3 and all(f.startswith("file:///") for f in files)  # not _SUCCESS nor .crc files
    commit_version(table, files, "spark-run", {"rows": frame.count()})
    table = wh.table("web")
    assert len(table.metadata.snapshots) == 1 and versions(table)[0]["files"] == 3
    assert _ids(table) == sorted(d["id"] for d in docs)
    assert (
        read_arrow(table)
        .sort_by("id")
        .select(["id", "text"])
        .equals(to_table(docs).sort_by("id").select(["id", "text"]))
    )


def test_retention_expires_old_versions_but_never_pinned_ones_and_frees_their_files(config, docs):
    from curation.tables import expire_versions

    wh = Warehouse(config)
    table = wh.ensure("web", _schema([docs[:10]]))
    for k in range(4):  # n0..n3: a growing corpus, one night at a time
        commit_version(table, write_files(table, f"n{k}", [docs[k * 10 : k * 10 + 10]]), f"n{k}")
    rebuilt = write_files(table, "full", [docs[40:50]])  # a full rebuild replaces everything
    commit_version(table, rebuilt, "full", mode="overwrite")
    pinned = _ids(wh.table("web"), "n1")  # a mixture was built from n1

    expired = expire_versions(wh.table("web"), keep=1, pinned=["n1"])
    table = wh.table("web")
    assert [v["run_id"] for v in versions(table)] == ["n1", "full"] and len(expired) == 3
    assert set(table.metadata.refs) == {"main", "n1", "full"}
    assert _ids(table, "n1") == pinned and _ids(table) == sorted(d["id"] for d in docs[40:50])
    removed = remove_orphan_files(table, older_than=dt.timedelta(0))
    assert len(removed) == 2  # n2's and n3's files: only expired versions read them
    assert _ids(wh.table("web"), "n1") == pinned  # n0's file is n1's too: kept
    assert expire_versions(wh.table("web"), keep=1, pinned=["n1"]) == []
    with pytest.raises(ValueError, match="PHI_ICEBERG_CATALOG_URI"):
        TablesConfig(warehouse="s3://bucket/lake").resolved_catalog_uri()


def test_a_run_whose_tag_was_lost_is_found_after_a_rollback_and_never_lands_twice(tmp_path, docs):
    """A job killed between its commit and its tag, then main rolled back past it: the snapshot is neither
    tagged nor an ancestor of main, yet it was committed on main (not staged), so it is still the run's and
    committing the run again is a no-op (no second snapshot of one run id)."""
    wh = Warehouse(warehouse_config("local", tmp_path))
    table = wh.ensure("web", _schema([docs[:10]]))
    commit_version(table, write_files(table, "n0", [docs[:10]]), "n0")
    lost = commit_version(table, write_files(table, "n1", [docs[10:20]]), "n1").snapshot_id
    table.manage_snapshots().remove_tag("n1").commit()  # the crash before tag_snapshot
    rollback(table, "n0")
    table = wh.table("web")
    again = commit_version(table, write_files(table, "n1", [docs[10:20]]), "n1")
    table = wh.table("web")
    assert not again.created and again.snapshot_id == lost and len(table.metadata.snapshots) == 2
    assert [v["run_id"] for v in versions(table)] == ["n0", "n1"]
