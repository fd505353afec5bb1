#!/usr/bin/env bash
# Benchmark of `arbor merge`: two databases of N conversations each (10 messages, a tenth of
# the answers rated by a different person in each), made by importing two different files.
# Times (and peak memory) of, in the same run: merging B into A (everything is new), merging
# it again (everything is found: nothing written), and — the baseline — importing B's file
# into a copy of A (the same conversations brought in from JSONL).
# usage: scripts/bench-merge.sh [CONVERSATIONS]   (needs a release build; default 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100000}"
source scripts/bench/common.sh
bench_work
python3 scripts/bench/make_import.py "$WORK/a.jsonl" "$N" 11
python3 scripts/bench/make_import.py "$WORK/b.jsonl" "$N" 12
rate() { python3 - "$1" "$2" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
ids = [r[0] for r in db.execute("SELECT id FROM nodes WHERE role = 'assistant' AND id % 10 = 0")]
now = int(time.time() * 1000)
db.executemany("INSERT INTO ratings (node_id, rater, stars, updated_at) VALUES (?, ?, ?, ?)",
               [(i, sys.argv[2], 1 + i % 5, now) for i in ids])
db.commit()
PY
}
ARBOR_DB="$WORK/a.db" "$ARBOR" import "$WORK/a.jsonl" >/dev/null
ARBOR_DB="$WORK/b.db" "$ARBOR" import "$WORK/b.jsonl" >/dev/null
rate "$WORK/a.db" alice
rate "$WORK/b.db" bob
ARBOR_DB="$WORK/a.db" "$ARBOR" backup "$WORK/a-copy.db" >/dev/null
echo "merge of two databases of $N conversations ($(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from nodes").fetchone()[0])' "$WORK/b.db") messages each):"
read -r T1 R1 < <(ARBOR_DB="$WORK/a.db" secs "$ARBOR" merge "$WORK/b.db")
echo "  merge B into A:               ${T1} s, peak ${R1} MB"
read -r T2 R2 < <(ARBOR_DB="$WORK/a.db" secs "$ARBOR" merge "$WORK/b.db")
echo "  the same merge again:         ${T2} s, peak ${R2} MB (nothing to add)"
read -r T3 R3 < <(ARBOR_DB="$WORK/a-copy.db" secs "$ARBOR" import "$WORK/b.jsonl")
echo "  baseline, import B's file:    ${T3} s, peak ${R3} MB"
python3 -c 'import sys; print(f"  merge / import: {float(sys.argv[1]) / float(sys.argv[2]):.2f}x")' "$T1" "$T3"
