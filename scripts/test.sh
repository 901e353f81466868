#!/usr/bin/env bash
# The whole test suite: the C++ unit tests (ctest) and the parity tests against transformers
# (pytest). Expects scripts/setup.sh to have run; rebuilds incrementally first.
#
# pytest runs on two workers (pytest-xdist), each hfpipe process on one thread
# (OMP_NUM_THREADS=1; test_feature_extraction.py's test_two_threads_match_one checks the
# threaded path explicitly): on a 2-core machine two single-threaded workers finish in about
# 60% of the serial time, while two 2-thread hfpipe processes on 2 cores would make OpenMP's
# spinning threads wait on each other. The shared fixtures (tiny models, real models) are made
# once here first, so the workers only read them. --dist loadgroup keeps the tests marked
# @pytest.mark.xdist_group(name) on one worker: those share a reference model that takes a
# minute or more to load (the real GGUF files), which each worker would otherwise load again;
# xdist sends the groups out first, so they do not end up as a long tail (tests/python/conftest.py
# re-applies the group tag, which pytest-xdist 3.8 loses under pytest 9.2).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --build build -j "$(nproc)"
echo "== C++ unit tests"
ctest --test-dir build --output-on-failure -j "$(nproc)"
echo "== parity tests against transformers"
export HF_HUB_OFFLINE=1
.venv/bin/python scripts/make_tiny_models.py >/dev/null
.venv/bin/python scripts/assemble_real_models.py >/dev/null
OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/python -q -n "${HFPIPE_TEST_WORKERS:-2}" --dist loadgroup "$@"
