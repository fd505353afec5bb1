#!/usr/bin/env bash
# Builds llama.cpp's own `llama-server` (a real OpenAI-compatible server, for the HTTP
# backend's tests), `llama-bench` (the reference for scripts/bench-engine.sh) and
# `llama-batched-bench` (the reference for scripts/bench-eval.sh), and `llama-gguf-split`
# (split GGUF files for the model discovery tests) from the
# llama.cpp that the llama-cpp-python sdist on PyPI vendors (the llama-cpp-2 crate vendors
# the library but none of the tools). Output: target/llama-tools/bin/. ~5 min on 2 cores,
# once; later runs do nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.3.36
OUT=target/llama-tools
TOOLS=(llama-server llama-bench llama-batched-bench llama-gguf-split)
missing=0
for t in "${TOOLS[@]}"; do [ -x "$OUT/bin/$t" ] || missing=1; done
if [ "$missing" = 0 ]; then exit 0; fi
mkdir -p "$OUT"
if [ ! -d "$OUT/src" ]; then
  echo "llama tools: fetching the llama-cpp-python $VERSION sdist from PyPI (~77 MB)" >&2
  url=$(python3 - "$VERSION" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request("https://pypi.org/simple/llama-cpp-python/",
                             headers={"Accept": "application/vnd.pypi.simple.v1+json"})
files = json.load(urllib.request.urlopen(req, timeout=120))["files"]
print(next(f["url"] for f in files if f["filename"] == f"llama_cpp_python-{sys.argv[1]}.tar.gz"))
PY
)
  python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' "$url" "$OUT/sdist.tar.gz"
  mkdir -p "$OUT/src.part"
  tar xzf "$OUT/sdist.tar.gz" -C "$OUT/src.part" --strip-components=3 "llama_cpp_python-$VERSION/vendor/llama.cpp"
  rm "$OUT/sdist.tar.gz"
  mv "$OUT/src.part" "$OUT/src"
fi
echo "llama tools: building ${TOOLS[*]} (cmake, release)" >&2
# The same CPU features as Arbor's embedded llama.cpp (.cargo/config.toml: x86-64-v3), and no
# -march=native: its AMX kernels crash where the OS does not grant AMX state (VMs).
CPU_FLAGS=(-DGGML_NATIVE=OFF)
if [ "$(uname -m)" = x86_64 ]; then
  CPU_FLAGS+=(-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_SSE42=ON
              "-DCMAKE_C_FLAGS=-march=x86-64-v3" "-DCMAKE_CXX_FLAGS=-march=x86-64-v3")
fi
cmake -S "$OUT/src" -B "$OUT/build" "${CPU_FLAGS[@]}" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON \
  -DBUILD_SHARED_LIBS=OFF >/dev/null
cmake --build "$OUT/build" -j"$(nproc)" --target "${TOOLS[@]}" >/dev/null
mkdir -p "$OUT/bin"
for t in "${TOOLS[@]}"; do cp "$OUT/build/bin/$t" "$OUT/bin/"; done
echo "llama tools: ${TOOLS[*]} in $OUT/bin" >&2
