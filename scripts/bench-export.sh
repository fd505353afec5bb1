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
secs() { python3 -c 'import sys,time,subprocess,resource; t=time.perf_counter(); subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); dt=time.perf_counter()-t; rss=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024; print(f"{dt:.2f} {rss:.0f}")' "$@"; }
# Warm the page cache once so both read the same hot file.
cat "$ARBOR_DB" >/dev/null
# Alternating runs (ROUNDS, default 3): a shared VM's speed wanders by a quarter from one
# run to the next, so each round times both, one after the other.
ROUNDS="${ROUNDS:-3}"
echo "export --min-rating 4 --format openai, $N conversations, $ROUNDS rounds:"
RATIOS=()
for r in $(seq "$ROUNDS"); do
  read -r T_ARBOR RSS_ARBOR < <(secs "$ARBOR" export --min-rating 4 --format openai -o "$WORK/arbor.jsonl")
  read -r T_ONE RSS_ONE < <(secs "$ARBOR" --threads 1 export --min-rating 4 --format openai -o "$WORK/one.jsonl")
  read -r T_PY RSS_PY < <(secs python3 scripts/bench/export_baseline.py "$ARBOR_DB" "$WORK/py.jsonl")
  cmp -s "$WORK/arbor.jsonl" "$WORK/py.jsonl" && cmp -s "$WORK/one.jsonl" "$WORK/py.jsonl" && SAME="identical files" || SAME="FILES DIFFER"
  RATIO=$(python3 -c 'import sys; print(f"{float(sys.argv[1]) / float(sys.argv[2]):.1f}")' "$T_PY" "$T_ARBOR")
  RATIOS+=("$RATIO")
  echo "  round $r: arbor ${T_ARBOR} s (${RSS_ARBOR} MB), one pass ${T_ONE} s (${RSS_ONE} MB), python ${T_PY} s (${RSS_PY} MB): ${RATIO}x, $SAME"
done
echo "  examples: $(wc -l < "$WORK/arbor.jsonl")"
python3 -c 'import sys, statistics as s; r=[float(x) for x in sys.argv[1:]]; print(f"  speed-up: median {s.median(r):.1f}x, lowest {min(r):.1f}x")' "${RATIOS[@]}"
