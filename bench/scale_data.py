"""The scale benchmark's documents (bench/scale.py): a published base corpus with near-duplicate families and
each night's raw input, all composed of real sentences of ../shared/data with bench/near_dedup_corpus.py's
sentence pool, paragraph composer and derivations (word edits, paragraph shuffles, boilerplate).

Base corpus (published directly as a web_curated version, every contract column filled as `curation run`
fills it plus the edu columns a scored night adds): chunks of `CHUNK` documents, 75% composed originals and
25% derived from an original of the same chunk (so families stay local and memory is bounded); exact text
duplicates are skipped (the corpus gate requires unique text hashes), so every document is unique but
~25% have a near-duplicate partner. Every `SAMPLE_EVERY`-th document is kept in memory as the nights'
source of published documents to copy and re-crawl.

A night (JSONL.gz, what the curation job ingests), by `NIGHT_MIX`:
    new            a new composed document
    night_near     a near copy of one of the night's new documents (near-dedup inside the batch)
    published_near a near copy of a published document under a new id (near-dedup against the band index)
    published_same a published document's exact text under a new id (near-dedup, Jaccard 1)
    recrawl_edit   a published id re-crawled with lightly edited text (append: id_already_published)
    recrawl_same   a published id re-crawled with the same text
"""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from near_dedup_corpus import _boiler, _composed, _edit, _sentences, _shuffle, real_documents

CHUNK = 25_000
SAMPLE_EVERY = 50
DERIVED_FRACTION = 0.25
NIGHT_MIX = {
    "night_near": 0.05,
    "published_near": 0.04,
    "published_same": 0.01,
    "recrawl_edit": 0.02,
    "recrawl_same": 0.01,
}  # the rest is `new`
EDU_MODEL = "bench-base"  # edu_model of the base documents (scored "before" the benchmark)


class Sentences:
    """The sentence pool and edit vocabulary (built once: ~10 s). Only sentences lid.176 reads as English
    (p >= 0.9): the pool's Danish sentences (FineWeb-C) would make most composed documents mixed-language,
    and the curation job's langid stage (English only by default) would reject ~95% of every night."""

    def __init__(self):
        from curation.steps.langid import LangIdConfig, load_fasttext_model, predict_languages

        pool = _sentences(real_documents())
        model = load_fasttext_model(LangIdConfig().resolved_model_path())
        langs = predict_languages(model, pool)
        self.pool = [t for t, (lang, p) in zip(pool, langs) if lang == "en" and p >= 0.9]
        self.vocab = sorted({w for s in self.pool[:5000] for w in s.split()})


def derive(rng: random.Random, text: str, vocab: list[str]) -> str:
    """A near copy, as in the near-dedup benchmark: word edits (0-8%), a paragraph shuffle, boilerplate, or a
    shuffle with edits (0-4%)."""
    kind = rng.choices(["edit", "shuffle", "boiler", "shuffle_edit"], [0.4, 0.2, 0.25, 0.15])[0]
    if kind == "edit":
        return _edit(rng, text, vocab, rng.uniform(0.0, 0.08))
    if kind == "shuffle":
        return _shuffle(rng, text)
    if kind == "boiler":
        return _boiler(rng, text)
    return _edit(rng, _shuffle(rng, text), vocab, rng.uniform(0.0, 0.04))


def base_chunks(s: Sentences, n_docs: int, seed: int, hasher) -> Iterator[tuple[list[str], list[str]]]:
    """(ids, texts) per chunk; `n_docs` documents in all, their `hasher` hashes unique."""
    rng = random.Random(f"base-{seed}")  # string seeds: the base and each night draw different streams
    seen: set[str] = set()
    made = 0
    while made < n_docs:
        want = min(CHUNK, n_docs - made)
        texts = []
        originals = [_composed(rng, s.pool) for _ in range(want)]
        n_orig = want - int(want * DERIVED_FRACTION)
        candidates = originals[:n_orig] + [
            derive(rng, rng.choice(originals[:n_orig]), s.vocab) for _ in range(want - n_orig)
        ]
        for t in candidates:
            h = hasher(t)
            if h not in seen:
                seen.add(h)
                texts.append(t)
        rng.shuffle(texts)
        ids = [f"doc-{made + i:08d}" for i in range(len(texts))]
        made += len(texts)
        yield ids, texts


def night_documents(
    s: Sentences, night: int, n: int, published: list[tuple[str, str]], seed: int
) -> tuple[list[dict], Counter]:
    """The night's raw documents (shuffled) and how many of each kind of NIGHT_MIX (+ `new`)."""
    rng = random.Random(f"night-{seed}-{night}")
    counts = {k: int(n * f) for k, f in NIGHT_MIX.items()}
    counts["new"] = n - sum(counts.values())
    docs, kinds = [], Counter()

    def add(kind: str, doc_id: str, text: str) -> None:
        docs.append({"id": doc_id, "text": text, "kind": kind})
        kinds[kind] += 1

    new = [_composed(rng, s.pool) for _ in range(counts["new"])]
    for i, t in enumerate(new):
        add("new", f"n{night}-{i:07d}", t)
    for i in range(counts["night_near"]):
        add("night_near", f"n{night}-near-{i:06d}", derive(rng, rng.choice(new), s.vocab))
    wanted = sum(counts[k] for k in NIGHT_MIX if k != "night_near")
    if wanted > len(published):
        raise ValueError(
            f"a night of {n} documents copies or re-crawls {wanted} published ones but the base's sample "
            f"holds {len(published)} (every {SAMPLE_EVERY}th): use a larger --docs or a smaller --night-docs"
        )
    picks = rng.sample(published, wanted)
    for kind in ("published_near", "published_same", "recrawl_edit", "recrawl_same"):
        for i in range(counts[kind]):
            pid, text = picks.pop()
            if kind == "published_near":
                add(kind, f"n{night}-pnear-{i:06d}", derive(rng, text, s.vocab))
            elif kind == "published_same":
                add(kind, f"n{night}-psame-{i:06d}", text)
            elif kind == "recrawl_edit":
                add(kind, pid, _edit(rng, text, s.vocab, rng.uniform(0.01, 0.04)))
            else:
                add(kind, pid, text)
    rng.shuffle(docs)
    return docs, kinds


def write_segments(docs: list[dict], inbox: Path, night: int, files: int) -> list[Path]:
    """The night's crawl segments: `files` JSONL.gz files (id, text, url, date, crawl_id per line)."""
    inbox.mkdir(parents=True, exist_ok=True)
    per = -(-len(docs) // files)
    out = []
    for k in range(files):
        path = inbox / f"night{night:02d}-segment{k:02d}.jsonl.gz"
        with gzip.open(path, "wt", compresslevel=1) as f:
            for j, d in enumerate(docs[k * per : (k + 1) * per]):
                row = {
                    "id": d["id"],
                    "text": d["text"],
                    "url": f"https://night{night}.example.org/{k}/{j}",
                    "date": f"2027-01-{night:02d}T03:00:00Z",
                    "crawl_id": "CC-MAIN-2027-01",
                }
                f.write(json.dumps(row) + "\n")
        out.append(path)
    return out
