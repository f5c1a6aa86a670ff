"""Validate a mixture YAML and report ALL problems at once, each with its YAML path and line.

Checked: the schema (unknown keys, types, ranges), each source's dataset (exists, has id/text), its filter
(parses as one DuckDB expression, names only real columns, is boolean, selects something), the phase's
weights (positive, summing to 1), and the budget (reachable within each source's `max_epochs`)."""

from __future__ import annotations

import logging
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from pydantic import BaseModel, ValidationError

from training.mixture import sources as S
from training.mixture.pins import check_edu_pin
from training.mixture.plan import SourcePlan, assign_phase
from training.mixture.schema import LoadedYaml, MixtureConfig, SourceConfig, format_path, load_yaml
from training.mixture.tokenizer import eos_id, load_tokenizer

log = logging.getLogger(__name__)

WEIGHT_TOLERANCE = 1e-6
TOKENIZER_SAMPLE_DOCS = 200  # documents per source encoded to measure chars/token for the plan


@dataclass
class Problem:
    path: str
    line: int | None
    message: str

    def render(self, file: str) -> str:
        return f"{file}:{self.line if self.line is not None else '?'}: {self.path}: {self.message}"


class MixtureValidationError(ValueError):
    def __init__(self, file: str, problems: list[Problem]):
        self.file, self.problems = file, problems
        body = "\n".join("  " + p.render(file) for p in problems)
        super().__init__(f"{len(problems)} problem(s) in mixture {file}:\n{body}")


@dataclass
class SourceStats:
    documents: int  # after the filter
    chars: int
    empty: int  # null/empty text: skipped by the build (counted in the manifest)


@dataclass
class CheckedMixture:
    file: Path
    text: str
    config: MixtureConfig
    resolved: dict[tuple[int, int], S.ResolvedSource]
    stats: dict[tuple[int, int], SourceStats]
    chars_per_token: dict[tuple[int, int], float]
    plans: list[SourcePlan] = field(default_factory=list)
    registry: dict[str, str] = field(default_factory=dict)


# ---- schema errors -----------------------------------------------------------------------------


def _unwrap(tp: Any) -> Any:
    """Optional[X] / X | None -> X."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that the mapping at `loc` is validated against (to list its allowed keys)."""
    tp: Any = MixtureConfig
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(part, int):
            args = typing.get_args(tp)
            tp = args[0] if args else None
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            tp = tp.model_fields[part].annotation
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _schema_problems(err: ValidationError, doc: LoadedYaml, prefix: tuple = ()) -> list[Problem]:
    out = []
    for e in err.errors():
        loc = prefix + tuple(x for x in e["loc"] if not (isinstance(x, str) and x.startswith("function-")))
        if e["type"] == "extra_forbidden":
            model = _model_at(loc[:-1])
            allowed = ", ".join(model.model_fields) if model else "?"
            msg = f"unknown key {loc[-1]!r} (allowed: {allowed})"
        elif e["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = e["msg"].removeprefix("Value error, ")
            if "input" in e and not isinstance(e["input"], (dict, list)) and repr(e["input"]) not in msg:
                msg += f" (got {e['input']!r})"
        out.append(Problem(format_path(loc), doc.line(loc), msg))
    return out


# ---- source checks -----------------------------------------------------------------------------


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0]


