"""Builds small published dataset versions from the real Dolma sample for the gate and report tests.

The real curation job (curation/pipeline.py) is the producer in production; these tests need versions
now, independent of the other stages, so this does a minimal, honest curation in pandas: fasttext
language id (the embedded lid.176.ftz), normalized text hash, exact dedup and a language filter, with
every dropped row written to rejects/ and the per-stage counts in a checked manifest.
"""

from __future__ import annotations

import ast
import gzip
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from curation.contract import (
    DOC_COLUMNS,
    DOC_FIELDS,
    DatasetRoot,
    Manifest,
    StageCounts,
    code_version,
    config_hash,
    now_iso,
)
from curation.dedup.exact import normalized_text_hash

DOLMA = "webtext_cc2019_dolma_sample/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


def dolma_documents(shared_data: Path, limit: int | None = None) -> pd.DataFrame:
    path = shared_data / DOLMA
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            meta = rec.get("metadata") or {}
            if isinstance(meta, str):  # some Dolma shards store it as a Python-dict string
                meta = ast.literal_eval(meta)
            rows.append(
                {
                    "id": rec["id"],
                    "text": rec["text"],
                    "url": meta.get("warc_url") or meta.get("url"),
                    "title": None,
                    "date": meta.get("warc_date"),
                    "crawl_id": "CC-MAIN-2019-30",
                    "source_format": "jsonl",
                    "source_file": str(path),
                }
            )
            if limit and len(rows) >= limit:
                break
    return pd.DataFrame(rows)


def _langid(texts: list[str], models: Path) -> tuple[list[str], list[float]]:
    import fasttext

    model = fasttext.load_model(str(models / "lid.176.ftz"))
    labels, probs = model.predict([t.replace("\n", " ") for t in texts], k=1)
    return [lab[0].removeprefix("__label__") for lab in labels], [min(1.0, float(p[0])) for p in probs]


def build_version(
    shared_data: Path,
    models: Path,
    root: Path,
    version: str = "v1",
    limit: int | None = 300,
    languages: tuple[str, ...] = ("en",),
) -> Path:
    """Publish `root/<version>` from the Dolma sample; returns the version folder."""
    docs = dolma_documents(shared_data, limit)
    docs["lang"], docs["lang_score"] = _langid(docs["text"].tolist(), models)
    docs["text_hash"] = [normalized_text_hash(t) for t in docs["text"]]
    stages, rejects = [], []

    def drop(stage: str, mask: pd.Series, reason: str) -> None:
        nonlocal docs
        dropped = docs[mask].assign(reject_stage=stage, reject_reason=reason)
        stages.append(
            StageCounts(
                stage=stage,
                rows_in=len(docs),
                rows_kept=int((~mask).sum()),
                rows_rejected=int(mask.sum()),
                reasons={reason: int(mask.sum())} if mask.any() else {},
            )
        )
        rejects.append(dropped)
        docs = docs[~mask]

    drop("quality", docs["text"].str.strip() == "", "empty_text")
    drop("langid", ~docs["lang"].isin(languages), "language_not_allowed")
    drop("exact_dedup", docs.duplicated("text_hash"), "exact_duplicate")
    data_cols = [*DOC_COLUMNS, "text_hash"]
    schema = pa.schema([*DOC_FIELDS, pa.field("text_hash", pa.string())])
    dataset = DatasetRoot(root)
    staging = dataset.staging_dir(version)
    (staging / "data").mkdir()
    (staging / "rejects").mkdir()
    pq.write_table(
        pa.Table.from_pandas(docs[data_cols], schema=schema, preserve_index=False),
        staging / "data" / "part-00000.parquet",
    )
    rej = pd.concat(rejects)
    rej_schema = pa.schema(
        [*schema, pa.field("reject_stage", pa.string()), pa.field("reject_reason", pa.string())]
    )
    pq.write_table(
        pa.Table.from_pandas(
            rej[[*data_cols, "reject_stage", "reject_reason"]], schema=rej_schema, preserve_index=False
        ),
        staging / "rejects" / "part-00000.parquet",
    )
    config = {"langid": {"languages": list(languages)}}
    manifest = Manifest(
        dataset="web_curated",
        version=version,
        created_at=now_iso(),
        code_version=code_version(),
        inputs=[str(shared_data / DOLMA)],
        config=config,
        config_hash=config_hash(config),
        stages=stages,
        rows=len(docs),
        rejected_rows=len(rej),
        columns=data_cols,
    )
    manifest.check()
    manifest.write(staging)
    return dataset.publish(staging, version)


def rewrite_data(version_dir: Path, edit) -> None:
    """Apply `edit(frame) -> frame` to a version's data (to inject a defect), keeping the manifest."""
    path = version_dir / "data" / "part-00000.parquet"
    table = pq.read_table(path)
    frame = edit(table.to_pandas())
    schema = table.schema if list(frame.columns) == table.schema.names else None  # keep types unless dropped
    pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), path)
