"""The ablation report: per-arm held-out loss per reference set with the seed spread, which differences
exceed the seed noise, MMLU accuracy, loss curves (PNG), report.md + report.json, and the results dataset.

Seed noise: the pooled within-arm standard deviation of a metric over seeds (every arm's sample variance,
averaged). Two arms differ beyond the noise when their means are further apart than `noise_sigmas` standard
errors of a difference of two n-seed means (noise_sigmas x sd x sqrt(2 / n)) and further than either arm's own
seed range. With one seed there is no noise estimate and no difference is claimed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.ablation.results import publish_results

TARGET = "mean"  # the mean over reference sets of the held-out loss


@dataclass
class ArmStats:
    arm: str
    values: dict[str, list[float]]  # reference set (and TARGET, "mmlu") -> one value per seed
    epochs: dict[str, float] = field(default_factory=dict)  # phase -> the most any source repeats

    def mean(self, key: str) -> float:
        return float(np.mean(self.values[key]))

    def spread(self, key: str) -> float:
        v = self.values[key]
        return float(max(v) - min(v))


@dataclass
class AblationReport:
    name: str
    out: Path
    arms: list[ArmStats]
    noise_sd: float
    threshold: float
    ranking: list[str]
    beyond_noise: list[tuple[str, str, float]] = field(default_factory=list)  # (better, worse, delta)
    files: dict[str, str] = field(default_factory=dict)
    target_sets: list[str] = field(default_factory=list)  # the sets the mean held-out loss averages

    def last_beyond_noise(self) -> bool:
        """The worst arm is worse than every other arm by more than the seed noise."""
        worst = self.ranking[-1]
        pairs = {(a, b) for a, b, _ in self.beyond_noise}
        return all((a, worst) in pairs for a in self.ranking[:-1])

    def summary(self) -> str:
        return (
            _table(self) + f"\n\nseed noise (pooled s.d. of the mean held-out loss): {self.noise_sd:.4f};"
            f" threshold {self.threshold:.4f}\n"
            + _differences(self)
            + "\nfiles: "
            + ", ".join(f"{k}={v}" for k, v in self.files.items())
        )


def arm_stats(results: list[dict]) -> list[ArmStats]:
    by_arm: dict[str, ArmStats] = {}
    for r in sorted(results, key=lambda r: (r["arm"], r["seed"])):
        st = by_arm.setdefault(r["arm"], ArmStats(r["arm"], {}, r.get("epochs") or {}))
        for key, value in [*r["losses"].items(), (TARGET, r["mean_loss"]), ("mmlu", r.get("mmlu_acc"))]:
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                st.values.setdefault(key, []).append(float(value))
    return list(by_arm.values())


def noise(arms: list[ArmStats], key: str, sigmas: float) -> tuple[float, float]:
    """(pooled seed s.d., the threshold a difference of two arm means must exceed); NaN with one seed."""
    variances = [np.var(a.values[key], ddof=1) for a in arms if len(a.values.get(key, [])) > 1]
    if not variances:
        return float("nan"), float("nan")
    n = min(len(a.values[key]) for a in arms)
    sd = float(math.sqrt(np.mean(variances)))
    return sd, sigmas * sd * math.sqrt(2 / n)


def compare(arms: list[ArmStats], key: str, sigmas: float) -> tuple[float, float, list[str], list]:
    sd, threshold = noise(arms, key, sigmas)
    ranking = [a.arm for a in sorted(arms, key=lambda a: a.mean(key))]
    by = {a.arm: a for a in arms}
    beyond = []
    for i, better in enumerate(ranking):
        for worse in ranking[i + 1 :]:
            delta = by[worse].mean(key) - by[better].mean(key)
            if (
                math.isfinite(threshold)
                and delta > threshold
                and delta > max(by[better].spread(key), by[worse].spread(key))
            ):
                beyond.append((better, worse, delta))
    return sd, threshold, ranking, beyond


def _table(rep: AblationReport) -> str:
    sets = sorted({k for a in rep.arms for k in a.values if k not in (TARGET, "mmlu")})
    cols = [TARGET, *sets, "mmlu"]
    names = {TARGET: "mean held-out loss", "mmlu": "MMLU acc"}
    names |= {k: k if k in rep.target_sets or not rep.target_sets else f"{k} (not in mean)" for k in sets}
    head = "| arm | " + " | ".join(names[c] for c in cols) + " | max epochs per phase |"
    lines = [head, "|" + "---|" * (len(cols) + 2)]
    order = {a: i for i, a in enumerate(rep.ranking)}
    for a in sorted(rep.arms, key=lambda a: order[a.arm]):
        cells = []
        for c in cols:
            if c not in a.values:
                cells.append("-")
            else:
                cells.append(
                    f"{a.mean(c):.4f} ± {a.spread(c) / 2:.4f}" if len(a.values[c]) > 1 else f"{a.mean(c):.4f}"
                )
        reps = " / ".join(f"{v:.1f}" for v in a.epochs.values()) or "-"
        lines.append(f"| {a.arm} | " + " | ".join(cells) + f" | {reps} |")
    lines.append(
        "\n(mean over seeds ± half the seed range; arms in order of the mean held-out loss over the sets with"
        " at least eval.min_tokens tokens; max epochs: the most any source of the arm repeats, per phase)"
    )
    return "\n".join(lines)


def _differences(rep: AblationReport) -> str:
    if not math.isfinite(rep.threshold):
        return "one seed per arm: no seed-noise estimate, no difference claimed"
    if not rep.beyond_noise:
        return "no two arms differ beyond the seed noise"
    lines = [f"differences beyond the seed noise ({len(rep.beyond_noise)} pair(s)):"]
    lines += [f"  {b} < {w} by {d:.4f}" for b, w, d in rep.beyond_noise]
    lines.append(
        f"last-ranked arm {rep.ranking[-1]!r} is worse than every other arm beyond the noise: "
        f"{'yes' if rep.last_beyond_noise() else 'no'}"
    )
    return "\n".join(lines)


def plot_losses(arms: list[ArmStats], ranking: list[str], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [TARGET, *sorted({k for a in arms for k in a.values if k not in (TARGET, "mmlu")})]
    ncol = min(4, len(keys))
    nrow = -(-len(keys) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 3.0 * nrow), squeeze=False)
    by = {a.arm: a for a in arms}
    for ax, key in zip(axes.flat, keys):
        for x, arm in enumerate(ranking):
            v = by[arm].values.get(key, [])
            if not v:
                continue
            ax.bar(x, np.mean(v), color="tab:blue" if key != TARGET else "tab:orange", alpha=0.6)
            ax.errorbar(
                x, np.mean(v), yerr=[[np.mean(v) - min(v)], [max(v) - np.mean(v)]], color="k", capsize=3
            )
            ax.scatter([x] * len(v), v, color="k", s=8, zorder=3)
        lo = min(min(by[a].values[key]) for a in ranking if key in by[a].values)
        hi = max(max(by[a].values[key]) for a in ranking if key in by[a].values)
        ax.set_ylim(lo - 0.1 * (hi - lo + 1e-3), hi + 0.1 * (hi - lo + 1e-3))
        ax.set_title("mean held-out loss" if key == TARGET else key, fontsize=9)
        ax.set_xticks(range(len(ranking)), ranking, rotation=60, ha="right", fontsize=7)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.suptitle(
        "held-out loss per reference set (bars: mean over seeds; dots: seeds; whiskers: seed range)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_curves(runs: dict[tuple[str, int], Path], tokens_per_step: int, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from training.report import read_metrics

    fig, ax = plt.subplots(figsize=(9, 5))
    colours = {arm: plt.cm.tab10(i % 10) for i, arm in enumerate(sorted({a for a, _ in runs}))}
    styles = ["-", "--", ":", "-."]
    for (arm, seed), run_dir in sorted(runs.items()):
        recs = [r for r in read_metrics(run_dir / "metrics.jsonl") if r["kind"] == "train"]
        ax.plot(
            [r["global_step"] * tokens_per_step for r in recs],
            [r["loss"] for r in recs],
            lw=1,
            ls=styles[seed % len(styles)],
            color=colours[arm],
            label=f"{arm} s{seed}",
        )
    ax.set_xlabel("training tokens")
    ax.set_ylabel("train loss (nats/token)")
    ax.set_title("proxy loss curves per arm and seed")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_ablation_report(cfg, study, results: list[dict]) -> AblationReport:
    out = study.out / "report"
    out.mkdir(parents=True, exist_ok=True)
    arms = arm_stats(results)
    sd, threshold, ranking, beyond = compare(arms, TARGET, cfg.eval.noise_sigmas)
    rep = AblationReport(cfg.name, out, arms, sd, threshold, ranking, beyond)
    rep.target_sets = results[0].get("target_sets", []) if results else []
    rep.files["losses"] = str(plot_losses(arms, ranking, out / "heldout_loss.png"))
    runs = {(r["arm"], r["seed"]): study.arm_dir(r["arm"]) / f"seed-{r['seed']}" for r in results}
    rep.files["curves"] = str(plot_curves(runs, cfg.proxy.global_batch_tokens, out / "loss_curves.png"))
    data = {
        "ranking": ranking,
        "noise_sd": sd,
        "threshold": threshold,
        "beyond_noise": beyond,
        "last_beyond_noise": rep.last_beyond_noise() if math.isfinite(threshold) else None,
        "arms": {a.arm: a.values for a in arms},
        "epochs": {a.arm: a.epochs for a in arms},
        "target_sets": rep.target_sets,
        "steps": study.steps,
        "tokens_per_arm": {p: n * cfg.proxy.global_batch_tokens for p, n in study.steps.items()},
        "tokenizer_hash": study.tok["hash"],
    }
    (out / "report.json").write_text(json.dumps(data, indent=1))
    (out / "report.md").write_text(
        f"# Ablation {cfg.name}\n\n{rep.summary()}\n\n![losses](heldout_loss.png)\n"
        "![curves](loss_curves.png)\n"
    )
    rep.files["results"] = str(
        publish_results(
            study.out / "results",
            cfg.name,
            "ablation",
            cfg.proxy.preset,
            results,
            cfg.model_dump(),
            [str(study.arm_dir(a)) for a in ranking],
            {"ranking": ranking, "noise_sd": sd, "threshold": threshold},
        )
    )
    rep.files["report"] = str(out / "report.md")
    return rep
