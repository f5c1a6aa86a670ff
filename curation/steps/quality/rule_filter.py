"""The shape every quality filter shares: rules evaluated on shared TextStats, signals as columns.

A filter returns a `Verdict`: the failing rule (None to keep), the signals it computed (column name ->
value) and a human-readable detail such as `dup_line_frac=0.41 > 0.3`. Rules stop at the first
failure, as the reference implementations do, so a rejected row may have later signals null; kept
rows always carry every signal.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from curation.steps.base import DocBatch, DocFilter
from curation.steps.quality.text_stats import TextStats, stats_for


@dataclass
class Verdict:
    rule: str | None = None
    signals: dict[str, Any] = field(default_factory=dict)
    detail: str | None = None
    replacement_text: str | None = None  # a kept document's text after line-level rules (C4)

    def fail(self, rule: str, value: float, op: str, limit: float) -> Verdict:
        self.rule = rule
        self.detail = f"{rule}={_fmt(value)} {op} {_fmt(limit)}"
        return self


def _fmt(x: float) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def ratio(num: float, den: float) -> float | None:
    return num / den if den else None


class FilterConfig(BaseModel):
    """A quality filter's config block (`quality.<key>` in the curation config, the key its registry
    entry in curation/steps/quality/__init__.py): `enabled`, the filter's thresholds, and `build()`,
    the step it configures."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True

    @abstractmethod
    def build(self) -> RuleFilter: ...


class RuleFilter(DocFilter):
    """A DocFilter whose rules read a shared TextStats and whose reasons name the rule:
    `<filter name>:<rule>` (e.g. `gopher_repetition:dup_line_frac`)."""

    #: signal column name -> Arrow type; subclasses fill it (possibly from config) in __init__
    signal_types: dict[str, pa.DataType]

    def fields(self) -> list[pa.Field]:
        return [pa.field(name, typ) for name, typ in self.signal_types.items()]

    @abstractmethod
    def judge(self, stats: TextStats) -> Verdict: ...

    def evaluate(self, text: str) -> tuple[str | None, dict[str, Any]]:
        verdict = self.judge(TextStats(text))
        return (f"{self.name}:{verdict.rule}" if verdict.rule else None), verdict.signals

    def apply(self, batch: DocBatch) -> None:
        outs = {name: batch.column(name) for name in self.signal_types}
        for i in list(batch.active()):
            verdict = self.judge(stats_for(batch, i))
            for k, v in verdict.signals.items():
                outs[k][i] = v
            if verdict.rule is not None:
                batch.reject(i, self.name, f"{self.name}:{verdict.rule}", verdict.detail)
            elif verdict.replacement_text is not None:
                batch["text"][i] = verdict.replacement_text
