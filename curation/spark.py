"""SparkSession for curation jobs: reuse the one spark-submit created, or build a local one."""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)


def get_spark(app_name: str = "phi-curation", master: str | None = None, conf: dict[str, str] | None = None):
    """Return the active SparkSession (spark-submit / cluster) or build a local one.

    The local defaults fix the pitfalls seen on these machines: workers must use this interpreter (so
    they see pyarrow and the project), and the driver binds to loopback. Settings given to spark-submit
    (--conf, the cluster's spark-defaults.conf) win over the defaults below, which fill only what is unset;
    `conf` (the caller's own) wins over everything.
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.appName(app_name)
    # Under spark-submit (PYSPARK_GATEWAY_PORT is set) the master comes from its --master: never override it.
    if master or "PYSPARK_GATEWAY_PORT" not in os.environ:
        master = master or os.environ.get("SPARK_MASTER", "local[*]")
        builder = builder.master(master)
        if master.startswith("local"):
            # launch-time settings, known before the JVM starts only when we start it ourselves
            builder = (
                builder.config("spark.ui.enabled", "true" if ui_enabled() else "false")
                # Spark's console bar redraws one line with \r; curation.progress logs whole lines instead
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", "2g"))
            )
    for k, v in (conf or {}).items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    _fill_runtime_defaults(spark, given=set(conf or {}))
    spark.sparkContext.setLogLevel(os.environ.get("SPARK_LOG_LEVEL", "WARN"))
    log.info("spark session %s master=%s", spark.version, spark.sparkContext.master)
    url = spark.sparkContext.uiWebUrl
    if url:  # once per session: the getActiveSession path above returns before this line
        log.info("Spark UI: %s (stages, tasks, SQL plans of this run)", url)
    return spark


def ui_enabled() -> bool:
    """The Spark UI is on for local sessions we start, except under pytest (PYTEST_CURRENT_TEST: many
    sessions, ports 4040+ on a shared machine) or with PHI_SPARK_UI=0. Under spark-submit, the cluster's
    settings decide."""
    flag = os.environ.get("PHI_SPARK_UI", "").strip().lower()
    if flag in ("0", "false", "no", "off"):
        return False
    if flag in ("1", "true", "yes", "on"):
        return True
    return "PYTEST_CURRENT_TEST" not in os.environ


def _fill_runtime_defaults(spark, given: set[str]) -> None:
    """SQL settings the curation job wants, set only where neither the caller, spark-submit --conf nor
    spark-defaults.conf set them. On `local[*]` a fixed, small shuffle partition count (one machine); on a
    cluster adaptive query execution sizes partitions from the data and the cluster's cores instead."""
    submitted = spark.sparkContext.getConf()
    wanted = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": "1000",
    }
    if spark.sparkContext.master.startswith("local"):
        wanted["spark.sql.shuffle.partitions"] = os.environ.get("SPARK_SHUFFLE_PARTITIONS", "8")
    else:
        wanted["spark.sql.adaptive.enabled"] = "true"
        wanted["spark.sql.adaptive.coalescePartitions.enabled"] = "true"
    for key, value in wanted.items():
        if key not in given and not submitted.contains(key):
            spark.conf.set(key, value)


def ship_file(spark, path: str) -> None:
    """Make a driver-side file (a model, an index) available on every executor via SparkFiles."""
    spark.sparkContext.addFile(str(path))


def local_copy(path: str) -> str:
    """On a worker: the SparkFiles copy of a shipped file if there is one, else the path as given
    (a shared filesystem, or local mode)."""
    import os

    try:
        from pyspark import SparkFiles

        candidate = SparkFiles.get(os.path.basename(path))
        if os.path.isfile(candidate):
            return candidate
    except Exception:  # not inside a Spark job: plain path
        pass
    return path


class DictSum:
    """AccumulatorParam summing dicts of numbers (per-step seconds, records read per file, from every
    task)."""

    def zero(self, value):
        return {}

    def addInPlace(self, a, b):
        for k, v in b.items():
            a[k] = a.get(k, 0) + v
        return a
