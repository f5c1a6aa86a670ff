"""One expectation suite per dataset kind. A suite is a function (GateConfig, manifest-or-None, columns of
the validated frame) -> list of great-expectations 1.x expectations, registered in SUITES; a stage owner
adds a kind by adding a function here (the gate, Data Docs and publish hook need nothing else)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from curation.contract import DOC_COLUMNS, Manifest
from curation.quality_gates.config import GateConfig

SOURCE_FORMATS = ["warc", "wet", "jsonl", "parquet"]


def _gx():
    import great_expectations as gx

    return gx.expectations


def allowed_languages(cfg: GateConfig, manifest: Manifest | None) -> list[str]:
    """The gate's own list if set, else what the curation run was configured to keep."""
    if cfg.allowed_languages is not None:
        return cfg.allowed_languages
    if manifest is not None:
        langs = ((manifest.config or {}).get("langid") or {}).get("languages")
        if isinstance(langs, list):
            return langs
    return ["en"]


def _documents(cfg: GateConfig, manifest: Manifest | None, formats: list[str]) -> list[Any]:
    """What every document dataset must satisfy (the dataset contract plus sane values)."""
    E = _gx()
    exps: list[Any] = [E.ExpectTableRowCountToBeBetween(min_value=cfg.min_rows)]
    if manifest is not None:  # the manifest's row count is what downstream stages will trust
        exps.append(E.ExpectTableRowCountToEqual(value=manifest.rows))
    # `text` itself is not loaded (frames.documents_frame keeps its length, `text_chars`, which exists
    # exactly when the data has a text column), so the schema check asks for text_chars in its place.
    required = [c for c in DOC_COLUMNS if c != "text"] + ["text_chars", "text_hash"]
    exps += [E.ExpectColumnToExist(column=c) for c in required]
    exps += [E.ExpectColumnValuesToNotBeNull(column=c) for c in ("id", "text_chars", "text_hash", "lang")]
    exps += [
        E.ExpectColumnValuesToBeUnique(column="id"),
        E.ExpectColumnValuesToBeUnique(column="text_hash"),
        E.ExpectColumnValuesToBeBetween(
            column="text_chars", min_value=cfg.min_chars, max_value=cfg.max_chars
        ),
        E.ExpectColumnValuesToBeInSet(column="source_format", value_set=formats),
    ]
    langs = allowed_languages(cfg, manifest)
    if langs:
        exps.append(E.ExpectColumnValuesToBeInSet(column="lang", value_set=langs))
    return exps


def _edu_ranges(cfg: GateConfig) -> list[Any]:
    """Score values on the model's scale (nulls are not checked here: see web_scored)."""
    E = _gx()
    return [
        E.ExpectColumnValuesToBeBetween(
            column="edu_score", min_value=cfg.edu_score_min, max_value=cfg.edu_score_max
        ),
        E.ExpectColumnToExist(column="edu_int"),
        E.ExpectColumnValuesToBeInSet(
            column="edu_int", value_set=list(range(int(cfg.edu_score_min), int(cfg.edu_score_max) + 1))
        ),
    ]


def web_curated(cfg: GateConfig, manifest: Manifest | None, columns: Collection[str] = ()) -> list[Any]:
    """The published web corpus, scored or not: web_curation/nightly_refresh score it when an edu model
    is promoted. Score ranges are checked when the data has `edu_score`; nulls are allowed there (a
    whole-corpus version can hold documents published before any model was promoted)."""
    E = _gx()
    exps = [
        *_documents(cfg, manifest, SOURCE_FORMATS),
        E.ExpectColumnValuesToNotBeNull(column="lang_score"),
        E.ExpectColumnValuesToBeBetween(
            column="lang_score", min_value=cfg.lang_score_min, max_value=cfg.lang_score_max
        ),
    ]
    if "edu_score" in columns:
        exps += _edu_ranges(cfg)
    return exps


def web_scored(cfg: GateConfig, manifest: Manifest | None, columns: Collection[str] = ()) -> list[Any]:
    """A corpus scored as a whole (edu_classifier's web_edu): every document has a score."""
    E = _gx()
    return [
        *web_curated(cfg, manifest, ()),
        E.ExpectColumnToExist(column="edu_score"),
        E.ExpectColumnValuesToNotBeNull(column="edu_score"),
        *_edu_ranges(cfg),
    ]


def synthetic(cfg: GateConfig, manifest: Manifest | None, columns: Collection[str] = ()) -> list[Any]:
    return _documents(cfg, manifest, ["synthetic"])


def mixture(cfg: GateConfig, manifest: Manifest | None, columns: Collection[str] = ()) -> list[Any]:
    """Rows are (phase, source) of a mixture build's manifest.json (see frames.mixture_frame)."""
    E = _gx()
    tol, sum_tol = cfg.mixture_tolerance, cfg.mixture_sum_tolerance
    cols = ["phase", "source", "documents", "tokens", "target_weight", "realised_weight", "weight_error"]
    return [
        E.ExpectTableRowCountToBeBetween(min_value=1),
        *[E.ExpectColumnValuesToNotBeNull(column=c) for c in cols],
        E.ExpectColumnValuesToBeUnique(column="key"),
        E.ExpectColumnValuesToBeBetween(column="documents", min_value=1),
        E.ExpectColumnValuesToBeBetween(column="tokens", min_value=1),
        E.ExpectColumnValuesToBeBetween(column="target_weight", min_value=0.0, max_value=1.0),
        E.ExpectColumnValuesToBeBetween(column="realised_weight", min_value=0.0, max_value=1.0),
        E.ExpectColumnValuesToBeBetween(column="weight_error", min_value=0.0, max_value=tol),
        E.ExpectColumnValuesToBeBetween(
            column="phase_target_sum", min_value=1.0 - sum_tol, max_value=1.0 + sum_tol
        ),
    ]


SUITES: dict[str, Callable[[GateConfig, Manifest | None, Collection[str]], list[Any]]] = {
    "web_curated": web_curated,
    "web_scored": web_scored,
    "synthetic": synthetic,
    "mixture": mixture,
}
