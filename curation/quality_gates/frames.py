"""Turn what a gate validates into one frame: a Spark DataFrame (the default: `read_spark_documents` +
`spark_documents`, validated by great-expectations' Spark data source where the data lies, so no process
holds the corpus) or a pandas frame (`documents_frame`, the data read into the calling process: small
datasets, `--engine pandas`, and the reference the Spark path is checked against).

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


def documents_frame(source: str | Path | list[Path]) -> pd.DataFrame:
    """The documents' text-free projection (text replaced by `text_chars`, `text_hash` filled in) read into
    this process: the pandas gate."""
    tables = []
    for path in _data_files(source):
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


def _data_files(source: str | Path | list[Path]) -> list[Path]:
    """A version folder's data/*.parquet (the files `fingerprint` covers), or the given list of data files
    (a table snapshot's planned files, curation/tables/version.py)."""
    return list(source) if isinstance(source, list) else list(iter_parquet_files(source, "data"))


def read_spark_documents(spark, source: str | Path | list[Path]):
    """The documents (`_data_files(source)`) as a lazy Spark DataFrame, schemas merged (an incremental
    version's newer files may add columns); None when there is no data file.

    Where some files carry `text_hash` and others do not, documents_frame computes it for the latter only;
    so does this (a `_hash_missing` flag from the file name, consumed by spark_documents)."""
    from pyspark.sql import functions as F

    files = _data_files(source)
    if not files:
        return None
    df = spark.read.option("mergeSchema", "true").parquet(*map(str, files))
    lacking = [f.name for f in files if "text_hash" not in pq.read_schema(f).names]
    if "text_hash" in df.columns and lacking:
        name = F.element_at(F.split(F.input_file_name(), "/"), -1)
        df = df.withColumn("_hash_missing", name.isin(lacking))
    return df


def _text_hash_udf():
    """exact dedup's own key (NFKC, casefold, collapsed whitespace, sha1) as an Arrow-batched pandas UDF:
    the same value as documents_frame computes, on the executors, one Arrow batch in memory at a time."""
    from pyspark.sql.functions import pandas_udf

    from curation.dedup.exact import normalized_text_hash

    @pandas_udf("string")
    def text_hash(texts: pd.Series) -> pd.Series:
        return texts.map(lambda t: None if t is None else normalized_text_hash(t))

    return text_hash


def spark_documents(df):
    """documents_frame's projection of a Spark DataFrame, still a (lazy) Spark DataFrame: the text length
    (code points, as pyarrow's utf8_length) and, where the data lacks it, the text hash are computed on the
    executors, and `text` is dropped before anything is materialised. Nothing travels to the driver; the
    great-expectations Spark data source validates it where it lies."""
    from pyspark.sql import functions as F

    if "text" in df.columns:
        if "text_hash" not in df.columns:
            df = df.withColumn("text_hash", _text_hash_udf()(F.col("text")))
        elif "_hash_missing" in df.columns:
            computed = _text_hash_udf()(F.col("text"))
            df = df.withColumn(
                "text_hash", F.when(F.col("_hash_missing"), computed).otherwise(F.col("text_hash"))
            )
        df = df.withColumn("text_chars", F.length("text")).drop("text")
    return df.drop("_hash_missing")


def is_spark_frame(frame) -> bool:
    """A pyspark DataFrame (classic or Connect), recognised without importing pyspark."""
    return hasattr(frame, "sparkSession")


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
