"""matplotlib PNGs for report queries (Agg backend: no display on servers and workers)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from curation.reports.queries import Chart

MAX_BARS = 30


def plot(frame: pd.DataFrame, chart: Chart, title: str, path: Path) -> Path:
    import logging

    import matplotlib

    matplotlib.use("Agg")
    # labels are strings on purpose (buckets, reasons); its "parsable as floats" notice is noise
    logging.getLogger("matplotlib.category").setLevel(logging.WARNING)
    import matplotlib.pyplot as plt

    for col in (chart.label, chart.value):
        if col not in frame.columns:
            raise ValueError(f"chart of {title!r} names column {col!r}; query returned {list(frame.columns)}")
    data = frame.head(MAX_BARS)
    labels = [str(v) for v in data[chart.label]]
    values = pd.to_numeric(data[chart.value], errors="coerce").fillna(0)
    height = max(3.0, 0.3 * len(labels) + 1.2) if chart.kind == "barh" else 4.0
    fig, ax = plt.subplots(figsize=(8, height))
    try:
        if chart.kind == "barh":
            ax.barh(labels[::-1], values[::-1], color="#4C72B0")  # largest on top
            ax.set_xlabel(chart.value)
        else:
            ax.bar(labels, values, color="#4C72B0")
            ax.set_ylabel(chart.value)
            ax.set_xlabel(chart.label)
            if len(labels) > 8:
                ax.tick_params(axis="x", labelrotation=45)
        ax.set_title(title)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
