"""The edu_classifier DAG's logic: which registered model a DAG run trained (so a retried train task
reuses it instead of registering a second one), the promotion floors, and the scoring run's arguments."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from dags.lib.paths import dataset_root

#: floor name -> (card metrics section, metric key). A floor left None is not checked.
FLOOR_METRICS = {
    "min_macro_f1": ("validation", "macro_f1"),
    "min_spearman": ("validation", "spearman"),
    "min_binary_f1": ("validation", "binary_f1"),
    "min_human_auc": ("human_agreement", "auc"),
}


def run_tag(version: str) -> str:
    """The model card `notes` of the model a DAG run registers: how a retry finds it again."""
    return f"airflow edu_classifier {version}"


def model_for_run(registry: str | Path, version: str) -> str | None:
    """The registered model version whose card carries this run's tag, if the run already trained one."""
    from curation.edu.registry import ModelRegistry, read_card

    reg = ModelRegistry(registry)
    found = [v for v in reg.versions() if read_card(reg.root / v).notes == run_tag(version)]
    if len(found) > 1:
        raise RuntimeError(f"{len(found)} edu models in {reg.root} carry the tag of run {version}: {found}")
    return found[0] if found else None


def check_floors(metrics: dict[str, Any], floors: dict[str, float | None]) -> list[str]:
    """The floors a model's card metrics miss (empty = promotable). A metric that is missing or not a
    number fails its floor: a model is never promoted on a figure nobody measured."""
    unknown = sorted(set(floors) - set(FLOOR_METRICS))
    if unknown:
        raise ValueError(f"unknown promotion floor(s) {unknown}; known: {sorted(FLOOR_METRICS)}")
    misses = []
    for name, floor in sorted(floors.items()):
        if floor is None:
            continue
        section, key = FLOOR_METRICS[name]
        value = (metrics.get(section) or {}).get(key)
        if not isinstance(value, (int, float)) or math.isnan(value):
            misses.append(f"{section}.{key} is {value!r}, floor {name}={floor}")
        elif value < floor:
            misses.append(f"{section}.{key}={value:.4f} < {name}={floor}")
    return misses


def train_for_run(
    registry: str | Path, version: str, labels: list[str], config: str | None = None, human: str | None = None
) -> str:
    """`python -m curation edu train` for one DAG run, at most once: a retry (after a crash anywhere past
    registration) finds the model the run already registered by its tag and returns it."""
    from dags.lib.cli import run_module

    existing = model_for_run(registry, version)
    if existing:
        return existing
    args = ["edu", "train", "--registry", str(registry), "--notes", run_tag(version)]
    for path in labels:
        args += ["--labels", str(path)]
    if config:
        args += ["--config", str(config)]
    if human:
        args += ["--human", str(human)]
    run_module("curation", args)
    found = model_for_run(registry, version)
    if found is None:
        raise RuntimeError(
            f"`curation edu train` succeeded but no model in {registry} carries {run_tag(version)!r}"
        )
    return found


def score_plan(registry: str | Path, model: str, corpus: str | Path, run: str) -> dict:
    """Where the corpus scored with `model` is built (`web_edu/_candidates/<run>`) and the argv of
    `python -m curation edu score` that builds it."""
    root = dataset_root("web_edu")
    argv = [
        "edu",
        "score",
        "--registry",
        str(registry),
        "--model",
        model,
        "--input",
        str(corpus),
        "--output",
        str(root / "_candidates"),
        "--run-id",
        run,
        "--dataset",
        "web_edu",
    ]
    return {
        "model": model,
        "score_argv": argv,
        "root": str(root),
        "candidate_dir": str(root / "_candidates" / run),
    }
