"""Pins: a snapshot that something depends on (a mixture build read it; a training run reads that build) holds
an Iceberg tag named `pin/<holder>@<snapshot id>`, and retention (`expire_versions`) never expires a pinned
snapshot nor removes its pin.

Tags are the table format's own references, so the pin lives with the table: any engine listing the table's
refs sees it, and no list of pinned versions has to be kept beside the warehouse and remembered at expiry
time. A mixture build pins every table snapshot it read (training/mixture/build.py); `python -m curation
tables pins|unpin` lists and releases them.
"""

from __future__ import annotations

import logging
import re

from curation.tables.commit import COMMIT_ATTEMPTS, commit_conflicts, tag_snapshot

log = logging.getLogger(__name__)

PIN_PREFIX = "pin/"
_UNSAFE = re.compile(r"[^A-Za-z0-9._:/-]+")


def pin_name(holder: str, snapshot_id: int) -> str:
    clean = _UNSAFE.sub("_", holder.strip()).strip("/")
    if not clean:
        raise ValueError(f"pin holder {holder!r}: give a name (e.g. mixture/<name>)")
    return f"{PIN_PREFIX}{clean}@{snapshot_id}"


def _holder_prefix(holder: str) -> str:
    """What every pin tag of `holder` starts with."""
    return pin_name(holder, 0).rsplit("@", 1)[0] + "@"


def pin(table, snapshot_id: int, holder: str) -> str:
    """Pin `snapshot_id` for `holder` (idempotent); returns the tag name."""
    if table.metadata.snapshot_by_id(snapshot_id) is None:
        raise ValueError(f"table {table.name()}: no snapshot {snapshot_id} to pin for {holder!r}")
    name = pin_name(holder, snapshot_id)
    tag_snapshot(table, name, snapshot_id)
    log.info("table %s: snapshot %s pinned as %s", table.name(), snapshot_id, name)
    return name


def pins(table) -> dict[str, int]:
    """Pin tag -> snapshot id, sorted by tag name."""
    table.refresh()
    refs = table.metadata.refs
    return {name: refs[name].snapshot_id for name in sorted(refs) if name.startswith(PIN_PREFIX)}


def pinned_snapshot_ids(table) -> set[int]:
    return set(pins(table).values())


def unpin(table, holder: str | None = None, tag: str | None = None) -> list[str]:
    """Release the pins of `holder` (every snapshot it pinned) or the one pin `tag`; returns the tags removed.
    A snapshot whose last pin goes becomes subject to retention again."""
    if (holder is None) == (tag is None):
        raise ValueError("unpin: give exactly one of holder or tag")
    current = pins(table)
    if tag is not None:
        doomed = [tag] if tag in current else []
        if not doomed:
            raise ValueError(f"table {table.name()}: no pin {tag!r}; pins: {sorted(current) or 'none'}")
    else:
        doomed = [name for name in current if name.startswith(_holder_prefix(holder))]
    for _ in range(COMMIT_ATTEMPTS):
        try:
            manage = table.manage_snapshots()
            for name in doomed:
                manage = manage.remove_tag(name)
            if doomed:
                manage.commit()
            break
        except commit_conflicts():
            table.refresh()
            doomed = [name for name in doomed if name in table.metadata.refs]
    else:
        raise RuntimeError(f"table {table.name()}: could not remove pins {doomed}")
    log.info("table %s: removed pin(s) %s", table.name(), doomed)
    return doomed


def hold(table, snapshot_ids: set[int], holder: str) -> list[str]:
    """What a rebuilt artifact does: pin each of `snapshot_ids` for `holder`, then release the holder's pins
    on any other snapshot (the artifact that read them was replaced). Returns the pins' tag names."""
    names = [pin(table, sid, holder) for sid in sorted(snapshot_ids)]
    for tag in pins(table):
        if tag.startswith(_holder_prefix(holder)) and tag not in names:
            unpin(table, tag=tag)
    return names


def hold_reference(reference: str, snapshot_ids: set[int], holder: str) -> list[str]:
    """`hold` for a table named by a mixture source reference (`iceberg:<table>`, the configured catalog)."""
    from curation.paths import parse_table_reference
    from curation.tables.catalog import Warehouse

    name, _ = parse_table_reference(reference)
    return hold(Warehouse().table(name), snapshot_ids, holder)
