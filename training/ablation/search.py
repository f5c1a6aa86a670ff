"""`ablate search`: RegMix-style mixture search (Liu et al. 2024, "RegMix: Data Mixture as Regression").

Sample weight vectors of one phase of a base mixture (Dirichlet around the current weights, within each
source's max_epochs cap at the proxy budget), train one tiny proxy per sample at equal tokens, fit a
regression from weights to the target (the mean held-out loss over the suite's reference sets), score many
simplex points with it and propose the mean of the best k (RegMix averages its top predictions rather than
trusting one argmin). The report holds cross-validated predicted vs observed (Spearman), the partial
dependence of the target on each source's weight, and the proposed vs current weights; with `verify` the
proposal is trained as one more proxy and ranked among the samples.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from training.ablation.config import load_search
from training.ablation.results import publish_results
from training.ablation.search_report import write_search_plots
from training.ablation.study import Study
from training.mixture.validate import check_mixture

log = logging.getLogger(__name__)

MIN_WEIGHT = 0.005  # a sampled source keeps at least this share (a weight of 0 is not a mixture source)
CAP_MARGIN = 0.95  # the plan estimates available tokens from a sample; the build counts them exactly


@dataclass
class SearchReport:
    out: Path
    sources: list[str]
    current: list[float]
    proposed: list[float]
    caps: list[float]
    spearman: float
    observed: dict[str, float]  # arm -> target
    proposed_observed: float | None = None
    quartile: int | None = None  # 1 = best quarter of the sampled mixtures
    files: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"{'source':<20} {'current':>8} {'proposed':>9} {'cap':>7}"]
        lines += [
            f"{s:<20} {c:>8.4f} {p:>9.4f} {k:>7.3f}"
            for s, c, p, k in zip(self.sources, self.current, self.proposed, self.caps)
        ]
        samples = [v for a, v in self.observed.items() if a.startswith("sample-")]
        lines.append(
            f"samples: {len(samples)}; cross-validated Spearman(predicted, observed) = {self.spearman:.3f}"
        )
        if self.proposed_observed is not None:
            lines.append(
                f"proposed mixture trained: target {self.proposed_observed:.4f} (samples: best "
                f"{min(samples):.4f}, median {np.median(samples):.4f}); quartile {self.quartile} of 4"
            )
        lines.append("files: " + ", ".join(f"{k}={v}" for k, v in self.files.items()))
        return "\n".join(lines)


def weight_caps(mixture_yaml: Path, phase: str, budget: int) -> dict[str, float]:
    """Each source's largest weight at `budget` within its max_epochs, from the available tokens the mixture
    validation finds (measured with a tokenizer the YAML names, else estimated from characters)."""
    plans = [p for p in check_mixture(mixture_yaml).plans if p.phase == phase]
    return {p.source: min(1.0, CAP_MARGIN * p.max_epochs * p.available_tokens / budget) for p in plans}


def sample_weights(rng: np.random.Generator, alpha: np.ndarray, caps: np.ndarray, n: int) -> np.ndarray:
    """n Dirichlet(alpha) draws inside the caps (rejection), floored at MIN_WEIGHT and renormalised."""
    out = []
    for _ in range(1000):
        w = rng.dirichlet(alpha, size=max(n, 64))
        w = np.maximum(w, MIN_WEIGHT)
        w /= w.sum(axis=1, keepdims=True)
        out += list(w[(w <= caps + 1e-12).all(axis=1)])
        if len(out) >= n:
            return np.array(out[:n])
    raise ValueError(
        f"could not sample {n} mixtures within the sources' max_epochs caps {caps.round(3).tolist()}"
        " (lower the budget, or raise max_epochs)"
    )


def regressor(kind: str, seed: int):
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    if kind == "ridge":
        return make_pipeline(
            FunctionTransformer(np.log), StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13))
        )
    return GradientBoostingRegressor(
        n_estimators=200, max_depth=2, learning_rate=0.05, subsample=0.8, random_state=seed
    )


def cv_spearman(kind: str, x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> tuple[float, np.ndarray]:
    from scipy.stats import spearmanr
    from sklearn.model_selection import KFold, cross_val_predict

    pred = cross_val_predict(regressor(kind, seed), x, y, cv=KFold(folds, shuffle=True, random_state=seed))
    return float(spearmanr(pred, y).statistic), pred


def propose(
    model, rng: np.random.Generator, alpha: np.ndarray, caps: np.ndarray, n: int, top_k: int
) -> np.ndarray:
    """Mean of the top_k predicted points among n draws of the sampling distribution (as RegMix does: the
    regression is trusted only where it saw data, not at the simplex's corners it extrapolates to). The capped
    simplex is convex, so the mean of feasible points is feasible."""
    cand = sample_weights(rng, alpha, caps, n)
    best = np.argsort(model.predict(cand))[:top_k]
    return cand[best].mean(axis=0)


def with_weights(mix: dict, phase: str, names: list[str], weights: np.ndarray) -> dict:
    out = json.loads(json.dumps(mix))
    w = np.round(weights, 4)
    w[-1] = round(1.0 - float(w[:-1].sum()), 4)
    by_name = dict(zip(names, w.tolist()))
    for p in out["phases"]:
        if p["name"] == phase:
            for s in p["sources"]:
                s["weight"] = by_name[s["name"]]
    return out


def run_search(file: str | Path) -> SearchReport:
    file = Path(file)
    cfg = load_search(file)
    study = Study.from_config(cfg, file)
    base_path = Path(cfg.base) if Path(cfg.base).is_absolute() else file.parent / cfg.base
    base = yaml.safe_load(base_path.read_text())
    phase = next((p for p in base["phases"] if p["name"] == cfg.phase), None)
    if phase is None or cfg.phase not in study.steps:
        raise ValueError(f"{file}: phase {cfg.phase!r} must be a phase of {base_path} and of `tokens`")
    names = [s["name"] for s in phase["sources"]]
    current = np.array([float(s["weight"]) for s in phase["sources"]])
    pinned = study.add_arm("current", base, base_path)
    caps, target_caps = _caps(
        pinned, base_path, cfg.phase, study.budgets[cfg.phase], int(phase["tokens"]), names
    )
    rng = np.random.default_rng(cfg.seed)
    alpha = cfg.concentration * len(names) * current
    samples = sample_weights(rng, alpha, caps, cfg.samples)
    arms = {f"sample-{k:03d}": w for k, w in enumerate(samples)}
    for arm, w in arms.items():
        study.add_arm(arm, with_weights(base, cfg.phase, names, w), base_path)
    study.prepare_suite()
    results = {
        arm: study.train(arm, cfg.seed, {"weights": dict(zip(names, w.tolist()))}) for arm, w in arms.items()
    }
    results["current"] = study.train("current", cfg.seed, {"weights": dict(zip(names, current.tolist()))})

    x = np.array([arms[a] for a in arms])
    y = np.array([results[a]["mean_loss"] for a in arms])
    rho, cv_pred = cv_spearman(cfg.regressor, x, y, cfg.folds, cfg.seed)
    model = regressor(cfg.regressor, cfg.seed).fit(x, y)
    proposed = propose(model, rng, alpha, target_caps, cfg.candidates, cfg.top_k)
    proposed_mix = with_weights(base, cfg.phase, names, proposed)
    rep = SearchReport(
        study.out,
        names,
        current.tolist(),
        proposed.tolist(),
        target_caps.tolist(),
        rho,
        {a: r["mean_loss"] for a, r in results.items()},
    )
    if cfg.verify:
        results["proposed"] = _verify(study, rep, proposed_mix, base_path, cfg.seed, y)
    out = study.out / "report"
    out.mkdir(parents=True, exist_ok=True)
    rep.files["proposed"] = str(out / "proposed.yaml")
    (out / "proposed.yaml").write_text(
        f"# proposed by `python -m training ablate search {file}`: the weights of"
        f" {cfg.phase} fitted by {cfg.regressor} on {len(y)} proxies\n"
        + yaml.safe_dump(proposed_mix, sort_keys=False)
    )
    rep.files |= write_search_plots(
        out, model, names, current, proposed, target_caps, y, cv_pred, rho, rep.proposed_observed
    )
    (out / "report.json").write_text(json.dumps(_report_json(rep, caps, arms, cv_pred), indent=1))
    (out / "report.md").write_text(
        f"# Mixture search {cfg.name}\n\n```\n{rep.summary()}\n```\n\n"
        "![](predicted_vs_observed.png)\n![](partial_dependence.png)\n![](weights.png)\n"
    )
    rep.files["results"] = str(
        publish_results(
            study.out / "results",
            cfg.name,
            "search",
            cfg.proxy.preset,
            list(results.values()),
            cfg.model_dump(),
            [str(base_path)],
            {"cv_spearman": rho, "proposed": dict(zip(names, proposed.tolist()))},
        )
    )
    return rep


def _caps(
    pinned: Path, base_path: Path, phase: str, proxy_budget: int, run_budget: int, names: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Each source's weight cap for the samples, and the tighter one for the proposal: samples must build at
    the proxy budget; the proposal must also fit the base's own budget (the real run) (as the proposed YAML's
    own validation will count them, with the base's tokenizer settings)."""
    proxy_caps = weight_caps(pinned, phase, proxy_budget)
    run_caps = [weight_caps(y, phase, run_budget) for y in (pinned, base_path)]
    caps = np.array([proxy_caps[n] for n in names])
    return caps, np.minimum(caps, [min(c[n] for c in run_caps) for n in names])


def _verify(
    study: Study, rep: SearchReport, proposed_mix: dict, base_path: Path, seed: int, y: np.ndarray
) -> dict:
    """Train the proposal as one more proxy and rank it among the samples (`y`, their observed targets)."""
    study.add_arm("proposed", proposed_mix, base_path)
    result = study.train("proposed", seed, {"weights": dict(zip(rep.sources, rep.proposed))})
    rep.proposed_observed = result["mean_loss"]
    rep.observed["proposed"] = rep.proposed_observed
    rep.quartile = 1 + int(4 * float(np.mean(y < rep.proposed_observed)))
    rep.quartile = min(rep.quartile, 4)
    return result


def _report_json(
    rep: SearchReport, caps: np.ndarray, arms: dict[str, np.ndarray], cv_pred: np.ndarray
) -> dict:
    return {
        "sources": rep.sources,
        "current": rep.current,
        "proposed": rep.proposed,
        "caps": caps.tolist(),
        "run_caps": rep.caps,
        "cv_spearman": rep.spearman,
        "observed": rep.observed,
        "cv_predicted": dict(zip(arms, cv_pred.tolist())),
        "weights": {a: w.tolist() for a, w in arms.items()},
        "quartile": rep.quartile,
    }
