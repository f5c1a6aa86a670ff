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

Rebuild: `request_rebuild(root, corpus_version_dir, version)` leaves `root/REBUILD.json`; the next run over
that root first indexes every document of that published corpus version as index version `version`
(their signatures computed once, `build_from_corpus`) and then builds on it. nightly_refresh uses this
when the published index does not describe the corpus version it appends to (dags/lib/near_index.py).

The alternative backend, an append-only Iceberg table that a night adds only its kept documents to, is
curation/dedup/band_table.py (`near_dedup.index_table`); the two share `LoadedIndex` and `params_dict`.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from curation.contract import DatasetRoot, Manifest, VersionBuild
from curation.dedup.minhash import LshParams, corpus_signatures

log = logging.getLogger(__name__)

INDEX_DATASET = "near_dedup_index"
REBUILD_REQUEST = "REBUILD.json"


def params_dict(params: LshParams) -> dict:
    return {
        "num_perm": params.num_perm,
        "bands": params.bands,
        "rows": params.rows,
        "seed": params.seed,
        "ngram": params.ngram,
        "scheme": "affine32",
        "band_key": "fnv1a-fmix64",
    }


def request_rebuild(root: str | Path, corpus_version_dir: str | Path, version: str, reason: str) -> Path:
    """Have the next run over index `root` first build version `version` from every document of the
    published corpus version `corpus_version_dir` (see BandIndex.load)."""
    path = Path(root) / REBUILD_REQUEST
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"corpus": str(corpus_version_dir), "version": version, "reason": reason}) + "\n"
    )
    return path


@dataclass
class LoadedIndex:
    version: str | None
    bands: object  # DataFrame (id, band, key) or None when the index is empty
    shingles: object  # DataFrame (id, shingles) or None


class BandIndex:
    append_only = False  # each version holds every entry (curation/dedup/band_table.py appends nights)

    def __init__(self, root: str | Path, params: LshParams):
        self.root = DatasetRoot(root, table=False)  # not documents: never a dataset table
        self.params = params
        self._build: VersionBuild | None = None  # staged by `stage`, published after the corpus

    def base_version(self, run_id: str) -> str | None:
        """The version a run builds on: CURRENT, or CURRENT's parent when CURRENT is this same run."""
        current = self.root.current()
        if current is not None and current == run_id:
            return Manifest.read(self.root.version_dir(current)).extra.get("parent")
        return current

    def load(self, spark, run_id: str, need_shingles: bool) -> LoadedIndex:
        self._rebuild_if_requested(spark, need_shingles)
        version = self.base_version(run_id)
        if version is None:
            log.info("band index %s is empty: first incremental run", self.root.root)
            return LoadedIndex(None, None, None)
        vdir = self.root.version_dir(version)
        manifest = Manifest.read(vdir)
        stored, wanted = manifest.config.get("lsh"), params_dict(self.params)
        if stored != wanted:
            raise ValueError(
                f"band index {vdir}: built with LSH parameters {stored}, this run uses {wanted};"
                f" rebuild the index or use the same near_dedup settings"
            )
        if need_shingles and not (vdir / "shingles").is_dir():
            raise ValueError(f"band index {vdir} has no shingles/ (built with verify off) but verify is on")
        bands = spark.read.parquet(str(vdir / "bands"))
        shingles = spark.read.parquet(str(vdir / "shingles")) if need_shingles else None
        log.info("band index %s: version %s, %d documents", self.root.root, version, manifest.rows)
        return LoadedIndex(version, bands, shingles)

    def _rebuild_if_requested(self, spark, need_shingles: bool) -> None:
        request = self.root.root / REBUILD_REQUEST
        if not request.is_file():
            return
        spec = json.loads(request.read_text())
        if (self.root.version_dir(spec["version"]) / "manifest.json").is_file():
            return  # built by an earlier attempt of this run
        log.warning(
            "band index %s: rebuilding version %s from corpus %s (%s): computing the signatures of"
            " every published document once",
            self.root.root,
            spec["version"],
            spec["corpus"],
            spec.get("reason", "requested"),
        )
        self.build_from_corpus(spark, spec["corpus"], spec["version"], need_shingles)

    def build_from_corpus(
        self, spark, corpus_version_dir: str | Path, version: str, with_shingles: bool
    ) -> Path:
        """Index every document of a published corpus version as index version `version` (published,
        CURRENT).

        The signatures are computed once and written to a scratch parquet folder that the bands and the
        shingles are both read from: caching them instead (persist) ran a 2g driver out of heap at 500k
        documents (the columnar cache builds each batch's shingle arrays in the heap; bench/scale.py)."""
        from curation.dedup.lsh import band_rows

        scratch = self.root.root / f".signatures-{version}"
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            sigs = corpus_signatures(spark, corpus_version_dir, self.params, with_shingles)
            sigs.write.parquet(str(scratch))
            sigs = spark.read.parquet(str(scratch))
            shingles = sigs.where("n_shingles > 0").select("id", "shingles") if with_shingles else None
            self.stage(
                spark, band_rows(sigs), shingles, version, None, {"rebuilt_from": str(corpus_version_dir)}
            )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return self.publish()

    def stage(
        self, spark, bands, shingles, run_id: str, parent: str | None, extra: dict | None = None
    ) -> Path:
        """Write the next index version to a hidden staging folder (published by `publish`)."""
        with self.root.building(run_id, clean="own", defer=True) as build:
            bands.write.mode("overwrite").parquet(str(build.staging / "bands"))
            if shingles is not None:
                shingles.write.mode("overwrite").parquet(str(build.staging / "shingles"))
            docs = spark.read.parquet(str(build.staging / "bands")).select("id").distinct().count()
            build.manifest(
                dataset=INDEX_DATASET,
                inputs=[parent] if parent else [],
                config={"lsh": params_dict(self.params)},
                rows=docs,
                columns=["id", "band", "key"],
                extra={"parent": parent, **(extra or {})},
            )
        self._build = build
        return build.staging

    def publish(self) -> Path | None:
        if self._build is None:
            return None
        final = self._build.publish()
        log.info("band index published: %s", final)
        self._build = None
        return final

    def abort(self) -> None:
        if self._build is not None:
            self._build.discard()
            self._build = None
