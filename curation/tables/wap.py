"""Write-audit-publish (Iceberg's WAP pattern): a run's snapshot goes live on main only after its audit.

    write    append_night(..., stage=True)  /  python -m curation append --table T --stage
             the night's new rows become a snapshot on the run's own branch `audit/<run id>`, created
             at main's head when the night was deduplicated (the staged snapshot's parent); main does not
             move, so readers of main (versions, read_arrow, mixture sources, `@<run id>`) do not see it
    audit    python -m curation gate --input iceberg:T@audit/<run id>
             gates exactly the staged version: main's head at staging + the night's rows
    publish  publish_staged(table, run id)  /  python -m curation tables publish --table T --run-id R
             [--require-gate gate.json]: fast-forwards main to the staged snapshot iff main's head is still
             its parent (else TableMoved: the night is staged again against the new head), tags it with the
             run id like a normal commit, and removes the audit branch
    discard  discard_staged(table, run id)  /  python -m curation tables discard --table T --run-id R
             drops the audit branch and the staged snapshot; its data files are orphans for remove-orphans

Why a branch rather than pyiceberg 0.12's ref-less staged snapshot (`branch=None` on the snapshot producer):
a ref-less snapshot takes as parent main's head as the committing transaction sees it, and its commit asserts
nothing (pyiceberg's own commit retry re-reads main), so nothing ties it to the head the night was
deduplicated against; nothing names it for the gate either, and expiry would not spare it. The branch is
reset to the dedup's head first, so the staged snapshot's parent is exactly that head, the commit asserts the
branch, `iceberg:T@audit/<run id>` names it, and a ref head is never expired. (One exception: Iceberg refuses
any ref but main on a table with no snapshot at all, so a table's very first night is committed ref-less,
checked to have no parent, then given its branch; commit._stage_on_empty_table.)
Publishing is a ref update whose commit asserts main's head (the catalog's optimistic check), so a writer
that lands meanwhile makes the publish fail rather than be overwritten.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from curation.tables.commit import (
    COMMIT_ATTEMPTS,
    TableMoved,
    audit_ref,
    commit_conflicts,
    drop_snapshot,
    snapshot_for_run,
    staged_snapshot,
    tag_snapshot,
)

log = logging.getLogger(__name__)

AUDIT_PREFIX = "audit/"


@dataclass(frozen=True)
class Published:
    run_id: str
    snapshot_id: int
    created: bool  # False: the run was published already, nothing was done


class NotStaged(LookupError):
    """No staged snapshot of the run (never staged, or discarded)."""


class GateNotPassed(RuntimeError):
    """`--require-gate`: the verdict failed, or names another version than the staged one."""


def staged_runs(table) -> dict[str, int]:
    """The runs awaiting their audit: run id -> staged snapshot id."""
    out = {}
    for name in table.metadata.refs:
        if name.startswith(AUDIT_PREFIX):
            snap = staged_snapshot(table, name.removeprefix(AUDIT_PREFIX))
            if snap is not None:
                out[name.removeprefix(AUDIT_PREFIX)] = snap.snapshot_id
    return dict(sorted(out.items()))


def check_gate_verdict(path: str | Path, table_identifier: str, snapshot_id: int) -> None:
    """Refuse (GateNotPassed) unless the gate verdict at `path` (gate.json) passed and names exactly
    `iceberg:<table>@<snapshot_id>` (what `gate --input iceberg:T@audit/<run id>` writes), `table` being
    `table_identifier` (`namespace.name`), or a bare name in the configured namespace."""
    from curation.paths import TABLE_PREFIX, parse_table_reference
    from curation.quality_gates.result import GateResult

    verdict = GateResult.read(path)
    expected = f"{TABLE_PREFIX}{table_identifier}@{snapshot_id}"
    try:
        name, at = parse_table_reference(verdict.dataset_dir)
    except ValueError:
        name, at = verdict.dataset_dir, None
    if "." not in name:  # a bare name is a table of the configured namespace, as the gate resolved it
        from curation.tables.catalog import TablesConfig

        name = f"{TablesConfig.from_env().namespace}.{name}"
    if name != table_identifier or at != str(snapshot_id):
        raise GateNotPassed(f"gate verdict {path} is about {verdict.dataset_dir}, not the staged {expected}")
    if not verdict.success:
        failed = "; ".join(f.describe() for f in verdict.failures[:3])
        raise GateNotPassed(f"gate verdict {path} on {expected} FAILED ({failed}): not publishing")


def publish_staged(table, run_id: str, require_gate: str | Path | None = None) -> Published:
    """Fast-forward main to run `run_id`'s staged snapshot, tag it with the run id, remove its audit branch.
    Idempotent (a published run: tag and branch repaired, created=False). TableMoved when main's head is no
    longer the staged snapshot's parent (nothing changes); NotStaged when nothing of the run is staged."""
    name = ".".join(table.name()) if isinstance(table.name(), tuple) else str(table.name())
    for _ in range(COMMIT_ATTEMPTS):
        table.refresh()
        done = snapshot_for_run(table, run_id)
        if done is not None:
            tag_snapshot(table, run_id, done.snapshot_id)
            _remove_audit_ref(table, run_id)
            log.info("run %s is published in %s (snapshot %s): nothing to do", run_id, name, done.snapshot_id)
            return Published(run_id, done.snapshot_id, created=False)
        staged = staged_snapshot(table, run_id)
        if staged is None:
            raise NotStaged(
                f"table {name}: run {run_id} is neither published nor staged (no branch {audit_ref(run_id)}):"
                " stage it with `python -m curation append --table ... --stage` first"
            )
        if require_gate is not None:
            check_gate_verdict(require_gate, name, staged.snapshot_id)
        head = table.current_snapshot()
        head_id = head.snapshot_id if head else None
        if head_id != staged.parent_snapshot_id:
            raise TableMoved(
                f"table {name}: main moved from snapshot {staged.parent_snapshot_id} (the parent of staged"
                f" run {run_id}) to {head_id} since it was staged: nothing published. The night was"
                " deduplicated against the old head: stage it again (python -m curation append --delta"
                f" <night> --table {name} --run-id {run_id} --stage replaces the staged snapshot with one"
                " on the new head), gate it and publish again"
            )
        try:  # a ref update that asserts main is still at head_id (the transaction's view)
            table.manage_snapshots().set_current_snapshot(snapshot_id=staged.snapshot_id).commit()
        except commit_conflicts() as e:
            log.info("publish of run %s lost a race (%s): checking main again", run_id, e)
            continue
        tag_snapshot(table, run_id, staged.snapshot_id)
        _remove_audit_ref(table, run_id)
        log.info("run %s published: %s main %s -> %s", run_id, name, head_id, staged.snapshot_id)
        return Published(run_id, staged.snapshot_id, created=True)
    raise RuntimeError(f"publish of run {run_id} to {name}: lost {COMMIT_ATTEMPTS} races in a row")


def discard_staged(table, run_id: str) -> int | None:
    """A failed audit: remove run `run_id`'s audit branch and its staged snapshot (its data files become
    orphans for `remove_orphan_files`). Returns the snapshot id dropped, None when nothing was staged. A
    published run is refused (roll main back instead)."""
    table.refresh()
    if snapshot_for_run(table, run_id) is not None:
        raise ValueError(
            f"table {table.name()}: run {run_id} is published already; to undo it roll main back"
            " (python -m curation tables rollback --to <the previous run id>)"
        )
    staged = staged_snapshot(table, run_id)
    _remove_audit_ref(table, run_id)
    if staged is None:
        return None
    drop_snapshot(table, staged.snapshot_id)
    log.info("run %s discarded: staged snapshot %s of %s dropped", run_id, staged.snapshot_id, table.name())
    return staged.snapshot_id


def _remove_audit_ref(table, run_id: str) -> None:
    if audit_ref(run_id) in table.metadata.refs:
        table.manage_snapshots().remove_branch(audit_ref(run_id)).commit()
