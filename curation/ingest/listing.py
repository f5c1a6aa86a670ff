"""Listing a job's input files: Hadoop where the JVM has the filesystem, fsspec for the rest.

The curation job and nightly segment discovery (dags/lib/ledger.py) list through here, so an `s3://` or
`s3a://` glob means the same in both, and a glob that matches nothing is an error, never an empty run.
Only file names reach the driver.
"""

from __future__ import annotations

from urllib.parse import urlparse

from curation.ingest.detect import detect_format
from curation.ingest.files import fsspec_uri, url_to_fs


def _hadoop_serves(spark, uri: str, cache: dict[str, bool]) -> bool:
    """True when the JVM has a Hadoop FileSystem class for the URI's scheme (a plain path: the default FS).

    file: and hdfs: always; s3a: only with the hadoop-aws jar on the classpath (the pip pyspark has none)."""
    scheme = urlparse(uri).scheme.lower()
    if not scheme:  # a plain path: Hadoop's default filesystem
        return True
    if scheme not in cache:
        from py4j.protocol import Py4JJavaError

        jfs = spark.sparkContext._jvm.org.apache.hadoop.fs.FileSystem
        try:  # UnsupportedFileSystemException, or a ClassNotFoundException for a configured but absent class
            jfs.getFileSystemClass(scheme, spark.sparkContext._jsc.hadoopConfiguration())
            cache[scheme] = True
        except Py4JJavaError:
            cache[scheme] = False
    return cache[scheme]


def _hadoop_glob(spark, g: str) -> list[str]:
    jvm = spark.sparkContext._jvm
    jpath = jvm.org.apache.hadoop.fs.Path(g)
    fs = jpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    matched = []
    for st in fs.globStatus(jpath) or []:
        if st.isDirectory():
            it = fs.listFiles(st.getPath(), True)
            while it.hasNext():
                matched.append(it.next().getPath().toString())
        else:
            matched.append(st.getPath().toString())
    return matched


def visible(paths: list[str]) -> list[str]:
    """Drop hidden files and run folders (`.name`, `_name`: Spark's _SUCCESS, staging, our _ledger...)."""
    return [p for p in paths if not p.rstrip("/").rsplit("/", 1)[-1].startswith((".", "_"))]


def fsspec_glob(g: str) -> list[str]:
    """Expand a glob with fsspec (s3fs reads the standard AWS credentials and AWS_ENDPOINT_URL[_S3]);
    results keep the scheme as given (`s3a://` stays `s3a://`, so `source_file` says what the user wrote)."""

    try:
        fs, path = url_to_fs(fsspec_uri(g))
    except (ImportError, ValueError) as e:  # unknown protocol, or its fsspec package is not installed
        raise ValueError(f"cannot list input {g!r}: neither Hadoop nor fsspec can read it ({e})") from e
    fs.invalidate_cache()  # a long-lived process (dag.test, notebooks) must see objects added since last time
    try:
        found = fs.glob(path, detail=True)
        matched = []
        for p, info in sorted(found.items()):
            matched.extend(fs.find(p) if info.get("type") == "directory" else [p])
    except FileNotFoundError:  # e.g. a bucket that does not exist: the same "matches no file" below
        return []
    except Exception as e:  # credentials, permissions, endpoint (botocore's errors are not OSErrors)
        raise OSError(f"cannot list input {g!r}: {type(e).__name__}: {e}") from e
    scheme = urlparse(g).scheme
    return [f"{scheme}://{p}" if scheme else p for p in matched]


def list_input_files(spark, globs: list[str], fmt: str) -> list[tuple[str, str]]:
    """Expand each glob; fail naming any glob that matches nothing. Only file names reach the driver.

    Hadoop's filesystem layer lists what the JVM can serve (local paths, file:, hdfs:, s3a: with hadoop-aws
    on the classpath); anything else (s3://, s3a:// without the jar, gs://, ...) is listed with fsspec,
    which the workers read every file through anyway."""
    files: list[tuple[str, str]] = []
    served: dict[str, bool] = {}
    for g in globs:
        matched = _hadoop_glob(spark, g) if _hadoop_serves(spark, g, served) else fsspec_glob(g)
        matched = visible(matched)
        if not matched:
            raise FileNotFoundError(f"input {g!r} matches no file")
        for m in sorted(matched):
            files.append((m, detect_format(m) if fmt == "auto" else fmt))
    return files
