"""Where a source's documents come from: resolve a dataset reference to parquet files, read them through
DuckDB with the source's filter, and fingerprint their content.

A dataset reference is one of
  * a dataset root (has CURRENT) or version folder (has manifest.json) of the project's contract,
  * plain files: parquet or JSONL (.jsonl/.json/.ndjson, optionally .gz), as a file, a folder or a glob,
    resolved by curation.ingest.inputs like `curation dedup --input` (a JSONL without `id` gets `sha1(text)`
    as its id, identical texts share it and so land on the same side of the held-out split),
  * any of the above on object storage (`s3://`, `s3a://`, also as a registry root): resolved by the same
    curation.ingest.inputs.resolve_input (a dataset version or root there resolves to its data files and its
    version id), read by DuckDB through fsspec with the environment's S3 endpoint
    (curation.ingest.files.url_to_fs). The build records the resolved files and the version id, so a rebuild
    reads the same objects,
  * a name in the dataset registry (a YAML file `datasets: {name: root}`), optionally with `version`.
    Registry roots may name environment variables, `${PHI_DATA_ROOT}` or `${PHI_DATA_ROOT:-fallback}`, so one
    registry serves every deployment (the DAGs publish under `$PHI_DATA_ROOT`),
  * `iceberg:<table>`, an Iceberg table of the configured catalog, with `version` a run id or snapshot id
    (default: the current snapshot): the source reads exactly that snapshot's data files, so nights appended
    later do not change it (time travel; the resolved snapshot id is what the build records as the version).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import xxhash
import yaml

from curation.contract import DatasetRoot, iter_parquet_files, resolve_version_dir
from curation.ingest.files import file_name, fsspec_uri, open_input, url_to_fs
from curation.paths import TABLE_PREFIX, expand_env

log = logging.getLogger(__name__)

TEXT_COLUMN = "text"
ID_COLUMN = "id"
#: Optional per-document columns carried into the build's documents.parquet for the SQL reports.
CARRIED_COLUMNS = {"url": pa.string(), "edu_score": pa.float64()}


@dataclass
class ResolvedSource:
    reference: str  # as written in the YAML
    files: list[str]  # local paths or object-storage URIs, in reading order
    version_dir: Path | None  # set for local contract datasets
    version: str | None
    columns: dict[str, str] = field(default_factory=dict)  # name -> DuckDB type
    fmt: str = "parquet"  # parquet | jsonl (plain JSONL files)
    documents: int | None = None  # after the filter, once validation counted them
    version_uri: str | None = None  # a dataset version on object storage

    @property
    def label(self) -> str:
        return str(self.version_dir) if self.version_dir else self.version_uri or self.reference


def load_registry(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    if not path.is_file():
        raise FileNotFoundError(f"dataset registry {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    entries = data.get("datasets") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise ValueError(f"dataset registry {path}: expected a mapping `datasets: {{name: path}}`")  # noqa: TRY004 - a bad file, not a bad argument
    # Relative roots are relative to the registry file, so the registry can travel with its data.
    roots = {str(k): expand_env(str(v), f"dataset registry {path}, entry {k!r}") for k, v in entries.items()}
    return {
        k: v if "://" in v or Path(v).is_absolute() else str((path.parent / v).resolve())
        for k, v in roots.items()
    }


def _looks_like_path(ref: str) -> bool:
    plain = (".parquet", ".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson")
    return "/" in ref or ref.endswith(plain) or any(c in ref for c in "*?[") or ref.startswith(".")


def resolve(ref: str, version: str | None, registry: dict[str, str], base_dir: Path) -> ResolvedSource:
    """Resolve a dataset reference to its parquet files; FileNotFoundError/ValueError say what is wrong."""
    if ref.startswith(TABLE_PREFIX):
        from curation.tables.read import table_version_files  # pyiceberg only for table sources

        sid, files = table_version_files(ref, version)
        if not files:
            raise FileNotFoundError(f"dataset {ref!r}: snapshot {sid} has no data files")
        return ResolvedSource(ref, [str(f) for f in files], None, str(sid))
    if "://" in ref:
        return _remote(ref, version)
    if not _looks_like_path(ref):
        if ref not in registry:
            known = ", ".join(sorted(registry)) or "none (no registry given)"
            raise FileNotFoundError(
                f"dataset {ref!r} is not a path and not a registered dataset (registered: {known})"
            )
        if "://" in registry[ref]:  # a registered root on object storage
            return _remote(registry[ref], version, ref)
        path = Path(registry[ref])
    else:
        path = Path(ref) if Path(ref).is_absolute() else base_dir / ref
    if path.is_file() or any(c in str(path) for c in "*?["):
        if version:
            raise ValueError(f"`version` given for {ref!r}; versions apply to dataset roots only")
        return _plain(ref, path)
    if (
        version is None
        and path.is_dir()
        and not any((path / m).is_file() for m in ("manifest.json", "CURRENT"))
    ):
        return _plain(ref, path)
    if not path.exists():
        raise FileNotFoundError(f"dataset {ref!r}: {path} does not exist")
    if version is not None:
        vdir = DatasetRoot(path).version_dir(version)
        if not (vdir / "manifest.json").is_file():
            have = ", ".join(DatasetRoot(path).versions()) or "none"
            raise FileNotFoundError(
                f"dataset {ref!r} has no published version {version!r} (versions: {have})"
            )
    else:
        vdir = resolve_version_dir(path)
    files = [str(f) for f in iter_parquet_files(vdir)]
    if not files:
        raise FileNotFoundError(f"dataset {ref!r}: version {vdir} has no data/*.parquet")
    return ResolvedSource(ref, files, vdir, vdir.name)


def _plain(ref: str, path: Path) -> ResolvedSource:
    """Plain parquet / JSONL files (a file, folder or glob) through the resolver the curation commands use;
    one format per source (DuckDB reads parquet and JSONL differently)."""
    from curation.ingest.inputs import resolve_input

    try:
        found = resolve_input(str(path))
    except FileNotFoundError as e:
        raise FileNotFoundError(f"dataset {ref!r}: {e}") from None
    if len(found.formats) > 1:
        raise ValueError(f"dataset {ref!r} mixes parquet and JSONL files: give one source per format")
    return ResolvedSource(ref, [p for p, _ in found.files], None, None, fmt=found.formats[0])


def _remote(uri: str, version: str | None, ref: str | None = None) -> ResolvedSource:
    """A source on object storage (`ref`: as the YAML names it, when a registry entry points there). With
    `version`, `uri` is a dataset root and the source is that version."""
    from curation.ingest.inputs import resolve_input

    ref = ref or uri
    if version is not None:
        if any(c in uri for c in "*?["):
            raise ValueError(f"`version` given for {ref!r}; versions apply to dataset roots only")
        uri = f"{uri.rstrip('/')}/{version}"
    no_version = f"dataset {ref!r} has no published version {version!r} (no {uri}/manifest.json)"
    try:
        found = resolve_input(uri)
    except FileNotFoundError as e:
        raise FileNotFoundError(no_version if version else f"dataset {ref!r}: {e}") from None
    if version is not None and found.version != version:  # a plain object or folder named like a version
        raise FileNotFoundError(no_version)
    if len(found.formats) > 1:
        raise ValueError(f"dataset {ref!r} mixes parquet and JSONL files: give one source per format")
    files = [p for p, _ in found.files]
    return ResolvedSource(
        ref, files, None, found.version, fmt=found.formats[0], version_uri=found.version_uri
    )


def connect(threads: int = 1) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    # Insertion order is what makes a source's document order (and so every shuffle) reproducible.
    con.execute(f"SET threads = {int(threads)}; SET preserve_insertion_order = true")
    return con


def relation(con: duckdb.DuckDBPyConnection, src: ResolvedSource) -> duckdb.DuckDBPyRelation:
    """The source's rows; plain files without an `id` get `sha1(text)` (see the module doc)."""
    names = [_duckdb_name(con, f) for f in src.files]
    if src.fmt == "jsonl":
        rel = con.read_json(names, format="newline_delimited")
    else:
        rel = con.read_parquet(names, union_by_name=True)
    if src.version_dir is None and ID_COLUMN not in rel.columns and TEXT_COLUMN in rel.columns:
        rel = rel.project(f"sha1({TEXT_COLUMN}) AS {ID_COLUMN}, *")
    return rel


