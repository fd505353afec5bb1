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
# Model tests run one at a time: two busy processes on 2 cores collapse llama.cpp's speed.
cargo test --release --locked -- --test-threads="${ARBOR_TEST_THREADS:-1}"
