#!/usr/bin/env bash
# The main job on the sample data (run by `make demo`).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/demo}
DATA=${PHI_SHARED_DATA:-../shared/data}
python -m curation run \
  --input "$DATA/warc_commoncrawl_samples/*.warc.gz" \
  --input "$DATA/webtext_cc2019_dolma_sample/*.jsonl.gz" \
  --output "$OUT/web_curated"
