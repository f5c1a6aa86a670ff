"""Datasets as Apache Iceberg tables (pyiceberg): catalog, one-snapshot commits per run id, versioned reads,
maintenance and the import of folder-contract dataset roots. See curation/tables/catalog.py for
configuration."""

from curation.tables.catalog import TablesConfig, Warehouse
from curation.tables.commit import (
    Committed,
    commit_version,
    data_location,
    evolve_schema,
    snapshot_for_run,
    written_files,
)
from curation.tables.maintenance import expire_versions, remove_orphan_files
from curation.tables.read import data_files, read_arrow, rollback, snapshot_id, versions

__all__ = [
    "Committed",
    "TablesConfig",
    "Warehouse",
    "commit_version",
    "data_files",
    "data_location",
    "evolve_schema",
    "expire_versions",
    "read_arrow",
    "remove_orphan_files",
    "rollback",
    "snapshot_for_run",
    "snapshot_id",
    "versions",
    "written_files",
]
