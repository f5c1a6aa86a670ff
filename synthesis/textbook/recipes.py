"""Recipes: what researchers edit to say which synthetic data to generate (YAML, validated at the edge).

A recipe file::

    teacher: {backend: {kind: embedded}}        # TeacherConfig (synthesis.teacher)
    seed: 0
    web_seeds:                                  # optional: documents whose extracts seed prompts
      source: ${PHI_SHARED_DATA}/...            # contract dataset (root/version) or .parquet/.jsonl[.gz]
      max_chars: 1000
    postfilter: {near_dedup: {...}, decontam: {...}, edu: null}
    recipes:
      - name: math-word-problems
        generator: math                          # a registered generator (generators/):
                                                 # textbook | math | code | puzzle
        n: 100
        template_version: math-v1
        topics: {math: 3, world_knowledge: 1}    # pool -> weight (built-in pools or topic_lists below)
        topic_lists: {sports: [...]}             # user-defined (or extra items for a built-in pool)
        audiences: {high_school: 1, college: 1}
        styles: {worked_examples: 1}
        web_share: 0.5                           # share of prompts that embed a web extract
        structured: true                         # JSON answers by the generator's schema (false: free text;
                                                 # unset: the generator's default)
        sampling: {temperature: 0.8, max_tokens: 400}
        filters: {min_words: 40, max_words: 1500, lang: en}
        verify: {k: 3, min_agreement: 0.5}

Every error names the file, the recipe and the field (`load_recipes`).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from curation.paths import expand_env
from synthesis.teacher import TeacherConfig
from synthesis.textbook.generators import GENERATORS
from synthesis.textbook.seeds_catalog import AUDIENCES, STYLES, TOPICS


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecipeSampling(_Cfg):
    """Teacher sampling for a recipe; each request gets its own seed (derived from the sample)."""

    temperature: float = Field(0.8, ge=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(512, ge=16, le=8192)


class TextFilters(_Cfg):
    """Checks every sample passes (verify/text.py)."""

    min_words: int = Field(30, ge=0)
    max_words: int = Field(3000, ge=1)
    lang: str | None = "en"  # fasttext lid.176 code; None = any language
    min_lang_score: float = Field(0.5, ge=0.0, le=1.0)
    max_duplicate_line_fraction: float = Field(0.3, ge=0.0, le=1.0)
    max_top_ngram_fraction: float = Field(0.25, ge=0.0, le=1.0)  # share of chars in the most frequent 3-gram
    reject_truncated: bool = True  # finish_reason == length

    @model_validator(mode="after")
    def _bounds(self) -> TextFilters:
        if self.min_words > self.max_words:
            raise ValueError(f"min_words={self.min_words} exceeds max_words={self.max_words}")
        return self


class VerifyConfig(_Cfg):
    """Answer checking. math/puzzle: `k` independent solves of the generated problem (self-consistency over k
    samples; k=1 is the 'independent second solution'); the item is verified when at least `min_agreement`
    of the solves agree with the generated answer. code: sandboxed tests."""

    k: int = Field(2, ge=1, le=16)
    min_agreement: float = Field(0.5, gt=0.0, le=1.0)
    solve_max_tokens: int = Field(384, ge=16, le=8192)
    solve_temperature: float = Field(0.7, ge=0.0, le=2.0)
    timeout_s: float = Field(5.0, gt=0, le=120)  # code: wall clock per test run
    memory_mb: int = Field(512, ge=64, le=16384)  # code: address-space limit
    require_verified: bool = True  # drop unverified items (False: keep, flagged)


class Recipe(_Cfg):
    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    generator: str
    n: int = Field(..., ge=1, le=10_000_000)
    template_version: str = Field("v1", min_length=1)
    topics: dict[str, float] = Field(..., min_length=1)
    topic_lists: dict[str, list[str]] = Field(default_factory=dict)
    audiences: dict[str, float] = Field(default_factory=lambda: {"high_school": 1.0})
    styles: dict[str, float] = Field(default_factory=lambda: {"textbook": 1.0})
    web_share: float = Field(0.0, ge=0.0, le=1.0)
    # JSON answers constrained by the generator's schema (llama.cpp grammar, vLLM structured outputs,
    # `response_format`); false: free-text prompts and parsers, for endpoints without structured output;
    # unset: the generator's default (JSON for every generator)
    structured: bool | None = None
    sampling: RecipeSampling = RecipeSampling()
    filters: TextFilters = TextFilters()
    verify: VerifyConfig = VerifyConfig()

    @field_validator("generator")
    @classmethod
    def _generator_registered(cls, v: str) -> str:
        if v not in GENERATORS:
            raise ValueError(f"unknown generator {v!r}; registered: {sorted(GENERATORS)}")
        return v

    @field_validator("topics", "audiences", "styles")
    @classmethod
    def _weights_positive(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: w for k, w in v.items() if not (isinstance(w, (int, float)) and w > 0)}
        if bad:
            raise ValueError(f"weights must be positive numbers, got {bad}")
        return v

    @field_validator("topic_lists")
    @classmethod
    def _lists_nonempty(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        empty = [k for k, items in v.items() if not [i for i in items if str(i).strip()]]
        if empty:
            raise ValueError(f"topic list(s) {empty} are empty")
        return v

    @model_validator(mode="after")
    def _pools_known(self) -> Recipe:
        unknown = [t for t in self.topics if t not in TOPICS and t not in self.topic_lists]
        if unknown:
            raise ValueError(
                f"topics: unknown pool(s) {unknown}; built-in pools are {sorted(TOPICS)}, "
                f"or define them under topic_lists"
            )
        unknown = [s for s in self.styles if s not in STYLES]
        if unknown:
            raise ValueError(f"styles: unknown style(s) {unknown}; known: {sorted(STYLES)}")
        # audiences may be free text (a key not built in is used verbatim as the audience description)
        return self

    def topic_pool(self, name: str) -> list[str]:
        """Built-in items plus the user's additions (a user list of the same name extends the built-in
        one)."""
        return list(dict.fromkeys([*TOPICS.get(name, []), *self.topic_lists.get(name, [])]))

    def audience_text(self, key: str) -> str:
        return AUDIENCES.get(key, key)


class WebSeedConfig(_Cfg):
    source: str = Field(..., description="contract dataset (root or version) or .parquet/.jsonl[.gz] file")
    max_chars: int = Field(1000, ge=100, le=4000)
    min_chars: int = Field(300, ge=0)
    pool_size: int = Field(
        500, ge=1, description="documents kept, best edu_score first when the column exists"
    )
    lang: str | None = "en"  # only documents of this `lang` (when the column exists)

    @model_validator(mode="after")
    def _bounds(self) -> WebSeedConfig:
        if self.min_chars > self.max_chars:
            raise ValueError(f"min_chars={self.min_chars} exceeds max_chars={self.max_chars}")
        return self


class NearDupConfig(_Cfg):
    enabled: bool = True
    threshold: float = Field(0.7, gt=0.0, le=1.0)  # exact shingle Jaccard of a near-duplicate pair
    ngram: int = Field(5, ge=1)
    num_perm: int = Field(120, ge=8)
    bands: int = Field(20, ge=1)
    rows: int = Field(6, ge=1)
    seed: int = 1

    @model_validator(mode="after")
    def _fit(self) -> NearDupConfig:
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands*rows={self.bands * self.rows} exceeds num_perm={self.num_perm}")
        return self


class DecontamFilterConfig(_Cfg):
    enabled: bool = True
    index_path: str | None = None  # a saved DecontamIndex; default: built once and cached under .cache/
    ngram_size: int = Field(13, ge=1)
    min_matches: int = Field(3, ge=1)


class EduFilterConfig(_Cfg):
    model: str = Field(..., description="edu model version (or path) in the registry")
    registry: str | None = None
    min_score: float | None = Field(None, ge=0.0, le=5.0)  # None: score only, drop nothing


class PostFilterConfig(_Cfg):
    near_dedup: NearDupConfig = NearDupConfig()
    decontam: DecontamFilterConfig = DecontamFilterConfig()
    edu: EduFilterConfig | None = None


class RecipeSet(_Cfg):
    name: str = "synthetic"
    seed: int = 0
    teacher: TeacherConfig = TeacherConfig()
    web_seeds: WebSeedConfig | None = None
    postfilter: PostFilterConfig = PostFilterConfig()
    recipes: list[Recipe] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _unique_and_seeded(self) -> RecipeSet:
        names = [r.name for r in self.recipes]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"recipe names must be unique; repeated: {dup}")
        needs_web = [r.name for r in self.recipes if r.web_share > 0]
        if needs_web and self.web_seeds is None:
            raise ValueError(f"recipe(s) {needs_web} set web_share > 0 but the file has no web_seeds section")
        return self


def _where(raw: dict, loc: tuple) -> str:
    """'recipe 'math-1' field 'sampling.temperature'' for a pydantic error location inside `recipes`."""
    if len(loc) >= 2 and loc[0] == "recipes" and isinstance(loc[1], int):
        items = raw.get("recipes") or []
        name = items[loc[1]].get("name") if loc[1] < len(items) and isinstance(items[loc[1]], dict) else None
        label = f"recipe {name!r}" if name else f"recipe #{loc[1] + 1}"
        field = ".".join(str(p) for p in loc[2:]) or "<recipe>"
        return f"{label} field {field!r}"
    return f"field {'.'.join(str(p) for p in loc) or '<top level>'!r}"


def parse_recipes(raw: object, path: str | Path = "<recipes>") -> RecipeSet:
    path = Path(path)
    if not isinstance(raw, dict):
        raise ValueError(
            f"recipes {path}: expected a mapping with a `recipes:` list, got {type(raw).__name__}"
        )  # noqa: TRY004 (bad data)
    try:
        rs = RecipeSet.model_validate(raw)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            # strip pydantic's union/discriminator tags from the location, keep the real field names
            loc = tuple(
                p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "tagged-")))
            )
            value = err.get("input")
            shown = f" (value: {str(value)[:80]!r})" if not isinstance(value, dict) else ""
            problems.append(f"{_where(raw, loc)}: {err['msg']}{shown}")
        raise ValueError(f"recipes {path}: " + "; ".join(problems)) from None
    if rs.web_seeds is not None:
        rs.web_seeds.source = expand_env(rs.web_seeds.source, f"recipes {path}")
    return rs


def load_recipes(path: str | Path) -> RecipeSet:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recipes file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ValueError(f"recipes {path}: not valid YAML: {e}") from None
    return parse_recipes(raw, path)
