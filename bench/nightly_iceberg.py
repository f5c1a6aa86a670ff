"""Nightly cost: one night appended to a >= 200k-document corpus, as an Iceberg append
(curation/tables/nightly.py) and as today's folder-contract append (curation/append.py), side by side in one
run, plus the delta alone.

Corpus: documents composed of real sentences from ../shared/data (bench/near_dedup_corpus.py's sentence pool
and paragraph composer), published as one folder-contract version (4 parquet files) and imported as a table
snapshot (setup, not measured). The night: 5,000 new composed documents plus 50 that repeat a published id and
50 that repeat a published text (both rejected as already published), as a curated delta version (what
`curation run` publishes). Scenarios: `plain` (the night has the corpus's columns) and `edu` (the night brings
edu_score / edu_int: the first scored night; the folder contract rewrites its base then, the table evolves its
schema).

Measured per repeat (local warehouse, one Spark session local[2] started before the clock):
  * iceberg   append_night onto the corpus table (rolled back to the corpus snapshot before each repeat)
  * folder    append_version(delta, base version) into a fresh version of the corpus root
  * delta alone  append_night of the same delta onto an empty table (the reference for O(delta))
Bytes written = bytes of files that are new inodes after the step (hard links cost nothing) plus growth of
files that existed (the SQLite catalog), over the warehouse / corpus root.

    python bench/nightly_iceberg.py --docs 200000 --night 5000 --repeat 2 --curate \
        --json /tmp/nightly_iceberg.json

With --curate, `curation run` over the night's 5,100 documents (as raw JSONL) is timed once: the night's real
cost is curating it plus appending it, and the goal compares that with curating alone.

With --near-index (instead of the appends): the near-dedup band index of the corpus, as a folder (every night
writes a whole new version, shingles included) and as an Iceberg table (a night appends its kept documents'
rows), both built from the corpus first (setup, not measured); then the same night (`run_near_dedup`, verify
on) through each, once, bytes written under the index root / the index warehouse and wall time:

    python bench/nightly_iceberg.py --docs 100000 --night 5000 --near-index --json /tmp/near_index.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import pyarrow.parquet as pq
from near_dedup_corpus import _composed, _sentences, real_documents
from tables_helpers import to_table

from curation.append import append_version
from curation.contract import DOC_COLUMNS, DatasetRoot, StageCounts, text_hash
from curation.tables import TablesConfig, Warehouse, rollback
from curation.tables.migrate import import_root
from curation.tables.nightly import append_night


def _doc(i: str, text: str) -> dict:
    row = dict.fromkeys(DOC_COLUMNS)
    row.update(id=i, text=text, source_format="jsonl", lang="en", lang_score=1.0, text_hash=text_hash(text))
    return row


def _publish(root: Path, version: str, rows: list[dict], files: int) -> Path:
    n = len(rows)
    step = -(-n // files)
    with DatasetRoot(root).building(version) as b:
        (b.staging / "data").mkdir()
        for k in range(files):
            pq.write_table(
                to_table(rows[k * step : (k + 1) * step]), b.staging / "data" / f"part-{k:05d}.parquet"
            )
        b.manifest(
            dataset="web_curated",
            inputs=[version],
            config={"bench": version},
            rows=n,
            rejected_rows=0,
            stages=[StageCounts(stage="quality", rows_in=n, rows_kept=n, rows_rejected=0)],
        )
    return b.final


def corpus_and_nights(tmp: Path, n_docs: int, n_night: int) -> tuple[Path, dict[str, Path]]:
    pool = _sentences(real_documents())
    rng = random.Random(0)
    base = [_doc(f"base-{i:07d}", _composed(rng, pool)) for i in range(n_docs)]
    _publish(tmp / "corpus", "base", base, files=4)
    night = [_doc(f"night-{i:06d}", _composed(rng, pool)) for i in range(n_night)]
    night += [base[i * 7] for i in range(50)]  # published ids
    night += [{**base[i * 11 + 3], "id": f"night-copy-{i}"} for i in range(50)]  # published texts
    scored = [{**d, "edu_score": round(rng.uniform(0, 5), 3), "edu_int": rng.randint(0, 5)} for d in night]
    return tmp / "corpus" / "base", {
        "plain": _publish(tmp / "nights", "plain", night, files=1),
        "edu": _publish(tmp / "nights", "edu", scored, files=1),
    }


def _inventory(root: Path) -> dict[int, int]:
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            st = os.stat(os.path.join(dirpath, n))
            out[st.st_ino] = st.st_size
    return out


def _written(before: dict[int, int], root: Path) -> int:
    after = _inventory(root)
    return sum(size if ino not in before else max(0, size - before[ino]) for ino, size in after.items())


def _timed(root: Path, fn) -> dict:
    before = _inventory(root)
    t0 = time.perf_counter()
    fn()
    return {"seconds": round(time.perf_counter() - t0, 3), "bytes": _written(before, root)}


def curate_night(spark, tmp: Path, night: Path) -> dict:
    """The reference: `curation run` (ingest, langid, quality filters, exact dedup; the default config) over
    the night's documents as raw JSONL, timed once. Its output is not appended (composed texts hash
    differently once normalized), only its wall time and bytes are the reference."""
    from curation.config import CurationConfig
    from curation.pipeline import run as curate

    raw = tmp / "raw" / "night.jsonl"
    raw.parent.mkdir()
    rows = pq.read_table(night / "data", columns=["id", "text"]).to_pylist()
    raw.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp / "curated"
    out.mkdir()
    return _timed(out, lambda: curate([str(raw)], out, CurationConfig(), run_id="night", spark=spark))


def run(spark, tmp: Path, base_dir: Path, nights: dict[str, Path], repeat: int) -> list[dict]:
    wh = Warehouse(TablesConfig(warehouse=str(tmp / "warehouse")))
    import_root(base_dir.parent, wh, "corpus")
    corpus_sid = wh.table("corpus").current_snapshot().snapshot_id
    # JVM, codegen and Python workers warm (not measured): a night onto an empty table and onto the corpus
    append_night(spark, nights["plain"], wh, "warmup")
    append_night(spark, nights["plain"], wh, "corpus", run_id="warmup")
    rows = []
    for scenario, delta in nights.items():
        delta_bytes = sum(f.stat().st_size for f in (delta / "data").glob("*.parquet"))
        runs = []
        for r in range(repeat):
            rollback(wh.table("corpus"), corpus_sid)
            out = {
                "delta alone": _timed(
                    tmp / "warehouse",
                    lambda d=delta, n=f"alone_{scenario}_{r}": append_night(spark, d, wh, n),
                ),
                "iceberg": _timed(
                    tmp / "warehouse",
                    lambda d=delta, n=f"{scenario}-{r}": append_night(spark, d, wh, "corpus", run_id=n),
                ),
                "folder": _timed(
                    base_dir.parent,
                    lambda d=delta, n=f"{scenario}-{r}": append_version(d, base_dir, base_dir.parent, n),
                ),
            }
            runs.append(out)
            print(
                f"{scenario} #{r}: "
                + ", ".join(f"{k} {v['seconds']:.2f} s {v['bytes'] / 1e6:.2f} MB" for k, v in out.items()),
                flush=True,
            )
        med = {
            k: {m: statistics.median(x[k][m] for x in runs) for m in ("seconds", "bytes")} for k in runs[0]
        }
        rows.append(
            {
                "scenario": scenario,
                "delta_bytes": delta_bytes,
                "median": med,
                "runs": runs,
                "iceberg_bytes_over_delta": round(med["iceberg"]["bytes"] / delta_bytes, 2),
                "folder_bytes_over_delta": round(med["folder"]["bytes"] / delta_bytes, 2),
                "iceberg_time_over_alone": round(
                    med["iceberg"]["seconds"] / med["delta alone"]["seconds"], 2
                ),
                "folder_time_over_alone": round(med["folder"]["seconds"] / med["delta alone"]["seconds"], 2),
            }
        )
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "runs"}), flush=True)
    return rows


def near_index(spark, tmp: Path, base_dir: Path, night: Path) -> dict:
    """The night near-deduplicated against the corpus's band index: folder index vs index table (module
    docstring). Bytes written are the index's only (the night's dedup output is the same for both)."""
    from curation.dedup.band_index import BandIndex
    from curation.dedup.band_table import BandTable
    from curation.dedup.job import run_near_dedup
    from curation.dedup.near import lsh_params
    from curation.dedup.near_config import NearDedupConfig

    os.environ["PHI_ICEBERG_WAREHOUSE"] = str(tmp / "near-warehouse")  # BandTable's catalog
    os.environ.pop("PHI_ICEBERG_CATALOG_URI", None)
    configs = {
        "folder index": NearDedupConfig(index_dir=str(tmp / "near-folder")),
        "index table": NearDedupConfig(index_table="corpus_near_index"),
    }
    params = lsh_params(configs["folder index"])
    t0 = time.perf_counter()
    BandIndex(tmp / "near-folder", params).build_from_corpus(spark, base_dir, "base", True)
    BandTable("corpus_near_index", params).build_from_corpus(spark, base_dir, "base", True)
    print(f"both band indexes built from the corpus in {time.perf_counter() - t0:.0f} s", flush=True)
    roots = {"folder index": tmp / "near-folder", "index table": tmp / "near-warehouse"}
    out = {}
    for name, cfg in configs.items():
        out[name] = _timed(
            roots[name],
            lambda c=cfg, n=name: run_near_dedup(
                night, tmp / f"near-out-{n[:5]}", c, run_id="night", spark=spark
            ),
        )
        out[name]["index_bytes_total"] = sum(_inventory(roots[name]).values())
        print(f"{name}: {out[name]}", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--night", type=int, default=5_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--curate", action="store_true", help="also time `curation run` over the night's documents"
    )
    ap.add_argument("--near-index", action="store_true", help="the band index comparison instead (docstring)")
    args = ap.parse_args()
    from curation.spark import get_spark

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("curation.tables.nightly").setLevel(
        logging.INFO
    )  # the night's dedup/write/commit split
    print(f"load average at start: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="nightly-bench-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        base_dir, nights = corpus_and_nights(tmp, args.docs, args.night)
        size = sum(f.stat().st_size for f in (base_dir / "data").glob("*.parquet"))
        print(
            f"corpus {args.docs} docs, {size / 1e6:.1f} MB parquet,"
            f" built in {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        spark = get_spark("phi-bench-nightly", master="local[2]")
        if args.near_index:
            report = {
                "docs": args.docs,
                "night": args.night,
                "near_index": near_index(spark, tmp, base_dir, nights["plain"]),
            }
            print(f"load average at end: {os.getloadavg()}", flush=True)
            if args.json:
                args.json.write_text(json.dumps(report, indent=2))
            return 0
        results = run(spark, tmp, base_dir, nights, args.repeat)
        curated = curate_night(spark, tmp, nights["plain"]) if args.curate else None
        if curated:
            print(f"curating the night's documents alone: {curated['seconds']:.1f} s", flush=True)
    report = {
        "curate_night": curated,
        "docs": args.docs,
        "night": args.night,
        "repeat": args.repeat,
        "corpus_bytes": size,
        "load_average_end": os.getloadavg(),
        "results": results,
    }
    print(f"load average at end: {os.getloadavg()}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
