"""The persisted band index of a published corpus, for incremental near-dedup of nightly batches.

Layout (a dataset root, so it shares the contract's atomic publish and CURRENT pointer):

    INDEX/
      CURRENT
      <run_id>/bands/*.parquet      (id, band, key) of every kept document
               shingles/*.parquet   (id, shingles) when verification is on
               manifest.json        LSH parameters (must match the run's), parent version, document count

A run reads the CURRENT version, never recomputes the old signatures, and stages version <run_id> =
old entries (minus ids the batch re-submits) + the batch's kept documents; the driver publishes it only
after the deduplicated corpus itself has been published. Rerunning the same run id starts again from the
parent of that version, so the result does not change (idempotent).
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from curation.contract import DatasetRoot, Manifest, code_version, config_hash, now_iso
from curation.dedup.minhash import LshParams

log = logging.getLogger(__name__)

INDEX_DATASET = "near_dedup_index"


def params_dict(params: LshParams) -> dict:
    return {"num_perm": params.num_perm, "bands": params.bands, "rows": params.rows, "seed": params.seed,
            "ngram": params.ngram, "scheme": "affine32", "band_key": "fnv1a-fmix64"}


@dataclass
class LoadedIndex:
    version: str | None
    bands: object            # DataFrame (id, band, key) or None when the index is empty
    shingles: object         # DataFrame (id, shingles) or None


class BandIndex:
    def __init__(self, root: str | Path, params: LshParams):
        self.root = DatasetRoot(root)
        self.params = params
        self._staging: Path | None = None
        self._staged_version: str | None = None

    def base_version(self, run_id: str) -> str | None:
        """The version a run builds on: CURRENT, or CURRENT's parent when CURRENT is this same run."""
        current = self.root.current()
        if current is not None and current == run_id:
            return Manifest.read(self.root.version_dir(current)).extra.get("parent")
        return current

    def load(self, spark, run_id: str, need_shingles: bool) -> LoadedIndex:
        version = self.base_version(run_id)
        if version is None:
            log.info("band index %s is empty: first incremental run", self.root.root)
            return LoadedIndex(None, None, None)
        vdir = self.root.version_dir(version)
        manifest = Manifest.read(vdir)
        stored, wanted = manifest.config.get("lsh"), params_dict(self.params)
        if stored != wanted:
            raise ValueError(f"band index {vdir}: built with LSH parameters {stored}, this run uses {wanted};"
                             f" rebuild the index or use the same near_dedup settings")
        if need_shingles and not (vdir / "shingles").is_dir():
            raise ValueError(f"band index {vdir} has no shingles/ (built with verify off) but verify is on")
        bands = spark.read.parquet(str(vdir / "bands"))
        shingles = spark.read.parquet(str(vdir / "shingles")) if need_shingles else None
        log.info("band index %s: version %s, %d documents", self.root.root, version, manifest.rows)
        return LoadedIndex(version, bands, shingles)

    def stage(self, spark, bands, shingles, run_id: str, parent: str | None) -> Path:
        """Write the next index version to a hidden staging folder (published by `publish`)."""
        self.root.root.mkdir(parents=True, exist_ok=True)
        staging = self.root.staging_dir(run_id)
        try:
            bands.write.mode("overwrite").parquet(str(staging / "bands"))
            if shingles is not None:
                shingles.write.mode("overwrite").parquet(str(staging / "shingles"))
            docs = spark.read.parquet(str(staging / "bands")).select("id").distinct().count()
            cfg = {"lsh": params_dict(self.params)}
            Manifest(dataset=INDEX_DATASET, version=run_id, created_at=now_iso(), code_version=code_version(),
                     inputs=[parent] if parent else [], config=cfg, config_hash=config_hash(cfg), rows=docs,
                     columns=["id", "band", "key"], extra={"parent": parent}).write(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self._staging, self._staged_version = staging, run_id
        return staging

    def publish(self) -> Path | None:
        if self._staging is None:
            return None
        final = self.root.publish(self._staging, self._staged_version)
        log.info("band index published: %s", final)
        self._staging = None
        return final

    def abort(self) -> None:
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
