"""nightly_refresh: every night, curate the crawl segments that no published version has consumed yet and
publish the next whole-corpus version.

    discover -> anything_new? -> writer_lock -> plan -> curate (delta) -> append (onto CURRENT) -> validate
             -> report -> publish -> record -> writer_unlock (teardown)

`discover` lists the segment globs (with the curation job's own lister: local paths, s3://, s3a://) and
drops every segment in the processed-segments ledger (`<root>/_ledger/segments.json`). A glob that
matches no file, or whose location does not exist, fails the task (and so alerts): a typo or a missing
mount is never a quiet green night. When every matched segment was consumed already the night is empty:
it is logged as such in the ledger's nights (`_ledger/nights.jsonl`, table `nights.md`), the run
short-circuits and every later task is skipped, so a second run over the same segments processes nothing.
Segments are recorded only after their version is published: a night that fails leaves them pending for
the next one.

One writer per corpus: `writer_lock` (setup) takes the corpus's writer lease before `plan` reads CURRENT
and `writer_unlock` (teardown) gives it back after `record`, whatever happened in between
(dags/lib/lock.py); a manual web_curation run of the same corpus waits for it, and vice versa.

Bounds and alerts: every task has an execution_timeout; a failure after the last retry is an alert; the
run has a deadline (DeadlineAlert: `PHI_NIGHTLY_DEADLINE_H`, default 3 h, after its logical date, i.e.
06:00 UTC) whose miss is an alert too (dags/lib/alerts.py: the alert log, plus a webhook / SMTP when
configured).

`curate` runs the same curation job as web_curation (edu scoring with the promoted model when there is
one, see web_curation) over the new segments only, into the delta `<root>/_deltas/<version>`. `append`
(curation.append) builds the candidate `<root>/_candidates/<version>` = the corpus version that was
CURRENT when the run was planned (`base_version`; all its documents, hard-linked, not copied) + the
delta's documents minus those the corpus already holds (same `id` or normalized text: stage
`published_dedup`). Its manifest has the delta's stage counts, `base_version`, `base_rows` and the
cumulative `rows`. Every published version is therefore the whole corpus, gated as a whole, and
published into the same `web_curated` root and Asset as web_curation, so downstream DAGs follow it the
same way (the Asset event's extra names the version). The writer lease keeps other runs from
publishing between plan and publish; if CURRENT moved all the same (a stale lease was broken) append
fails rather than drop that version: clear the run from `writer_lock`.

Near-dedup against the published corpus: `curate` runs near-dedup (MinHash-LSH) in incremental mode
against the corpus's band index `<root>/_near_index` (dags/lib/near_index.py): a night's document that
near-duplicates a published document, or another of the night's, is dropped in the delta (stage
`near_dedup`, reason `near_duplicate`, detail `kept <id>`; the published document always wins, old
documents are never dropped), so the appended version's counts reconcile as before. The job stages the
next index version in the run's own root `_near_index/_staged/<version>`; `publish` promotes it (index
CURRENT = the version just published) only after the gate passed and the corpus version went live. When
the index's CURRENT does not describe the base version (a web_curation run without near-dedup, a manual
run, other LSH parameters, no index yet), `plan` says so and the curate job rebuilds it from the base
version first (signatures of the base computed once). The manifest's `extra.near_dedup_index` names the
index version used (`base`) and whether it was rebuilt. On by default; a config with
`near_dedup: {enabled: false}` turns it off (then the index falls behind and the next night rebuilds it).
With a table catalog configured (the demo, the stack, compose) the band index is the append-only Iceberg
table `web_curated_near_index` instead: the night reads it at the snapshot of its base version, the job
stages only the night's kept rows, and `publish` commits them as one APPEND snapshot after the gate, so the
index costs O(night), not O(corpus), every night (dags/lib/near_index.py).

Retention: `publish` keeps the band index's newest 2 versions, or the table's newest 2 snapshots
(near_index.KEEP_INDEX_VERSIONS, never its CURRENT); `record` deletes the `_deltas/<version>` of earlier
published nights (the latest night's delta stays for inspection: its manifest's `extra.delta.path`). Corpus
versions are never pruned automatically (mixtures pin them); operators use
`python -m curation prune --root DIR --keep K`.

The corpus as an Iceberg table (PHI_CORPUS_STORE=table, dags/lib/table_store.py): `plan` bases the night on
table `web_curated`'s live version, `append` stages the night's new rows as one snapshot on branch
`audit/<version>` (main does not move), `validate` and `report` read that staged version, and `publish`
fast-forwards main to it only if its gate passed and main has not moved meanwhile, then commits the band
index table's night. No version folder is written: the data root holds the deltas, the ledger, the evidence
(`_runs/<version>/quality`, `report`) and the lease; the corpus is in the warehouse (local or `s3://`).

Spark: SparkSubmitOperator on `spark_default`, for the reasons given in web_curation's docstring.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

import pendulum
from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference, Param, dag, get_current_context, task

from dags._common import DEFAULT_ARGS, append, curation_stages, writer_lease
from dags._table_store import table_stages
from dags.lib.alerts import deadline_missed
from dags.lib.assets import WEB_CURATED
from dags.lib.paths import dataset_root
from dags.lib.table_store import corpus_store

log = logging.getLogger(__name__)
#: The web corpus as an Iceberg table (PHI_CORPUS_STORE=table, dags/lib/table_store.py) or version folders.
TABLE_STORE = corpus_store() == "table"

DEFAULT_SEGMENTS = os.environ.get("PHI_NIGHTLY_SEGMENTS") or os.path.join(
    os.environ.get("PHI_SHARED_DATA", "/opt/phi/shared/data"), "warc_commoncrawl_samples", "*.warc.gz"
)
#: The night must be published this long after its logical date (03:00 UTC): 06:00 UTC by default. `off`
#: drops the deadline: Airflow 3.3.2's dag.test() crashes at the end of a successful run of a DAG with a
#: DeadlineAlert (DagRun.update_state looks dag.deadline up as alert ids, dag.test's DAG holds the encoded
#: alerts), so the local dag.test runs (tests/dags/test_dags_run.py) turn it off; the scheduler is unaffected.
_DEADLINE_H = os.environ.get("PHI_NIGHTLY_DEADLINE_H") or "3"
DEADLINE = (
    None
    if _DEADLINE_H == "off"
    else DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=timedelta(hours=float(_DEADLINE_H)),
        callback=AsyncCallback(deadline_missed),
    )
)


def plan_night(pending: list[str], version: str, config_path: str | None) -> dict:
    """The night's plan in the corpus's store: on top of CURRENT (folders) or of the table's live version."""
    from dags.lib.plan import plan_curation
    from dags.lib.table_store import plan_table_run

    root = dataset_root("web_curated")
    if TABLE_STORE:
        return plan_table_run(pending, root, "web_curated", version, config_path=config_path)
    return plan_curation(pending, root, version, config_path=config_path, incremental=True)


