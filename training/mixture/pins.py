"""What a mixture source's edu filter assumes: `edu_score >= 3` means something only for the model that
produced the scores. A source may pin that model (`edu_model:`, beside the dataset `version:` pin); a
filter on `edu_score`/`edu_int` is refused against a corpus whose documents were scored by any other model,
and, unpinned, against a corpus scored by several (a corpus appended night after night holds each night's
model: select from `web_edu`, which one model rescored whole, or pin the version).

The models are read from the documents' own `edu_model` column (every scored row records it), so the check
holds for a version built by any route.

A build also pins the Iceberg snapshots it read (`hold_table_snapshots`): table retention never expires them.
"""

from __future__ import annotations

import logging
import re

from curation.paths import TABLE_PREFIX

log = logging.getLogger(__name__)

_EDU_COLUMN = re.compile(r"\bedu_(score|int)\b", re.IGNORECASE)


def filter_uses_edu(where: str | None) -> bool:
    return bool(where and _EDU_COLUMN.search(where))


def scoring_models(con, src) -> list[str]:
    """The distinct edu models that scored the source's documents (nulls = unscored rows, ignored)."""
    from training.mixture import sources as S

    if "edu_model" not in src.columns:
        return []
    rel = S.relation(con, src).filter("edu_model IS NOT NULL").project("edu_model").distinct()
    return sorted(r[0] for r in rel.fetchall())


def check_edu_pin(con, src_cfg, src) -> list[tuple[str, str]]:
    """Problems as (key, message): the source's `filter` or `edu_model` against the models that scored it."""
    if src_cfg.edu_model is None and not filter_uses_edu(src_cfg.filter):
        return []
    models = scoring_models(con, src)
    where = src.label
    if src_cfg.edu_model is not None:
        if not models:
            return [("edu_model", f"edu_model {src_cfg.edu_model!r} pinned but {where} has no edu scores")]
        other = [m for m in models if m != src_cfg.edu_model]
        if other:
            return [
                (
                    "edu_model",
                    (
                        f"{where} was scored by {other} besides/instead of the pinned edu model "
                        f"{src_cfg.edu_model!r}: its edu_score means something else; pin the "
                        f"dataset `version` scored by {src_cfg.edu_model!r} or update the pin"
                    ),
                )
            ]
        return []
    if len(models) > 1:
        return [
            (
                "filter",
                (
                    f"filter {src_cfg.filter!r} selects on edu scores, but {where} was scored by "
                    f"{len(models)} models {models}: pin `edu_model` (and a dataset `version`) or "
                    f"select from a corpus one model scored (web_edu)"
                ),
            )
        ]
    return []


def hold_table_snapshots(cm) -> None:
    """Pin every Iceberg snapshot the build read (an Iceberg tag `pin/mixture/<name>@<snapshot>`), so table
    retention never expires data a build depends on; the same mixture's pins on other snapshots are released
    (the build that read them was just replaced)."""
    read: dict[str, set[int]] = {}
    for res in cm.resolved.values():
        if res.reference.startswith(TABLE_PREFIX):
            read.setdefault(res.reference, set()).add(int(res.version))
    if not read:
        return
    from curation.tables.pins import hold_reference

    for reference, sids in sorted(read.items()):
        tags = hold_reference(reference, sids, f"mixture/{cm.config.name}")
        log.info("mixture %s: %s pinned %s", cm.config.name, reference, ", ".join(tags))
