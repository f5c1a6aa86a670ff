"""Planning a curation run from a DAG run: the version id, where the candidate is built, the effective
config, and the argv of `python -m curation run` for spark-submit.

Idempotence: the version id is derived from the Airflow run id, so a retried or cleared task rebuilds the
same version (the pipeline replaces `<candidates>/<version>` atomically) instead of adding a second one.
"""

from __future__ import annotations

import glob
import logging
import re
from pathlib import Path

import yaml

from curation.paths import REPO_ROOT
from dags.lib.paths import registry_root

#: spark-submit runs this file; it is `python -m curation`, so the CLI and the DAG share one code path.
CURATION_APP = str(REPO_ROOT / "curation" / "__main__.py")
log = logging.getLogger(__name__)

CANDIDATES = "_candidates"  # under a dataset root; hidden from DatasetRoot.versions()
DELTAS = "_deltas"  # nightly: each night's new documents alone, appended onto the corpus
RUNS = "_runs"  # per-run scratch: the effective config


def _is_local(path: str) -> bool:
    return not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", path) or path.startswith("file://")


def check_inputs(globs: list[str]) -> None:
    """Fail before Spark starts when a local input glob matches nothing (remote URIs are checked by
    the job itself through Hadoop's filesystem layer)."""
    if not globs:
        raise ValueError("no input globs given")
    for g in globs:
        local = g.removeprefix("file://")
        if _is_local(g) and not glob.glob(local):
            raise FileNotFoundError(f"input {g!r} matches no file")


def plan_edu(cfg, config_path: str | None, registry: str | Path | None) -> dict:
    """The edu stage of a DAG's curation run: score with the model promoted *now*, pinned in the config.

    - the config file has its own `edu:` section: it is used as written (its model, threshold, or
      `enabled: false`); an enabled section without a model is pinned to the promoted one here;
    - otherwise, with a promoted model in the registry: score (no threshold: selecting by score is the
      mixture's job), pinned to that version folder so a retry scores with the same model;
    - otherwise (no model promoted yet): no scoring; the run passes through unscored, the plan log and
      the manifest's extra.notes say so, and edu_classifier's `web_edu` scores the corpus later.

    Mutates `cfg.edu`; returns {"model": version or None, "note": text or None} for the plan's XCom."""
    from curation.edu.registry import ModelRegistry

    explicit = "edu" in cfg.model_fields_set  # the config file has an `edu:` section
    if explicit and not cfg.edu.enabled:
        return {"model": None, "note": f"edu scoring disabled by {config_path} (edu.enabled: false)"}
    reg = ModelRegistry(cfg.edu.registry if explicit and cfg.edu.registry else registry)
    if explicit and cfg.edu.model:
        ref = reg.resolve(cfg.edu.model)
    elif reg.promoted() is not None:
        ref = reg.resolve(None)
    elif explicit:
        raise FileNotFoundError(
            f"{config_path} enables edu scoring but no edu model is promoted in {reg.root}"
        )
    else:
        return {
            "model": None,
            "note": f"edu scoring skipped: no promoted edu model in {reg.root} yet; "
            f"published unscored (edu_classifier scores the corpus into web_edu "
            f"once a model is promoted)",
        }
    cfg.edu.enabled = True
    cfg.edu.model = str(ref.dir.resolve())
    cfg.edu.registry = str(reg.root)
    return {"model": ref.version, "note": None}


def effective_config(
    config_path: str | None,
    crawl_id: str | None,
    out_path: Path,
    edu_registry: str | Path | None = None,
    near_index: dict | None = None,
) -> tuple[Path, dict, dict]:
    """Validate the curation config (the error lists every bad field) and write the config the run
    really uses, with the crawl id override, the edu stage (plan_edu) and near-dedup's band index
    (dags.lib.near_index.plan_near_index, given `near_index` = its corpus_root/version/base_version/
    incremental) applied, next to the run's other scratch files. Returns the path, the edu decision and
    the near-index decision."""
    from curation.config import load_config
    from dags.lib.near_index import plan_near_index

    cfg = load_config(config_path)
    if crawl_id:
        cfg.ingest.crawl_id = crawl_id
    edu = plan_edu(cfg, config_path, edu_registry)
    near = plan_near_index(cfg, config_path, **near_index) if near_index is not None else {"enabled": False}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    return out_path, edu, near


