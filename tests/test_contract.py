"""The dataset contract: manifests reconcile, publication is atomic and idempotent per run id."""
from __future__ import annotations

import pytest

from curation.contract import DatasetRoot, Manifest, StageCounts, now_iso, resolve_version_dir
from curation.pipeline import reconcile


def _manifest(version: str, rows: int = 3, stages=None) -> Manifest:
    stages = stages or [StageCounts(stage="ingest", rows_in=5, rows_kept=3, rows_rejected=2, reasons={"x": 2})]
    return Manifest(dataset="t", version=version, created_at=now_iso(), code_version="test", inputs=[],
                    config={}, config_hash="0", stages=stages, rows=rows,
                    rejected_rows=sum(s.rows_rejected for s in stages))


def test_reconcile_chains_stages_and_counts_reasons():
    counts = reconcile(["ingest", "extract", "langid"], 10,
                       {("ingest", "corrupt"): 1, ("langid", "lang_not_allowed"): 3, ("langid", "low"): 2})
    assert [(c.stage, c.rows_in, c.rows_kept, c.rows_rejected) for c in counts] == [
        ("ingest", 10, 9, 1), ("extract", 9, 9, 0), ("langid", 9, 4, 5)]
    assert counts[2].reasons == {"lang_not_allowed": 3, "low": 2}


def test_reconcile_refuses_unknown_stage():
    with pytest.raises(RuntimeError, match="unknown stage"):
        reconcile(["ingest"], 3, {("mystery", "r"): 1})


def test_manifest_check_catches_broken_arithmetic():
    bad = _manifest("v1", stages=[StageCounts(stage="a", rows_in=5, rows_kept=3, rows_rejected=1, reasons={"x": 1})])
    with pytest.raises(ValueError, match="rows_in=5"):
        bad.check()
    chained = _manifest("v1", rows=1, stages=[
        StageCounts(stage="a", rows_in=5, rows_kept=3, rows_rejected=2, reasons={"x": 2}),
        StageCounts(stage="b", rows_in=4, rows_kept=1, rows_rejected=3, reasons={"y": 3})])
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
    from curation.contract import prune_versions

    root = DatasetRoot(tmp_path / "ds")
    root.root.mkdir()
    names = ["20260101T030000Z-aaaaaa", "20260102T030000Z-bbbbbb", "20260103T030000Z-cccccc",
             "20260104T030000Z-dddddd", "20260105T030000Z-eeeeee"]
    for v in reversed(names):   # publish order differs from time order: the names decide
        _publish(root, v)
    root.set_current(names[0])  # a rollback: CURRENT is the oldest version
    for run in ("_deltas/x", "_near_index/y", "_candidates/" + names[1]):
        (root.root / run).mkdir(parents=True)
    (root.root / "not-a-version").mkdir()   # no manifest: not a version, not touched
    with caplog.at_level("INFO", logger="curation.contract"):
        removed = prune_versions(root.root, keep=2)
    assert removed == names[1:3]
    assert root.versions() == [names[0], *names[3:]] and root.current() == names[0]
    assert all((root.root / run).is_dir() for run in ("_deltas/x", "_near_index/y", "_candidates/" + names[1],
                                                      "not-a-version"))
    assert f"pruned version {names[1]}" in caplog.text
    assert not [p for p in root.root.iterdir() if p.name.startswith(".")]   # no trash left
    assert prune_versions(root.root, keep=2) == []   # idempotent
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
    assert main(["prune", "--root", str(tmp_path / "nope"), "--keep", "1"]) == 2   # a user error: exit 2


def test_prune_run_folders_removes_only_published_runs_but_keep(tmp_path):
    from curation.contract import prune_run_folders

    root = DatasetRoot(tmp_path / "ds")
    root.root.mkdir()
    runs = root.root / "_deltas"
    for v in ("n1", "n2", "n3"):
        _publish(root, v)
    for v in ("n1", "n2", "n3", "failed", "_x", ".staging-n4"):
        (runs / v / "data").mkdir(parents=True)
    assert prune_run_folders(runs, root.root, keep="n3") == ["n1", "n2"]
    assert sorted(p.name for p in runs.iterdir()) == [".staging-n4", "_x", "failed", "n3"]
    assert prune_run_folders(runs, root.root, keep="n3") == []   # idempotent
    assert prune_run_folders(tmp_path / "none", root.root, keep="n3") == []
