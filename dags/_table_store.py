"""The stages of a run that grows a web corpus stored as an Iceberg table (PHI_CORPUS_STORE=table; the design
in dags/lib/table_store.py): curate -> append (staged on `audit/<version>`) -> validate -> report -> publish,
with the same task ids as the folder store's stages, so runbooks, alerts and tests name the same tasks.

Only light imports here: the DAG processor imports this with every DAG file that uses it."""

from __future__ import annotations

import logging

from airflow.sdk import Asset, TaskGroup, TriggerRule, task

from dags._common import run_gate_cli, spark_submit

log = logging.getLogger(__name__)


@task(retries=0)
def validate_staged(planned: dict) -> dict:
    """`python -m curation gate` on the staged version `iceberg:<table>@audit/<version>`, its verdict in the
    run's evidence folder (an earlier attempt's verdict is removed first, so the one read is this one's). A
    failing gate fails the run, no retry."""
    from pathlib import Path

    from curation.quality_gates.gate import GATE_FILE

    quality = Path(planned["evidence"]) / "quality"
    verdict_path = quality / GATE_FILE
    verdict_path.unlink(missing_ok=True)  # so a verdict found after the gate is this attempt's
    argv = ["gate", "--input", planned["staged"], "--kind", "web_curated", "--docs-dir", str(quality)]
    result = run_gate_cli(argv, verdict_path, fresh=lambda verdict: True)
    return {"evaluated": result.evaluated, "data_docs": result.docs_index, "verdict": str(verdict_path)}


@task(trigger_rule=TriggerRule.ALL_DONE)
def report_staged(planned: dict) -> str:
    """The staged version's report, whatever the gate said; skipped when nothing was staged."""
    from pathlib import Path

    from airflow.sdk.exceptions import AirflowSkipException

    from curation.reports import build_report
    from curation.tables.catalog import Warehouse
    from curation.tables.commit import audit_ref, staged_snapshot

    warehouse = Warehouse()
    staged = warehouse.exists(planned["table"]) and staged_snapshot(
        warehouse.table(planned["table"]), planned["version"]
    )
    if not staged:
        raise AirflowSkipException(f"no staged version {audit_ref(planned['version'])}: nothing to report on")
    result = build_report(planned["staged"], output=Path(planned["evidence"]) / "report")
    log.info("report: %s", result.html.as_uri())
    return str(result.html)


@task
def publish_audited(planned: dict, **context) -> dict:
    """Main fast-forwards to the staged version only if its gate passed and main has not moved (see
    dags/lib/table_store.py); the Asset event's extra names the version and its snapshot."""
    from airflow.sdk.exceptions import AirflowFailException

    from curation.tables.commit import TableMoved
    from curation.tables.wap import GateNotPassed
    from dags.lib.table_store import BaseMoved, publish_table_run

    try:
        info = publish_table_run(planned)
    except (GateNotPassed, TableMoved, BaseMoved) as e:
        raise AirflowFailException(str(e)) from e
    for asset in context["task"].outlets:
        context["outlet_events"][asset].extra = info
    log.info("published %s (%d rows)", info["reference"], info["rows"])
    return info


def table_stages(plan, asset: Asset) -> dict:
    """curate >> append >> validate >> [report] >> publish for a table-store run (`plan`: the XCom of
    dags.lib.table_store.plan_table_run). Returns the tasks by name, as curation_stages does."""
    curate = spark_submit("curate", plan["argv"], "phi-curation")
    stage = spark_submit("append", plan["append_argv"], "phi-append")
    with TaskGroup("gate_and_publish", prefix_group_id=False):
        gate = validate_staged.override(task_id="validate")(plan)
        rep = report_staged.override(task_id="report")(plan)
        pub = publish_audited.override(task_id="publish", outlets=[asset])(plan)
        gate >> rep >> pub
        gate >> pub  # publish needs the gate's success, not only the report's
    curate >> stage >> gate
    return {"curate": curate, "append": stage, "validate": gate, "report": rep, "publish": pub}
