"""bench/proc_sampler.py: how the scale and gate-memory benchmarks attribute memory and I/O to the processes
of a Spark CLI's tree (the CLI's Python driver, the JVM, pyspark's daemon and its forked workers)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from proc_sampler import classify, run_sampled  # noqa: E402

PY = "/work/main/.venv/bin/python"
# Command lines as `ps` shows them for a local[2] `python -m curation run` (Spark 4.x)
JVM = ["/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "-cp", "/x/pyspark/conf:/x/jars/*", "-Xmx2g",
       "org.apache.spark.deploy.SparkSubmit", "pyspark-shell"]  # fmt: skip
DAEMON = [PY, "-m", "pyspark.daemon", "pyspark.worker"]


def test_daemon_and_its_forked_workers_are_told_apart_by_parent():
    """The daemon and the workers it forks share one command line (which names pyspark.worker too): only
    the parent says which is which, so 'one Python worker' never means the daemon."""
    assert classify(JVM, "java", "driver") == "jvm"
    assert classify(DAEMON, "python", "jvm") == "pyspark_daemon"
    assert classify(DAEMON, "python", "pyspark_daemon") == "python_worker"
    assert classify([PY, "-m", "pyspark.worker"], "python", "jvm") == "python_worker"  # no daemon
    assert classify([PY, "-m", "curation.edu.fasttext_subprocess", "{}"], "python", "driver") == "other"


def test_tree_sampling_attributes_peak_memory_and_io_to_the_right_process(tmp_path):
    """A real two-process tree: the child holds 150 MB and writes 8 MB; the root does neither."""
    child = (
        "import time; x = bytearray(150 * 2**20); x[::4096] = b'1' * len(x[::4096]); "
        f"open({str(tmp_path / 'out.bin')!r}, 'wb').write(bytes(8 * 2**20)); time.sleep(1.0)"
    )
    root = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}], check=True)"
    run = run_sampled([sys.executable, "-c", root], tmp_path / "log.txt", interval=0.05)
    assert run["returncode"] == 0
    assert run["processes"]["driver"] == 1 and run["processes"]["other"] == 1
    assert run["other_peak_mb"] >= 150 > run["driver_peak_mb"]
    assert run["largest_process_peak_mb"] == run["other_peak_mb"]
    assert run["tree_peak_mb"] >= run["other_peak_mb"] + run["driver_peak_mb"] - 1
    assert run["io"]["wchar"] >= 8 * 2**20
