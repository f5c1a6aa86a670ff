"""The dataset contract: manifests reconcile, publication is atomic and idempotent per run id."""

from __future__ import annotations

import pytest

from curation.contract import DatasetRoot, Manifest, StageCounts, config_hash, now_iso, resolve_version_dir
from curation.pipeline import reconcile


def _manifest(version: str, rows: int = 3, stages=None) -> Manifest:
    stages = stages or [
        StageCounts(stage="ingest", rows_in=5, rows_kept=3, rows_rejected=2, reasons={"x": 2})
    ]
    return Manifest(
        dataset="t",
        version=version,
        created_at=now_iso(),
        code_version="test",
        inputs=[],
        config={},
        config_hash="0",
        stages=stages,
        rows=rows,
        rejected_rows=sum(s.rows_rejected for s in stages),
    )


def test_reconcile_chains_stages_and_counts_reasons():
    counts = reconcile(
        ["ingest", "extract", "langid"],
        10,
        {("ingest", "corrupt"): 1, ("langid", "lang_not_allowed"): 3, ("langid", "low"): 2},
    )
    assert [(c.stage, c.rows_in, c.rows_kept, c.rows_rejected) for c in counts] == [
        ("ingest", 10, 9, 1),
        ("extract", 9, 9, 0),
        ("langid", 9, 4, 5),
    ]
    assert counts[2].reasons == {"lang_not_allowed": 3, "low": 2}


def test_reconcile_refuses_unknown_stage():
    with pytest.raises(RuntimeError, match="unknown stage"):
        reconcile(["ingest"], 3, {("mystery", "r"): 1})


def test_manifest_check_catches_broken_arithmetic():
    bad = _manifest(
        "v1", stages=[StageCounts(stage="a", rows_in=5, rows_kept=3, rows_rejected=1, reasons={"x": 1})]
    )
    with pytest.raises(ValueError, match="rows_in=5"):
        bad.check()
    chained = _manifest(
        "v1",
        rows=1,
        stages=[
            StageCounts(stage="a", rows_in=5, rows_kept=3, rows_rejected=2, reasons={"x": 2}),
            StageCounts(stage="b", rows_in=4, rows_kept=1, rows_rejected=3, reasons={"y": 3}),
        ],
    )
    with pytest.raises(ValueError, match="received 4 rows"):
        chained.check()


def test_publish_replaces_same_run_id_and_moves_current(tmp_path):
    root = DatasetRoot(tmp_path / "ds")
    root.root.mkdir()
    for content in ("first", "second"):
        staging = root.staging_dir("run1")
        (staging / "data").mkdir()
        (staging / "data" / "part.txt").write_text(content)
        _manifest("run1").write(staging)
        root.publish(staging, "run1")
    assert root.versions() == ["run1"]
    assert (root.version_dir("run1") / "data" / "part.txt").read_text() == "second"
    assert root.current() == "run1"
    assert resolve_version_dir(root.root) == root.version_dir("run1")
    assert not [p for p in root.root.iterdir() if p.name.startswith(".")]


def test_publish_refuses_folder_without_manifest(tmp_path):
    root = DatasetRoot(tmp_path / "ds")
    staging = root.staging_dir("run1")
    with pytest.raises(RuntimeError, match="no manifest.json"):
        root.publish(staging, "run1")
    assert root.current() is None


def _build(root: DatasetRoot, version: str, content: str, **kw) -> None:
    """One version through `building`: a data file and a manifest whose counts reconcile."""
    with root.building(version, **kw) as b:
        (b.staging / "data").mkdir()
        (b.staging / "data" / "part.txt").write_text(content)
        b.manifest(dataset="t", inputs=[], config={"c": content}, rows=1)