def _check_source(
    con: duckdb.DuckDBPyConnection,
    src_cfg: SourceConfig,
    loc: tuple,
    doc: LoadedYaml,
    registry: dict[str, str],
) -> tuple[list[Problem], S.ResolvedSource | None, SourceStats | None]:
    def problem(key: str, msg: str) -> list[Problem]:
        return [Problem(format_path(loc + (key,)), doc.line(loc + (key,)), msg)]

    try:
        res = S.resolve(src_cfg.dataset, src_cfg.version, registry, Path.cwd())
        S.describe(con, res)
    except (FileNotFoundError, ValueError) as e:
        return problem("dataset", str(e)), None, None
    except duckdb.Error as e:
        return problem("dataset", f"cannot read {src_cfg.dataset!r} as parquet: {_first_line(e)}"), None, None
    missing = [c for c in (S.ID_COLUMN, S.TEXT_COLUMN) if c not in res.columns]
    if missing:
        return (
            problem(
                "dataset",
                f"dataset {src_cfg.dataset!r} lacks column(s) {missing} (has {sorted(res.columns)})",
            ),
            None,
            None,
        )
    if res.columns[S.TEXT_COLUMN] != "VARCHAR":
        return (
            problem(
                "dataset",
                f"dataset {src_cfg.dataset!r}: column 'text' is {res.columns[S.TEXT_COLUMN]},"
                " expected a string column",
            ),
            None,
            None,
        )
    try:
        rel = S.filtered(con, res, src_cfg.filter)
        n, chars, empty = rel.aggregate(
            "count(*), coalesce(sum(length(text)), 0), count(*) FILTER (WHERE text IS NULL OR text = '')"
        ).fetchall()[0]
    except duckdb.ParserException as e:
        return problem("filter", f"filter {src_cfg.filter!r} does not parse: {_first_line(e)}"), None, None
    except duckdb.BinderException as e:
        return (
            problem(
                "filter",
                f"filter {src_cfg.filter!r} names a column the dataset lacks: {_first_line(e)}"
                f" (columns: {', '.join(res.columns)})",
            ),
            None,
            None,
        )
    except duckdb.Error as e:
        return (
            problem(
                "filter", f"filter {src_cfg.filter!r} fails on the data (is it boolean?): {_first_line(e)}"
            ),
            None,
            None,
        )
    if n - empty == 0:
        where = f"filter {src_cfg.filter!r} selects" if src_cfg.filter else "dataset has"
        return (
            problem("filter" if src_cfg.filter else "dataset", f"{where} no documents with text"),
            None,
            None,
        )
    res.documents = int(n)  # the build's progress lines count against it
    return [], res, SourceStats(int(n), int(chars), int(empty))


def _measure_chars_per_token(con, res: S.ResolvedSource, where: str | None, tok) -> float:
    rel = S.filtered(con, res, where).filter("text IS NOT NULL AND text <> ''").limit(TOKENIZER_SAMPLE_DOCS)
    texts = [r[0] for r in rel.project("text").fetchall()]
    n_tokens = sum(len(e.ids) for e in tok.encode_batch_fast(texts, add_special_tokens=False))
    return sum(len(t) for t in texts) / max(n_tokens, 1)


# ---- the whole mixture --------------------------------------------------------------------------


@dataclass
class _Found:
    """What the checks gather while walking the raw document (problems and every source that checked out)."""

    problems: list[Problem] = field(default_factory=list)
    resolved: dict[tuple[int, int], S.ResolvedSource] = field(default_factory=dict)
    stats: dict[tuple[int, int], SourceStats] = field(default_factory=dict)
    cpt: dict[tuple[int, int], float] = field(default_factory=dict)
    plans: list[SourcePlan] = field(default_factory=list)


def _registry(raw: dict, file: str, doc: LoadedYaml, found: _Found) -> dict[str, str]:
    if not isinstance(raw.get("registry"), str):
        return {}
    try:
        return S.load_registry(Path(file).parent / raw["registry"])
    except (FileNotFoundError, ValueError) as e:
        found.problems.append(Problem("registry", doc.line(("registry",)), str(e)))
        return {}


def _given_tokenizer(raw: dict, doc: LoadedYaml, found: _Found):
    """The tokenizer a `tokenizer.path` names (it measures chars/token for the plan), else None."""
    tok_raw = raw.get("tokenizer")
    if not (isinstance(tok_raw, dict) and isinstance(tok_raw.get("path"), str)):
        return None
    tok = None
    try:
        tok = load_tokenizer(tok_raw["path"])
        eos_id(tok, tok_raw.get("eos_token", "<|endoftext|>"))
    except (FileNotFoundError, ValueError) as e:
        key = "eos_token" if tok is not None else "path"
        found.problems.append(Problem(f"tokenizer.{key}", doc.line(("tokenizer", key)), str(e)))
        return None
    return tok


def _check_phase_sources(
    con,
    i: int,
    phase: dict,
    doc: LoadedYaml,
    registry: dict[str, str],
    tok,
    cpt_default: float,
    found: _Found,
) -> dict[int, SourceConfig]:
    """Each source of phase i: unique name, readable dataset, working filter; returns the valid ones."""
    valid: dict[int, SourceConfig] = {}
    names: dict[str, int] = {}
    for j, s in enumerate(phase["sources"]):
        loc = ("phases", i, "sources", j)
        try:
            src_cfg = SourceConfig.model_validate(s)
        except ValidationError:
            continue  # already reported by the whole-document validation
        if src_cfg.name in names:
            found.problems.append(
                Problem(
                    format_path(loc + ("name",)),
                    doc.line(loc + ("name",)),
                    f"source name {src_cfg.name!r} repeats sources[{names[src_cfg.name]}]",
                )
            )
        names[src_cfg.name] = j
        problems, res, st = _check_source(con, src_cfg, loc, doc, registry)
        found.problems += problems
        if res is not None:
            found.problems += [
                Problem(format_path(loc + (k,)), doc.line(loc + (k,)), m)
                for k, m in check_edu_pin(con, src_cfg, res)
            ]
            valid[j] = src_cfg
            found.resolved[(i, j)], found.stats[(i, j)] = res, st
            found.cpt[(i, j)] = (
                _measure_chars_per_token(con, res, src_cfg.filter, tok) if tok else cpt_default
            )
    return valid


