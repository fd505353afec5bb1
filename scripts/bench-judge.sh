#!/usr/bin/env bash
# Judge throughput: `arbor judge` on the sample sessions' answers (16) with the default
# model, one answer at a time vs decoding 4 or 8 together (as eval runs batch), same run.
#   scripts/bench-judge.sh [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"
bin=target/release/arbor
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
data_home="${ARBOR_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/arbor}"
export ARBOR_DB="$work/a.db" ARBOR_CONFIG_DIR="$work/cfg" ARBOR_DATA_DIR="$work/data"
export ARBOR_MODEL="${ARBOR_MODEL:-$data_home/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
for f in clarification-sql.jsonl tool-calling.jsonl tool_calls.log; do
  "$bin" import "sessions/$f" >/dev/null
done
for batch in 1 4 8; do
  "$bin" --threads "$threads" judge --batch "$batch" --json >"$work/out.json"
  python3 - "$work/out.json" "$batch" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
print(f"judge batch {sys.argv[2]:>2}: {v['scored']} answers scored, {v['answers_per_minute']:.1f} answers/min")
PY
done
