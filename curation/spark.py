"""SparkSession for curation jobs: reuse the one spark-submit created, or build a local one."""
from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)


def get_spark(app_name: str = "phi-curation", master: str | None = None, conf: dict[str, str] | None = None):
    """Return the active SparkSession (spark-submit / cluster) or build a local one.

    The local defaults fix the pitfalls seen on these machines: workers must use this interpreter (so
    they see pyarrow and the project), and the driver binds to loopback.
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
        builder = builder.master(master or os.environ.get("SPARK_MASTER", "local[*]"))
    builder = (builder
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", "1000")
               .config("spark.sql.shuffle.partitions", os.environ.get("SPARK_SHUFFLE_PARTITIONS", "8"))
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", "2g"))
               .config("spark.python.worker.reuse", "true"))
    for k, v in (conf or {}).items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("SPARK_LOG_LEVEL", "WARN"))
    log.info("spark session %s master=%s", spark.version, spark.sparkContext.master)
    return spark


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