def _duckdb_name(con: duckdb.DuckDBPyConnection, path: str) -> str:
    """The name DuckDB reads `path` by: object-storage URIs through the fsspec filesystem of the environment
    (registered on the connection once per protocol; `s3a://` is read as `s3://`)."""
    if "://" not in path:
        return path
    uri = fsspec_uri(path)
    fs, _ = url_to_fs(uri)
    protocol = uri.split("://", 1)[0]
    if not con.filesystem_is_registered(protocol):
        con.register_filesystem(fs)
    return uri


def describe(con: duckdb.DuckDBPyConnection, src: ResolvedSource) -> None:
    rel = relation(con, src)
    src.columns = dict(zip(rel.columns, (str(t) for t in rel.types)))


def filtered(
    con: duckdb.DuckDBPyConnection, src: ResolvedSource, where: str | None
) -> duckdb.DuckDBPyRelation:
    """The source's documents after its filter. `filter()` parses `where` as ONE expression, so a filter
    cannot smuggle in a second statement or close the parenthesis."""
    rel = relation(con, src)
    return rel.filter(where) if where else rel


def select_columns(src: ResolvedSource) -> list[str]:
    cols = [ID_COLUMN, TEXT_COLUMN]
    cols += [c for c in CARRIED_COLUMNS if c in src.columns]
    return cols


def content_hash(src: ResolvedSource, where: str | None) -> str:
    """Hash of the input files' bytes (in order) and the filter: equal hashes mean equal selected
    documents."""
    h = xxhash.xxh3_128()
    h.update(f"filter={where or ''}\n".encode())
    for f in src.files:
        h.update(f"{file_name(f)}\n".encode())
        with open_input(f) as fh:
            while chunk := fh.read(1 << 22):
                h.update(chunk)
    return h.hexdigest()
