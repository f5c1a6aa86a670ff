"""The two references the near-dedup benchmark runs beside ours, with the same parameters
(word 5-grams, num_perm = bands x rows, same bands/rows, seed 1):

(a) single-process datasketch: MinHash per document over its 5-gram strings (datasketch's default
    sha1 hash), `MinHashLSH(params=(bands, rows))`, a query per document, union-find over the candidate
    pairs; optionally each candidate pair verified by exact Jaccard of the shingle sets;
(b) datatrove 0.10.1's four MinHash stages (signatures, buckets, clusters, filter) with the
    LocalPipelineExecutor on 2 workers, sha1 shingle hashes (its xxhash default breaks on xxhash 4.x). Its
    English word tokenizer needs NLTK's punkt data, which cannot be downloaded here, so it gets a whitespace
    tokenizer over its own normalized text (datatrove's `simplify_text` already lowercases and strips
    punctuation), i.e. the same `\\w+`-like words as ours.
"""

from __future__ import annotations

from pathlib import Path

from curation.dedup.minhash import tokens


def _shingle_strings(text: str, n: int) -> set[bytes]:
    toks = tokens(text)
    if not toks:
        return set()
    if len(toks) < n:
        return {" ".join(toks).encode()}
    return {" ".join(toks[i : i + n]).encode() for i in range(len(toks) - n + 1)}


def run_datasketch(
    docs: list[dict],
    num_perm: int,
    bands: int,
    rows: int,
    seed: int,
    ngram: int,
    verify: bool,
    threshold: float = 0.8,
) -> set[str]:
    """Returns the removed ids (one kept per cluster: the smallest id)."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(num_perm=num_perm, params=(bands, rows))
    shingles = {}
    minhashes = {}
    for d in docs:
        sh = _shingle_strings(d["text"], ngram)
        if not sh:
            continue
        m = MinHash(num_perm=num_perm, seed=seed)
        m.update_batch(list(sh))
        lsh.insert(d["id"], m)
        minhashes[d["id"]] = m
        if verify:
            shingles[d["id"]] = sh
    parent: dict[str, str] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for key, m in minhashes.items():
        for other in lsh.query(m):
            if other == key:
                continue
            if verify:
                a, b = shingles[key], shingles[other]
                if len(a & b) / len(a | b) < threshold:
                    continue
            ra, rb = find(key), find(other)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return {x for x in parent if find(x) != x}


def run_datatrove(
    parquet_dir: Path, work: Path, bands: int, rows: int, seed: int, ngram: int, tasks: int = 2
) -> set[str]:
    from datatrove.executor.local import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import ParquetWriter
    from datatrove.utils.hashing import HashConfig
    from datatrove.utils.word_tokenizers import WordTokenizer

    class Whitespace(WordTokenizer):
        def word_tokenize(self, text):
            return text.split()

        def sent_tokenize(self, text):
            return [text]

        def span_tokenize(self, text):
            return [(0, len(text))]

    # datatrove's default xxhash path passes str to xxhash 4.x, which only hashes bytes: use its sha1 option
    cfg = MinhashConfig(
        n_grams=ngram,
        num_buckets=bands,
        hashes_per_bucket=rows,
        seed=seed,
        hash_config=HashConfig(precision=64, hash_fc="sha1"),
    )

    def reader():
        return ParquetReader(str(parquet_dir), id_key="id", text_key="text")

    logs = work / "logs"
    LocalPipelineExecutor(
        [reader(), MinhashDedupSignature(str(work / "sigs"), config=cfg, language=Whitespace())],
        tasks=tasks,
        workers=tasks,
        logging_dir=str(logs / "s1"),
    ).run()
    LocalPipelineExecutor(
        [MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=cfg)],
        tasks=bands,
        workers=tasks,
        logging_dir=str(logs / "s2"),
    ).run()
    LocalPipelineExecutor(
        [MinhashDedupCluster(str(work / "buckets"), str(work / "remove"), config=cfg)],
        tasks=1,
        logging_dir=str(logs / "s3"),
    ).run()
    LocalPipelineExecutor(
        [
            reader(),
            MinhashDedupFilter(str(work / "remove"), exclusion_writer=ParquetWriter(str(work / "removed"))),
        ],
        tasks=tasks,
        workers=tasks,
        logging_dir=str(logs / "s4"),
    ).run()
    import pyarrow.parquet as pq

    return {
        i
        for f in sorted((work / "removed").glob("*.parquet"))
        for i in pq.read_table(f, columns=["id"]).column(0).to_pylist()
    }
