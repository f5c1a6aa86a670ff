"""Reference equivalence: our batched signatures equal datasketch's MinHash bit for bit, and the Spark
path (LSH buckets + connected components on Spark) finds the same duplicate clusters as a single-process
datasketch MinHashLSH with the same parameters, with and without exact verification."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from datasketch import MinHash, MinHashLSH
from test_near_dedup_helpers import clusters_from_duplicates, planted_corpus, publish_docs

from curation.dedup.job import run_near_dedup
from curation.dedup.minhash import minhash_input, shingle_hashes, shingle_hashes_batch
from curation.dedup.near import lsh_params
from curation.dedup.near_config import NearDedupConfig

CFG = NearDedupConfig()


def _datasketch_minhash(text: str) -> MinHash:
    m = MinHash(num_perm=CFG.num_perm, seed=CFG.seed, hashfunc=int)
    m.update_batch(minhash_input(shingle_hashes(text, CFG.ngram)).tolist())
    return m


def test_batched_signatures_equal_datasketch_minhash():
    docs, _ = planted_corpus()
    texts = [d["text"] for d in docs]
    params = lsh_params(CFG)
    h, off = shingle_hashes_batch(texts, CFG.ngram)
    sig = params.signatures(h, off)
    keys = params.band_keys(sig)
    for i, t in enumerate(texts):
        ref = _datasketch_minhash(t).hashvalues
        assert np.array_equal(sig[i], ref), f"doc {docs[i]['id']}: signature differs from datasketch"
        assert keys[i][3].tobytes() == ref[3 * CFG.rows : 4 * CFG.rows].tobytes()


def _reference_clusters(docs, verify: bool) -> list[frozenset[str]]:
    lsh = MinHashLSH(num_perm=CFG.num_perm, params=(CFG.bands, CFG.rows))
    mins, sets = {}, {}
    for d in docs:
        h = shingle_hashes(d["text"], CFG.ngram)
        if not len(h):
            continue  # the documented rule: no words, never a candidate
        mins[d["id"]] = _datasketch_minhash(d["text"])
        sets[d["id"]] = set(h.tolist())
        lsh.insert(d["id"], mins[d["id"]])
    parent: dict[str, str] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            x = parent[x]
        return x

    for key, m in mins.items():
        for other in lsh.query(m):
            if other == key:
                continue
            if verify and len(sets[key] & sets[other]) / len(sets[key] | sets[other]) < CFG.threshold:
                continue
            ra, rb = find(key), find(other)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, set[str]] = {}
    for x in parent:
        groups.setdefault(find(x), set()).add(x)
    return sorted((frozenset(g) for g in groups.values() if len(g) > 1), key=sorted)


@pytest.mark.slow
@pytest.mark.parametrize("verify", [True, False])
def test_spark_path_matches_single_process_datasketch_lsh(spark, tmp_path, verify):
    docs, expected = planted_corpus()
    publish_docs(tmp_path / "in", "v1", docs)
    result = run_near_dedup(
        tmp_path / "in",
        tmp_path / "out",
        CFG.model_copy(update={"verify": verify}),
        run_id="ref",
        spark=spark,
    )
    ours = clusters_from_duplicates(pq.read_table(result.version_dir / "duplicates").to_pylist())
    reference = _reference_clusters(docs, verify)
    assert ours == reference
    assert len(ours) >= len(expected)  # the planted clusters are there (the test is not vacuous)
