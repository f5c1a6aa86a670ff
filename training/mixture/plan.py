"""Plan arithmetic (pure): per phase and source the available tokens, the assigned tokens and the epochs
that assignment costs; the plan table and the stacked-bar plot."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class SourcePlan:
    phase: str
    source: str
    weight: float
    documents: int
    available_tokens: int  # training tokens one epoch of the source offers (held-out documents excluded)
    assigned_tokens: int  # weight * phase budget
    epochs: float  # assigned / available
    max_epochs: float
    estimated: bool  # True when token counts come from a chars-per-token estimate

    @property
    def over_cap(self) -> bool:
        return self.epochs > self.max_epochs + 1e-9

    def to_dict(self) -> dict:
        return asdict(self) | {"over_cap": self.over_cap}


def assign_phase(
    phase: str, budget: int, rows: list[tuple[str, float, int, int, float]], estimated: bool
) -> list[SourcePlan]:
    """rows: (source, weight, documents, available_tokens, max_epochs) -> the phase's per-source plan."""
    out = []
    for source, weight, documents, available, max_epochs in rows:
        assigned = round(weight * budget)
        epochs = assigned / available if available > 0 else float("inf")
        out.append(
            SourcePlan(phase, source, weight, documents, available, assigned, epochs, max_epochs, estimated)
        )
    return out


def plan_table(plans: list[SourcePlan]) -> str:
    head = (
        f"{'phase':<12} {'source':<18} {'weight':>7} {'docs':>9} {'available':>13} {'assigned':>13}"
        f" {'epochs':>7}  cap"
    )
    lines = [head, "-" * len(head)]
    for p in plans:
        flag = "  OVER CAP" if p.over_cap else ""
        approx = "~" if p.estimated else " "
        lines.append(
            f"{p.phase:<12} {p.source:<18} {p.weight:>7.3f} {p.documents:>9,}"
            f" {approx}{p.available_tokens:>12,}"
            f" {p.assigned_tokens:>13,} {p.epochs:>7.2f}  {p.max_epochs:g}{flag}"
        )
    if any(p.estimated for p in plans):
        lines.append("~ estimated from characters (chars_per_token_estimate); `build` counts exact tokens")
    return "\n".join(lines)


def plot_plan(plans: list[SourcePlan], path: str | Path) -> Path:
    """Stacked bars: one bar per phase, one segment per source (assigned tokens), epochs in the labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phases = list(dict.fromkeys(p.phase for p in plans))
    sources = list(dict.fromkeys(p.source for p in plans))
    fig, ax = plt.subplots(figsize=(2.2 + 1.6 * len(phases), 4.5))
    bottoms = [0.0] * len(phases)
    for source in sources:
        heights = []
        for phase in phases:
            match = [p for p in plans if p.phase == phase and p.source == source]
            heights.append(match[0].assigned_tokens if match else 0)
        bars = ax.bar(phases, heights, bottom=bottoms, label=source)
        for bar, phase, h in zip(bars, phases, heights):
            match = [p for p in plans if p.phase == phase and p.source == source]
            if h and match:
                ax.annotate(
                    f"{match[0].epochs:.2f} ep",
                    (bar.get_x() + bar.get_width() / 2, bar.get_y() + h / 2),
                    ha="center",
                    va="center",
                    fontsize=7,
                )
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    ax.set_ylabel("assigned tokens")
    ax.set_title("mixture plan")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
