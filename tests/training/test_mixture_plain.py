"""Mixture sources that are plain files (issue 16), resolved like `curation dedup --input`: the shared
Dolma folder (JSONL.gz beside a LICENSE and SOURCE.md) and a parquet folder without ids (ids = sha1(text));
the build logs per-source progress (documents done / total, tokens) and the tokenizer training's progress."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq

from training.mixture.build import build

DOLMA_DIR = "webtext_cc2019_dolma_sample"
DOLMA = f"{DOLMA_DIR}/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


def test_plain_jsonl_and_parquet_sources_build_with_progress(shared_data, tmp_path, caplog, monkeypatch):
    lines = [
        json.loads(x) for x in gzip.decompress((shared_data / DOLMA).read_bytes()).decode().split("\n") if x
    ]
    texts = [r["text"] for r in lines if (r.get("text") or "").strip()]
    (tmp_path / "pq").mkdir()
    pq.write_table(pa.table({"text": texts[:150]}), tmp_path / "pq" / "part-0.parquet")
    y = tmp_path / "mix.yaml"
    y.write_text(
        textwrap.dedent(f"""\
        name: plain
        seq_len: 64
        tokenizer:
          train: {{vocab_size: 512, sample_documents: 300}}
        phases:
          - name: one
            tokens: 30000
            sources:
              - {{name: web, dataset: "{shared_data / DOLMA_DIR}", weight: 0.7}}
              - {{name: ids, dataset: "{tmp_path}/pq", weight: 0.3}}
        """)
    )
    monkeypatch.setenv("PHI_PROGRESS_INTERVAL", "0.000001")  # a line per batch
    caplog.set_level(logging.INFO, logger="curation.progress")
    result = build(y, tmp_path / "build")
    progress = [r.getMessage() for r in caplog.records if r.name == "curation.progress"]
    assert any(m.startswith("tokenizer training: reading the sample · docs ") for m in progress), progress
    assert any("computing the merges" in m for m in progress)
    web = [m for m in progress if m.startswith("tokenizing one/web ")]
    assert re.search(rf"docs {len(lines)}/{len(lines)} \(100%, [\d,]+ docs/s\)", web[-1]), web
    assert re.search(r"· [\d,]+ tokens", web[-1])
    src = {s["name"]: s for s in result.manifest["phases"][0]["sources"]}
    assert src["web"]["skipped_empty"] == len(lines) - len(texts)
    docs = pq.read_table(tmp_path / "build" / "one" / "documents.parquet").to_pylist()
    ids = {d["id"] for d in docs if d["source"] == "ids"}
    assert ids and ids <= {hashlib.sha1(t.encode()).hexdigest() for t in texts[:150]}
    assert {d["id"] for d in docs if d["source"] == "web"} <= {r["id"] for r in lines}
