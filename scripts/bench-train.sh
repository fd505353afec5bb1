#!/usr/bin/env bash
# Benchmark of the `peft` recipe under Arbor (detached supervisor reading its log into
# SQLite) against the same script run by hand on the same params.json (same data, seed
# and threads), alternating A B A B in one run. Steps/s come from the trainer's own
# clock (`elapsed_s` of its step events), from its first step to its last.
# usage: scripts/bench-train.sh [STEPS]   (needs a release build and the peft environment:
#        ARBOR_TRAINER_DIR, default target/trainer-envs, made by the first `arbor train`)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${1:-20}"
ARBOR="$PWD/target/release/arbor"
[ -x "$ARBOR" ] || { echo "build first: cargo build --release" >&2; exit 1; }
export ARBOR_TRAINER_DIR="${ARBOR_TRAINER_DIR:-$PWD/target/trainer-envs}"
# The default model, found before the data directory moves into the sandbox.
export ARBOR_MODEL="${ARBOR_MODEL:-${ARBOR_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/arbor}/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
export ARBOR_DATA_DIR="$WORK/data" ARBOR_CONFIG_DIR="$WORK/config" ARBOR_DB="$WORK/arbor.db"
python3 - "$WORK/rated.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(40):
        q = f"Question {i}: what is the code word for item {i}?"
        f.write(json.dumps({"prompt": [{"role": "user", "content": q}],
                            "completion": [{"role": "assistant", "content": f"The code word for item {i} is BLUE-{i * 7}."}],
                            "label": True}) + "\n")
PY
"$ARBOR" import "$WORK/rated.jsonl" >/dev/null
rate() { python3 scripts/bench/train_rate.py "$1"; }
arbor_run() {
  id=$("$ARBOR" --threads 2 train --min-rating 4 --steps "$STEPS" --lr 1e-4 --wait 2>"$WORK/train.err") || { cat "$WORK/train.err" >&2; exit 1; }
  echo "$ARBOR_DATA_DIR/jobs/$id"
}
hand_run() {
  local dir=$1 out="$WORK/hand-$2"
  python3 - "$dir/params.json" "$out" <<'PY'
import json, sys
p = json.load(open(sys.argv[1])); p["out"] = sys.argv[2] + "/out"
json.dump(p, open(sys.argv[2] + ".json", "w"))
PY
  mkdir -p "$out"
  ( cd "$dir" && PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TQDM_DISABLE=1 TRANSFORMERS_VERBOSITY=error \
      "$ARBOR_TRAINER_DIR/peft/bin/python" train_peft.py "$out.json" > "$out.log" 2>&1 )
  echo "$out.log"
}
declare -a A H
for round in 1 2; do
  dir=$(arbor_run); A+=("$(rate "$dir/train.log")")
  H+=("$(rate "$(hand_run "$dir" "$round")")")
done
echo "peft recipe, SmolLM2-135M, $STEPS steps, batch 4, r=16 on 7 projections, CPU fp32, 2 threads:"
echo "  under arbor  ${A[*]} steps/s"
echo "  by hand      ${H[*]} steps/s"
python3 -c 'import sys; a=[float(x) for x in sys.argv[1].split()]; h=[float(x) for x in sys.argv[2].split()]; print(f"  arbor / by hand {sum(a)/len(a) / (sum(h)/len(h)):.3f}")' "${A[*]}" "${H[*]}"