def test_building_publishes_atomically_and_fills_the_manifest(tmp_path):
    root = DatasetRoot(tmp_path / "ds")
    (tmp_path / "ds").mkdir()
    stale = root.staging_dir("crashed-run")  # a crashed run's leftover: swept before the build starts
    with root.building("run1") as b:
        assert not stale.exists()
        # while the block runs readers see nothing: the version exists only under a hidden staging name
        assert (
            b.staging.name.startswith(".staging-run1-") and root.versions() == [] and root.current() is None
        )
        (b.staging / "data").mkdir()
        (b.staging / "data" / "part.txt").write_text("first")
        b.manifest(dataset="t", inputs=["in"], config={"a": 1}, rows=1)
    assert b.final == root.version_dir("run1") and root.current() == "run1"
    m = Manifest.read(b.final)
    assert (m.version, m.dataset, m.rows, m.config_hash) == ("run1", "t", 1, config_hash({"a": 1}))
    _build(root, "run1", "second")  # a rerun of the run id replaces the version in one rename
    assert (root.version_dir("run1") / "data" / "part.txt").read_text() == "second"
    assert root.versions() == ["run1"] and not [p for p in root.root.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("failure", ["exception", "bad_counts", "no_manifest"])
def test_a_failed_building_publishes_nothing_and_leaves_no_staging(tmp_path, failure):
    root = DatasetRoot(tmp_path / "ds")
    _build(root, "v1", "published")
    with pytest.raises((RuntimeError, ValueError)) as err, root.building("v2") as b:
        (b.staging / "data").mkdir()
        (b.staging / "data" / "part.txt").write_text("half written")
        if failure == "exception":
            raise RuntimeError("the stage broke half way")
        if failure == "bad_counts":  # Manifest.check refuses it on the way out
            b.manifest(
                dataset="t",
                inputs=[],
                config={},
                rows=5,
                stages=[StageCounts(stage="a", rows_in=5, rows_kept=4, rows_rejected=1, reasons={"x": 1})],
            )
    assert {"exception": "half way", "bad_counts": "kept 4", "no_manifest": "no manifest"}[failure] in str(
        err.value
    )
    assert root.versions() == ["v1"] and root.current() == "v1"
    assert (root.version_dir("v1") / "data" / "part.txt").read_text() == "published"
    assert sorted(p.name for p in root.root.iterdir()) == ["CURRENT", "v1"]


def test_building_deferred_goes_live_only_on_publish(tmp_path):
    root = DatasetRoot(tmp_path / "ds")
    with root.building("v1", defer=True) as b:
        b.manifest(dataset="t", inputs=[], config={}, rows=0)
    assert (b.staging / "manifest.json").is_file() and root.versions() == [] and root.current() is None
    b.publish()
    assert root.versions() == ["v1"] and root.current() == "v1"
    with root.building("v2", defer=True) as b2:
        b2.manifest(dataset="t", inputs=[], config={}, rows=0)
    b2.discard()
    assert root.versions() == ["v1"] and not b2.staging.exists()


def test_building_clean_own_spares_other_writers_staging(tmp_path):
    root = DatasetRoot(tmp_path / "ds")
    (tmp_path / "ds").mkdir()
    mine, theirs = root.staging_dir("shard-0"), root.staging_dir("shard-1")
    _build(root, "shard-0", "x", clean="own", set_current=False)
    assert not mine.exists() and theirs.exists() and root.current() is None


def test_resolve_version_dir_names_the_bad_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_version_dir(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither a dataset version"):
        resolve_version_dir(tmp_path / "empty")


def _publish(root: DatasetRoot, version: str, set_current: bool = True) -> None:
    staging = root.staging_dir(version)
    _manifest(version).write(staging)
    root.publish(staging, version, set_current=set_current)


def test_prune_versions_keeps_newest_and_current_ignores_run_folders(tmp_path, caplog):
    from curation.contract_prune import prune_versions

    root = DatasetRoot(tmp_path / "ds")
    root.root.mkdir()
    names = [
        "20260101T030000Z-aaaaaa",
        "20260102T030000Z-bbbbbb",
        "20260103T030000Z-cccccc",
        "20260104T030000Z-dddddd",
        "20260105T030000Z-eeeeee",
    ]
    for v in reversed(names):  # publish order differs from time order: the names decide
        _publish(root, v)
    root.set_current(names[0])  # a rollback: CURRENT is the oldest version
    for run in ("_deltas/x", "_near_index/y", "_candidates/" + names[1]):
        (root.root / run).mkdir(parents=True)
    (root.root / "not-a-version").mkdir()  # no manifest: not a version, not touched
    with caplog.at_level("INFO", logger="curation.contract_prune"):
        removed = prune_versions(root.root, keep=2)
    assert removed == names[1:3]
    assert root.versions() == [names[0], *names[3:]] and root.current() == names[0]
    assert all(
        (root.root / run).is_dir()
        for run in ("_deltas/x", "_near_index/y", "_candidates/" + names[1], "not-a-version")
    )
    assert f"pruned version {names[1]}" in caplog.text
    assert not [p for p in root.root.iterdir() if p.name.startswith(".")]  # no trash left
    assert prune_versions(root.root, keep=2) == []  # idempotent
    root.set_current(names[-1])
    assert prune_versions(root.root, keep=1) == [names[0], names[3]] and root.versions() == [names[-1]]
    with pytest.raises(ValueError, match="keep must be >= 1"):
        prune_versions(root.root, keep=0)
    assert prune_versions(tmp_path / "missing", keep=1) == []


def test_prune_command(tmp_path, capsys):
    from curation.cli import main

    root = DatasetRoot(tmp_path / "ds")
    root.root.mkdir()
    for v in ("r1", "r2", "r3"):
        _publish(root, v)
    assert main(["prune", "--root", str(root.root), "--keep", "1"]) == 0
    assert root.versions() == ["r3"] and "removed  r1" in capsys.readouterr().out
    assert main(["prune", "--root", str(tmp_path / "nope"), "--keep", "1"]) == 2  # a user error: exit 2


def test_prune_run_folders_removes_only_published_runs_but_keep(tmp_path):
    from curation.contract_prune import prune_run_folders

    root = DatasetRoot(tmp_path / "ds")
    root.root.mkdir()
    runs = root.root / "_deltas"
    for v in ("n1", "n2", "n3"):
        _publish(root, v)
    for v in ("n1", "n2", "n3", "failed", "_x", ".staging-n4"):
        (runs / v / "data").mkdir(parents=True)
    assert prune_run_folders(runs, root.root, keep="n3") == ["n1", "n2"]
    assert sorted(p.name for p in runs.iterdir()) == [".staging-n4", "_x", "failed", "n3"]
    assert prune_run_folders(runs, root.root, keep="n3") == []  # idempotent
    assert prune_run_folders(tmp_path / "none", root.root, keep="n3") == []
