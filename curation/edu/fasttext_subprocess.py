"""Run `fasttext.train_supervised` in a fresh interpreter.

Why a subprocess: fasttext 0.9.2's DenseMatrix::uniform initialises only the first `thread`/10 of the
input matrix (blockSize = size/10, one block per thread). The rest keeps whatever the allocator returns:
zero pages in a fresh process, but recycled garbage after earlier allocations, which makes a second
training in the same process diverge ("Encountered NaN") or silently differ. A fresh process with
glibc's mmap threshold pinned (MALLOC_MMAP_THRESHOLD_) always gets zeroed pages for the matrix, so training
is deterministic for a seed. It also turns a crash inside fasttext into a clear error.

Usage (internal): python -m curation.edu.fasttext_subprocess '<json: input, output, params>'
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def train_supervised(
    input_path: str | Path, output_path: str | Path, params: dict[str, Any], timeout_s: float | None = None
) -> None:
    job = json.dumps({"input": str(input_path), "output": str(output_path), "params": params})
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "curation.edu.fasttext_subprocess", job],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        hint = " (training diverged: lower fasttext.lr)" if "NaN" in proc.stderr else ""
        raise RuntimeError(
            f"fasttext training on {input_path} failed (exit {proc.returncode}){hint}: " + " | ".join(tail)
        )
    if not Path(output_path).is_file():
        raise RuntimeError(f"fasttext training on {input_path} wrote no model to {output_path}")


def _main(job_json: str) -> int:
    import fasttext

    job = json.loads(job_json)
    fasttext.FastText.eprint = lambda *a, **k: None
    model = fasttext.train_supervised(input=job["input"], verbose=0, **job["params"])
    model.save_model(job["output"])
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
