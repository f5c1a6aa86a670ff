"""Inputs of bench/ablation.py, made from the shared sample data by the project's own pipeline (no made-up
text):

raw        everything `python -m curation run` ingested from the Dolma CC sample (its kept rows plus its
           rejects, document columns only): web text before any filter or dedup
web_edu    the curated corpus (`curation run`, configs/demo/curation.yaml: default filters + near-dedup)
           scored by an edu classifier (`curation edu train` on FineWeb-C's human labels, `edu score`)
synthetic  recorded outputs of the embedded SmolLM2 teacher (tests/fixtures/synthesis, tests/fixtures/edu):
           the only synthetic text that exists without minutes of generation per document on this CPU
shuffled   the curated corpus with each document's words shuffled (training/ablation/planted.py)

  python bench/ablation_data.py --out out/bench/ablation/data
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curation.contract import DOC_COLUMNS, resolve_version_dir
from curation.paths import REPO_ROOT, shared_data_dir


def sh(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], check=True, cwd=REPO_ROOT)


def raw_from_run(curated: Path, dest: Path) -> int:
    """Kept + rejected rows of the curation run = every ingested document (document columns only)."""
    vdir = resolve_version_dir(curated)
    tables = [
        pq.read_table(f, columns=DOC_COLUMNS)
        for part in ("data", "rejects")
        for f in sorted((vdir / part).glob("*.parquet"))
    ]
    table = pa.concat_tables(tables, promote_options="default")
    dest.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, dest / "raw.parquet")
    return table.num_rows


def synthetic(dest: Path) -> int:
    rows = []
    for f, field in (
        (REPO_ROOT / "tests/fixtures/synthesis/smollm2_math_outputs.jsonl", "output"),
        (REPO_ROOT / "tests/fixtures/edu/teacher_outputs_smollm2.jsonl", "raw_response"),
    ):
        for k, line in enumerate(f.read_text().splitlines()):
            text = json.loads(line).get(field)
            if text:
                rows.append({"id": f"{f.stem}-{k}", "text": text})
    dest.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), dest / "synthetic.parquet")
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/bench/ablation/data")
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    shared = shared_data_dir()
    if not (out / "web_curated" / "CURRENT").is_file():
        sh(
            "-m",
            "curation",
            "run",
            "--input",
            str(shared / "webtext_cc2019_dolma_sample" / "*.jsonl.gz"),
            "--output",
            str(out / "web_curated"),
            "--config",
            str(REPO_ROOT / "configs/demo/curation.yaml"),
            "--run-id",
            "bench",
            "--master",
            "local[2]",
        )
    print("raw rows:", raw_from_run(out / "web_curated", out / "raw"))
    if not (out / "edu_models").is_dir():
        sh(
            "-m",
            "curation",
            "edu",
            "train",
            "--registry",
            str(out / "edu_models"),
            "--labels",
            str(shared / "edu_labels_finewebc_danish" / "fineweb-c_danish.csv"),
            "--max-score",
            "4",
            "--human",
            "none",
            "--promote",
            "--notes",
            "bench/ablation_data.py",
        )
    if not (out / "web_edu" / "CURRENT").is_file():
        sh(
            "-m",
            "curation",
            "edu",
            "score",
            "--registry",
            str(out / "edu_models"),
            "--input",
            str(out / "web_curated"),
            "--output",
            str(out / "web_edu"),
            "--run-id",
            "bench",
            "--master",
            "local[2]",
        )
    print("synthetic rows:", synthetic(out / "synthetic"))
    if not (out / "shuffled" / "CURRENT").is_file():
        from training.ablation.planted import shuffled_dataset

        shuffled_dataset(str(out / "web_edu"), out / "shuffled", seed=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
