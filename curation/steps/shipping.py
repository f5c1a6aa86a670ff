"""Ship a driver-side file (model, index) to Spark workers at most once per SparkContext.

Spark refuses to register two different paths under the same file name, and re-adding the same path
is wasted work, so steps that ship files go through `ship_once` instead of calling addFile directly.
"""

from __future__ import annotations

import logging
import os

from curation.spark import ship_file

log = logging.getLogger(__name__)


def ship_once(spark, path: str | os.PathLike) -> None:
    """addFile `path` unless a file with the same base name is already registered with this context."""
    name = os.path.basename(str(path))
    try:
        registered = {os.path.basename(str(p)) for p in spark.sparkContext.listFiles}
    except AttributeError:  # contexts without listFiles: shipping twice is only wasted work
        registered = set()
    if name in registered:
        log.info("%s already shipped to workers", name)
        return
    ship_file(spark, str(path))
    log.info("shipped %s to workers", path)
