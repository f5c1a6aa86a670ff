"""Progress lines for long work: one log line per interval, from a small daemon thread (Spark jobs) or from
the loop that does the work (`Ticker`, for plain Python loops such as a mixture build's tokenizing).

    curation run: python steps · files 3/10 (30%) · 1,234 docs (56 docs/s) · elapsed 0:22 · ETA 0:51
        · stage 4 tasks 3/10

`SparkProgress` reads Spark's status tracker (active stages: tasks done / total) and what the job hands it
per phase: a total (e.g. input files, one task each) and callables for the units done and the documents
done (accumulators: a task adds to them when it ends, so counts move file by file). The ETA is the current
phase's, from its units done so far. The interval is `PHI_PROGRESS_INTERVAL` seconds (default 30; 0 turns
the lines off); the CLIs' `--progress-interval` overrides it. Lines go to the `curation.progress` logger.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("curation.progress")

DEFAULT_INTERVAL_S = 30.0


def progress_interval(given: float | None = None) -> float:
    """Seconds between progress lines: `given`, else $PHI_PROGRESS_INTERVAL, else 30; 0 = no lines."""
    if given is not None:
        value = given
    else:
        raw = os.environ.get("PHI_PROGRESS_INTERVAL", "")
        try:
            value = float(raw) if raw.strip() else DEFAULT_INTERVAL_S
        except ValueError:
            raise ValueError(f"PHI_PROGRESS_INTERVAL={raw!r}: expected seconds (a number)") from None
    if value < 0:
        raise ValueError(f"progress interval must be >= 0 seconds, got {value}")
    return value


def clock(seconds: float) -> str:
    """0:07, 12:34, 1:02:03."""
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def rate_line(
    what: str,
    elapsed: float,
    done: int | None = None,
    total: int | None = None,
    docs: int | None = None,
    unit: str = "files",
    extra: str = "",
) -> str:
    """`what · unit done/total (p%) · docs (docs/s) · elapsed · ETA · extra` (parts without data left out;
    without `docs`, the rate is of `unit`)."""
    parts = [what]
    rate = f", {done / max(elapsed, 1e-9):,.0f} {unit}/s" if done is not None and docs is None else ""
    if done is not None and total:
        parts.append(f"{unit} {done:,}/{total:,} ({100 * done / total:.0f}%{rate})")
    elif done is not None:
        parts.append(f"{unit} {done:,}" + (f" ({rate[2:]})" if rate else ""))
    if docs is not None:
        parts.append(f"{docs:,} docs ({docs / max(elapsed, 1e-9):,.0f} docs/s)")
    parts.append(f"elapsed {clock(elapsed)}")
    if done and total and done < total:
        parts.append(f"ETA {clock(elapsed / done * (total - done))}")
    if extra:
        parts.append(extra)
    return " · ".join(parts)


@dataclass
class _Phase:
    name: str
    started: float
    total: int | None = None
    done: Callable[[], int] | None = None
    docs: Callable[[], int] | None = None
    unit: str = "files"


class SparkProgress:
    """A progress reporter for a Spark job; a context manager (the thread runs inside the block).

        with SparkProgress(spark, "curation run") as progress:
            progress.phase("python steps", total=len(files), done=lambda: len(acc.value), docs=...)
            ...                             # the phase's Spark jobs
            progress.phase("exact_dedup")   # stage tasks only

    Each line names the phase, its units and documents done, and the active Spark stages' tasks done/total.
    Leaving the block stops the thread and logs one final line."""

    def __init__(self, spark, what: str, interval: float | None = None):
        self.spark, self.what = spark, what
        self.interval = progress_interval(interval)
        self.t0 = time.perf_counter()
        self._phase = _Phase("starting", self.t0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lines = 0  # progress lines logged (final line included)

    def phase(
        self,
        name: str,
        total: int | None = None,
        done: Callable[[], int] | None = None,
        docs: Callable[[], int] | None = None,
        unit: str = "files",
    ) -> None:
        self._phase = _Phase(name, time.perf_counter(), total, done, docs, unit)

    def __enter__(self) -> SparkProgress:
        if self.interval > 0:
            self._thread = threading.Thread(target=self._loop, name="phi-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            state = "failed" if exc_type is not None else "done"
            self._emit(f"{self.what}: {state}", final=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._emit(self.what)
            except Exception as e:  # noqa: BLE001 -- a progress line must never fail the job
                log.debug("progress line failed: %s", e)

    def _emit(self, what: str, final: bool = False) -> None:
        ph = self._phase
        now = time.perf_counter()
        done = _call(ph.done)
        docs = _call(ph.docs)
        if final:
            line = rate_line(what, now - self.t0, extra=f"last phase {ph.name}")
        else:
            line = rate_line(
                f"{what}: {ph.name}", now - ph.started, done, ph.total, docs, ph.unit, self._stages()
            )
        log.info("%s", line)
        self.lines += 1

    def _stages(self) -> str:
        """`stage 4 tasks 3/10` for each active stage (the status tracker's view, empty between jobs)."""
        tracker = self.spark.sparkContext.statusTracker()
        out = []
        for sid in sorted(tracker.getActiveStageIds()):
            info = tracker.getStageInfo(sid)
            if info is not None:
                out.append(f"stage {sid} tasks {info.numCompletedTasks}/{info.numTasks}")
        return ", ".join(out)


def _call(fn: Callable[[], int] | None) -> int | None:
    if fn is None:
        return None
    try:
        return int(fn())
    except Exception:  # noqa: BLE001 -- e.g. an accumulator read while the job is being torn down
        return None


class Ticker:
    """Progress of a plain Python loop: call `update` as work is done; a line is logged when `interval`
    seconds passed since the last one (and by `finish`, always).

        t = Ticker("mixture source web", total=docs_expected, unit="docs")
        for batch in ...: t.update(done_docs, extra=f"{tokens:,} tokens")
        t.finish(done_docs)"""

    def __init__(
        self, what: str, total: int | None = None, unit: str = "docs", interval: float | None = None
    ):
        self.what, self.total, self.unit = what, total, unit
        self.interval = progress_interval(interval)
        self.t0 = self._last = time.perf_counter()
        self.lines = 0

    def elapsed(self) -> float:
        return max(time.perf_counter() - self.t0, 1e-9)

    def update(self, done: int, extra: str = "") -> None:
        now = time.perf_counter()
        if self.interval > 0 and now - self._last >= self.interval:
            self._last = now
            self._log(done, now, extra)

    def finish(self, done: int, extra: str = "") -> None:
        self._log(done, time.perf_counter(), extra)

    def _log(self, done: int, now: float, extra: str) -> None:
        elapsed, total = now - self.t0, self.total or None
        log.info("%s", rate_line(self.what, elapsed, done, total, None, self.unit, extra))
        self.lines += 1


def add_progress_argument(parser) -> None:
    """The CLIs' `--progress-interval SECONDS` (None when not given: $PHI_PROGRESS_INTERVAL, else 30)."""
    parser.add_argument(
        "--progress-interval",
        type=float,
        metavar="SECONDS",
        help="log a progress line every SECONDS (default $PHI_PROGRESS_INTERVAL or 30; 0 = none)",
    )
