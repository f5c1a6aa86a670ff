"""The Iceberg catalog: where tables are registered (a SQL database) and where their files live (the
warehouse).

Embedded default: pyiceberg's SqlCatalog on a SQLite file inside a local warehouse folder (no server). The
real stack points `catalog_uri` at PostgreSQL and the warehouse at `s3://bucket/prefix` (MinIO in compose,
moto's server in tests). Configuration comes from a `TablesConfig` or from the environment:

    PHI_ICEBERG_WAREHOUSE    local folder or s3://bucket/prefix   (default: <repo>/out/warehouse)
    PHI_ICEBERG_CATALOG_URI  SQLAlchemy URL                      (default: sqlite:///<warehouse>/catalog.db,
                                                                  required when the warehouse is not local)
    PHI_ICEBERG_NAMESPACE    namespace the tables live in        (default: phi)

S3 credentials and endpoint are the standard AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_DEFAULT_REGION, AWS_ENDPOINT_URL), the ones the ingest already reads, passed to pyiceberg's FileIO.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, field_validator

from curation.paths import REPO_ROOT

log = logging.getLogger(__name__)

#: Our commit loop owns retries (it re-checks the run id after every conflict), so pyiceberg's own
#: rebase-and-retry inside commit_transaction is turned off on the tables we create.
TABLE_PROPERTIES = {"commit.retry.num-retries": "0", "format-version": "2"}


class TablesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    warehouse: str
    catalog_uri: str | None = None
    namespace: str = "phi"
    catalog_name: str = "phi"

    @field_validator("warehouse")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if is_remote(v):
            return v.rstrip("/")
        return str(Path(v.removeprefix("file://")).resolve())

    @classmethod
    def from_env(cls, **overrides: Any) -> TablesConfig:
        """The configuration the environment describes; explicit (non-None) `overrides` win."""
        env = {
            "warehouse": os.environ.get("PHI_ICEBERG_WAREHOUSE") or str(REPO_ROOT / "out" / "warehouse"),
            "catalog_uri": os.environ.get("PHI_ICEBERG_CATALOG_URI") or None,
            "namespace": os.environ.get("PHI_ICEBERG_NAMESPACE") or "phi",
        }
        env.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**env)

    def resolved_catalog_uri(self) -> str:
        if self.catalog_uri:
            return self.catalog_uri
        if is_remote(self.warehouse):
            raise ValueError(
                f"warehouse {self.warehouse!r} is not a local folder: set catalog_uri"
                " (PHI_ICEBERG_CATALOG_URI, e.g. postgresql+psycopg2://user@host/db) to say where"
                " the catalog database lives"
            )
        return f"sqlite:///{self.warehouse}/catalog.db"

    def warehouse_uri(self) -> str:
        return self.warehouse if is_remote(self.warehouse) else f"file://{self.warehouse}"


def is_remote(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def s3_properties() -> dict[str, str]:
    """pyiceberg FileIO properties from the standard AWS variables (only those that are set)."""
    names = {
        "s3.access-key-id": "AWS_ACCESS_KEY_ID",
        "s3.secret-access-key": "AWS_SECRET_ACCESS_KEY",
        "s3.region": "AWS_DEFAULT_REGION",
        "s3.endpoint": "AWS_ENDPOINT_URL",
    }
    props = {k: os.environ[v] for k, v in names.items() if os.environ.get(v)}
    if os.environ.get("AWS_ENDPOINT_URL_S3"):
        props["s3.endpoint"] = os.environ["AWS_ENDPOINT_URL_S3"]
    return props


class TableNotFound(LookupError, ValueError):
    """A table or version that is not there (a ValueError too, so the CLI prints it as a user error)."""


class Warehouse:
    """A catalog plus the namespace our tables live in: `Warehouse.open()` then `.table(name)` /
    `.ensure(...)`."""

    def __init__(self, config: TablesConfig | None = None):
        from pyiceberg.catalog.sql import SqlCatalog

        self.config = config or TablesConfig.from_env()
        if not is_remote(self.config.warehouse):
            Path(self.config.warehouse).mkdir(parents=True, exist_ok=True)
        self.catalog = SqlCatalog(
            self.config.catalog_name,
            uri=self.config.resolved_catalog_uri(),
            warehouse=self.config.warehouse_uri(),
            **s3_properties(),
        )
        self.catalog.create_namespace_if_not_exists(self.config.namespace)

    def identifier(self, name: str) -> str:
        """A bare table name lives in the configured namespace; `ns.name` is kept as given."""
        return name if "." in name else f"{self.config.namespace}.{name}"

    def exists(self, name: str) -> bool:
        return self.catalog.table_exists(self.identifier(name))

    def table(self, name: str):
        """The table `name`, with an error naming the catalog and the tables it does hold when it is
        missing."""
        from pyiceberg.exceptions import NoSuchTableError

        ident = self.identifier(name)
        try:
            return self.catalog.load_table(ident)
        except NoSuchTableError:
            ns = ident.rsplit(".", 1)[0]
            held = sorted(".".join(t) for t in self.catalog.list_tables(ns))
            raise TableNotFound(
                f"no Iceberg table {ident!r} in catalog {self.config.resolved_catalog_uri()!r}"
                f" (warehouse {self.config.warehouse}); it holds {held}"
            ) from None

    def ensure(self, name: str, schema: pa.Schema, writer: str | None = None, takes_over: str | None = None):
        """Load table `name`, creating it from the Arrow `schema` (e.g. a Spark-written parquet file's) if
        missing. `writer` claims the table for one writer (`claim_writer`) before anything is written."""
        from pyiceberg.exceptions import TableAlreadyExistsError

        ident = self.identifier(name)
        if self.catalog.table_exists(ident):
            table = self.catalog.load_table(ident)
        else:
            try:
                table = self.catalog.create_table(ident, schema=schema, properties=TABLE_PROPERTIES)
            except TableAlreadyExistsError:  # another writer created it between our check and our create
                table = self.catalog.load_table(ident)
        if writer is not None:
            claim_writer(table, writer, takes_over)
        return table


#: Table property naming the one writer of a table's versions (`claim_writer`).
WRITER_PROPERTY = "phi.writer"
#: How a dataset root's publishes and imports name themselves as writers (`migrate.root_writer`).
ROOT_WRITER = "dataset root "


class TableOwned(ValueError):
    """A table is written by another writer than the one asking."""


def claim_writer(table, writer: str, takes_over: str | None = None) -> None:
    """One writer per table: the first one to write records itself (`phi.writer`); any other is refused,
    except that a writer may take over from one whose name starts with `takes_over`, for good (table-native
    nights continue a corpus a dataset root published or imported; that root can then no longer publish).

    Two writers of one table lose data: a dataset root's publish (`DatasetRoot.make_current`) makes each
    version the table's content and would drop a night `curation append --table` appended in between; two
    dataset roots of the same folder name would overwrite each other's versions. Writers are "dataset root
    <absolute path>", "curation append" (table-native nights, staged or not; takes over from a dataset root)
    and "near-dedup band index"."""
    held = table.properties.get(WRITER_PROPERTY)
    if held == writer:
        return
    if held is not None and takes_over and held.startswith(takes_over):
        log.warning(
            "table %s: %r takes over from %r, which can no longer write it", table.name(), writer, held
        )
    elif held is not None:
        raise TableOwned(
            f"table {'.'.join(table.name())} is written by {held!r}; {writer!r} must not write it too"
            f" (one writer per table: give this one another table name, e.g. --table or another root folder"
            f" name)"
        )
    with table.transaction() as tx:
        tx.set_properties({WRITER_PROPERTY: writer})