def curate_flags(edu: dict, near: dict, replace: bool, current: str | None) -> list[str]:
    """The `curation run` flags after the inputs, output and config: the manifest's notes (why the edu stage
    is off, which band index the run deduplicates against, that with `replace` the version replaces the corpus
    whose CURRENT was `current`) and --allow-empty."""
    flags = []
    if edu["note"]:
        flags += ["--note", edu["note"]]
    if near["enabled"]:  # which band index the run deduplicates against, in the manifest's notes
        flags += ["--note", near["note"]]
    # The job writes a delta or a candidate, never the corpus itself: an empty one is legitimate (a night
    # whose every new document is rejected) or is stopped by the gate's row-count expectation, whose report
    # says why. The corpus's CURRENT only moves in publish, through the gate.
    flags.append("--allow-empty")
    if replace:
        note = (
            f"mode replace: this version holds only its own inputs and replaces the corpus as CURRENT "
            f"(was {current})"
        )
        log.warning("%s", note)
        flags += ["--note", note]
    return flags


def plan_curation(
    inputs: list[str],
    root: str | Path,
    version: str,
    config_path: str | None = None,
    crawl_id: str | None = None,
    edu_registry: str | Path | None = None,
    incremental: bool = False,
    replace: bool = False,
) -> dict:
    """Everything the curate/validate/report/publish tasks need, as plain JSON for XCom.

    `incremental` (nightly_refresh, web_curation): curate writes the new inputs' delta to
    `<root>/_deltas/<version>` and the candidate `<root>/_candidates/<version>` is built from it on top of
    `base_version` (the corpus's CURRENT at plan time; curation.append). With `replace` (web_curation's
    `mode: replace`) there is no base: the version holds the new inputs alone and replaces the corpus as
    CURRENT (logged, and noted in the manifest).

    `near_index` (dags.lib.near_index): where the curate job stages near-dedup's band index and which
    index version it deduplicates against; `publish` promotes it after the corpus version."""
    from curation.contract import DatasetRoot

    check_inputs(inputs)
    root = Path(root)
    current = DatasetRoot(root).current() if incremental else None
    base = None if replace else current
    if base == version:  # the plan re-ran after this very version was published: build on its base
        from curation.contract import Manifest

        base = Manifest.read(root / version).base_version
    config, edu, near = effective_config(
        config_path,
        crawl_id,
        root / RUNS / version / "config.yaml",
        edu_registry if edu_registry is not None else registry_root(),
        near_index={
            "corpus_root": root,
            "version": version,
            "base_version": base,
            "incremental": incremental,
        },
    )
    if edu["note"]:
        log.warning("%s", edu["note"])
    else:
        log.info("edu stage: scoring with promoted model %s", edu["model"])
    candidate_root = root / CANDIDATES
    curate_root = root / DELTAS if incremental else candidate_root
    plan = run_plan(inputs, root, version, base, config, edu, near, curate_root, replace, current)
    return {**plan, "candidate_dir": str(candidate_root / version), "replace": replace}


def run_plan(
    inputs: list[str],
    root: Path,
    version: str,
    base: str | None,
    config: Path,
    edu: dict,
    near: dict,
    output: Path,
    replace: bool = False,
    current: str | None = None,
) -> dict:
    """What every curation run's plan holds (XCom JSON), whatever stores it: the version, the corpus root, its
    base version, the effective config, the inputs, the edu and near-dedup decisions, and the argv of
    `python -m curation run` writing `<output>/<version>` (`delta_dir`)."""
    argv = ["run"]
    for g in inputs:
        argv += ["--input", g]
    argv += ["--output", str(output), "--run-id", version, "--config", str(config)]
    argv += curate_flags(edu, near, replace, current)
    return {
        "version": version,
        "root": str(root),
        "delta_dir": str(output / version),
        "base_version": base,
        "config": str(config),
        "inputs": list(inputs),
        "argv": argv,
        "edu_model": edu["model"],
        "edu_note": edu["note"],
        "near_index": near,
    }


class CurrentMoved(RuntimeError):
    """The corpus's CURRENT is no longer the version an incremental run was planned on."""


def append_candidate(planned: dict) -> Path:
    """The next whole-corpus candidate of an incremental run (`planned` = plan_curation's XCom): its base
    version (hard-linked) + the delta's new documents (curation.append). Raises CurrentMoved rather than
    build on a base that is no longer CURRENT: publishing it would drop the version published meanwhile."""
    from curation.append import append_version
    from curation.contract import DatasetRoot

    root = DatasetRoot(planned["root"])
    base, current = planned["base_version"], root.current()
    if not planned["replace"] and current not in (base, planned["version"]):
        raise CurrentMoved(
            f"{root.root}: CURRENT moved from {base} to {current} since this run was planned; publishing "
            f"on top of {base} would drop {current}. Clear this run from `writer_lock` to build on {current}."
        )
    near = planned["near_index"]
    used = (
        {"near_dedup_index": {k: near.get(k) for k in ("root", "base", "rebuilt", "reason")}}
        if near.get("enabled")
        else {}
    )
    return append_version(
        planned["delta_dir"],
        root.version_dir(base) if base else None,
        root.root / CANDIDATES,
        planned["version"],
        extra=used,
    )
