#!/usr/bin/env bash
# The whole test suite: the C++ unit tests (ctest) and the parity tests against transformers
# (pytest). Expects scripts/setup.sh to have run; rebuilds incrementally first.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --build build -j "$(nproc)"
echo "== C++ unit tests"
ctest --test-dir build --output-on-failure -j "$(nproc)"
echo "== parity tests against transformers"
HF_HUB_OFFLINE=1 .venv/bin/python -m pytest tests/python -q "$@"
