"""The columns of a published synthetic dataset: the curation document columns plus the provenance of each
sample (recipe, seed draw, prompt, teacher, verification, quality signals), and the rejects' extra columns."""

from __future__ import annotations

import pyarrow as pa

from curation.contract import DOC_FIELDS

PROVENANCE_FIELDS = [
    pa.field(n, t)
    for n, t in (
        ("recipe", pa.string()),
        ("generator", pa.string()),
        ("template_version", pa.string()),
        ("topic_pool", pa.string()),
        ("topic", pa.string()),
        ("audience", pa.string()),
        ("style", pa.string()),
        ("seed_doc_id", pa.string()),
        ("seed_doc_edu_score", pa.float64()),
        ("prompt", pa.string()),
        ("teacher_model", pa.string()),
        ("teacher_backend", pa.string()),
        ("request_key", pa.string()),
        ("sampling", pa.string()),
        ("finish_reason", pa.string()),
        ("completion_tokens", pa.int64()),
        ("answer", pa.string()),
        ("parts", pa.string()),
        ("verified", pa.bool_()),
        ("verification", pa.string()),
        ("verification_kind", pa.string()),
        ("quality_signals", pa.string()),
        ("edu_score", pa.float64()),
        ("shard", pa.string()),
    )
]
SYNTH_SCHEMA = pa.schema([*DOC_FIELDS, *PROVENANCE_FIELDS])
REJECT_SCHEMA = pa.schema(
    [
        *SYNTH_SCHEMA,
        pa.field("reject_stage", pa.string()),
        pa.field("reject_reason", pa.string()),
        pa.field("reject_detail", pa.string()),
    ]
)
