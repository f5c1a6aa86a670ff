"""Run a project CLI (`python -m curation|synthesis|training ...`) from a task: the DAG runs exactly the
command an engineer runs by hand, its output goes to the task log, and a failure raises with the tail of
the output (the CLIs print their clear errors there)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections import deque

from curation.paths import REPO_ROOT

log = logging.getLogger(__name__)


class CommandFailed(RuntimeError):
    def __init__(self, argv: list[str], returncode: int, tail: str):
        self.argv, self.returncode, self.tail = argv, returncode, tail
        super().__init__(f"`{' '.join(argv)}` exited with {returncode}:\n{tail}")


def run_module(module: str, args: list[str], env: dict[str, str] | None = None, tail_lines: int = 40) -> str:
    """Run `python -m module *args` in the repo root; stream its output to the log; return all of it."""
    argv = [sys.executable, "-m", module, *map(str, args)]
    log.info("running: %s", " ".join(argv))
    lines: list[str] = []
    tail: deque[str] = deque(maxlen=tail_lines)
    with subprocess.Popen(
        argv,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            log.info("%s", line)
            lines.append(line)
            tail.append(line)
        rc = proc.wait()
    if rc != 0:
        raise CommandFailed([module, *map(str, args)], rc, "\n".join(tail))
    return "\n".join(lines)
