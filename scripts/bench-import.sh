#!/usr/bin/env bash
# Benchmark of `arbor import` on an OpenAI chat JSONL file of N conversations (10 messages
# each: 1,000,000 messages for the default 100,000) against a plain Python script doing the
# same inserts with sqlite3 + json into the same schema (scripts/bench/import_baseline.py),
# in the same run, alternating rounds. Prints time and peak memory of each, and the ratio.
# usage: scripts/bench-import.sh [CONVERSATIONS]   (needs a release build; ROUNDS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100000}"
source scripts/bench/common.sh
bench_work
python3 scripts/bench/make_import.py "$WORK/data.jsonl" "$N"
echo "import of $N conversations ($(wc -c < "$WORK/data.jsonl") bytes):"
fresh() { rm -f "$1" "$1-wal" "$1-shm"; ARBOR_DB="$1" "$ARBOR" stats >/dev/null; }
ROUNDS="${ROUNDS:-3}"
RATIOS=()
for r in $(seq "$ROUNDS"); do
  fresh "$WORK/arbor.db"; fresh "$WORK/py.db"
  cat "$WORK/data.jsonl" >/dev/null
  read -r T_ARBOR RSS_ARBOR < <(ARBOR_DB="$WORK/arbor.db" secs "$ARBOR" import "$WORK/data.jsonl")
  read -r T_PY RSS_PY < <(secs python3 scripts/bench/import_baseline.py "$WORK/py.db" "$WORK/data.jsonl")
  RATIO=$(python3 -c 'import sys; print(f"{float(sys.argv[1]) / float(sys.argv[2]):.1f}")' "$T_PY" "$T_ARBOR")
  RATIOS+=("$RATIO")
  echo "  round $r: arbor ${T_ARBOR} s (peak ${RSS_ARBOR} MB), python ${T_PY} s (peak ${RSS_PY} MB): ${RATIO}x"
done
A=$(sqlite3 "$WORK/arbor.db" 'select count(*) from nodes' 2>/dev/null || python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from nodes").fetchone()[0])' "$WORK/arbor.db")
P=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from nodes").fetchone()[0])' "$WORK/py.db")
echo "  messages stored: arbor $A (shared beginnings merged), python $P"
python3 -c 'import sys, statistics as s; r=[float(x) for x in sys.argv[1:]]; print(f"  speed-up: median {s.median(r):.1f}x, lowest {min(r):.1f}x")' "${RATIOS[@]}"