def _check_weights(i: int, phase: dict, doc: LoadedYaml, found: _Found) -> None:
    weights = [s.get("weight") for s in phase["sources"] if isinstance(s, dict)]
    if weights and all(isinstance(w, (int, float)) and w > 0 for w in weights):
        total = float(sum(weights))
        if abs(total - 1.0) > WEIGHT_TOLERANCE:
            normalised = ", ".join(f"{w / total:.4f}" for w in weights)
            found.problems.append(
                Problem(
                    format_path(("phases", i, "sources")),
                    doc.line(("phases", i, "sources")),
                    f"weights sum to {total:g}, they must sum to 1 (normalised: {normalised})",
                )
            )


def _check_budget(
    i: int,
    phase: dict,
    valid: dict[int, SourceConfig],
    heldout: float,
    estimated: bool,
    doc: LoadedYaml,
    found: _Found,
) -> None:
    """Plan the phase (all its sources valid) and report any source the budget pushes over max_epochs."""
    budget = phase.get("tokens")
    if not (isinstance(budget, int) and budget > 0 and len(valid) == len(phase["sources"])):
        return
    rows = []
    for j, s in valid.items():
        st = found.stats[(i, j)]
        available = int((st.chars / found.cpt[(i, j)]) * (1 - heldout)) + (st.documents - st.empty)
        rows.append((s.name, s.weight, st.documents - st.empty, available, s.max_epochs))
    phase_plans = assign_phase(str(phase.get("name", f"phase{i}")), budget, rows, estimated=estimated)
    found.plans += phase_plans
    for p in phase_plans:
        if p.over_cap:
            found.problems.append(
                Problem(
                    format_path(("phases", i, "tokens")),
                    doc.line(("phases", i, "tokens")),
                    f"budget {budget:,} cannot be met within the repetition cap: source"
                    f" {p.source!r} needs {p.epochs:.2f} epochs of its ~{p.available_tokens:,}"
                    f" tokens (max_epochs {p.max_epochs:g})",
                )
            )


def check_mixture(path: str | Path) -> CheckedMixture:
    """Validate everything; raise MixtureValidationError listing every problem, else return the checked
    mixture with per-source stats and the (estimated) plan."""
    doc = load_yaml(path)
    file = str(path)
    raw = doc.data if isinstance(doc.data, dict) else {}
    found = _Found()
    config: MixtureConfig | None = None
    try:
        config = MixtureConfig.model_validate(doc.data)
    except ValidationError as e:
        found.problems += _schema_problems(e, doc)
    registry = _registry(raw, file, doc, found)
    tok = _given_tokenizer(raw, doc, found)

    cpt_default = raw.get("chars_per_token_estimate", 4.0)
    cpt_default = cpt_default if isinstance(cpt_default, (int, float)) and cpt_default > 0 else 4.0
    heldout = raw.get("heldout_fraction", 0.01)
    heldout = heldout if isinstance(heldout, (int, float)) and 0 <= heldout < 0.5 else 0.01

    con = S.connect()
    phases = raw.get("phases") if isinstance(raw.get("phases"), list) else []
    for i, phase in enumerate(phases):
        if not isinstance(phase, dict) or not isinstance(phase.get("sources"), list):
            continue
        valid = _check_phase_sources(con, i, phase, doc, registry, tok, cpt_default, found)
        _check_weights(i, phase, doc, found)
        _check_budget(i, phase, valid, heldout, tok is None, doc, found)
    if found.problems:
        found.problems.sort(key=lambda p: (p.line or 0, p.path))
        raise MixtureValidationError(file, found.problems)
    assert config is not None
    log.info(
        "mixture %s valid: %d phase(s), %d source(s)", config.name, len(config.phases), len(found.resolved)
    )
    return CheckedMixture(
        Path(file), doc.text, config, found.resolved, found.stats, found.cpt, found.plans, registry
    )
