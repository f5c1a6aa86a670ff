"""The dataset contract shared by every stage: document schema, rejects schema, run ids, the
versioned folder layout and the manifest.

Layout of a dataset root (what `--output DIR` names):

    DIR/
      CURRENT                 <- text file holding the published version id
      <version>/              <- one folder per run id, immutable once published
        data/*.parquet        <- kept documents (DOC_COLUMNS first, stage-specific columns after)
        rejects/*.parquet     <- every dropped document with `reject_stage` / `reject_reason`
        manifest.json         <- written last: its presence marks the version as complete

A version folder is built under a hidden staging name and renamed into place, so readers never see a
half-written version and a rerun of the same run id replaces the old folder instead of adding to it.
With a table catalog configured, a version that goes live is also a snapshot of the root's Iceberg table,
committed before CURRENT moves (`DatasetRoot.make_current`, curation/tables/publish.py).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

# the folder primitives live in contract_files, the manifest in contract_manifest; imported here (and
# re-exported: `x as x`) so every caller keeps importing them from curation.contract
from curation.contract_files import link_or_copy as link_or_copy
from curation.contract_files import replace_dir as replace_dir
from curation.contract_manifest import Manifest as Manifest
from curation.contract_manifest import StageCounts as StageCounts
from curation.contract_manifest import current_version, published_versions
from curation.contract_manifest import iter_parquet_files as iter_parquet_files
from curation.paths import REPO_ROOT

if TYPE_CHECKING:
    from curation.tables.publish import TableTarget

log = logging.getLogger(__name__)

# ---- schemas ---------------------------------------------------------------------------------------

#: Columns every document dataset has, in this order. Stages may append their own columns after these.
DOC_FIELDS: list[pa.Field] = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("text", pa.string()),
    pa.field("url", pa.string()),
    pa.field("title", pa.string()),
    pa.field("date", pa.string()),  # crawl/publication date as given by the source (ISO 8601 when known)
    pa.field("crawl_id", pa.string()),  # e.g. CC-MAIN-2024-22
    pa.field("source_format", pa.string()),  # warc | wet | jsonl | parquet | synthetic
    pa.field("source_file", pa.string()),
    pa.field("lang", pa.string()),
    pa.field("lang_score", pa.float64()),
]
DOC_COLUMNS = [f.name for f in DOC_FIELDS]

#: Columns the rejects dataset adds to the document columns.
REJECT_FIELDS: list[pa.Field] = [
    pa.field("reject_stage", pa.string()),
    pa.field("reject_reason", pa.string()),
]
REJECT_COLUMNS = [f.name for f in REJECT_FIELDS]


def text_hash(text: str) -> str:
    """Stable content hash used for ids and exact dedup of already-normalized text."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


# ---- run ids and versions ------------------------------------------------------------------------


def new_run_id(prefix: str = "") -> str:
    """A sortable, unique run id: UTC timestamp plus a short random suffix."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{prefix}{stamp}-{uuid.uuid4().hex[:6]}"


def code_version() -> str:
    """Git commit of the running code (with `-dirty` when the tree has local edits), or 'unknown'."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---- manifest ------------------------------------------------------------------------------------


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# ---- layout --------------------------------------------------------------------------------------


