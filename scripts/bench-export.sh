#!/usr/bin/env bash
# Benchmark of `arbor export --min-rating 4 --format openai` on a database of 100,000
# conversations (1,000,000 messages, branching, ratings) against a plain Python script
# doing the same with sqlite3 + json, in the same run. Prints the figures.
# usage: scripts/bench-export.sh [CONVERSATIONS]   (needs a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100000}"
ARBOR=target/release/arbor
[ -x "$ARBOR" ] || { echo "build first: cargo build --release" >&2; exit 1; }
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
export ARBOR_DB="$WORK/bench.db" ARBOR_CONFIG_DIR="$WORK/config"
"$ARBOR" stats >/dev/null                       # creates the schema
python3 scripts/bench/make_db.py "$ARBOR_DB" "$N"
sync
secs() { python3 -c 'import sys,time,subprocess,resource; t=time.perf_counter(); subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); dt=time.perf_counter()-t; rss=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024; print(f"{dt:.2f} {rss:.0f}")' "$@"; }
# Warm the page cache once so both read the same hot file.
cat "$ARBOR_DB" >/dev/null
read -r T_ARBOR RSS_ARBOR < <(secs "$ARBOR" export --min-rating 4 --format openai -o "$WORK/arbor.jsonl")
read -r T_PY RSS_PY < <(secs python3 scripts/bench/export_baseline.py "$ARBOR_DB" "$WORK/py.jsonl")
A=$(wc -l < "$WORK/arbor.jsonl"); P=$(wc -l < "$WORK/py.jsonl")
cmp -s "$WORK/arbor.jsonl" "$WORK/py.jsonl" && SAME="identical files" || SAME="files differ"
echo "export --min-rating 4 --format openai, $N conversations:"
echo "  arbor   ${T_ARBOR} s  peak RSS ${RSS_ARBOR} MB  $A examples"
echo "  python  ${T_PY} s  peak RSS ${RSS_PY} MB  $P examples  ($SAME)"
python3 -c 'import sys; print(f"  speed-up {float(sys.argv[1]) / float(sys.argv[2]):.1f}x")' "$T_PY" "$T_ARBOR"
