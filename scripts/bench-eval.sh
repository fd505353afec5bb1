#!/usr/bin/env bash
# Benchmark of batched eval runs: 32 cases (distinct prompts of ~64 tokens) answered with
# 48 greedy tokens by 2 candidates, at batch 1, 4, 8 and 16 (cases decoding together in one
# llama.cpp context), beside llama.cpp's own llama-batched-bench at the same prompt length,
# generated length and batch sizes, same model and threads, in the same run. Prints total
# tokens/s (prompt + generated) and how many greedy answers equal the batch-1 ones.
# usage: scripts/bench-eval.sh   (needs a release build and scripts/build-llama-tools.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
ARBOR="$PWD/target/release/arbor"
BENCH="$PWD/target/llama-tools/bin/llama-batched-bench"
[ -x "$ARBOR" ] || { echo "build first: cargo build --release" >&2; exit 1; }
[ -x "$BENCH" ] || { echo "run scripts/build-llama-tools.sh first (llama-batched-bench)" >&2; exit 1; }
MODEL="${ARBOR_MODEL:-${ARBOR_DATA_DIR:-$HOME/.local/share/arbor}/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
THREADS="${THREADS:-2}"
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
export ARBOR_DB="$WORK/bench.db" ARBOR_CONFIG_DIR="$WORK/config" ARBOR_MODEL="$MODEL"
python3 - "$WORK/cases.jsonl" <<'PY'
import json, random, sys
rng = random.Random(5)
words = ("river mountain kernel garden signal harbor lantern copper violet orbit meadow "
         "canyon pixel thunder willow quartz saddle ember glacier falcon").split()
with open(sys.argv[1], "w") as f:
    for i in range(32):
        text = f"Case {i}: " + " ".join(rng.choice(words) for _ in range(52)) + ". Write a short story about it."
        f.write(json.dumps({"messages": [{"role": "user", "content": text}]}) + "\n")
PY
"$ARBOR" eval set bench --from "$WORK/cases.jsonl" >/dev/null
SPECS=(--candidate "base@temperature=0,max_tokens=48" --candidate "base@temperature=0,top_k=1,max_tokens=48")
echo "eval run: 32 cases x 2 candidates, 48 greedy tokens, $THREADS threads ($(basename "$MODEL")):"
for b in 1 4 8 16; do
  t0=$(date +%s.%N)
  "$ARBOR" --threads "$THREADS" eval run bench --batch "$b" "${SPECS[@]}" --json > "$WORK/run-$b.json"
  t1=$(date +%s.%N)
  python3 - "$ARBOR_DB" "$b" "$t0" "$t1" <<'PY'
import sqlite3, sys
db, b, t0, t1 = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
c = sqlite3.connect(db)
run = c.execute("select max(id) from eval_runs").fetchone()[0]
pp, tg = c.execute("select sum(n.prompt_tokens), sum(n.generated_tokens) from eval_answers a join nodes n on n.id = a.node_id where a.run_id = ?", (run,)).fetchone()
texts = dict(((k, cand), t) for k, cand, t in c.execute("select a.case_id, a.candidate, n.content from eval_answers a join nodes n on n.id = a.node_id where a.run_id = ?", (run,)))
first = c.execute("select min(id) from eval_runs").fetchone()[0]
base = dict(((k, cand), t) for k, cand, t in c.execute("select a.case_id, a.candidate, n.content from eval_answers a join nodes n on n.id = a.node_id where a.run_id = ?", (first,)))
same = sum(1 for k, t in texts.items() if base.get(k) == t)
wall = t1 - t0
print(f"  arbor batch {b:>2}: {wall:6.2f} s, {pp} prompt + {tg} generated tokens, {(pp + tg) / wall:6.1f} tok/s total; greedy answers equal to batch 1: {same}/{len(texts)}")
open(f"{db}.tps-{b}", "w").write(f"{(pp + tg) / wall}")
open(f"{db}.npp", "w").write(str(round(pp / len(texts))))
PY
done
NPP=$(cat "$ARBOR_DB.npp")
echo "llama-batched-bench -npp $NPP (Arbor's mean prompt) -ntg 48, unified KV cache as Arbor's:"
"$BENCH" -m "$MODEL" -c 8192 -b 512 -ub 512 -npp "$NPP" -ntg 48 -npl 1,4,8,16 -t "$THREADS" -kvu 2>/dev/null \
  | grep -E '^\|' | tee "$WORK/llama.txt"
python3 - "$WORK/llama.txt" "$ARBOR_DB" <<'PY'
import sys
rows = [l.split("|") for l in open(sys.argv[1]) if l.strip().startswith("|") and l.split("|")[3].strip().isdigit()]
base1 = float(open(f"{sys.argv[2]}.tps-1").read())
for r in rows:
    b, s_tps = int(r[3]), float(r[10])
    ours = float(open(f"{sys.argv[2]}.tps-{b}").read())
    print(f"  batch {b:>2}: arbor {ours:6.1f} tok/s vs llama-batched-bench {s_tps:6.1f}: {ours / s_tps:.2f}x; speed-up over one at a time {ours / base1:.2f}x")
PY
