"""`ablate run`: every arm's mixture built with the shared tokenizer, a proxy per (arm, seed) at equal tokens,
the fixed evaluation suite, then the report and the results dataset."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from training.ablation import arms as A
from training.ablation.config import load_ablation
from training.ablation.report import AblationReport, write_ablation_report
from training.ablation.study import Study

log = logging.getLogger(__name__)


def _arm_source(cfg, arm, file: Path) -> tuple[dict, Path]:
    ref = arm.mixture if arm.mixture is not None else cfg.base
    path = Path(ref) if Path(ref).is_absolute() else file.parent / ref
    if not path.is_file():
        raise FileNotFoundError(f"{file}: arm {arm.name!r}: mixture {path} does not exist")
    mix = yaml.safe_load(path.read_text())
    if arm.variations:
        mix = A.apply_variations(mix, arm.variations, f"{file}: arms[{arm.name}]")
    return mix, path


def run_ablation(file: str | Path) -> AblationReport:
    file = Path(file)
    cfg = load_ablation(file)
    study = Study.from_config(cfg, file)
    for arm in cfg.arms:  # every arm pinned (tokenizer checked) before anything is built
        mix, source = _arm_source(cfg, arm, file)
        study.add_arm(arm.name, mix, source)
    study.prepare_suite()
    results = []
    for arm in cfg.arms:
        for seed in cfg.seeds:
            results.append(study.train(arm.name, seed))
    return write_ablation_report(cfg, study, results)
