"""Starting and stopping the stack's processes, and finding every process that belongs to it.

Each service starts in its own session (setsid), so its pid is also its process-group id: stopping a service
signals the whole group (pitfall P12: Airflow's and Spark's children survive a signal to the parent alone).
Every process also carries PHI_STACK_RUN=<id> in its environment, inherited by whatever it starts (task
supervisors, spark-submit drivers, Spark executors): after the groups are stopped, a scan of /proc for that
marker finds anything that left its group, so `down` stops exactly what `up` started and nothing else.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)
MARKER = "PHI_STACK_RUN"


@dataclass
class Service:
    name: str
    pid: int
    argv: list[str]
    log: str

    def alive(self) -> bool:
        return pid_alive(self.pid)

    def as_dict(self) -> dict:
        return asdict(self)


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def start(name: str, argv: list[str], env: dict[str, str], logs_dir: Path, cwd: Path) -> Service:
    """Start one service in a new session, stdout+stderr to `<logs_dir>/<name>.log`."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    path = logs_dir / f"{name}.log"
    with open(path, "ab") as out:
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    log.info("started %s (pid %d): %s", name, proc.pid, " ".join(argv))
    return Service(name, proc.pid, argv, str(path))


def marked(run_id: str) -> list[int]:
    """Pids of live processes whose environment carries this stack run's marker."""
    needle = f"{MARKER}={run_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0") and pid_alive(int(entry.name)):
                found.append(int(entry.name))
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return found


def group_members(pgids: set[int]) -> list[int]:
    """Pids of live processes whose process group is one of `pgids`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) in pgids:
            found.append(int(entry.name))
    return found


def stack_pids(services: list[Service], run_id: str) -> list[int]:
    """Every live process of the stack: its services' process groups, and whatever carries its marker
    (task processes start their own sessions). Both are needed: a process that sets its title
    (setproctitle) overwrites the environment /proc shows, so the marker alone misses Airflow's daemons."""
    return sorted(set(group_members({s.pid for s in services})) | set(marked(run_id)))


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_group(pgid: int, grace_s: float = 20.0) -> bool:
    """Stop one service's process group (SIGTERM, then SIGKILL after `grace_s`); True when it is gone."""
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and group_members({pgid}):
        time.sleep(0.5)
    _signal_group(pgid, signal.SIGKILL)
    time.sleep(0.2)
    return not group_members({pgid})


def stop(services: list[Service], run_id: str, grace_s: float = 20.0) -> list[int]:
    """SIGTERM each service's process group (in reverse start order), wait up to `grace_s`, then SIGKILL
    what is left, by group and by marker. Returns the pids that still live afterwards (empty on success)."""
    for svc in reversed(services):
        if svc.alive():
            _signal_group(svc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and stack_pids(services, run_id):
        time.sleep(0.5)
    for svc in services:
        _signal_group(svc.pid, signal.SIGKILL)
    for pid in marked(run_id):
        log.warning("pid %d of the stack outlived its group; killing it", pid)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.5)
    return stack_pids(services, run_id)


def _sum_field(pids: list[int], file: str, field: str) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
                if line.startswith(field):
                    total += int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def rss_bytes(pids: list[int]) -> int:
    """Resident memory of these processes (VmRSS), summed; processes that exited meanwhile count 0.
    Pages shared between forked processes count once per process: an upper bound (see pss_bytes)."""
    return _sum_field(pids, "status", "VmRSS:")


def pss_bytes(pids: list[int]) -> int:
    """Proportional set size summed: shared pages split among their sharers (what the processes cost)."""
    return _sum_field(pids, "smaps_rollup", "Pss:")


def log_tail(path: str | Path, lines: int = 30) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no log at {path})"
