#!/usr/bin/env bash
# Headless Chromium for the stack's UI tests (tests/dags/test_stack.py): Debian's `chromium` package.
# Idempotent: does nothing when a chromium binary is already there. Needs root (or sudo) for apt-get.
set -euo pipefail
for bin in chromium chromium-browser; do
  if command -v "$bin" >/dev/null 2>&1; then echo "chromium: $(command -v "$bin")"; exit 0; fi
done
SUDO=""; if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
echo "chromium: $(command -v chromium)"
