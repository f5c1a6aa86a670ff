"""One resolver for every command that reads documents: `curation dedup --input`, `curation edu score --input`
and the sources of a training mixture.

An input is either
  * a dataset of the contract: a version folder (manifest.json) or a dataset root (its CURRENT), or
  * a version of an Iceberg table, `iceberg:<table>[@<run id | snapshot id>]` (default: its current snapshot):
    its snapshot's data files from scan planning, read as plain parquet files, `version_uri` the snapshot, or
  * plain files: parquet or JSONL (plain or .gz), as a file, a folder (searched recursively) or a glob, local
    or object storage (`s3://`, `s3a://`: listed by curation.ingest.listing, read through fsspec).
A dataset version or root on object storage (`s3://bucket/web/v1/` with manifest.json, or a root with CURRENT)
resolves to its version's data/*.parquet as plain files, with `version` / `version_uri` saying which version
(its rejects and manifest are never read as documents).

In a folder or glob, files whose name says parquet (`.parquet`, `.pq`) or JSONL (`.jsonl`, `.json`, `.ndjson`,
optionally `.gz`) are read and the others (a LICENSE, a README) are skipped and logged; a single file given by
name is sniffed when its name does not tell. A plain file needs a `text` column (parquet) or field (JSONL, its
first record): without one the command stops before any task starts with one error line naming the file and
its columns (exit 2). `id` is taken when present; a document without one gets
`sha1(<source_file>\\n<row or line number>)` on the Spark path (unique, stable across reruns of the same file,
what `curation run` always did), and `sha1(text)` in a mixture (DuckDB: rows carry no line number).

On Spark (`read_plain`), plain files go through the ingest readers (curation.ingest: damaged gzip members,
bad lines and blank texts are counted rejects), so the output version's manifest starts with an `ingest`
stage whose rows in = records read, and reconciles like any other version.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from curation.contract import Manifest, iter_parquet_files, resolve_version_dir
from curation.ingest.detect import GZIP_MAGIC, detect_format, format_from_name
from curation.ingest.files import file_name, fsspec_uri, open_input, url_to_fs
from curation.ingest.listing import fsspec_glob, list_input_files, visible
from curation.ingest.parquet import check_parquet_schema
from curation.paths import TABLE_PREFIX, is_table_reference, parse_table_reference

log = logging.getLogger(__name__)

PLAIN_FORMATS = ("parquet", "jsonl")


@dataclass(frozen=True)
class DatasetInput:
    """A resolved input: a contract version (`version_dir`) or plain files (`files`: (path, format))."""

    reference: str
    version_dir: Path | None = None
    files: tuple[tuple[str, str], ...] = ()
    #: for a dataset version on object storage (read as its plain data files): its id and URI
    version: str | None = None
    version_uri: str | None = None

    @property
    def is_plain(self) -> bool:
        return self.version_dir is None

    def manifest(self) -> Manifest | None:
        return None if self.version_dir is None else Manifest.read(self.version_dir)

    @property
    def formats(self) -> list[str]:
        return sorted({fmt for _, fmt in self.files})


def _local_dir(ref: str) -> Path | None:
    scheme = urlparse(ref).scheme
    if scheme and scheme != "file" and len(scheme) > 1:  # not a Windows drive letter either
        return None
    p = Path(urlparse(ref).path if scheme == "file" else ref)
    return p if p.is_dir() else None


def resolve_input(ref: str | Path, spark=None) -> DatasetInput:
    """Resolve `ref` (see the module doc). With `spark`, listing goes through Hadoop where the JVM serves the
    filesystem (as `curation run` lists); without, through fsspec. FileNotFoundError / ValueError say what
    is wrong, naming the input."""
    ref = str(ref)
    if is_table_reference(ref):
        return _table_version(ref)
    local = _local_dir(ref)
    if local is not None:
        if (local / "manifest.json").is_file() or (local / "CURRENT").is_file():
            version_dir = resolve_version_dir(local)
            if not any(iter_parquet_files(version_dir)):
                raise FileNotFoundError(f"input {version_dir} has no data/*.parquet")
            return DatasetInput(ref, version_dir=version_dir)
        versions = sorted(c.name for c in local.iterdir() if (c / "manifest.json").is_file())
        if versions:
            raise FileNotFoundError(
                f"{local} holds dataset versions {versions[:5]} but no CURRENT file: give a version folder"
            )
    elif (remote := _remote_dataset(ref)) is not None:
        return remote
    if spark is not None:  # a fixed format: only names here, formats below (a LICENSE must not fail sniffing)
        listed = [p for p, _ in list_input_files(spark, [ref], "parquet")]
    else:
        listed = sorted(visible(fsspec_glob(ref)))
        if not listed:
            raise FileNotFoundError(f"input {ref!r} is not a dataset version or root, and matches no file")
    files = _plain_files(ref, listed, single=len(listed) == 1 and local is None)
    # a footer / first line per file, on the driver before any task: threads, as object stores answer slowly
    with ThreadPoolExecutor(max_workers=min(16, len(files))) as pool:
        list(pool.map(lambda pf: check_plain_schema(*pf), files))
    log.info("input %s: %d plain file(s) (%s)", ref, len(files), ", ".join(sorted({f for _, f in files})))
    return DatasetInput(ref, files=tuple(files))


def _table_version(ref: str) -> DatasetInput:
    """A version of an Iceberg table (`iceberg:<table>[@<run id | snapshot id>]`, the configured catalog): its
    snapshot's data files from scan planning (a remote warehouse's copied once into the local cache), as plain
    parquet files, pinned: `version_uri` names the snapshot read."""
    from curation.tables.catalog import Warehouse
    from curation.tables.compact import described_snapshot
    from curation.tables.read import local_version_files
    from curation.tables.summary import RUN_ID

    name, at = parse_table_reference(ref)
    table = Warehouse().table(name)
    sid, files = local_version_files(table, at)
    if not files:
        raise FileNotFoundError(f"input {ref!r}: snapshot {sid} of table {name} has no data files")
    # a compaction holds its run's rows: that run is the version read
    run_id = described_snapshot(table, table.metadata.snapshot_by_id(sid)).summary.get(RUN_ID)
    log.info(
        "input %s: table %s snapshot %s (run %s), %d parquet file(s)", ref, name, sid, run_id, len(files)
    )
    return DatasetInput(
        ref,
        files=tuple((str(f), "parquet") for f in files),
        version=run_id or str(sid),
        version_uri=f"{TABLE_PREFIX}{name}@{sid}",
    )


def _remote_dataset(ref: str) -> DatasetInput | None:
    """A contract dataset on object storage (see the module doc), or None when `ref` is not one."""
    if "://" not in ref or any(c in ref for c in "*?["):
        return None
    try:
        fs, path = url_to_fs(fsspec_uri(ref))
    except (ImportError, ValueError, OSError):  # e.g. hdfs:// without its client: left to the listing
        return None
    fs.invalidate_cache()
    path = path.rstrip("/")
    try:
        if not fs.isfile(f"{path}/manifest.json"):
            if not fs.isfile(f"{path}/CURRENT"):
                return None
            current = fs.cat_file(f"{path}/CURRENT").decode().strip()
            path = f"{path}/{current}"
            if not fs.isfile(f"{path}/manifest.json"):
                raise FileNotFoundError(
                    f"input {ref!r}: CURRENT names {current!r}, which has no manifest.json"
                )
    except FileNotFoundError:
        raise
    except Exception as e:  # credentials, permissions, endpoint (botocore's errors are not OSErrors)
        raise OSError(f"cannot read input {ref!r}: {type(e).__name__}: {e}") from e
    scheme = urlparse(ref).scheme
    files = [f"{scheme}://{p}" for p in sorted(fs.glob(f"{path}/data/*.parquet"))]
    if not files:
        raise FileNotFoundError(f"input {scheme}://{path} has no data/*.parquet")
    version_uri = f"{scheme}://{path}"
    log.info("input %s: dataset version %s, %d parquet file(s)", ref, version_uri, len(files))
    return DatasetInput(
        ref,
        files=tuple((f, "parquet") for f in files),
        version=path.rsplit("/", 1)[-1],
        version_uri=version_uri,
    )


def _plain_files(ref: str, listed: list[str], single: bool) -> list[tuple[str, str]]:
    """(path, format) of the listed files that are parquet/JSONL; a single named file may be sniffed."""
    if single:
        fmt = format_from_name(listed[0]) or detect_format(listed[0])
        if fmt not in PLAIN_FORMATS:
            raise ValueError(
                f"input {listed[0]!r} is {fmt}: this command reads parquet or JSONL (crawl files go through"
                f" `python -m curation run`)"
            )
        return [(listed[0], fmt)]
    files = [(p, format_from_name(p)) for p in listed]
    kept = [(p, f) for p, f in files if f in PLAIN_FORMATS]
    skipped = [file_name(p) for p, f in files if f not in PLAIN_FORMATS]
    if skipped:
        log.info(
            "input %s: skipped %d file(s) that are not parquet/JSONL: %s", ref, len(skipped), skipped[:5]
        )
    if not kept:
        raise FileNotFoundError(
            f"input {ref!r}: none of its {len(files)} file(s) is parquet (.parquet) or JSONL"
            f" (.jsonl, .json, .ndjson, optionally .gz); skipped {skipped[:5]}"
        )
    return kept


def check_plain_schema(path: str, fmt: str) -> None:
    """A plain file must have `text`: parquet from its footer, JSONL from its first record. ValueError names
    the file and what it has. What cannot be read here (a damaged footer or first gzip member, a first line
    that is not JSON) is left to the ingest reader, where it is a counted reject."""
    if fmt == "parquet":
        check_parquet_schema(path)
        return
    first = _first_record(path)
    if isinstance(first, dict) and "text" not in first:
        raise ValueError(f"JSONL input {path!r} has no 'text' field (first record's fields: {sorted(first)})")


def _first_record(path: str, max_lines: int = 100) -> object | None:
    with open_input(path) as raw:
        head = raw.read(2)
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if head == GZIP_MAGIC else raw
        try:
            for _ in range(max_lines):
                line = stream.readline(1 << 26)
                if not line:
                    return None
                if line.strip():
                    return json.loads(line)
        except (OSError, EOFError, zlib.error, ValueError, io.UnsupportedOperation):
            return None
    return None
