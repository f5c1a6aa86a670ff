"""Deleting old versions of a dataset root and the run folders of published versions (`python -m curation
prune`, the nightly DAG's record task)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from curation.contract import DatasetRoot
from curation.contract_files import rename_aside

log = logging.getLogger(__name__)


def prune_versions(root: str | os.PathLike, keep: int) -> list[str]:
    """Delete the oldest published versions of dataset root `root` beyond the newest `keep`; returns the
    names removed (oldest first).

    Order is `DatasetRoot.versions()`'s: by name, which is by time (run ids and DAG version ids start with
    a UTC timestamp). The version CURRENT names is never removed, even when it is the oldest (a rollback
    pointed CURRENT back), nor are `_`/`.` folders (run folders, staging) or anything without a manifest.
    Idempotent: a second call finds nothing left to remove. Corpus versions share parquet files by hard
    links (curation/append.py): deleting one version's links leaves the files of every other version intact.
    Nothing calls this on a corpus automatically (mixtures pin versions): `python -m curation prune`."""
    if keep < 1:
        raise ValueError(f"prune_versions({root}): keep must be >= 1, got {keep}")
    ds = DatasetRoot(root)
    current = ds.current()
    versions = ds.versions()
    doomed = [v for v in versions[: max(len(versions) - keep, 0)] if v != current]
    for v in doomed:
        # renamed aside first, so a reader never sees a half-deleted version folder
        shutil.rmtree(rename_aside(ds.version_dir(v)), ignore_errors=True)
        log.info("pruned version %s of %s (keeping the newest %d and CURRENT %s)", v, ds.root, keep, current)
    return doomed


def prune_run_folders(
    runs: str | os.PathLike, root: str | os.PathLike, keep: str, published: set[str] | None = None
) -> list[str]:
    """Delete `runs/<v>` (e.g. nightly deltas, `<root>/_deltas`) for every version v that dataset root `root`
    has published, except `keep`; returns the names removed. A run folder whose version is not published
    (a failed night, which a rerun of the same run id rebuilds) is left alone, as is anything starting with
    `_`/`.`. A published version holds what it kept of the run (documents and rejects hard-linked, a file
    append had to filter rewritten), so the run folder is redundant once published. Idempotent.
    `published`: the versions published elsewhere instead (the run ids of a table the runs were appended to,
    dags/lib/table_store.py), when `root` publishes no version folder."""
    runs, ds = Path(runs), DatasetRoot(root)
    if not runs.is_dir():
        return []
    published = set(ds.versions()) if published is None else published
    doomed = sorted(
        p.name
        for p in runs.iterdir()
        if p.is_dir() and not p.name.startswith((".", "_")) and p.name != keep and p.name in published
    )
    for v in doomed:
        shutil.rmtree(runs / v, ignore_errors=True)
        log.info("removed run folder %s (version %s is published)", runs / v, v)
    return doomed
