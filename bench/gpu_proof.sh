#!/usr/bin/env bash
# Issue 19's GPU proof: one prepared script, one ~9-minute call on a lent H100/H200 (bench/README in BENCHMARKS.md).
#
#   bash bench/gpu_proof.sh prep     here, in the CPU venv (`source scripts/env.sh`): writes .gpu/ and .whl/
#                                    (both git-ignored through .git/info/exclude), ~1 minute
#   bash bench/gpu_proof.sh run      on the device machine, from the repo root, with .gpu and .whl carried;
#                                    results as JSON/text under $OUT (default out/bench/gpu)
#
# The device machine has python3 3.12 with a CUDA torch, transformers, tokenizers, numpy, pyarrow, yaml and
# matplotlib, nothing to download from, and takes 64 MiB of files a call. So prep carries: the wheels the
# trainer needs that are missing there (pydantic and friends; our transformers pin), the shared samples the
# benches read, a two-phase mixture build (real text, seq 64) and SmolLM2-135M's config + tokenizer (no
# weights: the GGUF is over the limit; generation speed does not depend on the weights' values, and random
# weights almost never emit EOS, so every request runs its full max_tokens).
# vLLM cannot travel: its wheel is 336 MB and pins torch 2.14 with CUDA libraries of several GB (see BENCHMARKS.md).
set -uo pipefail
cd "$(dirname "$0")/.."

prep() {
    set -e
    rm -rf .gpu .whl && mkdir -p .gpu/shared/benchmarks_decontam/gsm8k .whl
    local shared=${PHI_SHARED_DATA:-../shared/data}
    cp -r "$shared/webtext_cc2019_dolma_sample" .gpu/shared/
    cp "$shared/benchmarks_decontam/gsm8k/test.jsonl" .gpu/shared/benchmarks_decontam/gsm8k/
    python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
        typing_extensions==4.16.0 transformers==5.24.0
    PYTHONPATH=tests:. python - <<'EOF'
from pathlib import Path
from fixtures.mixture.sources import build_quality, build_web
from training.cli import main as training_cli
from curation.paths import shared_data_dir
import os
shared, models, root = shared_data_dir(), Path(os.environ["PHI_MODELS_DIR"]), Path(".gpu/sources").resolve()
web = build_web(shared, models, root / "web").parent
quality = build_quality(shared, models, root / "dclm_quality").parent
mix = f"""name: gpu-proof
seed: 0
seq_len: 64
heldout_fraction: 0.1
shard_tokens: 150000
tokenizer:
  train: {{vocab_size: 1024, sample_documents: 2000}}
phases:
  - name: phase1
    tokens: 600000
    sources:
      - {{name: web, dataset: "{web}", weight: 1.0, max_epochs: 2}}
  - name: phase2
    tokens: 150000
    sources:
      - {{name: hq, dataset: "{quality}", filter: "quality_label = 1", weight: 0.7, max_epochs: 4}}
      - {{name: web_replay, dataset: "{web}", weight: 0.3, max_epochs: 2}}
"""
Path(".gpu/mixture.yaml").write_text(mix)
assert training_cli(["mixture", "build", ".gpu/mixture.yaml", "--output", ".gpu/mixture"]) == 0

from transformers import AutoConfig, AutoTokenizer
from synthesis.teacher.backends.embedded import embedded_model_path
gguf = embedded_model_path()
AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(".gpu/smollm2-shape")
AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(".gpu/smollm2-shape")
EOF
    rm -rf .gpu/sources
    du -sh .gpu .whl
}

run() {
    local out=${OUT:-out/bench/gpu}
    mkdir -p "$out"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD PHI_SHARED_DATA=$PWD/.gpu/shared HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
    export TOKENIZERS_PARALLELISM=false
    {
        nvidia-smi
        python3 -c 'import torch, transformers; print(torch.__version__, torch.version.cuda, transformers.__version__)'
    } >"$out/machine.txt" 2>&1
    cat "$out/machine.txt"

    echo "== 1/3 trainer throughput (bench/train_gpu.py)"
    timeout 280 python3 bench/train_gpu.py --presets 350m 125m --modes compiled eager --steps 15 --warmup 3 \
        --profile-steps 3 --profile-table "$out/profile.txt" --out "$out/train_gpu.json" 2>&1 \
        | grep -v "^W1\|Warning" | tail -40
    echo "== 2/3 two-phase FSDP2 run, killed twice and resumed (bench/gpu_resume.py)"
    timeout 110 python3 bench/gpu_resume.py --mixture .gpu/mixture --out "$out/gpu_resume.json" 2>&1 | tail -12
    echo "== 3/3 teacher: plain transformers generate, batch 1/32/256, 128+128 tokens (bench/teacher_gpu.py)"
    timeout 60 python3 - <<'EOF' 2>&1 | tail -3
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
cfg = AutoConfig.from_pretrained(".gpu/smollm2-shape")
torch.manual_seed(0)
model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
model.save_pretrained("/tmp/smollm2-random")
AutoTokenizer.from_pretrained(".gpu/smollm2-shape").save_pretrained("/tmp/smollm2-random")
print("random-weight SmolLM2-135M shape saved:", sum(p.numel() for p in model.parameters()) / 1e6, "M params")
EOF
    timeout 90 python3 bench/teacher_gpu.py --model /tmp/smollm2-random --requests 256 --batch-sizes 1,32,256 \
        --batch1-requests 4 --max-tokens 128 --json "$out/teacher_gpu.json" 2>&1 | tail -8
    ls -la "$out"
}

case "${1:-}" in
prep) prep ;;
run) run ;;
*)
    echo "usage: bash bench/gpu_proof.sh prep|run" >&2
    exit 2
    ;;
esac
