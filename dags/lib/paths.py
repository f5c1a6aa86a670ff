"""Where the DAGs' datasets live and which version a DAG run builds: the root helpers every other
module of dags/lib uses (light: no project imports beyond curation.paths, so nothing here imports back)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from curation.paths import REPO_ROOT


def data_root() -> Path:
    """Where published datasets live (a volume shared by Airflow and Spark in compose)."""
    return Path(os.environ.get("PHI_DATA_ROOT", REPO_ROOT / "out" / "data"))


def dataset_root(name: str) -> Path:
    return data_root() / name


def registry_root() -> Path:
    """The edu model registry: $PHI_EDU_REGISTRY, else beside the datasets (`$PHI_DATA_ROOT/edu_models`)."""
    return Path(os.environ.get("PHI_EDU_REGISTRY") or data_root() / "edu_models")


def version_id(run_id: str, when) -> str:
    """A sortable, path-safe version id stable across retries of one DAG run.

    Airflow run ids contain ':' and '+', which Hadoop paths reject, so the id is the run's logical time
    plus a short hash of the run id (two runs at the same instant still differ)."""
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{hashlib.sha1(run_id.encode()).hexdigest()[:6]}"


def run_version(context) -> str:
    """The version id of the DAG run a task belongs to. Asset-triggered and manual runs have no logical
    date in Airflow 3, so their run_after stands in for it."""
    return version_id(context["run_id"], context.get("logical_date") or context["dag_run"].run_after)
