"""Planning a curation run from a DAG run: the version id, where the candidate is built, the effective
config, and the argv of `python -m curation run` for spark-submit.

Idempotence: the version id is derived from the Airflow run id, so a retried or cleared task rebuilds the
same version (the pipeline replaces `<candidates>/<version>` atomically) instead of adding a second one.
"""
from __future__ import annotations

import glob
import hashlib
import os
import re
from pathlib import Path

import yaml

from curation.paths import REPO_ROOT

#: spark-submit runs this file; it is `python -m curation`, so the CLI and the DAG share one code path.
CURATION_APP = str(REPO_ROOT / "curation" / "__main__.py")
CANDIDATES = "_candidates"   # under a dataset root; hidden from DatasetRoot.versions()
RUNS = "_runs"               # per-run scratch: the effective config


def data_root() -> Path:
    """Where published datasets live (a volume shared by Airflow and Spark in compose)."""
    return Path(os.environ.get("PHI_DATA_ROOT", REPO_ROOT / "out" / "data"))


def dataset_root(name: str) -> Path:
    return data_root() / name


def version_id(run_id: str, when) -> str:
    """A sortable, path-safe version id stable across retries of one DAG run.

    Airflow run ids contain ':' and '+', which Hadoop paths reject, so the id is the run's logical time
    plus a short hash of the run id (two runs at the same instant still differ)."""
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{hashlib.sha1(run_id.encode()).hexdigest()[:6]}"


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


def effective_config(config_path: str | None, crawl_id: str | None, out_path: Path) -> Path:
    """Validate the curation config (the error lists every bad field) and write the config the run
    really uses, with the crawl id override applied, next to the run's other scratch files."""
    from curation.config import load_config

    cfg = load_config(config_path)
    if crawl_id:
        cfg.ingest.crawl_id = crawl_id
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    return out_path


def plan_curation(inputs: list[str], root: str | Path, version: str, config_path: str | None = None,
                  crawl_id: str | None = None) -> dict:
    """Everything the curate/validate/report/publish tasks need, as plain JSON for XCom."""
    check_inputs(inputs)
    root = Path(root)
    config = effective_config(config_path, crawl_id, root / RUNS / version / "config.yaml")
    candidate_root = root / CANDIDATES
    argv = ["run"]
    for g in inputs:
        argv += ["--input", g]
    argv += ["--output", str(candidate_root), "--run-id", version, "--config", str(config)]
    return {"version": version, "root": str(root), "candidate_dir": str(candidate_root / version),
            "config": str(config), "inputs": list(inputs), "argv": argv}
