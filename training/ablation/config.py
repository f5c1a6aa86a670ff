"""The ablation and search YAMLs (pydantic, unknown keys rejected; every problem listed with its line).

An ablation compares arms (mixtures) at an equal token budget with one tiny proxy model, several seeds, one
shared tokenizer and one evaluation suite. A search samples mixtures of a base mixture's phase and fits a
regression from weights to the target (RegMix). Relative paths are relative to the YAML file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from training.mixture.schema import NAME_PATTERN, LoadedYaml, Strict, format_path, load_yaml
from training.model import PRESETS


class Variation(Strict):
    """One change to a base mixture's source: exactly one of the change fields."""

    phase: str
    source: str
    filter: str | None = None  # replace the DuckDB filter ("" removes it)
    dataset: str | None = None  # swap the source's dataset
    edu_threshold: float | None = None  # set `edu_score >= X` in the filter (replacing any such clause)
    scale_weight: float | None = Field(None, gt=0)  # multiply the weight; the phase is renormalised to 1

    @model_validator(mode="after")
    def _one_change(self) -> Variation:
        changes = [
            k for k in ("filter", "dataset", "edu_threshold", "scale_weight") if getattr(self, k) is not None
        ]
        if len(changes) != 1:
            raise ValueError(
                f"give exactly one of filter, dataset, edu_threshold, scale_weight (got {changes or 'none'})"
            )
        return self


