"""Data quality gates: a great-expectations 1.x suite per dataset kind, run against a dataset version
before it is published. A failing gate stops publication and says which expectations failed.

    from curation.quality_gates import run_gate, publish_gated
    result = run_gate("out/web/_candidates/<run_id>", kind="web_curated")   # GateResult, Data Docs built
    publish_gated("out/web/_candidates/<run_id>", "out/web", kind="web_curated")  # raises GateFailed

great_expectations is imported lazily (it costs ~4 s), so importing this package is cheap.
"""

from curation.quality_gates.config import GateConfig
from curation.quality_gates.result import Failure, GateFailed, GateResult

KINDS = ("web_curated", "web_scored", "synthetic", "mixture")


def run_gate(*args, **kwargs) -> GateResult:
    from curation.quality_gates.gate import run_gate as _run

    return _run(*args, **kwargs)


def publish_gated(*args, **kwargs):
    from curation.quality_gates.gate import publish_gated as _publish

    return _publish(*args, **kwargs)


__all__ = ["KINDS", "Failure", "GateConfig", "GateFailed", "GateResult", "publish_gated", "run_gate"]
