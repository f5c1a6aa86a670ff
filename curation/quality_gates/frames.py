"""Turn what a gate validates into one pandas frame.

Document datasets: every column of data/*.parquet except `text`, which is replaced by its length
(`text_chars`, null when the text is null) so that validating a corpus does not hold its text in memory.
`text_hash` is computed (normalized, as exact dedup does) only for datasets that do not carry it.

Mixture builds: one row per (phase, source) from the build's manifest.json, with the realised-vs-target
weight error and each phase's target sum precomputed, so plain column expectations can check them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.contract import iter_parquet_files


def documents_frame(version_dir: str | Path) -> pd.DataFrame:
    tables = []
    for path in iter_parquet_files(version_dir, "data"):
        names = pq.read_schema(path).names
        table = pq.read_table(path)
        if "text" in names:
            text = table.column("text")
            if "text_hash" not in names:
                from curation.dedup.exact import normalized_text_hash

                hashes = [None if t is None else normalized_text_hash(t) for t in text.to_pylist()]
                table = table.append_column("text_hash", pa.array(hashes, pa.string()))
            table = table.append_column("text_chars", pc.utf8_length(text)).drop_columns(["text"])
        tables.append(table)
    if not tables:
        return pd.DataFrame()
    return pa.concat_tables(tables, promote_options="permissive").to_pandas()


def spark_documents_frame(df) -> pd.DataFrame:
    """The same projection from a Spark DataFrame: the text length and hash are computed on the
    executors, so only the small per-document columns travel to the driver."""
    from pyspark.sql import functions as F

    if "text" in df.columns:
        if "text_hash" not in df.columns:
            # in JVM SQL, no Python worker: lowercase + collapsed whitespace (exact dedup's key also
            # applies NFKC, which Spark SQL lacks; for a uniqueness check the difference is immaterial)
            normalized = F.trim(F.regexp_replace(F.lower(F.col("text")), r"\s+", " "))
            df = df.withColumn("text_hash", F.sha1(F.encode(normalized, "UTF-8")))
        df = df.withColumn("text_chars", F.length("text")).drop("text")
    return df.toPandas()


def mixture_frame(build_dir: str | Path) -> pd.DataFrame:
    path = Path(build_dir) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"no manifest.json in {build_dir}: not a mixture build")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON: {e}") from e
    rows = []
    for phase in manifest.get("phases") or []:
        sources = phase.get("sources") or []
        target_sum = sum(float(s.get("target_weight") or 0.0) for s in sources)
        for s in sources:
            target, realised = s.get("target_weight"), s.get("realised_weight")
            rows.append(
                {
                    "phase": phase.get("name"),
                    "source": s.get("name"),
                    "key": f"{phase.get('name')}/{s.get('name')}",
                    "documents": s.get("documents"),
                    "tokens": s.get("tokens"),
                    "target_weight": target,
                    "realised_weight": realised,
                    "weight_error": None if target is None or realised is None else abs(realised - target),
                    "phase_target_sum": target_sum,
                    "phase_tokens": phase.get("tokens"),
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "phase",
            "source",
            "key",
            "documents",
            "tokens",
            "target_weight",
            "realised_weight",
            "weight_error",
            "phase_target_sum",
            "phase_tokens",
        ],
    )


def fingerprint(dataset_dir: str | Path) -> str:
    """Names, sizes and mtimes of the files a gate read: cheap, and changes if anyone rewrites them."""
    root = Path(dataset_dir)
    h = hashlib.sha256()
    files = [root / "manifest.json", *sorted((root / "data").glob("*.parquet"))]
    for f in files:
        if f.is_file():
            st = f.stat()
            h.update(f"{f.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]
