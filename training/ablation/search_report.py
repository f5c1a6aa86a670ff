"""The mixture search's plots: cross-validated predicted vs observed, partial dependence per source, and the
proposed vs current weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def partial_dependence(model, current: np.ndarray, i: int, grid: np.ndarray) -> np.ndarray:
    """The predicted target as source i's weight moves over `grid`, the others keeping their current
    proportions (a mixture stays on the simplex)."""
    rest = np.delete(current, i)
    rest = rest / rest.sum() if rest.sum() > 0 else np.full(len(rest), 1 / len(rest))
    points = np.array([np.insert(rest * (1 - g), i, g) for g in grid])
    return model.predict(np.maximum(points, 1e-6))


def write_search_plots(
    out: Path,
    model,
    names: list[str],
    current: np.ndarray,
    proposed: np.ndarray,
    caps: np.ndarray,
    y: np.ndarray,
    cv_pred: np.ndarray,
    rho: float,
    proposed_observed: float | None,
) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = {}
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(y, cv_pred, s=14)
    lo, hi = float(min(y.min(), cv_pred.min())), float(max(y.max(), cv_pred.max()))
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
    if proposed_observed is not None:
        ax.axvline(proposed_observed, color="tab:red", lw=1, label="proposed (observed)")
        ax.legend(fontsize=8)
    ax.set_xlabel("observed mean held-out loss")
    ax.set_ylabel("predicted (cross-validated)")
    ax.set_title(f"held-out samples: Spearman {rho:.3f}")
    fig.tight_layout()
    fig.savefig(out / "predicted_vs_observed.png", dpi=100)
    plt.close(fig)
    files["predicted_vs_observed"] = str(out / "predicted_vs_observed.png")

    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3), squeeze=False)
    for i, (ax, name) in enumerate(zip(axes[0], names)):
        grid = np.linspace(0.005, min(0.995, caps[i]), 40)
        ax.plot(grid, partial_dependence(model, current, i, grid))
        ax.axvline(current[i], color="grey", ls=":", label="current")
        ax.axvline(proposed[i], color="tab:red", ls="--", label="proposed")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("weight")
    axes[0][0].set_ylabel("predicted target")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "partial_dependence.png", dpi=100)
    plt.close(fig)
    files["partial_dependence"] = str(out / "partial_dependence.png")

    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(names), 3.5))
    x = np.arange(len(names))
    ax.bar(x - 0.2, current, 0.4, label="current")
    ax.bar(x + 0.2, proposed, 0.4, label="proposed")
    ax.scatter(x, caps, marker="_", s=300, color="k", label="max_epochs cap")
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("weight")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "weights.png", dpi=100)
    plt.close(fig)
    files["weights"] = str(out / "weights.png")
    return files
