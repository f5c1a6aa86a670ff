"""The pieces of the 7-night soak on the real stack (tests/dags/test_stack_soak.py): crawl segments cut from
the shared crawl data and landed where nightly_refresh looks, the faults planted along the way (a corrupt gzip
member, a killed process tree), the checks every night must pass, and the night's figures (out/stack/soak.md).
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pyarrow.parquet as pq

from curation.contract import Manifest

# ---------------------------------------------------------------- segments


def read_jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def per_line_members(rows: list[dict]) -> tuple[bytes, list[tuple[int, int]]]:
    """JSONL with one gzip member per line (as crawl files carry one per record); and each member's span."""
    out, spans = bytearray(), []
    for row in rows:
        start = len(out)
        out += gzip.compress((json.dumps(row) + "\n").encode(), mtime=0)
        spans.append((start, len(out)))
    return bytes(out), spans


class Landing:
    """The folder new crawl segments land in (nightly_refresh's `segment_globs`), and what landed when."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.corrupt_lines: dict[str, int] = {}  # segment -> lines lost in its damaged member

    @property
    def glob(self) -> str:
        return str(self.folder / "*.gz")

    def jsonl(self, name: str, rows: list[dict]) -> Path:
        path = self.folder / f"{name}.jsonl.gz"
        path.write_bytes(per_line_members(rows)[0])
        return path

    def duplicate(self, src: Path, name: str) -> Path:
        """The same bytes landed again under another name (a re-delivered segment)."""
        path = self.folder / f"{name}{''.join(src.suffixes)}"
        path.write_bytes(src.read_bytes())
        return path

    def corrupt(self, name: str, rows: list[dict], line: int) -> Path:
        """A segment whose `line`-th gzip member has bytes flipped in its deflate data (fails its CRC)."""
        data, spans = per_line_members(rows)
        start, end = spans[line]
        mid = start + 10 + (end - start - 18) // 2  # inside the deflate stream: past the header, before crc
        damaged = bytearray(data)
        for k in range(mid, min(mid + 4, end - 8)):
            damaged[k] ^= 0xFF
        path = self.folder / f"{name}.jsonl.gz"
        path.write_bytes(bytes(damaged))
        self.corrupt_lines[str(path)] = 1
        return path

    def warc_part(self, src: Path, name: str, part: int, parts: int) -> Path:
        """Records `part` of `parts` of a per-record-gzipped WARC, cut at gzip member boundaries."""
        from curation.ingest.gzmembers import scan_members

        with open(src, "rb") as fh:
            members = [
                m for m in scan_members(fh, lambda head: head.startswith(b"WARC/")) if m.status == "ok"
            ]
            size = -(-len(members) // parts)
            chosen = members[part * size : (part + 1) * size]
            fh.seek(chosen[0].start)
            data = fh.read(chosen[-1].end - chosen[0].start)
        path = self.folder / f"{name}.warc.gz"
        path.write_bytes(data)
        return path


@dataclass
class Inputs:
    """What a run's input segments hold, read with the curation job's own reader (no Spark): the documents
    and the records the reader already rejects (a damaged gzip member: one `corrupt_gzip` row)."""

    segments: list[str]
    doc_ids: dict[str, str] = field(default_factory=dict)  # id -> segment
    ingest_rejects: Counter = field(default_factory=Counter)  # reason -> rows
    rows: int = 0

    @classmethod
    def read(cls, segments: list[Path]) -> Inputs:
        from curation.ingest import IngestConfig, read_documents

        out = cls([str(s) for s in segments])
        for seg in segments:
            for batch in read_documents(str(seg), "auto", IngestConfig()):
                for row in batch.select(["id", "reject_stage", "reject_reason"]).to_pylist():
                    out.rows += 1
                    if row["reject_stage"] is None:
                        assert row["id"] not in out.doc_ids, f"{seg}: id {row['id']} twice in the inputs"
                        out.doc_ids[row["id"]] = str(seg)
                    else:
                        out.ingest_rejects[row["reject_reason"]] += 1
        return out


# ---------------------------------------------------------------- the corpus, checked


@dataclass
class Version:
    root: Path
    version: str

    @property
    def dir(self) -> Path:
        return self.root / self.version

    @property
    def manifest(self) -> Manifest:
        return Manifest.read(self.dir)

    def ids(self) -> list[str]:
        return pq.read_table(self.dir / "data", columns=["id"]).column("id").to_pylist()

    def column(self, name: str) -> list:
        return pq.read_table(self.dir / "data", columns=[name]).column(name).to_pylist()

    def rejects(self) -> list[dict]:
        cols = ["id", "reject_stage", "reject_reason", "reject_detail"]
        files = sorted((self.dir / "rejects").glob("*.parquet"))
        return [r for f in files for r in pq.read_table(f, columns=cols).to_pylist()]

    def text_of(self, doc_id: str) -> str:
        t = pq.read_table(self.dir / "data", columns=["id", "text"], filters=[("id", "=", doc_id)])
        return t.column("text").to_pylist()[0]


def check_version(root: Path, version: str, base: str | None, inputs: Inputs) -> dict:
    """The invariants of one published whole-corpus version built from `inputs` on top of `base`:
    it chains to `base`, holds every document of `base`, no id or text twice, and every input record is in
    it or a reject row with a reason (the counts reconcile with the manifest). Returns its figures."""
    v = Version(root, version)
    m = v.manifest
    m.check()
    assert m.base_version == base, (version, m.base_version, base)
    ids = v.ids()
    assert len(ids) == len(set(ids)) == m.rows, (
        f"{version}: an id twice ({len(ids)} rows, {len(set(ids))} ids)"
    )
    hashes = [h for h in v.column("text_hash") if h is not None]
    assert len(hashes) == len(set(hashes)), f"{version}: a normalised text twice"
    old = set(Version(root, base).ids()) if base else set()
    assert m.base_rows == len(old) and old <= set(ids), f"{version}: documents of {base} lost"
    new = set(ids) - old
    assert new <= set(inputs.doc_ids), (
        f"{version}: documents from nowhere {sorted(new - set(inputs.doc_ids))[:5]}"
    )
    rejects = v.rejects()
    assert len(rejects) == m.rejected_rows and all(r["reject_stage"] and r["reject_reason"] for r in rejects)
    rejected = {r["id"] for r in rejects}
    lost = [i for i in inputs.doc_ids if i not in new and i not in rejected]
    assert not lost, f"{version}: input documents neither kept nor rejected: {lost[:5]}"
    ingest = Counter(r["reject_reason"] for r in rejects if r["reject_stage"] == "ingest")
    assert ingest == inputs.ingest_rejects, (ingest, inputs.ingest_rejects)
    rows_in = m.stages[0].rows_in
    assert rows_in == inputs.rows == len(new) + m.rejected_rows, (
        rows_in,
        inputs.rows,
        len(new),
        m.rejected_rows,
    )
    return {
        "version": version,
        "base_version": base,
        "docs_in": rows_in,
        "kept": len(new),
        "rejected": m.rejected_rows,
        "reasons": dict(Counter(f"{r['reject_stage']}:{r['reject_reason']}" for r in rejects)),
        "corpus_rows": m.rows,
        "kept_ids": new,
    }


def reject_of(root: Path, version: str, doc_id: str) -> dict | None:
    return next((r for r in Version(root, version).rejects() if r["id"] == doc_id), None)


# ---------------------------------------------------------------- faults


def near_copy(text: str) -> str:
    """The text with three words replaced (a near duplicate: 5-gram Jaccard well above 0.8)."""
    words = text.split(" ")
    for k in (12, len(words) // 2, len(words) - 12):
        words[k] = "soak"
    return " ".join(words)


def task_running(api, dag_id: str, run_id: str, task_id: str) -> bool:
    run = api.run(dag_id, run_id)
    assert run["state"] not in ("success", "failed"), f"{run_id} ended before {task_id} could be hit"
    return api.tasks(dag_id, run_id).get(task_id, {}).get("state") == "running"


def descendants(pid: int) -> list[int]:
    """`pid` and every live process below it (by parent pid), parents first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo += children.get(p, [])
    return out


