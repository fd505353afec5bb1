#!/usr/bin/env bash
# This tree against an earlier one, in the same run: the `engine` and `studio` benchmarks
# of each (alternating), and `arbor export --min-rating 4 --format openai` of each binary
# on one database (alternating rounds). For a change meant to leave speed alone (a
# refactoring): the figures should match within the machine's noise.
# usage: scripts/bench-before.sh [REV] [CONVERSATIONS]
#   REV: the tree to compare with (default: the commit before the #17 redesign)
set -euo pipefail
cd "$(dirname "$0")/.."
REV="${1:-10e9969}"
N="${2:-100000}"
WORK="$(mktemp -d)"
WT="$WORK/before"
git worktree add --detach "$WT" "$REV" >/dev/null
cleanup() { git worktree remove --force "$WT" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
# One target directory: dependencies (llama.cpp) are built once; each tree's crate gets
# its own hashed artifacts. Only target/release/arbor is shared, so each binary is copied.
export CARGO_TARGET_DIR="$PWD/target"
# The bench executable cargo names ("Executable benches/x.rs (PATH)"), made absolute.
exe() { local p; p=$(grep -o "[^ (]*release/deps/$1-[0-9a-f]*" | head -1); [ -n "$p" ] || { echo "no $1 benchmark built" >&2; exit 1; }; case "$p" in /*) echo "$p";; *) echo "$PWD/$p";; esac; }
echo "building $REV …" >&2
(cd "$WT" && cargo build --release --locked --bin arbor -q) && cp target/release/arbor "$WORK/arbor-before"
OLD_ENGINE=$(cd "$WT" && cargo bench --locked --no-run --bench engine 2>&1 | exe engine)
OLD_STUDIO=$(cd "$WT" && cargo bench --locked --no-run --bench studio 2>&1 | exe studio)
echo "building this tree …" >&2
cargo build --release --locked --bin arbor -q && cp target/release/arbor "$WORK/arbor-after"
NEW_ENGINE=$(cargo bench --locked --no-run --bench engine 2>&1 | exe engine)
NEW_STUDIO=$(cargo bench --locked --no-run --bench studio 2>&1 | exe studio)

echo "== studio (before, then after)"
"$OLD_STUDIO" --bench; "$NEW_STUDIO" --bench
echo "== engine (before, then after)"
"$OLD_ENGINE" --bench; "$NEW_ENGINE" --bench

echo "== export, $N conversations"
export ARBOR_DB="$WORK/bench.db" ARBOR_CONFIG_DIR="$WORK/config"
"$WORK/arbor-after" stats >/dev/null
python3 scripts/bench/make_db.py "$ARBOR_DB" "$N"
cat "$ARBOR_DB" >/dev/null
secs() { python3 -c 'import sys,time,subprocess; t=time.perf_counter(); subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(f"{time.perf_counter()-t:.2f}")' "$@"; }
for r in 1 2 3; do
  B=$(secs "$WORK/arbor-before" export --min-rating 4 --format openai -o "$WORK/before.jsonl")
  A=$(secs "$WORK/arbor-after" export --min-rating 4 --format openai -o "$WORK/after.jsonl")
  cmp -s "$WORK/before.jsonl" "$WORK/after.jsonl" && SAME="identical files" || SAME="FILES DIFFER"
  echo "  round $r: before ${B} s, after ${A} s (after/before $(python3 -c "print(f'{$A/$B:.2f}')")), $SAME"
done
