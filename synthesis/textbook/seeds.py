"""Seeds: the (topic, audience, style, web extract) combinations prompts are built from.

Sameness is the known failure of naive synthetic data, so every prompt is a combination drawn from weighted
pools, and a share of them embed a short extract of a curated, high-edu-score web page (as Cosmopedia did).
Draws are deterministic: the i-th draw of a recipe depends only on (set seed, recipe name, i, attempt), so
shards and reruns agree on the plan without talking to each other.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: recipes -> generators -> SeedDraw here, so no import back at run time
    from synthesis.textbook.recipes import Recipe, WebSeedConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebDoc:
    id: str
    extract: str
    edu_score: float | None
    url: str | None


@dataclass(frozen=True)
class SeedDraw:
    recipe: str
    index: int  # position in the recipe's plan
    topic_pool: str
    topic: str
    audience: str  # key (built-in) or free text
    audience_text: str
    style: str
    web: WebDoc | None

    def provenance(self) -> dict:
        return {
            "topic_pool": self.topic_pool,
            "topic": self.topic,
            "audience": self.audience,
            "style": self.style,
            "seed_doc_id": self.web.id if self.web else None,
            "seed_doc_edu_score": self.web.edu_score if self.web else None,
        }


_SENTENCE_END = re.compile(r"[.!?](?=\s)")


def make_extract(text: str, max_chars: int) -> str:
    """At most max_chars of the document, whitespace tidied, cut at a sentence end when one is in the
    second half (an extract that stops mid-word reads as noise to the teacher)."""
    tidy = re.sub(r"[ \t]+", " ", re.sub(r"\n{3,}", "\n\n", text)).strip()
    if len(tidy) <= max_chars:
        return tidy
    head = tidy[:max_chars]
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    cut = ends[-1] if ends and ends[-1] >= max_chars // 2 else max_chars
    return head[:cut].rstrip()


def load_web_pool(cfg: WebSeedConfig) -> list[WebDoc]:
    """The `pool_size` best documents of the source: highest edu_score first when the column exists
    (ties and score-less sources ordered by id, so the pool is deterministic), in `lang` when known."""
    from curation.edu.text_source import open_text_source

    with open_text_source(cfg.source, f"web_seeds source {cfg.source}") as src:
        id_expr = src.id_expr
        score = "CAST(edu_score AS DOUBLE)" if "edu_score" in src.columns else "NULL::DOUBLE"
        url = "CAST(url AS VARCHAR)" if "url" in src.columns else "NULL"
        where = ["text IS NOT NULL", f"length(text) >= {int(cfg.min_chars)}"]
        has_lang = "lang" in src.columns
        if cfg.lang and has_lang:
            where.append(f"lang = '{cfg.lang.replace(chr(39), '')}'")
        # without a lang column the language is identified here, so fetch spares for the ones that fail
        limit = cfg.pool_size if has_lang or not cfg.lang else cfg.pool_size * 5
        rows = src.con.execute(
            f"SELECT {id_expr}, text, {score} AS s, {url} FROM {src.table} WHERE {' AND '.join(where)} "
            f"ORDER BY s DESC NULLS LAST, {id_expr} LIMIT {int(limit)}"
        ).fetchall()
    if not rows:
        raise ValueError(
            f"web_seeds source {cfg.source}: no document with >= {cfg.min_chars} chars"
            + (f" and lang={cfg.lang}" if cfg.lang else "")
        )
    pool = [WebDoc(i, make_extract(t, cfg.max_chars), s, u) for i, t, s, u in rows]
    if cfg.lang and not has_lang:
        from synthesis.textbook.verify.text import language_of

        pool = [d for d in pool if language_of(d.extract)[0] == cfg.lang][: cfg.pool_size]
        if not pool:
            raise ValueError(f"web_seeds source {cfg.source}: no document identified as lang={cfg.lang}")
    log.info(
        "web seed pool: %d documents from %s (edu_score %s)",
        len(pool),
        cfg.source,
        "ranked" if "edu_score" in src.columns else "absent: ordered by id",
    )
    return pool


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    keys = sorted(weights)  # sorted: YAML key order must not change the draws
    return rng.choices(keys, weights=[weights[k] for k in keys], k=1)[0]


def draw_seed(
    recipe: Recipe, set_seed: int, index: int, attempt: int, web_pool: list[WebDoc] | None
) -> SeedDraw:
    """The index-th draw of a recipe (attempt > 0 redraws after an exact prompt repeat)."""
    rng = random.Random(f"{set_seed}|{recipe.name}|{index}|{attempt}")
    pool = _weighted(rng, recipe.topics)
    topic = rng.choice(recipe.topic_pool(pool))
    audience = _weighted(rng, recipe.audiences)
    style = _weighted(rng, recipe.styles)
    web = None
    if recipe.web_share > 0 and web_pool and rng.random() < recipe.web_share:
        web = web_pool[rng.randrange(len(web_pool))]
    return SeedDraw(recipe.name, index, pool, topic, audience, recipe.audience_text(audience), style, web)
