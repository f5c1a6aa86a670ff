"""web_curation: crawl files in, a validated, published web corpus version out.

    writer_lock -> plan (edu model?) -> curate (Spark: ... -> edu score -> exact dedup [-> near dedup])
         -> append (onto CURRENT) -> validate (GE gate) -> report -> publish -> writer_unlock (teardown)

Adds to the corpus by default (`mode: add`): like a night of nightly_refresh, the run curates its inputs
into a delta and `append` builds the next whole-corpus version on top of CURRENT (base_version), so
curating a new dump never makes the accumulated corpus disappear from CURRENT. `mode: replace` publishes
a version of the inputs alone, without a base, as the new CURRENT: logged as a warning and noted in the
manifest. Either way the run holds the corpus's writer lease from plan to publish (dags/lib/lock.py), so
it never interleaves with a nightly_refresh or another web_curation run.

Params (checked by the trigger form's JSON schema before a run is created): `input_globs` (files,
folders or globs, local or any Hadoop URI), `crawl_id` (overrides what the WARC headers say),
`config_path` (a curation YAML; the plan task validates it and fails listing every bad field).

Spark runs through SparkSubmitOperator on connection `spark_default` (`local[*]` by default,
`spark://spark-master:7077` in compose), not Spark Connect, because the curation job needs the classic
SparkContext: Hadoop-filesystem globbing through the JVM gateway, accumulators for per-step timings, and
`parallelize` for the file list, none of which Spark Connect offers. spark-submit also keeps the Spark
driver JVM out of the Airflow task process and runs exactly `python -m curation run`, the command an
engineer runs by hand.

Edu scoring: `plan` looks up the edu model registry (`$PHI_EDU_REGISTRY`, else
`$PHI_DATA_ROOT/edu_models`). With a promoted model it enables the curation job's `edu` stage pinned to
that model version (a retry scores with the same model even if another is promoted meanwhile): the
documents get `edu_score`, `edu_int`, `edu_model`, the manifest the stage's counts and
`extra.edu.model`. The stage runs inside the curate job, before dedup, so the near-dedup keep rule
(`edu_score desc`) keeps the most educational copy of a cluster. With no model promoted yet the run is
not failed: it passes through unscored, the plan logs why and the manifest's `extra.notes` records it.
A curation config with its own `edu:` section is used as written. The `web_curated` gate accepts both
(score ranges are checked when the columns exist). Separately, edu_classifier rescores the published
corpus with each newly promoted model into `web_edu`.

Idempotent: the version id derives from the run id; the candidate is built under
`<root>/_candidates/<version>` (replaced atomically on retry) and publish renames it into
`<root>/<version>` only if its quality gate passed; a retried publish is a no-op. Publishing emits the
`web_curated` Asset event (extra: version, path, rows) that downstream DAGs schedule on.

Near-dedup runs inside the curate job when the curation config enables it (`near_dedup.enabled`, as
configs/demo/curation.yaml does; off by default). Then the job also builds the corpus's MinHash band index
from the version's kept documents, staged in `<root>/_near_index/_staged/<version>`, and `publish` makes it
the index's CURRENT right after the corpus version goes live (a failed gate leaves the index as it was):
the next nightly_refresh deduplicates its new documents against it (dags/lib/near_index.py). Without
near-dedup no index is built and the next night rebuilds one from the published version. The DAGs own
`near_dedup.index_dir`: a config that sets it is refused at plan time.

With the corpus stored as an Iceberg table (PHI_CORPUS_STORE=table, dags/lib/table_store.py), a run in mode
`add` is a night like nightly_refresh's (delta -> staged append -> gate -> publish) over the given inputs;
mode `replace` is refused at plan time (a table's versions are rolled back, `python -m curation tables
rollback`, not replaced by a run).
"""

from __future__ import annotations

import os

from airflow.sdk import Param, dag, get_current_context, task

from dags._common import DEFAULT_ARGS, append, curation_stages, writer_lease
from dags._table_store import table_stages
from dags.lib.assets import WEB_CURATED
from dags.lib.paths import dataset_root
from dags.lib.table_store import corpus_store

TABLE_STORE = corpus_store() == "table"  # the web corpus as an Iceberg table (dags/lib/table_store.py)

DEFAULT_INPUT = os.path.join(
    os.environ.get("PHI_SHARED_DATA", "/opt/phi/shared/data"), "warc_commoncrawl_samples", "whirlwind.warc.gz"
)


@dag(
    dag_id="web_curation",
    schedule=None,
    catchup=False,
    max_active_runs=1,  # one writer per corpus; runs of other DAGs wait on the writer lease
    default_args=DEFAULT_ARGS,
    tags=["curation", "spark"],
    doc_md=__doc__,
    params={
        "input_globs": Param(
            [DEFAULT_INPUT],
            type="array",
            minItems=1,
            items={"type": "string", "minLength": 1, "pattern": r"^\S+$"},
            title="Input files / globs",
            description="WARC, WET, JSONL(.gz) or parquet; local paths or URIs",
        ),
        "crawl_id": Param(
            None,
            type=["null", "string"],
            pattern=r"^CC-MAIN-\d{4}-\d{2}$",
            title="Crawl id",
            description="e.g. CC-MAIN-2024-22; empty = from the WARC headers / file names",
        ),
        "config_path": Param(
            None,
            type=["null", "string"],
            pattern=r"^\S+\.ya?ml$",
            title="Curation config",
            description="YAML file (curation/config.py); empty = defaults",
        ),
        "mode": Param(
            "add",
            type="string",
            enum=["add", "replace"],
            title="Add to or replace the corpus",
            description="add = base on CURRENT (the corpus grows); replace = the inputs alone become CURRENT",
        ),
    },
)
def web_curation():
    @task(multiple_outputs=True)
    def plan() -> dict:
        from dags.lib.paths import run_version
        from dags.lib.plan import plan_curation

        ctx = get_current_context()
        params = ctx["params"]
        if TABLE_STORE:
            from airflow.sdk.exceptions import AirflowFailException

            from dags.lib.table_store import plan_table_run

            if params["mode"] == "replace":
                raise AirflowFailException(
                    "mode replace: the web corpus is the Iceberg table web_curated (PHI_CORPUS_STORE=table),"
                    " whose versions are rolled back (python -m curation tables rollback --table web_curated"
                    " --to <run id>), not replaced by a run; use mode add"
                )
            return plan_table_run(
                params["input_globs"],
                dataset_root("web_curated"),
                "web_curated",
                run_version(ctx),
                config_path=params["config_path"],
                crawl_id=params["crawl_id"],
            )
        return plan_curation(
            params["input_globs"],
            dataset_root("web_curated"),
            run_version(ctx),
            config_path=params["config_path"],
            crawl_id=params["crawl_id"],
            incremental=True,
            replace=params["mode"] == "replace",
        )

    planned = plan()
    if TABLE_STORE:
        stages = table_stages(planned, WEB_CURATED)
    else:
        stages = curation_stages(planned, WEB_CURATED, kind="web_curated")
        stages["curate"] >> append(planned) >> stages["validate"]
    writer_lease(dataset_root("web_curated"), planned, stages["publish"])


web_curation()
