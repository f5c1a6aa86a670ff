"""Verification figures for textbook synthesis, no teacher needed (seconds):

1. math checker precision on hand-written items with known answers (tests/fixtures/synthesis/math_items.jsonl,
   GSM8K-train-style, not the GSM8K test set): correct solutions accepted, corrupted final answers rejected;
2. the code sandbox against hostile snippets: contained (reported as a failure, within limits) and the host
   untouched (a sentinel file beside the sandbox survives unread), with the wall time of each run.

  python bench/synthesis_checks.py [--json out/bench/synthesis_checks.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from curation.paths import REPO_ROOT
from synthesis.textbook.verify.precision import score_items
from synthesis.textbook.verify.sandbox import run_python


def hostile_snippets(sentinel: Path) -> dict[str, str]:
    return {
        "infinite loop": "while True:\n    pass",
        "fork bomb (os.fork)": "import os\nwhile True:\n    os.fork()",
        "fork bomb (subprocess)": (
            "import subprocess, sys\nwhile True:\n    subprocess.Popen([sys.executable])"
        ),
        "10 GB allocation": "x = bytearray(10 * 1024 ** 3)",
        "network (socket to 1.1.1.1:53)": (
            "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)"
        ),
        "network (raw _socket)": "import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', 22))",
        "read file outside workdir": f"print(open({str(sentinel)!r}).read())",
        "read project file": f"print(open({str(REPO_ROOT / 'pyproject.toml')!r}).read())",
        "delete files outside workdir": f"import shutil\nshutil.rmtree({str(sentinel.parent)!r})",
        "print forever (disk fill)": "while True:\n    print('x' * 10000)",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    score = score_items(REPO_ROOT / "tests" / "fixtures" / "synthesis" / "math_items.jsonl")
    result = {
        "math_checker": {
            "items": score.items,
            "correct_accepted": score.correct_accepted,
            "corrupted": score.corrupted,
            "corrupted_rejected": score.corrupted_rejected,
            "accuracy": round(score.accuracy, 4),
            "failures": score.failures,
        },
        "sandbox": [],
    }
    print(
        f"math checker: {score.correct_accepted}/{score.items} correct accepted, "
        f"{score.corrupted_rejected}/{score.corrupted} corrupted rejected, accuracy {score.accuracy:.4f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        sentinel = Path(tmp) / "host" / "secret.txt"
        sentinel.parent.mkdir()
        sentinel.write_text("TOP-SECRET")
        print(
            "\n| snippet | audit hook | contained | reason | seconds | host untouched | last error line |\n"
            "|---|---|---|---|---|---|---|"
        )
        # with the audit hook (production) and without it (the operating-system layers alone)
        for hook in (True, False):
            for name, code in hostile_snippets(sentinel).items():
                r = run_python(code, timeout_s=3, memory_mb=512, audit_hook=hook)
                untouched = (
                    sentinel.is_file()
                    and sentinel.read_text() == "TOP-SECRET"
                    and "TOP-SECRET" not in r.stdout
                    and "[project]" not in r.stdout
                )
                last = (r.stderr.strip().splitlines() or [""])[-1][:90]
                result["sandbox"].append(
                    {
                        "snippet": name,
                        "audit_hook": hook,
                        "contained": not r.passed,
                        "reason": r.reason,
                        "seconds": r.seconds,
                        "host_untouched": untouched,
                        "error": last,
                        "isolation": r.isolation,
                    }
                )
                print(
                    f"| {name} | {'on' if hook else 'off'} | {not r.passed} | {r.reason} | {r.seconds:.2f} | "
                    f"{untouched} | `{last}` |"
                )
        ok = run_python("assert sum(range(10)) == 45")
        result["sandbox_passing_run_s"] = ok.seconds
        print(
            f"\na passing snippet: passed={ok.passed} in {ok.seconds:.2f}s;"
            f" isolation: {', '.join(ok.isolation)}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
