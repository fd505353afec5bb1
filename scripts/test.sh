#!/usr/bin/env bash
# Sets everything up (system packages, default model, release build) and runs the
# whole test suite in the release profile (a debug build would compile llama.cpp again).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Model tests run one at a time: two busy processes on 2 cores collapse llama.cpp's speed.
cargo test --release --locked -- --test-threads="${ARBOR_TEST_THREADS:-1}"
