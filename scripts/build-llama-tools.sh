#!/usr/bin/env bash
# Builds llama.cpp's own `llama-server` (a real OpenAI-compatible server, for the HTTP
# backend's tests), `llama-bench` (the reference for scripts/bench-engine.sh) and
# `llama-batched-bench` (the reference for scripts/bench-eval.sh) from the
# llama.cpp that the llama-cpp-python sdist on PyPI vendors (the llama-cpp-2 crate vendors
# the library but none of the tools). Output: target/llama-tools/bin/. ~5 min on 2 cores,
# once; later runs do nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.3.36
OUT=target/llama-tools
if [ -x "$OUT/bin/llama-server" ] && [ -x "$OUT/bin/llama-bench" ] && [ -x "$OUT/bin/llama-batched-bench" ]; then exit 0; fi
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
echo "llama tools: building llama-server, llama-bench and llama-batched-bench (cmake, release)" >&2
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
cmake --build "$OUT/build" -j"$(nproc)" --target llama-server llama-bench llama-batched-bench >/dev/null
mkdir -p "$OUT/bin"
cp "$OUT/build/bin/llama-server" "$OUT/build/bin/llama-bench" "$OUT/build/bin/llama-batched-bench" "$OUT/bin/"
echo "llama tools: $OUT/bin/llama-server, $OUT/bin/llama-bench, $OUT/bin/llama-batched-bench" >&2
