"""A dataset version as its readers (the quality gate, the run report) see it, whether it is a version
folder of the contract or a table version `iceberg:<table>[@<run id | snapshot id>]`
(curation/tables/version.py): its manifest, its data and reject files, what to call it, and where what is
written about it goes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from curation.contract import Manifest, iter_parquet_files, resolve_version_dir
from curation.paths import is_table_reference


@dataclass(frozen=True)
class VersionView:
    manifest: Manifest
    data_files: list[Path]
    reject_files: list[Path]
    label: str  # the folder, or iceberg:<table>@<snapshot>
    folder: Path | None  # the version folder; None for a table version (a snapshot: nothing to rewrite)
    evidence_dir: Path  # <evidence_dir>/quality (gate verdict, Data Docs), <evidence_dir>/report

    @property
    def quality_dir(self) -> Path:
        return self.evidence_dir / "quality"


def open_dataset_version(dataset: str | Path) -> VersionView:
    """A version folder, a dataset root (its CURRENT version), or a table version reference."""
    if is_table_reference(dataset):
        from curation.tables.version import open_version

        tv = open_version(str(dataset))
        return VersionView(tv.manifest, tv.files, tv.reject_files, tv.label, None, tv.evidence_dir)
    vdir = resolve_version_dir(dataset)
    return VersionView(
        Manifest.read(vdir),
        list(iter_parquet_files(vdir, "data")),
        list(iter_parquet_files(vdir, "rejects")),
        str(vdir),
        vdir,
        vdir,
    )


def pin_dataset_version(dataset: str | Path) -> str:
    """The version a run reads, named so that it cannot move under it: a dataset root -> its CURRENT version
    folder; `iceberg:<table>[@ref]` -> `iceberg:<table>@<snapshot id>` (the current snapshot by default).
    FileNotFoundError / TableNotFound when there is none yet."""
    if is_table_reference(dataset):
        from curation.paths import TABLE_PREFIX, parse_table_reference
        from curation.tables.catalog import TableNotFound, Warehouse
        from curation.tables.read import snapshot_id

        name, at = parse_table_reference(str(dataset))
        sid = snapshot_id(Warehouse().table(name), at)
        if sid is None:
            raise TableNotFound(f"{dataset}: table {name} has no snapshot yet")
        return f"{TABLE_PREFIX}{name}@{sid}"
    return str(resolve_version_dir(dataset))