def kill_tree(pid: int) -> list[int]:
    """SIGKILL a service and everything it started (a host dying under it): the killed pids."""
    tree = descendants(pid)
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return tree


def wait_until(predicate, timeout_s: float, what: str, poll_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while not (result := predicate()):
        assert time.monotonic() < deadline, f"never saw {what} in {timeout_s:.0f} s"
        time.sleep(poll_s)
    return result


def spark_worker_running(spark_ui_url: str, app_name: str) -> dict | None:
    """The alive Spark worker running an executor of the active application `app_name`, if any."""
    master = httpx.get(f"{spark_ui_url}/json/", timeout=5).json()
    apps = {a["id"] for a in master.get("activeapps", []) if a["name"] == app_name}
    for w in master.get("workers", []):
        if w["state"] != "ALIVE" or not apps:
            continue
        body = httpx.get(f"{w['webuiaddress']}/json/", timeout=5).json()
        if any(ex["appid"] in apps for ex in body.get("executors", [])):
            return w
    return None


def restart(stack, service: str) -> None:
    """`python -m dags.stack restart SERVICE` on the soak's stack (what an operator runs)."""
    from stack_fixtures import stack_cli

    from curation.paths import REPO_ROOT

    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PHI_STACK_DATA_ROOT": str(stack.datasets)}
    done = stack_cli("restart", service, env=env, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]


def kill_a_spark_worker_mid_job(api, stack, dag_id: str, run: str) -> str:
    """Once the curate job's executors work (the models were shipped to them), SIGKILL the Spark worker
    running one of them, with its executor; start it again for the nights to come. Returns its name."""

    def working() -> dict | None:
        if not task_running(api, dag_id, run, "curate"):
            return None
        from dags.client import ApiError

        try:
            log = api.log(dag_id, run, "curate", try_number=1)
        except ApiError:  # not served yet
            return None
        if "curation.steps.shipping: shipped" not in log:
            return None
        return spark_worker_running(stack.spark_ui_url, "phi-curation")

    worker = wait_until(working, 900, "an executor of the curate job at work", poll_s=1)
    port = int(worker["webuiaddress"].rsplit(":", 1)[1])
    name = f"spark-worker-{stack.spark_worker_ui_ports.index(port) + 1}"
    kill_tree(service_pid(stack.state_file, name))
    restart(stack, name)
    return name


def service_pid(state_file: Path, name: str) -> int:
    services = json.loads(state_file.read_text())["services"]
    return next(s["pid"] for s in services if s["name"] == name)


# ---------------------------------------------------------------- runs, policy, figures


def run_stats(api, dag_id: str, run_id: str) -> dict:
    """Start, end, tasks that ran (not skipped), retries (tries beyond the first) of one finished run."""
    from datetime import datetime

    run = api.run(dag_id, run_id)
    tis = api.tasks(dag_id, run_id).values()
    ran = [t for t in tis if t["state"] in ("success", "failed")]
    start, end = (datetime.fromisoformat(run[k]) for k in ("start_date", "end_date"))
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "state": run["state"],
        "start": start,
        "end": end,
        "wall_s": round((end - start).total_seconds(), 1),
        "tasks_run": len(ran),
        "retries": sum(max(t["try_number"] - 1, 0) for t in ran),
        "task_states": {t["task_id"]: t["state"] for t in tis},
        "task_end": {t["task_id"]: t["end_date"] for t in ran},
    }


def read_alerts(path: Path) -> list[dict]:
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    )


COLUMNS = [
    ("night", "night"),
    ("what", "planted"),
    ("runs", "runs"),
    ("segments_new", "new segments"),
    ("docs_in", "docs in"),
    ("kept", "kept"),
    ("rejected", "rejected"),
    ("wall_s", "wall s"),
    ("tasks_run", "tasks run"),
    ("retries", "retries"),
    ("alerts", "failure alerts"),
    ("late", "deadline alerts"),
    ("corpus_rows", "corpus rows"),
]


def write_report(nights: list[dict], totals: dict, path: Path) -> Path:
    """The soak's figures as JSON (`<path>.json`) and a markdown table (`path`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps({"nights": nights, "totals": totals}, indent=2))
    lines = ["| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for n in nights:
        lines.append("| " + " | ".join(str(n.get(k, "")) for k, _ in COLUMNS) + " |")
    lines += ["", "Totals: " + ", ".join(f"{k} {v}" for k, v in totals.items()), ""]
    path.write_text("\n".join(lines))
    return path
