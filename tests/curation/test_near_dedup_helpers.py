"""Shared helpers of the near-dedup tests: real fixture documents, planted near-duplicates, publishing
a small dataset version, and exact Jaccard ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curation.contract import DOC_COLUMNS, DatasetRoot, Manifest, code_version, now_iso
from curation.dedup.minhash import shingle_hashes

FIXTURE = Path(__file__).parents[1] / "fixtures" / "near_dedup" / "docs.jsonl"
BOILERPLATE = (
    "Accept cookies We use cookies to improve your experience on our site and to show you relevant "
    "advertising By continuing to browse you agree to our cookie policy Subscribe to our newsletter"
)


def fixture_docs() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines()]


def edit_words(text: str, every: int, start_frac: float = 0.0, end_frac: float = 1.0, tag: str = "x") -> str:
    """Replace every `every`-th word inside [start_frac, end_frac) of the document with a unique token."""
    words = text.split()
    lo, hi = int(len(words) * start_frac), int(len(words) * end_frac)
    for k, i in enumerate(range(lo + every // 2, hi, every)):
        words[i] = f"{tag}edit{k}"
    return " ".join(words)


def jaccard(a: str | None, b: str | None, ngram: int = 5) -> float:
    sa, sb = set(shingle_hashes(a, ngram).tolist()), set(shingle_hashes(b, ngram).tolist())
    return len(sa & sb) / len(sa | sb) if sa | sb else 0.0


def doc(id_: str, text: str | None, date: str = "2024-01-01") -> dict:
    return {"id": id_, "text": text, "url": f"https://example.org/{id_}", "date": date}


def planted_corpus() -> tuple[list[dict], dict[str, set[str]]]:
    """Real documents plus planted duplicates. Returns (docs, expected clusters by name)."""
    base = fixture_docs()
    docs = [doc(d["id"], d["text"], "2024-01-02") for d in base]
    by_id = {d["id"]: d["text"] for d in base}
    ids = [d["id"] for d in base]
    a, b, c, e = ids[0], ids[1], ids[2], ids[50]
    chain_b = edit_words(by_id[c], 25, 0.0, 0.5, "b")
    chain_c = edit_words(chain_b, 25, 0.5, 1.0, "c")
    planted = [
        doc("copy-upper", by_id[a].upper()),  # exact up to case
        doc("copy-edited", edit_words(by_id[b], 60)),  # a few word edits
        doc("copy-boiler", by_id[e] + "\n" + BOILERPLATE, "2023-06-01"),  # earlier: the keep rule keeps it
        doc("chain-b", chain_b),
        doc("chain-c", chain_c),
        doc("empty", ""),
        doc("blank", "  \n\t "),
        doc("null-text", None),
        doc("short-1", "Contact us"),
        doc("short-2", "contact US!"),
        doc("short-3", "About this site"),
    ]
    expected = {
        "upper": {a, "copy-upper"},
        "edited": {b, "copy-edited"},
        "boiler": {e, "copy-boiler"},
        "chain": {c, "chain-b", "chain-c"},
        "short": {"short-1", "short-2"},
    }
    return docs + planted, expected


def publish_docs(root: Path, version: str, docs: list[dict]) -> Path:
    """Write `docs` as a published dataset version (data/*.parquet + manifest) and return its folder."""
    schema = pa.schema([pa.field(c, pa.float64() if c == "lang_score" else pa.string()) for c in DOC_COLUMNS])
    table = pa.Table.from_pylist([{c: d.get(c) for c in DOC_COLUMNS} for d in docs], schema=schema)
    dr = DatasetRoot(root)
    root.mkdir(parents=True, exist_ok=True)
    staging = dr.staging_dir(version)
    (staging / "data").mkdir()
    pq.write_table(table, staging / "data" / "part-0.parquet")
    Manifest(
        dataset="fixture",
        version=version,
        created_at=now_iso(),
        code_version=code_version(),
        inputs=[],
        config={},
        config_hash="-",
        rows=len(docs),
        columns=DOC_COLUMNS,
    ).write(staging)
    return dr.publish(staging, version)


def clusters_from_duplicates(dup_rows: list[dict]) -> list[frozenset[str]]:
    """Duplicates audit rows -> clusters (kept document + every removed member)."""
    clusters: dict[str, set[str]] = {}
    for r in dup_rows:
        clusters.setdefault(r["cluster_id"], {r["kept_id"]}).add(r["doc_id"])
    return sorted((frozenset(c) for c in clusters.values()), key=sorted)