class DatasetRoot:
    """A dataset root folder holding immutable versions and a CURRENT pointer (local filesystem), and the
    Iceberg table its live versions are also published to (curation/tables/publish.py): `table` None = the
    configured default (with PHI_ICEBERG_WAREHOUSE or PHI_ICEBERG_CATALOG_URI set, the table named after the
    root's folder; else none), a `TableTarget` = that table, False = never a table."""

    def __init__(self, root: str | os.PathLike, table: TableTarget | Literal[False] | None = None):
        self.root = Path(root)
        self.table = table

    def version_dir(self, version: str) -> Path:
        return self.root / version

    def versions(self) -> list[str]:
        return published_versions(self.root)

    def current(self) -> str | None:
        return current_version(self.root)

    def staging_dir(self, version: str) -> Path:
        """A fresh hidden folder to build `version` in; publish() moves it into place."""
        path = self.root / f".staging-{version}-{uuid.uuid4().hex[:8]}"
        path.mkdir(parents=True)
        return path

    def publish(self, staging: Path, version: str, set_current: bool = True) -> Path:
        """Atomically replace `<root>/<version>` with the finished staging folder, then (`set_current`) make
        it the live version (`make_current`: table snapshot, then CURRENT).

        The old folder (a previous attempt of the same run id) is renamed aside first and deleted
        after the swap, so at every instant the version path holds either the old or the new data.
        """
        if not (staging / "manifest.json").is_file():
            raise RuntimeError(f"refusing to publish {staging}: it has no manifest.json")
        final = self.version_dir(version)
        replace_dir(staging, final)
        if set_current:
            self.make_current(version)
        return final

    def make_current(self, version: str) -> None:
        """Make published `version` the live one: first its snapshot in the root's table when it has one
        (curation/tables/publish.py), then CURRENT, so the two move together. A failed table commit raises
        with CURRENT unmoved (the version folder stays in place); calling this again (a rerun of the same
        run id, a retried gate publish) reconciles: the commit is idempotent per run id."""
        from curation.tables.publish import publish_live

        publish_live(self, version)
        self.set_current(version)

    def set_current(self, version: str) -> None:
        """Move the CURRENT pointer only (no table): roots that are not datasets (band index, mixtures)."""
        tmp = self.root / f".CURRENT.{uuid.uuid4().hex[:8]}"
        tmp.write_text(version + "\n")
        os.replace(tmp, self.root / "CURRENT")

    def clean_stale_staging(self) -> None:
        """Remove leftovers of crashed runs (never visible to readers, but they take disk)."""
        if self.root.is_dir():
            for p in self.root.iterdir():
                if p.name.startswith((".staging-", ".trash-")):
                    shutil.rmtree(p, ignore_errors=True)

    def clean_own_staging(self, version: str) -> None:
        """Remove leftovers of crashed attempts of `version` only: writers that share a root and run at the
        same time (synthesis shards) would race each other's staging folders with clean_stale_staging."""
        for p in self.root.glob(f".staging-{version}-*"):
            shutil.rmtree(p, ignore_errors=True)

    @contextmanager
    def building(
        self,
        version: str,
        *,
        set_current: bool = True,
        clean: Literal["all", "own"] = "all",
        defer: bool = False,
    ) -> Iterator[VersionBuild]:
        """The one way to build a version: stage it, describe it, check it, publish it atomically.

            with DatasetRoot(out).building(run_id) as b:
                write parquet under b.staging / "data", b.staging / "rejects"
                b.manifest(dataset=..., inputs=..., config=..., stages=..., rows=..., ...)
            b.final   # <out>/<run_id>, CURRENT points at it

        Cleans stale staging first (`clean="all"`: every leftover in the root; `"own"`: only this version's,
        for roots several writers share at once). On leaving the block the manifest is checked
        (`Manifest.check`), written last, and the staging folder renamed into place (`publish`); an exception
        anywhere in the block (or in the check) removes the staging folder and publishes nothing.
        `defer=True` stops after the manifest is written: the caller publishes later with `b.publish()` or
        drops it with `b.discard()` (the band index goes live only after the corpus it describes)."""
        self.root.mkdir(parents=True, exist_ok=True)
        if clean == "all":
            self.clean_stale_staging()
        else:
            self.clean_own_staging(version)
        build = VersionBuild(self, version, self.staging_dir(version), set_current)
        try:
            yield build
            build.seal()
            if not defer:
                build.publish()
        except BaseException:
            build.discard()
            raise


class VersionBuild:
    """A version being built by `DatasetRoot.building`: its staging folder and its manifest."""

    def __init__(self, root: DatasetRoot, version: str, staging: Path, set_current: bool):
        self.root, self.version, self.staging, self.set_current = root, version, staging, set_current
        self.final: Path | None = None
        self._manifest: Manifest | None = None

    def manifest(self, *, config: dict[str, Any], **fields: Any) -> Manifest:
        """Describe the version. `version`, `created_at`, `code_version` and `config_hash` (of `config`)
        are filled in unless given; the rest are Manifest's fields. Checked and written when the block
        ends."""
        fields.setdefault("version", self.version)
        fields.setdefault("created_at", now_iso())
        fields.setdefault("code_version", code_version())
        fields.setdefault("config_hash", config_hash(config))
        self._manifest = Manifest(config=config, **fields)
        return self._manifest

    def seal(self) -> None:
        if self._manifest is None:
            raise RuntimeError(f"version {self.version} in {self.root.root}: the build set no manifest")
        if self._manifest.version != self.version:
            raise RuntimeError(
                f"manifest names version {self._manifest.version!r} but {self.version!r} is built"
            )
        self._manifest.check()
        self._manifest.write(self.staging)

    def publish(self) -> Path:
        self.final = self.root.publish(self.staging, self.version, set_current=self.set_current)
        return self.final

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def resolve_version_dir(path: str | os.PathLike) -> Path:
    """Accept either a version folder (has manifest.json) or a dataset root (has CURRENT)."""
    p = Path(path)
    if (p / "manifest.json").is_file():
        return p
    root = DatasetRoot(p)
    cur = root.current()
    if cur is None:
        if not p.exists():
            raise FileNotFoundError(f"dataset path {p} does not exist")
        raise FileNotFoundError(
            f"{p} is neither a dataset version (no manifest.json) nor a dataset root (no CURRENT file)"
        )
    return root.version_dir(cur)
