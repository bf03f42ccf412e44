#!/usr/bin/env bash
# Set up equilibria in .venv: the CPU build of torch 2.13.0 first (never a CUDA build), then the
# package with its test extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/pip install --quiet torch==2.13.0
fi
.venv/bin/pip install --quiet -e ".[test]"
