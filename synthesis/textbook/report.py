"""The run report: yield per recipe (planned -> generated -> passed checks -> verified -> kept), diversity
(distinct word n-gram ratio, near-duplicate rate, topic coverage) and a few samples. Written beside the data
as report.json and report.md, and summarised on the console."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

from synthesis.textbook.recipes import Recipe, RecipeSet

_WORD = re.compile(r"\w+")


def distinct_ngram_ratio(texts: list[str], n: int = 3) -> float | None:
    """Distinct word n-grams / all word n-grams over the texts (1.0 = nothing repeats anywhere)."""
    total, distinct = 0, set()
    for t in texts:
        w = _WORD.findall(t.lower())
        grams = list(zip(*(w[i:] for i in range(n))))
        total += len(grams)
        distinct.update(grams)
    return round(len(distinct) / total, 4) if total else None


def build_report(
    rs: RecipeSet,
    planned: dict[str, int],
    exhausted: dict[str, int],
    kept: list[dict],
    rejected: list[dict],
    samples_per_recipe: int = 2,
) -> dict:
    by_recipe_kept: dict[str, list[dict]] = defaultdict(list)
    for r in kept:
        by_recipe_kept[r["recipe"]].append(r)
    rej_stage: dict[str, Counter] = defaultdict(Counter)
    rej_reason: dict[str, Counter] = defaultdict(Counter)
    for r in rejected:
        rej_stage[r["recipe"]][r["reject_stage"]] += 1
        rej_reason[r["recipe"]][r["reject_reason"]] += 1
    recipes = {
        recipe.name: _recipe_entry(
            recipe,
            by_recipe_kept[recipe.name],
            rej_stage[recipe.name],
            rej_reason[recipe.name],
            planned.get(recipe.name, 0),
            exhausted.get(recipe.name, 0),
            samples_per_recipe,
        )
        for recipe in rs.recipes
    }
    all_rows = [r for rows in by_recipe_kept.values() for r in rows]
    near = sum(c["near_dedup"] for c in rej_stage.values())
    verified_total = sum(v["verified"] for v in recipes.values())
    return {
        "recipes": recipes,
        "totals": {
            "in_shard": sum(v["in_shard"] for v in recipes.values()),
            "generated": sum(v["generated"] for v in recipes.values()),
            "parsed": sum(v["parsed"] for v in recipes.values()),
            "passed_checks": sum(v["passed_checks"] for v in recipes.values()),
            "verified": verified_total,
            "kept": len(all_rows),
            "distinct_3gram_ratio": distinct_ngram_ratio([r["text"] for r in all_rows]),
            "near_dup_rate": round(near / verified_total, 4) if verified_total else None,
        },
    }


def _recipe_entry(
    recipe: Recipe,
    rows: list[dict],
    stages: Counter,
    reasons: Counter,
    planned: int,
    exhausted: int,
    samples_per_recipe: int,
) -> dict:
    """One recipe's yield funnel (counted back from its kept rows and its rejects by stage), its diversity
    and a few kept samples."""
    in_shard = len(rows) + sum(stages.values())
    teacher_failed = sum(v for k, v in reasons.items() if k.startswith("teacher_"))
    generated = in_shard - teacher_failed
    parsed = in_shard - stages["generate"]
    passed_checks = parsed - stages["quality"]
    verified = passed_checks - stages["verify"]
    all_topics = {(p, t) for p in recipe.topics for t in recipe.topic_pool(p)}
    return {
        "generator": recipe.generator,
        "planned_total": planned,
        "prompt_space_exhausted": exhausted,
        "in_shard": in_shard,
        "generated": generated,
        "parsed": parsed,
        "passed_checks": passed_checks,
        "verified": verified,
        "kept": len(rows),
        "kept_unverified": sum(1 for r in rows if r["verified"] is False),
        "yield": round(len(rows) / in_shard, 4) if in_shard else None,
        "reject_reasons": dict(reasons.most_common()),
        "diversity": {
            "distinct_3gram_ratio": distinct_ngram_ratio([r["text"] for r in rows]),
            "near_dup_rate": round(stages["near_dedup"] / verified, 4) if verified else None,
            "topic_coverage": round(len({(r["topic_pool"], r["topic"]) for r in rows}) / len(all_topics), 4),
            "topics_kept": len({(r["topic_pool"], r["topic"]) for r in rows}),
            "topics_available": len(all_topics),
            "audiences_kept": dict(Counter(r["audience"] for r in rows)),
            "styles_kept": dict(Counter(r["style"] for r in rows)),
            "web_seeded_kept": sum(1 for r in rows if r["seed_doc_id"]),
        },
        "samples": [
            {
                "id": r["id"],
                "topic": r["topic"],
                "audience": r["audience"],
                "style": r["style"],
                "verified": r["verified"],
                "text": r["text"][:700],
            }
            for r in rows[:samples_per_recipe]
        ],
    }


def render_markdown(report: dict) -> str:
    lines = [
        (
            "| recipe | generator | in shard | generated | parsed | passed checks | verified | kept | yield "
            "| distinct 3-gram | near-dup rate | topic coverage |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in report["recipes"].items():
        d = r["diversity"]
        lines.append(
            f"| {name} | {r['generator']} | {r['in_shard']} | {r['generated']} | {r['parsed']} | "
            f"{r['passed_checks']} | {r['verified']} | {r['kept']} | {r['yield']} | "
            f"{d['distinct_3gram_ratio']} | {d['near_dup_rate']} | "
            f"{d['topics_kept']}/{d['topics_available']} |"
        )
    t = report["totals"]
    lines.append(
        f"| **all** | | {t['in_shard']} | {t['generated']} | {t['parsed']} | {t['passed_checks']} | "
        f"{t['verified']} | {t['kept']} | | {t['distinct_3gram_ratio']} | {t['near_dup_rate']} | |"
    )
    lines.append("\n## Reject reasons")
    for name, r in report["recipes"].items():
        lines.append(
            f"- {name}: " + (", ".join(f"{k} {v}" for k, v in r["reject_reasons"].items()) or "none")
        )
    lines.append("\n## Samples")
    for name, r in report["recipes"].items():
        for s in r["samples"]:
            lines.append(
                f"\n### {name} / {s['id']} ({s['topic']}; {s['audience']}; {s['style']}; "
                f"verified={s['verified']})\n\n```\n{s['text']}\n```"
            )
    return "\n".join(lines) + "\n"


def write_report(report: dict, folder: Path) -> None:
    (folder / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    (folder / "report.md").write_text(render_markdown(report))
