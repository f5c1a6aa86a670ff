#!/usr/bin/env bash
# Regenerate requirements.lock (used as a pip constraints file) from the working .venv.
# The torch pin drops the local "+cpu" tag: pip resolves it to the CPU wheel on this machine's disk.
set -euo pipefail
.venv/bin/pip freeze --exclude-editable 2>/dev/null | grep -v -i '^phi-data' | sed -E 's/^torch==([0-9.]+)\+cpu/torch==\1/' > requirements.lock
echo "requirements.lock: $(wc -l < requirements.lock) pins"
