"""A planted control for ablations: a dataset whose documents are another's with the words of each document
shuffled (same ids, same words, so about the same tokens; no language). An arm trained on it must rank last
beyond the seed noise, or the ablation cannot tell data apart."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curation.contract import DatasetRoot, Manifest, code_version, config_hash, now_iso
from training.mixture import sources as S


def shuffle_words(text: str, rng: np.random.Generator) -> str:
    words = text.split()
    return " ".join(words[i] for i in rng.permutation(len(words)))


def shuffled_dataset(reference: str, dest, seed: int = 0, version: str = "v1") -> str:
    """Publish `reference` (any dataset a mixture can name) with shuffled words as a contract dataset at
    dest."""
    from pathlib import Path

    res = S.resolve(reference, None, {}, Path.cwd())
    table = S.relation(S.connect(), res).to_arrow_table()  # as a mixture reads it: JSONL and S3 too
    rng = np.random.default_rng(seed)
    texts = [None if t is None else shuffle_words(t, rng) for t in table.column(S.TEXT_COLUMN).to_pylist()]
    table = table.set_column(
        table.schema.get_field_index(S.TEXT_COLUMN), S.TEXT_COLUMN, pa.array(texts, pa.string())
    )
    # a study's control corpus, not a dataset of the pipeline: no table (every study names its copy
    # `shuffled` v1, so the folder-named default table would mix the studies' copies under one run id)
    dr = DatasetRoot(dest, table=False)
    staging = dr.staging_dir(version)
    (staging / "data").mkdir()
    pq.write_table(table, staging / "data" / "part-00000.parquet")
    config = {"shuffled_from": res.label, "seed": seed}
    Manifest(
        dataset="shuffled_words",
        version=version,
        created_at=now_iso(),
        code_version=code_version(),
        inputs=[res.label],
        config=config,
        config_hash=config_hash(config),
        rows=table.num_rows,
        columns=table.column_names,
    ).write(staging)
    return str(dr.publish(staging, version))
