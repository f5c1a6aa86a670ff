"""One writer per corpus: a lease file held from a run's plan to its publish, so two runs that would
publish the same dataset root (nightly_refresh, a manual web_curation, a second manual one) never
interleave, and the second plans on top of what the first published.

    <root>/_writer.lock     {"holder": "<dag_id>/<run_id>", "acquired_at", "expires_at"}

The DAGs take it in a setup task (`writer_lock`) and give it back in its teardown (`writer_unlock`), which
Airflow runs whatever happened between them. A holder that is retried or re-planned finds its own lease
(re-entrant). A lease is stale after `ttl` (longer than any run's tasks may take, given their
execution_timeouts): a run whose teardown never ran (the scheduler died) blocks the corpus for at most
that long, and the run that takes it over logs whose lease it broke. Check-and-take happens under an
flock on `<root>/_writer.lock.guard`, so two runs cannot both take a free or stale lease.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

log = logging.getLogger(__name__)

LOCK = "_writer.lock"


class CorpusBusy(RuntimeError):
    """Another run holds the corpus's writer lease."""


class WriterLock:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.path = self.root / LOCK

    @contextlib.contextmanager
    def _guard(self):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock.guard"), "w") as g:
            fcntl.flock(g, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(g, fcntl.LOCK_UN)

    def holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (
            json.JSONDecodeError
        ):  # a torn write cannot happen (rename), but never trust a lock file blindly
            return {"holder": "<unreadable lock file>", "expires_at": "1970-01-01T00:00:00+00:00"}

    def _try(self, holder: str, ttl: timedelta) -> dict | None:
        """Take the lease if it is free, ours or stale; else return who holds it."""
        now = datetime.now(UTC)
        with self._guard():
            cur = self.holder()
            if cur is not None and cur["holder"] != holder:
                if datetime.fromisoformat(cur["expires_at"]) > now:
                    return cur
                log.warning(
                    "%s: breaking the stale writer lease of %s (expired %s)",
                    self.root,
                    cur["holder"],
                    cur["expires_at"],
                )
            lease = {"holder": holder, "acquired_at": now.isoformat(), "expires_at": (now + ttl).isoformat()}
            tmp = self.path.with_name(f".{LOCK}.{uuid.uuid4().hex[:8]}")
            tmp.write_text(json.dumps(lease))
            os.replace(tmp, self.path)
        return None

    def acquire(self, holder: str, ttl: timedelta, wait: timedelta, poll: float = 10.0) -> dict:
        """Wait up to `wait` for the lease; CorpusBusy names the holder when it is still taken."""
        deadline = time.monotonic() + wait.total_seconds()
        while True:
            busy = self._try(holder, ttl)
            if busy is None:
                log.info("%s: writer lease taken by %s", self.root, holder)
                return self.holder()
            if time.monotonic() >= deadline:
                raise CorpusBusy(
                    f"{self.root}: another run is writing this corpus ({busy['holder']}, since "
                    f"{busy.get('acquired_at')}, lease until {busy['expires_at']}); waited {wait}"
                )
            log.info("%s: waiting for %s to publish", self.root, busy["holder"])
            time.sleep(poll)

    def release(self, holder: str) -> bool:
        """Give the lease back; a lease someone else holds now (ours went stale and was taken) is left."""
        with self._guard():
            cur = self.holder()
            if cur is None or cur["holder"] != holder:
                return False
            self.path.unlink()
        log.info("%s: writer lease released by %s", self.root, holder)
        return True
