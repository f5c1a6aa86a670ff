"""Configuration of near-duplicate removal (MinHash-LSH) and the S-curve its banding implies.

Two documents whose shingle sets have Jaccard similarity s share at least one LSH bucket with probability

    P(s) = 1 - (1 - s**rows) ** bands

Defaults (num_perm=120, 20 bands x 6 rows, verify on) put the steep part of the curve below 0.8 so that
candidate recall at the 0.8 target is ~0.998, and exact-Jaccard verification removes the extra candidates:

    s     0.3    0.5    0.6    0.7    0.8    0.9
    P   0.014  0.270  0.615  0.918  0.998  1.000

Without verification choose a curve centred on the threshold instead (datasketch's optimum for 0.8 with
128 permutations is 9 bands x 13 rows: P(0.7)=0.36, P(0.8)=0.84, P(0.9)=0.998), trading recall for precision.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class NearDedupConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    ngram: int = Field(5, ge=1, description="words per shingle, on normalized text")
    num_perm: int = Field(120, ge=1, description="MinHash permutations")
    bands: int = Field(20, ge=1)
    rows: int = Field(6, ge=1, description="signature values per band")
    seed: int = Field(1, description="seed of the datasketch permutations; index and batches must agree")
    threshold: float = Field(0.8, gt=0.0, le=1.0, description="Jaccard threshold of verification")
    verify: bool = Field(True, description="exact Jaccard on shingle sets for every candidate pair")
    # A bucket with more members than this is treated as boilerplate: its members get one star edge to the
    # bucket's smallest id instead of all pairs, so memory stays linear in the bucket size.
    max_bucket_pairs: int = Field(50, ge=2)
    # Which member of a duplicate cluster survives (same syntax as exact dedup's keep_order; `id asc` is
    # always appended as the final tie-breaker, missing columns are skipped).
    keep_order: list[str] = ["edu_score desc", "date asc"]
    max_cc_iterations: int = Field(40, ge=1)
    # Up to this many candidate pairs (or batch band keys, incremental mode), the ids are broadcast so the
    # shingle sets (or index rows) are picked where they lie without shuffling the big table; above it the
    # same joins run as shuffles (cluster scale).
    broadcast_max_ids: int = Field(2_000_000, ge=0)
    # Incremental mode: a band index (dataset root) of the published corpus; None = dedup the input alone.
    index_dir: str | None = None
    # Incremental mode on an Iceberg table instead (curation/dedup/band_table.py; the environment's catalog):
    # the table's name, the version a night deduplicates against (run id or snapshot id; None: the current
    # one), and when the night's rows are committed: with the job's output, or `deferred` (the job records its
    # files in the manifest, `band_table.commit_staged` commits them after the gate).
    index_table: str | None = None
    index_table_ref: str | None = None
    index_commit: Literal["with_output", "deferred"] = "with_output"
    # A published corpus version (a folder or `iceberg:<table>@<run id>`) the table is first rebuilt from, as
    # the snapshot of run `index_table_ref` (an OVERWRITE; skipped when that run is committed already: a
    # retried night). The DAGs set it when the table does not describe the corpus version a night appends to
    # (dags/lib/near_index.py).
    index_table_rebuild_from: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> NearDedupConfig:
        if self.bands * self.rows > self.num_perm:
            raise ValueError(
                f"near_dedup: bands*rows = {self.bands}*{self.rows} = {self.bands * self.rows}"
                f" exceeds num_perm={self.num_perm}"
            )
        if self.index_dir and self.index_table:
            raise ValueError(
                f"near_dedup: index_dir ({self.index_dir!r}) and index_table ({self.index_table!r}) are both"
                f" set; the band index is either a folder or a table"
            )
        if self.index_table_rebuild_from and not (self.index_table and self.index_table_ref):
            raise ValueError(
                f"near_dedup: index_table_rebuild_from ({self.index_table_rebuild_from!r}) needs index_table"
                f" and index_table_ref (the run id the rebuilt snapshot is committed as)"
            )
        return self


def candidate_probability(s: float, bands: int, rows: int) -> float:
    """Probability that two documents of Jaccard `s` share at least one band (the LSH S-curve)."""
    return 1.0 - (1.0 - s**rows) ** bands
