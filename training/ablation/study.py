"""What an ablation and a search share: arm mixtures pinned to one tokenizer and budget, their builds, the
evaluation suite, and one proxy run per (arm, seed) under OUTPUT/arms/<arm>/."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from training.ablation import arms as A
from training.ablation.proxy import train_and_score
from training.ablation.references import DatasetRef, McItem, build_suite
from training.mixture import sources as S

log = logging.getLogger(__name__)


@dataclass
class Study:
    out: Path
    tok: dict
    proxy: object
    steps: dict[str, int]
    data_seed: int
    heldout_fraction: float
    suite: object
    mixtures: dict[str, dict] = field(default_factory=dict)  # arm -> its pinned mixture
    sets: dict = field(default_factory=dict)
    target_sets: list[str] = field(default_factory=list)  # the sets the target averages (min_tokens)
    items: list[McItem] = field(default_factory=list)

    @classmethod
    def from_config(cls, cfg, file: Path) -> Study:
        out = Path(cfg.output) if Path(cfg.output).is_absolute() else file.parent / cfg.output
        tok_path = Path(cfg.tokenizer) if Path(cfg.tokenizer).is_absolute() else file.parent / cfg.tokenizer
        bad = sorted(set(cfg.tokens) - {"phase1", "phase2"})
        if bad or "phase1" not in cfg.tokens:
            raise ValueError(
                f"{file}: tokens: phases are phase1 (required) and phase2 (the trainer's two"
                f" phases), got {sorted(cfg.tokens)}"
            )
        steps = {p: A.steps_for(n, cfg.proxy.global_batch_tokens) for p, n in sorted(cfg.tokens.items())}
        return cls(
            out.resolve(),
            A.shared_tokenizer(tok_path),
            cfg.proxy,
            steps,
            cfg.data_seed,
            cfg.heldout_fraction,
            cfg.eval,
        )

    @property
    def budgets(self) -> dict[str, int]:
        return {
            p: A.build_budget(n, self.proxy.global_batch_tokens, self.proxy.seq_len)
            for p, n in self.steps.items()
        }

    def arm_dir(self, arm: str) -> Path:
        return self.out / "arms" / arm

    def add_arm(self, arm: str, mix: dict, source_file: Path) -> Path:
        pinned = A.arm_mixture(
            mix,
            source_file,
            arm,
            self.tok,
            self.budgets,
            self.proxy.seq_len,
            self.data_seed,
            self.heldout_fraction,
        )
        self.mixtures[arm] = pinned
        return A.write_yaml(pinned, self.arm_dir(arm) / "mixture.yaml")

    def build(self, arm: str) -> Path:
        """Build the arm's mixture (skipped when the build already holds this exact YAML)."""
        from training.data import read_mixture
        from training.mixture.build import build

        path, dest = self.arm_dir(arm) / "mixture.yaml", self.arm_dir(arm) / "build"
        manifest = dest / "manifest.json"
        if not (manifest.is_file() and read_mixture(dest).manifest.get("mixture_yaml") == path.read_text()):
            build(path, dest, shared_cache=self.out / "token_cache")
        got = read_mixture(dest).manifest["tokenizer"]["hash"]
        if got != self.tok["hash"]:
            raise ValueError(
                f"arm {arm!r}: its build {dest} uses tokenizer {got[:12]}, not the shared "
                f"{self.tok['hash'][:12]}: losses under two vocabularies do not compare"
            )
        return dest

    def datasets(self) -> list[DatasetRef]:
        refs: dict[str, DatasetRef] = {}
        for mix in self.mixtures.values():
            registry = S.load_registry(Path(mix["registry"])) if mix.get("registry") else {}
            for phase in mix["phases"]:
                for s in phase["sources"]:
                    refs.setdefault(s["dataset"], DatasetRef(s["dataset"], registry))
        return list(refs.values())

    def prepare_suite(self) -> None:
        self.sets, self.items = build_suite(
            self.suite,
            self.datasets(),
            self.tok["path"],
            self.tok["eos_token"],
            self.data_seed,
            self.heldout_fraction,
            self.out / "reference",
        )
        # a set holds tokens + 1 ids (the last window's target): its size is len - 1
        floor = min(self.suite.min_tokens, self.suite.tokens)  # a set with all eval.tokens always counts
        self.target_sets = [k for k, v in self.sets.items() if len(v) - 1 >= floor]
        small = sorted(set(self.sets) - set(self.target_sets))
        if small:
            log.warning(
                "reference set(s) %s under %d tokens (eval.min_tokens): reported, not in the target",
                ", ".join(f"{k} ({max(0, len(self.sets[k]) - 1)} tokens)" for k in small),
                floor,
            )
        if not self.target_sets:
            raise ValueError(
                f"no reference set has {floor} tokens (eval.min_tokens)"
                f" ({ {k: max(0, len(v) - 1) for k, v in self.sets.items()} }): lower it or add eval.texts"
            )
        (self.out / "reference" / "sets.yaml").write_text(
            yaml.safe_dump(
                {
                    "tokens": {k: len(v) for k, v in self.sets.items()},
                    "target_sets": self.target_sets,
                    "min_tokens": floor,
                    "mmlu_items": len(self.items),
                }
            )
        )

    def train(self, arm: str, seed: int, extra: dict | None = None) -> dict:
        build = self.build(arm)
        log.info("arm %s seed %d: training %s", arm, seed, self.steps)
        return train_and_score(
            self.proxy,
            build,
            self.arm_dir(arm) / f"seed-{seed}",
            self.steps,
            seed,
            self.sets,
            self.items,
            {"arm": arm, **(extra or {})},
            self.target_sets,
        )
