"""The near-dedup band index of the published web corpus, as the DAGs keep it: planned with the run, staged by
the curate job, promoted by `publish` only after the corpus version it describes is published.

    <web_curated>/_near_index/             a dataset root (curation/dedup/band_index.py)
      CURRENT, <version>/                  version id = the corpus version it describes
      _staged/<version>/                   the run's own index root, given to the curate job as
                                           `near_dedup.index_dir`: its base (hard-linked) or a
                                           rebuild request, and the version the job staged;
                                           promoted by publish, then removed
                                           (the index keeps its newest KEEP_INDEX_VERSIONS versions)

The curate job's pipeline publishes its index version as soon as its own output is written (that is the
job's contract), so it is handed a per-run root: the live index's CURRENT cannot move before the gate.
`promote` (called by the DAG's publish task after the corpus version went live) renames the staged
version into the index root and points CURRENT at it; a failed gate leaves both untouched.

nightly_refresh: the night's delta is near-deduplicated against the index version describing its base
corpus version (same id, same LSH parameters, shingles when verification is on). Any other state (a
web_curation run without near-dedup, a manual run, an index built with other parameters, none at all)
is handled at plan time by a rebuild request: the curate job first indexes every document of the base
corpus version (their signatures computed once, logged) and then deduplicates the night against it.
web_curation (a full run): with near-dedup enabled in its config, the index is built from the run's own
kept documents (no base); without it no index is staged, and the next night rebuilds one.

With a table catalog configured (PHI_ICEBERG_WAREHOUSE / PHI_ICEBERG_CATALOG_URI: the demo, the stack,
compose), the corpus's versions are published to table `<corpus>` and its band index is the append-only
table `<corpus>_near_index` (curation/dedup/band_table.py) instead of the folder: a night adds only its kept
documents' rows, so its index cost is O(delta) where the folder index rewrites every entry every night.
    plan     the night reads the table at the snapshot of its base corpus version (`index_table_ref`);
             a table that does not describe the base (none yet, its head another version's, other LSH
             parameters or shingles) is rebuilt from the base version by the curate job first, as snapshot
             `rebuild/<version>` (`index_table_rebuild_from`)
    curate   writes the night's rows under the table's location and records them in its manifest
             (`index_commit: deferred`): nothing is committed before the gate
    promote  commits them (band_table.commit_staged: one APPEND snapshot of the version's id, only on the
             snapshot the night read) after the corpus version went live, then expires all but the table's
             newest KEEP_INDEX_VERSIONS snapshots and removes day-old unreferenced files (a rebuild's
             predecessor, failed nights' rows)
A run without a base (web_curation's full or replace run, an empty corpus) deduplicates its input alone and
stages nothing; the next night rebuilds the table from the version it published.

Known imprecision, harmless in direction: the staged index holds the night's near-dedup survivors, a few of
which `append` may still drop as already published (an id re-crawled with new text: near-dedup lets the
batch's copy replace the index entry of that id, append then keeps the published text). The index then
holds the new text's bands for that id, so a later near copy of the new text is dropped too although the
corpus holds the old one: more deduplication, never a lost published document. (An exact text copy of a
published document is caught by near-dedup already, Jaccard 1, before append's text check.)
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from curation.paths import TABLE_PREFIX

log = logging.getLogger(__name__)

INDEX = "_near_index"  # under the corpus root; hidden from DatasetRoot.versions()
TABLE_SUFFIX = "_near_index"  # the band index table of corpus table T: T_near_index
REBUILD_PREFIX = "rebuild/"  # the run id of a table rebuilt for night <version>: rebuild/<version>
STAGED = "_staged"
#: Index versions kept after a promote (the new CURRENT and the one before it); older ones are deleted.
#: An index version is only ever a base for the next night (same id as the corpus's CURRENT); anything
#: older is rebuilt from its corpus version on demand (plan_near_index), so 2 bounds disk at no cost.
KEEP_INDEX_VERSIONS = 2


def index_root(corpus_root: str | Path) -> Path:
    return Path(corpus_root) / INDEX


def _link_tree(src: Path, dst: Path) -> None:
    """`dst` = `src` with every file hard-linked (copied across devices): published versions are immutable."""
    from curation.contract import link_or_copy

    shutil.copytree(src, dst, copy_function=link_or_copy)


def _unusable(index, version: str, params: dict, verify: bool) -> str | None:
    """Why index version `version` cannot serve as the base of a run with `params`, or None."""
    from curation.contract import Manifest

    current = index.current()
    if current is None:
        return f"the band index {index.root} has no version yet"
    if current != version:
        return f"the band index's CURRENT is {current}, not the corpus's CURRENT {version}"
    vdir = index.version_dir(version)
    if not (vdir / "manifest.json").is_file():
        return f"{vdir} has no manifest.json"
    stored = Manifest.read(vdir).config.get("lsh")
    if stored != params:
        return f"{vdir} was built with LSH parameters {stored}, this run uses {params}"
    if verify and not (vdir / "shingles").is_dir():
        return f"{vdir} has no shingles/ (built with verify off) but verification is on"
    return None


def plan_near_index(
    cfg,
    config_path: str | None,
    corpus_root: str | Path,
    version: str,
    base_version: str | None,
    incremental: bool,
    base_source: str | None = None,
) -> dict:
    """Decide the run's near-dedup and point `cfg.near_dedup.index_dir` at the run's staged index root.

    web_curation (full run): near-dedup as the config says (off by default); when on, the index is built
    from the run's kept documents. nightly_refresh (incremental): on unless the config says
    `near_dedup: {enabled: false}`, against the index of `base_version` (rebuilt by the job when the
    published index does not describe it; `base_source`: where that version's documents are when it is
    not the folder `<corpus_root>/<base_version>`, e.g. `iceberg:web_curated@<run id>`). `cfg` is the config
    loaded from `config_path` (what the file sets is its model_fields_set). Mutates `cfg`; returns the plan's
    `near_index` XCom."""
    nd = cfg.near_dedup
    table = index_table(corpus_root)
    where = f"{TABLE_PREFIX}{table}" if table else str(index_root(corpus_root))
    if nd.index_dir or nd.index_table:
        raise ValueError(
            f"{config_path}: near_dedup.{'index_dir' if nd.index_dir else 'index_table'} is set"
            f" ({nd.index_dir or nd.index_table!r}) but the DAGs keep the corpus's band index themselves"
            f" ({where}); remove it"
        )
    if (
        incremental and "enabled" not in nd.model_fields_set
    ):  # the config file leaves near_dedup.enabled unset
        nd.enabled = True
    if not nd.enabled:
        note = (
            f"near-dedup off ({config_path or 'default config'}): no band index staged; the index "
            f"{where} will not describe this version and the next nightly_refresh rebuilds it"
        )
        log.warning("%s", note)
        return {"enabled": False, "root": where, "note": note}
    if table:
        base = base_version if incremental else None
        source = (base_source or str(Path(corpus_root) / base)) if base else None
        return _plan_table(nd, table, version, base, source)
    return _plan_folder(nd, corpus_root, version, base_version, incremental)


def _plan_folder(
    nd, corpus_root: str | Path, version: str, base_version: str | None, incremental: bool
) -> dict:
    """The folder band index: the run's staged index root, holding its base version (hard-linked) or a
    rebuild request (see the module docstring)."""
    from curation.contract import DatasetRoot, Manifest
    from curation.dedup.band_index import params_dict, request_rebuild
    from curation.dedup.near import lsh_params

    index = DatasetRoot(index_root(corpus_root))
    staged = index.root / STAGED / version
    shutil.rmtree(staged, ignore_errors=True)  # a re-planned run starts from a clean root
    staged.mkdir(parents=True)
    nd.index_dir = str(staged)
    plan = {
        "enabled": True,
        "root": str(index.root),
        "staged_root": str(staged),
        "version": version,
        "base": None,
        "rebuilt": False,
        "reason": None,
    }
    if not incremental or base_version is None:
        plan["note"] = (
            f"near-dedup band index: built from this version's kept documents alone, staged in "
            f"{staged}; it goes live when this version is published"
        )
        log.info("%s", plan["note"])
        return plan

    plan["base"] = base_version
    why = _unusable(index, base_version, params_dict(lsh_params(nd)), nd.verify)
    if why is None:
        _link_tree(index.version_dir(base_version), staged / base_version)
        DatasetRoot(staged).set_current(base_version)
        plan["note"] = f"near-dedup against band index version {base_version} ({index.root})"
        log.info("%s", plan["note"])
        return plan
    corpus_dir = Path(corpus_root) / base_version
    rows = Manifest.read(corpus_dir).rows if (corpus_dir / "manifest.json").is_file() else "all"
    request_rebuild(staged, corpus_dir, base_version, why)
    plan.update(
        rebuilt=True,
        reason=why,
        note=f"near-dedup band index rebuilt: {why}; the curate job indexes corpus version {base_version} "
        f"first (signatures of its {rows} documents, computed once) and deduplicates the night "
        f"against it",
    )
    log.warning("%s", plan["note"])
    return plan


def index_table(corpus_root: str | Path) -> str | None:
    """The corpus's band index table when the corpus's versions go to a table (a catalog is configured,
    curation/tables/publish.py): `<corpus table>_near_index`; None: the folder index (`index_root`)."""
    from curation.contract import DatasetRoot
    from curation.tables.publish import table_target

    target = table_target(DatasetRoot(corpus_root))
    return None if target is None else f"{target.name}{TABLE_SUFFIX}"


def _plan_table(nd, table: str, version: str, base: str | None, base_source: str | None) -> dict:
    """The band index as an append-only table (curation/dedup/band_table.py): the night deduplicates against
    the snapshot of its base corpus version (`index_table_ref`) and its kept rows are committed only by
    `promote`, after the gate (`index_commit: deferred`). A table that does not describe the base is rebuilt
    from the base version by the curate job first, as snapshot `rebuild/<version>`. Without a base (a full
    run, an empty corpus) the job deduplicates its input alone and stages nothing: the next night rebuilds."""
    from curation.dedup.band_table import base_ref
    from curation.dedup.near import lsh_params
    from curation.tables.catalog import Warehouse

    where = f"{TABLE_PREFIX}{table}"
    plan = {"enabled": True, "root": where, "table": table, "version": version, "base": base}
    plan.update(rebuilt=False, reason=None, staged=base is not None)
    if base is None:
        plan["note"] = (
            f"near-dedup within this version only: the band index table {table} is not staged; the next"
            f" nightly_refresh rebuilds it from this version"
        )
        log.warning("%s", plan["note"])
        return plan
    warehouse = Warehouse()
    ref, why = (
        base_ref(warehouse.table(table), base, lsh_params(nd), nd.verify, rebuilt_from=base_source)
        if warehouse.exists(table)
        else (None, f"the band index table {warehouse.identifier(table)} does not exist yet")
    )
    nd.index_table, nd.index_commit, nd.index_table_ref = table, "deferred", ref
    if why is None:
        plan["note"] = f"near-dedup against the band index table {table} at corpus version {base}"
        log.info("%s", plan["note"])
        return plan
    nd.index_table_ref = f"{REBUILD_PREFIX}{version}"
    nd.index_table_rebuild_from = base_source
    plan.update(
        rebuilt=True,
        reason=why,
        note=f"near-dedup band index table rebuilt: {why}; the curate job indexes corpus version {base}"
        f" first (snapshot {nd.index_table_ref}) and deduplicates the night against it",
    )
    log.warning("%s", plan["note"])
    return plan


def _promote_table(near: dict, published_version: str, version_dir: str | Path | None) -> str | None:
    """Commit the night's staged band rows (recorded in the published version's manifest,
    `near_dedup.index_commit`) as the table's next snapshot, then expire all but its newest
    KEEP_INDEX_VERSIONS snapshots and delete the files no snapshot left references (a rebuild's predecessor,
    failed nights' staged rows) once they are a day old. Called after the corpus version went live: when the
    table moved since the night read it (another writer), the night is not committed and this warns instead of
    failing the publish; the next night's plan finds the table behind the corpus and rebuilds it."""
    from curation.contract import Manifest
    from curation.dedup.band_table import commit_staged
    from curation.tables.catalog import Warehouse
    from curation.tables.commit import TableMoved
    from curation.tables.maintenance import expire_versions, remove_orphan_files

    if not near.get("staged"):
        log.warning(
            "band index table %s not updated for %s: %s", near["table"], published_version, near["note"]
        )
        return None
    if version_dir is None:
        raise ValueError(
            f"promoting the band index table {near['table']} needs the published version's folder"
        )
    staged = Manifest.read(version_dir).extra.get("near_dedup", {}).get("index_commit")
    if not staged:
        raise FileNotFoundError(
            f"{version_dir}/manifest.json records no staged band index rows (extra.near_dedup.index_commit):"
            f" did the curate job run with near-dedup on table {near['table']}?"
        )
    if staged["run_id"] != published_version:
        raise ValueError(
            f"band index rows staged for {staged['run_id']} but the published corpus version is"
            f" {published_version}"
        )
    warehouse = Warehouse()
    try:
        sid = commit_staged(staged, warehouse)
    except TableMoved as e:
        log.warning(
            "band index table %s not updated for %s (%s): the next night rebuilds it",
            near["table"],
            published_version,
            e,
        )
        return None
    expire_versions(warehouse.table(near["table"]), keep=KEEP_INDEX_VERSIONS)
    remove_orphan_files(warehouse.table(near["table"]))
    log.info("band index table %s promoted: snapshot %s describes %s", near["table"], sid, published_version)
    return published_version


def promote(near: dict | None, published_version: str, version_dir: str | Path | None = None) -> str | None:
    """After `published_version` of the corpus went live: make the index version the run staged CURRENT.

    Then prunes the index root to its newest KEEP_INDEX_VERSIONS versions (never CURRENT).
    Idempotent (a retried publish finds it promoted). Returns the index version now CURRENT, or None when
    the run staged none (near-dedup off: the index no longer describes the corpus's CURRENT)."""
    from curation.contract import DatasetRoot, replace_dir
    from curation.contract_prune import prune_versions

    if not near or not near.get("enabled"):
        log.warning(
            "no band index staged for %s: %s", published_version, (near or {}).get("note", "near-dedup off")
        )
        return None
    if near.get("table"):
        return _promote_table(near, published_version, version_dir)
    index, staged = DatasetRoot(near["root"]), DatasetRoot(near["staged_root"])
    version = near["version"]
    if version != published_version:
        raise ValueError(
            f"band index staged for {version} but the published corpus version is {published_version}"
        )
    src, final = staged.version_dir(version), index.version_dir(version)
    if (src / "manifest.json").is_file():
        index.root.mkdir(parents=True, exist_ok=True)
        replace_dir(src, final)
    elif not (final / "manifest.json").is_file():
        raise FileNotFoundError(
            f"no band index staged for {version} in {staged.root} and none in {index.root}: "
            f"did the curate job run with near-dedup?"
        )
    index.set_current(version)
    shutil.rmtree(staged.root, ignore_errors=True)
    log.info("band index %s promoted: CURRENT = %s (describes the published corpus version)", final, version)
    prune_versions(index.root, KEEP_INDEX_VERSIONS)  # a run staging from an older one holds hard links
    return version


def publish_with_index(candidate_dir: str | Path, root: str | Path, kind: str, near: dict | None) -> Path:
    """The DAGs' publish: the candidate goes live only if its gate passes (GateFailed otherwise, and
    nothing moves), and only then its band index (`promote`)."""
    from curation.quality_gates import publish_gated

    final = publish_gated(candidate_dir, root, kind=kind)
    promote(near, Path(final).name, final)
    return final
