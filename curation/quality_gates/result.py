"""What a gate run returns: pass/fail, the failing expectations with their evidence, where the Data
Docs are. Plain dataclasses (JSON round-trip) so the publish step can read a gate's verdict from disk."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Failure:
    expectation: str  # e.g. expect_column_values_to_be_unique
    column: str | None
    kwargs: dict[str, Any]
    unexpected_count: int | None = None
    sample: list[Any] = field(default_factory=list)  # a few offending values
    observed: Any = None
    error: str | None = None  # the expectation could not be evaluated (e.g. missing column)

    def describe(self) -> str:
        where = f" on {self.column!r}" if self.column else ""
        args = {k: v for k, v in self.kwargs.items() if k not in ("column", "batch_id")}
        parts = [f"{self.expectation}{where} {args}" if args else f"{self.expectation}{where}"]
        if self.error:
            parts.append(f"error: {self.error}")
        if self.unexpected_count:
            parts.append(f"{self.unexpected_count} bad value(s), e.g. {self.sample[:5]!r}")
        elif self.observed is not None:
            parts.append(f"observed {self.observed!r}")
        return "; ".join(parts)


@dataclass
class GateResult:
    kind: str
    dataset_dir: str
    version: str
    success: bool
    evaluated: int  # number of expectations run
    failures: list[Failure]
    docs_index: str | None  # Data Docs index.html of this run
    fingerprint: str  # of the data files validated (publish checks it is unchanged)

    def summary(self) -> str:
        head = (
            f"quality gate {self.kind} on {self.version}: "
            f"{'PASSED' if self.success else 'FAILED'} ({self.evaluated - len(self.failures)}"
            f"/{self.evaluated} expectations met)"
        )
        lines = [head, *(f"  - {f.describe()}" for f in self.failures)]
        if self.docs_index:
            lines.append(f"  data docs: {self.docs_index}")
        return "\n".join(lines)

    def write(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(asdict(self), indent=2, default=str))
        return p

    @classmethod
    def read(cls, path: str | Path) -> GateResult:
        raw = json.loads(Path(path).read_text())
        raw["failures"] = [Failure(**f) for f in raw["failures"]]
        return cls(**raw)


class GateFailed(RuntimeError):
    """Publication refused: the message lists every failing expectation."""

    def __init__(self, result: GateResult):
        self.result = result
        super().__init__(result.summary())