class Arm(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    mixture: str | None = None  # an explicit mixture YAML
    variations: list[Variation] = Field(default_factory=list)  # changes to the ablation's `base`

    @model_validator(mode="after")
    def _mixture_or_base(self) -> Arm:
        if self.mixture is not None and self.variations:
            raise ValueError(
                "give `mixture` (an explicit YAML) or `variations` (of the base mixture), not both"
            )
        return self


class Proxy(Strict):
    """The proxy model and its optimizer; `tiny` trains on a CPU, larger presets want the GPU queue."""

    preset: Literal[tuple(PRESETS)] = "tiny"  # type: ignore[valid-type]
    seq_len: int = Field(128, gt=0)
    global_batch_tokens: int = Field(2048, gt=0)
    micro_batch: int = Field(16, gt=0)
    lr: float = Field(3e-3, gt=0)
    warmup_steps: int = Field(10, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    log_every: int = Field(5, gt=0)


class TextSet(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    path: str  # parquet / jsonl (a `text` field) / .txt, or a glob of them


class EvalSuite(Strict):
    """Fixed for the whole ablation: reference sets no arm trains on, and MMLU log-likelihood accuracy."""

    tokens: int = Field(16384, gt=0)  # per reference set
    # a set with fewer tokens is scored and reported but left out of the target (the mean over sets): a few
    # windows of text give a loss whose seed and sampling noise swamps the arms' differences (capped at
    # `tokens`: a set holding all the tokens asked for always counts)
    min_tokens: int = Field(2048, ge=0)
    heldout: bool = True  # the held-out slice of every dataset the arms read
    heldout_exclude: list[str] = Field(default_factory=list)  # datasets (as written) not to evaluate on
    benchmarks: str | None = "${PHI_SHARED_DATA}/benchmarks_decontam"  # None: no benchmark reference text
    texts: list[TextSet] = Field(default_factory=list)
    mmlu_questions: int = Field(200, ge=0)  # 0: no multiple-choice accuracy
    noise_sigmas: float = Field(2.0, gt=0)  # a difference counts when > this x the pooled seed s.d.


class AblationConfig(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    output: str  # work folder: builds, runs, report, results dataset
    tokenizer: str  # the shared tokenizer folder (`python -m training tokenizer train`)
    base: str | None = None  # the base mixture YAML that `variations` change
    arms: list[Arm] = Field(min_length=2)
    proxy: Proxy = Proxy()
    tokens: dict[str, int] = Field(min_length=1)  # training tokens per phase, the same for every arm
    seeds: list[int] = Field(default=[0, 1], min_length=1)
    data_seed: int = 0  # every arm's mixture seed: the same documents held out everywhere
    heldout_fraction: float = Field(0.05, gt=0, lt=0.5)
    eval: EvalSuite = EvalSuite()


class SearchConfig(Strict):
    """RegMix: sample weight vectors of one phase of `base`, train a proxy on each, regress the target."""

    name: str = Field(pattern=NAME_PATTERN)
    output: str
    tokenizer: str
    base: str
    phase: str  # the phase whose weights are searched; the others stay fixed
    samples: int = Field(24, ge=8)
    concentration: float = Field(1.0, gt=0)  # Dirichlet alpha = concentration x n_sources x current weights
    regressor: Literal["ridge", "gbt"] = "ridge"
    folds: int = Field(5, ge=3)
    candidates: int = Field(100_000, ge=1000)  # simplex points the fitted model scores
    top_k: int = Field(100, ge=1)  # the proposal averages the best k candidates (as RegMix does)
    verify: bool = True  # train the proposed mixture as one more proxy
    proxy: Proxy = Proxy()
    tokens: dict[str, int] = Field(min_length=1)
    seed: int = 0
    data_seed: int = 0
    heldout_fraction: float = Field(0.05, gt=0, lt=0.5)
    eval: EvalSuite = EvalSuite(mmlu_questions=0)


class ConfigError(ValueError):
    def __init__(self, file: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in {file}:\n" + "\n".join(f"  {p}" for p in problems))


def _load(path: str | Path, model: type[Strict]) -> tuple[Strict, LoadedYaml]:
    doc = load_yaml(path)
    try:
        return model.model_validate(doc.data), doc
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = tuple(err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = f"unknown key {loc[-1]!r}"
            elif "input" in err and not isinstance(err["input"], (dict, list)) and err["type"] != "missing":
                msg += f" (got {err['input']!r})"
            problems.append(f"{path}:{doc.line(loc) or '?'}: {format_path(loc)}: {msg}")
        raise ConfigError(str(path), problems) from None


def load_ablation(path: str | Path) -> AblationConfig:
    cfg, doc = _load(path, AblationConfig)
    problems = []
    names: dict[str, int] = {}
    for i, arm in enumerate(cfg.arms):
        where = f"{path}:{doc.line(('arms', i)) or '?'}: arms[{i}]"
        if arm.name in names:
            problems.append(f"{where}.name: arm {arm.name!r} repeats arms[{names[arm.name]}]")
        names[arm.name] = i
        if arm.mixture is None and cfg.base is None:
            problems.append(f"{where}: no `mixture`, and the ablation has no `base` for its variations")
    if problems:
        raise ConfigError(str(path), problems)
    return cfg


def load_search(path: str | Path) -> SearchConfig:
    return _load(path, SearchConfig)[0]


def kind_of(path: str | Path) -> Literal["ablation", "search"]:
    """Which of the two a YAML is (the DAG's single param takes either): a search names a `phase`."""
    doc = load_yaml(path)
    return "search" if isinstance(doc.data, dict) and "phase" in doc.data else "ablation"


def describe(path: str | Path) -> dict:
    """What the `mixture_ablation` DAG needs to route a study: its kind, whether its proxies want the GPU
    queue (a preset larger than the CPU `tiny`, or device cuda), and where its report lands. Validates the
    YAML fully (every problem listed) so the DAG fails in its first task."""
    path = Path(path)
    kind = kind_of(path)
    cfg = load_search(path) if kind == "search" else load_ablation(path)
    out = Path(cfg.output) if Path(cfg.output).is_absolute() else path.parent / cfg.output
    gpu = cfg.proxy.device == "cuda" or cfg.proxy.preset != "tiny"
    return {
        "kind": kind,
        "name": cfg.name,
        "gpu": gpu,
        "output": str(out.resolve()),
        "arms": len(cfg.arms) if kind == "ablation" else cfg.samples + 1 + int(cfg.verify),
    }
