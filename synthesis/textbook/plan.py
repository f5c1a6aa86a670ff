"""The generation plan: for every recipe, n deterministic seed draws turned into teacher requests, with no
exact prompt repeated anywhere in the set, then cut into the caller's shard.

Every worker computes the same whole plan (cheap: no model calls) and keeps the samples of its shard, so
shards are disjoint and together cover the plan without coordination.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass

from synthesis.teacher import SamplingParams, TeacherRequest
from synthesis.textbook.generators import GENERATORS
from synthesis.textbook.recipes import Recipe, RecipeSet
from synthesis.textbook.seeds import SeedDraw, WebDoc, draw_seed

log = logging.getLogger(__name__)

#: redraws of one sample before giving up on finding a prompt not used yet
MAX_REDRAWS = 25


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, spec: str | None) -> Shard:
        if not spec:
            return cls(0, 1)
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
        if not m or not 0 <= int(m.group(1)) < int(m.group(2)):
            raise ValueError(f"--shard {spec!r}: expected i/n with 0 <= i < n, e.g. 0/4")
        return cls(int(m.group(1)), int(m.group(2)))

    def owns(self, sample_id: str) -> bool:
        # by hash, not by position: every recipe spreads evenly over the shards
        return int(hashlib.sha1(sample_id.encode()).hexdigest()[:8], 16) % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}-of-{self.count}"


@dataclass(frozen=True)
class PlannedSample:
    sample_id: str
    recipe: Recipe
    seed: SeedDraw
    request: TeacherRequest


@dataclass
class Plan:
    samples: list[PlannedSample]
    planned: dict[str, int]  # per recipe: samples in the whole plan (all shards)
    exhausted: dict[str, int]  # per recipe: draws that found no unused prompt


#: the whole plan (no sharding)
WHOLE = Shard(0, 1)


def request_seed(*parts: object) -> int:
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:8], 16) % (2**31)


def generation_request(sample_id: str, recipe: Recipe, seed: SeedDraw, set_seed: int) -> TeacherRequest:
    gen = GENERATORS[recipe.generator]
    s = recipe.sampling
    structured = gen.structured(recipe.structured)
    return TeacherRequest(
        id=sample_id,
        messages=gen.messages(seed, structured),
        sampling=SamplingParams(
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=s.max_tokens,
            seed=request_seed(set_seed, sample_id),
        ),
        response_schema=gen.schema(s.max_tokens) if structured else None,
        template_version=gen.template_version(recipe.template_version, structured),
    )


def build_plan(rs: RecipeSet, web_pool: list[WebDoc] | None, shard: Shard = WHOLE) -> Plan:
    seen: set[str] = set()
    samples: list[PlannedSample] = []
    planned: dict[str, int] = {}
    exhausted: dict[str, int] = {}
    for recipe in rs.recipes:
        gen = GENERATORS[recipe.generator]
        planned[recipe.name] = exhausted[recipe.name] = 0
        for index in range(recipe.n):
            for attempt in range(MAX_REDRAWS):
                seed = draw_seed(recipe, rs.seed, index, attempt, web_pool)
                prompt = "\n".join(m.content for m in gen.messages(seed, gen.structured(recipe.structured)))
                digest = hashlib.sha256(prompt.encode()).hexdigest()
                if digest not in seen:
                    seen.add(digest)
                    break
            else:
                exhausted[recipe.name] += 1
                continue
            planned[recipe.name] += 1
            sample_id = f"{recipe.name}-{index:07d}"
            if shard.owns(sample_id):
                samples.append(
                    PlannedSample(
                        sample_id, recipe, seed, generation_request(sample_id, recipe, seed, rs.seed)
                    )
                )
        if exhausted[recipe.name]:
            log.warning(
                "recipe %s: %d of %d draws found no unused prompt (the seed pools are too small for n)",
                recipe.name,
                exhausted[recipe.name],
                recipe.n,
            )
    log.info(
        "plan: %d samples over %d recipes, %d in shard %s",
        sum(planned.values()),
        len(rs.recipes),
        len(samples),
        shard,
    )
    return Plan(samples, planned, exhausted)
