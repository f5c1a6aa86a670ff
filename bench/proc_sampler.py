"""Sample a process tree's memory and I/O while a benchmark step runs (psutil, one background thread).

Every `interval` seconds the root process and all its descendants are read: RSS and /proc/<pid>/io. Each
process is classified when first seen (`classify`), and again while it is `other` (the pid of Spark's
launcher script becomes the JVM's when the script exec()s java):

    driver          the root: the CLI's Python process (`python -m curation ...`), or the benchmark's own
                    process for a step run in-process (the Airflow task body)
    jvm             Spark's JVM (local mode: driver and executors in one process)
    pyspark_daemon  `python -m pyspark.daemon` started by the JVM (forks the workers)
    python_worker   a pyspark worker: a child of the daemon, or `pyspark.worker` started directly
    other           anything else (e.g. a fasttext training subprocess)

Reported: the peak RSS of the largest process of each class ("one Python worker" = the largest worker),
the peak of the tree's summed RSS, and I/O summed over the tree from each pid's last sample (minus its
first sample for processes that existed before sampling started, e.g. the benchmark itself). I/O counters:
`rchar`/`wchar` (bytes passed to read/write syscalls: files whether or not the page cache served them, plus
pipes and sockets, e.g. Arrow batches between the JVM and its Python workers) and `read_bytes`/`write_bytes`
(what reached the block layer: near 0 for reads when the page cache holds the data). Up to one interval
of I/O at the end of a short-lived process can be missed.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

CLASSES = ("driver", "jvm", "pyspark_daemon", "python_worker", "other")
IO_FIELDS = ("rchar", "wchar", "read_bytes", "write_bytes")


def classify(cmdline: list[str], name: str, parent_class: str | None) -> str:
    """The class of a non-root process from its command line, its name and its parent's class."""
    joined = " ".join(cmdline)
    exe = os.path.basename(cmdline[0]) if cmdline else name
    if exe == "java" or name == "java" or "org.apache.spark" in joined:
        return "jvm"
    if (
        "pyspark.daemon" in joined
    ):  # `-m pyspark.daemon pyspark.worker`; forked workers keep that command line
        return "python_worker" if parent_class in ("pyspark_daemon", "python_worker") else "pyspark_daemon"
    if "pyspark.worker" in joined:  # spark.python.use.daemon=false: the JVM starts each worker itself
        return "python_worker"
    return "other"


@dataclass
class _Proc:
    cls: str
    peak_rss: int = 0
    io_first: dict[str, int] = field(default_factory=dict)
    io_last: dict[str, int] = field(default_factory=dict)


def _io(p: psutil.Process) -> dict[str, int]:
    try:
        c = p.io_counters()
    except (psutil.Error, AttributeError):
        return {}
    return {
        "rchar": c.read_chars,
        "wchar": c.write_chars,
        "read_bytes": c.read_bytes,
        "write_bytes": c.write_bytes,
    }


class TreeSampler:
    """`with TreeSampler(pid) as s: ...` then `s.summary()`."""

    def __init__(self, root_pid: int, interval: float = 0.05):
        self.root_pid, self.interval = root_pid, interval
        self.procs: dict[int, _Proc] = {}
        self.tree_peak_rss = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._started_at = time.monotonic()
        self._preexisting: set[int] = set()

    def __enter__(self) -> TreeSampler:
        self._preexisting = {self.root_pid}
        try:
            self._preexisting |= {c.pid for c in psutil.Process(self.root_pid).children(recursive=True)}
        except psutil.Error:
            pass
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()  # the in-process steps' final counters (a finished subprocess is gone: no-op)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def _class_of(self, p: psutil.Process) -> str:
        if p.pid == self.root_pid:
            return "driver"
        try:
            parent = self.procs.get(p.ppid())
            if parent is not None:
                parent_cls = parent.cls
            else:  # not seen yet (psutil lists a tree in no guaranteed order): classify the parent itself
                pp = p.parent()
                parent_cls = self._class_of(pp) if pp is not None and pp.pid != p.pid else None
            return classify(p.cmdline(), p.name(), parent_cls)
        except psutil.Error:
            return "other"

    def sample(self) -> None:
        try:
            root = psutil.Process(self.root_pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        total = 0
        for p in tree:
            try:
                rss = p.memory_info().rss
            except psutil.Error:
                continue
            rec = self.procs.get(p.pid)
            if rec is None:
                rec = self.procs[p.pid] = _Proc(self._class_of(p))
            elif rec.cls == "other":  # spark-submit's shell script exec()s the JVM under the same pid
                rec.cls = self._class_of(p)
            io = _io(p)
            if io:
                rec.io_first = rec.io_first or (io if p.pid in self._preexisting else {})
                rec.io_last = io
            rec.peak_rss = max(rec.peak_rss, rss)
            total += rss
        self.tree_peak_rss = max(self.tree_peak_rss, total)
        self.samples += 1

    def summary(self) -> dict:
        """Peak RSS (MB) per class (largest process), tree peak, process counts, I/O bytes per counter."""
        mb = 2**20
        out: dict = {f"{c}_peak_mb": 0 for c in CLASSES}
        counts = dict.fromkeys(CLASSES, 0)
        io = dict.fromkeys(IO_FIELDS, 0)
        for rec in self.procs.values():
            out[f"{rec.cls}_peak_mb"] = max(out[f"{rec.cls}_peak_mb"], round(rec.peak_rss / mb))
            counts[rec.cls] += 1
            for k in IO_FIELDS:
                io[k] += rec.io_last.get(k, 0) - rec.io_first.get(k, 0)
        out["largest_process_peak_mb"] = max((round(r.peak_rss / mb) for r in self.procs.values()), default=0)
        out["tree_peak_mb"] = round(self.tree_peak_rss / mb)
        out["processes"] = counts
        out["io"] = io
        out["samples"] = self.samples
        return out


def run_sampled(
    argv: list[str], log_path: Path, env: dict | None = None, cwd: str | Path | None = None, interval=0.05
) -> dict:
    """Run `argv` with its output in `log_path`, sampling its tree. Returns the summary plus `seconds`
    and `returncode`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        with TreeSampler(proc.pid, interval) as sampler:
            proc.wait()
    return {"seconds": round(time.perf_counter() - t0, 2), "returncode": proc.returncode, **sampler.summary()}


def in_process_sampled(fn, interval: float = 0.05) -> tuple[object, dict]:
    """Call `fn()` in this process, sampling this process (its RSS and its I/O during the call)."""
    t0 = time.perf_counter()
    with TreeSampler(os.getpid(), interval) as sampler:
        result = fn()
    return result, {"seconds": round(time.perf_counter() - t0, 2), **sampler.summary()}
