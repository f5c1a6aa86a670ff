"""Commit overhead of an Iceberg table (curation/tables): time from the last data file written to the snapshot
visible to a new reader, at 10, 100 and 1,000 data files, on a local warehouse and on an S3 warehouse (moto's
server on localhost: the S3 protocol, not S3's latency).

For each (warehouse, file count) a fresh table gets a first run committed (so the measured commit is a steady-
state append onto a table with history), then the measured run: N small parquet files of real documents are
written into a fresh attempt folder, the clock starts, `commit_version` runs (schema check of every footer,
add_files reading every footer for stats, manifest + manifest list + metadata written, catalog row swapped,
tag), and a separate reader (its own catalog connection) polls until its current snapshot carries the run id.

    python bench/iceberg_commit.py --files 10 100 1000 --repeat 3 --json /tmp/iceberg_commit.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from tables_helpers import moto_s3, real_docs, to_table, warehouse_config, write_files

from curation.paths import shared_data_dir
from curation.tables import TablesConfig, Warehouse, commit_version
from curation.tables.summary import RUN_ID


def measure(config: TablesConfig, name: str, n_files: int, docs: list[dict]) -> dict:
    wh = Warehouse(config)
    table = wh.ensure(name, to_table(docs[:1]).schema)
    commit_version(table, write_files(table, "warmup", [docs[:5]]), "warmup")
    batches = [[docs[k % len(docs)]] for k in range(n_files)]  # one document per file: metadata cost only
    files = write_files(table, "measured", batches)
    reader = Warehouse(config)  # its own catalog engine, as another process would have
    t0 = time.perf_counter()
    commit_version(table, files, "measured")
    t_commit = time.perf_counter() - t0
    while True:
        snap = reader.table(name).current_snapshot()
        if snap is not None and snap.summary.get(RUN_ID) == "measured":
            break
        time.sleep(0.005)
    t_visible = time.perf_counter() - t0
    return {"files": n_files, "commit_s": round(t_commit, 3), "visible_s": round(t_visible, 3)}


def run(kind: str, counts: list[int], repeat: int, docs: list[dict], tmp: Path) -> list[dict]:
    rows = []
    for n in counts:
        runs = []
        for r in range(repeat):
            where = tmp / f"{kind}-{n}-{r}"
            where.mkdir()
            runs.append(measure(warehouse_config(kind, where), f"bench_{n}_{r}", n, docs))
        med = statistics.median(x["visible_s"] for x in runs)
        rows.append(
            {
                "warehouse": kind,
                "files": n,
                "visible_s_median": med,
                "commit_s_median": statistics.median(x["commit_s"] for x in runs),
                "ms_per_file": round(1000 * med / n, 2),
                "runs": runs,
            }
        )
        print(
            f"{kind:<6} {n:>5} files: visible after {med:.3f} s (median of {repeat}),"
            f" {1000 * med / n:.2f} ms/file",
            flush=True,
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--warehouses", nargs="+", default=["local", "s3"], choices=["local", "s3"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    docs = real_docs(shared_data_dir(), 200)
    results = []
    with tempfile.TemporaryDirectory(prefix="iceberg-bench-") as tmp:
        tmp = Path(tmp)
        if "local" in args.warehouses:
            results += run("local", args.files, args.repeat, docs, tmp)
        if "s3" in args.warehouses:
            with moto_s3(tmp) as _endpoint:
                results += run("s3", args.files, args.repeat, docs, tmp)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
