"""The near-dedup benchmark corpus and its exact-Jaccard ground truth.

Originals are real documents from ../shared/data (the Dolma CC-2019 shard, the DCLM human-labelled set,
FineWeb-C Danish) and, to reach 20k/100k documents, new originals composed of random real sentences
from those documents (paragraphs of 2-5 sentences). ~30% of the corpus is derived from an original (or
from another derived copy, so chains occur): exact copies, controlled word edits (substitute / delete /
insert at a random rate of 0-8% of the words), paragraph shuffles, added boilerplate (header/footer
blocks), shuffle + edits; plus a family of templated pages (a long shared template + a short unique part)
that makes oversized LSH buckets.

Ground truth is exact Jaccard over the same shingles the pipeline uses (word 5-grams of normalized text):
all pairs inside each family, every pair any method put in one cluster across families, and a sample
of random cross-family pairs.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
import re
import sys
from collections import defaultdict

import numpy as np

from curation.dedup.minhash import distinct_per_doc, shingle_hashes_batch
from curation.paths import shared_data_dir

csv.field_size_limit(sys.maxsize)
_SENT = re.compile(r"(?<=[.!?])\s+|\n+")

BOILERPLATE = [
    "Home About us Contact Privacy policy Terms of use Sitemap Search this site Follow us on Facebook "
    "Twitter",
    "This website uses cookies to ensure you get the best experience on our website. By continuing to use "
    "this site you consent to our use of cookies in accordance with our cookie policy. Learn more Accept",
    "Copyright 2019 All rights reserved. Reproduction in whole or in part without written permission is "
    "prohibited. Powered by WordPress. Theme by ThemeForest. Back to top",
    "Subscribe to our newsletter and get the latest news, offers and updates delivered straight to your "
    "inbox every week. Enter your email address Subscribe No spam, unsubscribe at any time.",
    "Related posts You may also like Leave a comment Your email address will not be published. Required "
    "fields are marked Comment Name Email Website Save my name, email, and website in this browser",
]


def real_documents() -> list[str]:
    d = shared_data_dir()
    texts = []
    with gzip.open(
        d / "webtext_cc2019_dolma_sample" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
    ) as f:
        texts += [json.loads(line)["text"] for line in f]
    with open(d / "quality_labels_dclm_human" / "majority_data_disputed.jsonl") as f:
        texts += [json.loads(line)["text"] for line in f]
    with open(d / "edu_labels_finewebc_danish" / "fineweb-c_danish.csv", newline="") as f:
        texts += [row["text"] for row in csv.DictReader(f)]
    return [t for t in texts if t and len(t.split()) >= 30]


def _sentences(texts: list[str]) -> list[str]:
    out = []
    for t in texts:
        out += [s.strip() for s in _SENT.split(t) if len(s.split()) >= 6]
    return out


def _composed(rng: random.Random, pool: list[str]) -> str:
    paras = []
    for _ in range(rng.randint(2, 6)):
        paras.append(" ".join(rng.choice(pool) for _ in range(rng.randint(2, 5))))
    return "\n\n".join(paras)


def _edit(rng: random.Random, text: str, vocab: list[str], rate: float) -> str:
    words = text.split(" ")
    out = []
    for w in words:
        r = rng.random()
        if r < rate / 3:
            continue  # delete
        if r < 2 * rate / 3:
            out.append(rng.choice(vocab))  # substitute
            continue
        out.append(w)
        if r < rate:
            out.append(rng.choice(vocab))  # insert
    return " ".join(out)


def _shuffle(rng: random.Random, text: str) -> str:
    paras = text.split("\n\n")
    if len(paras) < 3:
        paras = [s for s in _SENT.split(text) if s.strip()]
    rng.shuffle(paras)
    return "\n\n".join(paras)


def _boiler(rng: random.Random, text: str) -> str:
    head = rng.choice(BOILERPLATE) if rng.random() < 0.5 else ""
    foot = rng.choice(BOILERPLATE)
    return "\n".join(x for x in (head, text, foot) if x)


def build_corpus(
    n: int, seed: int = 0, derived_frac: float = 0.3, template_frac: float = 0.005
) -> list[dict]:
    """n documents: dicts with id, text, family, kind. Deterministic for (n, seed)."""
    rng = random.Random(seed)
    real = real_documents()
    pool = _sentences(real)
    vocab = sorted({w for s in pool[:5000] for w in s.split()})
    n_template = max(2, int(n * template_frac))
    n_derived = int(n * derived_frac)
    n_orig = n - n_derived - n_template
    docs = []
    for i in range(n_orig):
        text = real[i] if i < len(real) else _composed(rng, pool)
        docs.append({"text": text, "family": i, "kind": "real" if i < len(real) else "composed"})
    template = " ".join(rng.choice(pool) for _ in range(12))
    for _ in range(n_template):
        unique = " ".join(rng.choice(vocab) for _ in range(rng.randint(5, 30)))
        docs.append({"text": template + "\n" + unique, "family": -1, "kind": "template"})
    kinds = [("exact", 0.15), ("edit", 0.35), ("shuffle", 0.2), ("boiler", 0.2), ("shuffle_edit", 0.1)]
    names, weights = zip(*kinds)
    for _ in range(n_derived):
        src = rng.randrange(len(docs)) if rng.random() < 0.1 else rng.randrange(n_orig)  # 10%: maybe a chain
        parent = docs[src]
        kind = rng.choices(names, weights)[0]
        t = parent["text"]
        if kind == "exact":
            t = t.replace("\n\n", "\n") if rng.random() < 0.5 else t
        elif kind == "edit":
            t = _edit(rng, t, vocab, rng.uniform(0.0, 0.08))
        elif kind == "shuffle":
            t = _shuffle(rng, t)
        elif kind == "boiler":
            t = _boiler(rng, t)
        else:
            t = _edit(rng, _shuffle(rng, t), vocab, rng.uniform(0.0, 0.04))
        docs.append({"text": t, "family": parent["family"], "kind": kind})
    order = list(range(len(docs)))
    rng.shuffle(order)
    out = []
    for new_i, old_i in enumerate(order):
        d = docs[old_i]
        out.append({"id": f"d{new_i:07d}", "text": d["text"], "family": d["family"], "kind": d["kind"]})
    return out


class ShingleSets:
    """Sorted distinct shingle hashes of every document (numpy), for exact Jaccard."""

    def __init__(self, docs: list[dict], ngram: int = 5, batch: int = 2000):
        self.index = {d["id"]: i for i, d in enumerate(docs)}
        self.sets: list[np.ndarray] = []
        for s in range(0, len(docs), batch):
            h, off = shingle_hashes_batch([d["text"] for d in docs[s : s + batch]], ngram)
            v, off = distinct_per_doc(h, off)
            self.sets += [v[off[i] : off[i + 1]] for i in range(len(off) - 1)]

    def jaccard(self, a: str, b: str) -> float:
        x, y = self.sets[self.index[a]], self.sets[self.index[b]]
        if not len(x) and not len(y):
            return 0.0
        inter = len(np.intersect1d(x, y, assume_unique=True))
        return inter / (len(x) + len(y) - inter)


def ground_truth(
    docs: list[dict],
    sets: ShingleSets,
    predicted_clusters: list[list[list[str]]],
    threshold: float = 0.8,
    random_pairs: int = 100_000,
    seed: int = 0,
) -> dict:
    """Pairs with exact Jaccard >= threshold, found by brute force within families, across every predicted
    cluster (all methods), and in a random sample of cross-family pairs."""
    fam = defaultdict(list)
    for d in docs:
        fam[d["family"]].append(d["id"])
    checked: set[tuple[str, str]] = set()
    positive: set[tuple[str, str]] = set()

    def check(a, b):
        key = (a, b) if a < b else (b, a)
        if a == b or key in checked:
            return
        checked.add(key)
        if sets.jaccard(a, b) >= threshold:
            positive.add(key)

    for members in fam.values():
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                check(a, b)
    within = len(positive)
    family_of = {d["id"]: d["family"] for d in docs}
    for clusters in predicted_clusters:
        for c in clusters:
            c = sorted(c)
            if len(c) > 60:  # big clusters: every member against the first few (enough to judge each member)
                for a in c:
                    for b in c[:5]:
                        if family_of[a] != family_of[b]:
                            check(a, b)
                continue
            for i, a in enumerate(c):
                for b in c[i + 1 :]:
                    if family_of[a] != family_of[b]:
                        check(a, b)
    from_clusters = len(positive) - within
    rng = random.Random(seed)
    ids = [d["id"] for d in docs]
    before = len(positive)
    for _ in range(random_pairs):
        a, b = rng.choice(ids), rng.choice(ids)
        if family_of[a] != family_of[b]:
            check(a, b)
    return {
        "pairs": positive,
        "within_family": within,
        "cross_family_from_clusters": from_clusters,
        "cross_family_random_hits": len(positive) - before,
        "pairs_checked": len(checked),
    }


def gt_components(ids: list[str], pairs: set[tuple[str, str]]) -> list[set[str]]:
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    comps = defaultdict(set)
    for x in list(parent):
        comps[find(x)].add(x)
    return [c for c in comps.values() if len(c) > 1]


def score_removal(removed: set[str], pairs: set[tuple[str, str]], components: list[set[str]]) -> dict:
    """Removal precision: share of removed documents that have a >= threshold partner.
    Removal recall: share of the removable excess (|component| - 1 per ground-truth component) removed."""
    has_partner = {x for p in pairs for x in p}
    tp = len(removed & has_partner)
    excess = sum(len(c) - 1 for c in components)
    covered = sum(min(len(removed & c), len(c) - 1) for c in components)
    return {
        "removed": len(removed),
        "precision": tp / len(removed) if removed else 1.0,
        "recall": covered / excess if excess else 1.0,
    }