@dag(
    dag_id="nightly_refresh",
    schedule="0 3 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # the ledger is read by discover and written by record: one night at a time
    default_args=DEFAULT_ARGS,
    deadline=DEADLINE,
    tags=["curation", "spark", "nightly"],
    doc_md=__doc__,
    params={
        "segment_globs": Param(
            [DEFAULT_SEGMENTS],
            type="array",
            minItems=1,
            items={"type": "string", "minLength": 1, "pattern": r"^\S+$"},
            title="Segment globs",
            description="where new crawl segments land (local paths, s3://, s3a://)",
        ),
        "config_path": Param(None, type=["null", "string"], pattern=r"^\S+\.ya?ml$", title="Curation config"),
    },
)
def nightly_refresh():
    @task
    def discover() -> list[str]:
        """New segments; a glob matching nothing fails the task (no retry: a typo stays a typo; the alert
        goes out now). An empty night is logged."""
        from airflow.sdk.exceptions import AirflowFailException

        from dags.lib.ledger import NoSegments, SegmentLedger
        from dags.lib.paths import run_version

        ctx = get_current_context()
        ledger = SegmentLedger.for_root(dataset_root("web_curated"))
        try:
            found, pending = ledger.scan(ctx["params"]["segment_globs"])
        except NoSegments as e:
            raise AirflowFailException(str(e)) from e
        log.info("%d segment(s) match, %d new: %s", len(found), len(pending), pending)
        ctx["ti"].xcom_push(key="matched", value=len(found))
        if not pending:
            ledger.record_night(run_version(ctx), "empty", len(found), 0)
            log.warning("empty night: all %d matching segment(s) are in the ledger already", len(found))
        return pending

    @task.short_circuit
    def anything_new(pending: list[str]) -> bool:
        return bool(pending)

    @task(multiple_outputs=True)
    def plan(pending: list[str]) -> dict:
        from dags.lib.paths import run_version

        ctx = get_current_context()
        return plan_night(pending, run_version(ctx), ctx["params"]["config_path"])

    @task
    def record(pending: list[str], published: dict, **context) -> int:
        """Runs only after a successful publish: the night's segments go into the ledger, and the deltas
        of earlier published nights are deleted (their documents and rejects are in their published
        versions as hard links); this night's delta stays until the next night publishes."""
        from curation.contract_prune import prune_run_folders
        from dags.lib.ledger import SegmentLedger
        from dags.lib.plan import DELTAS
        from dags.lib.table_store import published_runs

        root = dataset_root("web_curated")
        ledger = SegmentLedger.for_root(root)
        added = ledger.record(pending, published["version"])
        log.info("ledger: %d segment(s) recorded as consumed by %s", added, published["version"])
        matched = context["ti"].xcom_pull(task_ids="discover", key="matched")
        ledger.record_night(
            published["version"], "published", matched, len(pending), published["version"], published["rows"]
        )
        # the table store publishes no version folder: its deltas go once the table holds their run
        in_table = published_runs("web_curated") if TABLE_STORE else None
        prune_run_folders(root / DELTAS, root, keep=published["version"], published=in_table)
        return added

    pending = discover()
    planned = plan(pending)
    if TABLE_STORE:
        stages = table_stages(planned, WEB_CURATED)
    else:
        stages = curation_stages(planned, WEB_CURATED, kind="web_curated")
        stages["curate"] >> append(planned) >> stages["validate"]
    lock, _ = writer_lease(dataset_root("web_curated"), planned, record(pending, stages["publish"]))
    anything_new(pending) >> lock


nightly_refresh()
