"""Textbook-like synthetic data (Phi-style): recipes -> diverse seeded prompts -> teacher -> verification ->
post-filter -> contract dataset. Entry point: `python -m synthesis run` (synthesis/commands/run.py).

    recipes.py        YAML recipes, validated (errors name the recipe and field)
    seeds_catalog.py  built-in topic / audience / style pools
    seeds.py          web-extract pool from a curated dataset; deterministic seed draws
    plan.py           the whole plan (no exact prompt repeats) and its shards
    generators/       textbook, math, code, puzzle: prompts and parsers
    verify/           math answers, sandboxed code tests, text checks, checker precision
    postfilter.py     near-dedup within the set, benchmark decontamination, optional edu score
    pipeline.py       the run: stages, rejects, manifest, publish
    report.py         yield and diversity report
"""
