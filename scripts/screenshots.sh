#!/usr/bin/env bash
# Pictures of the studio for the README: drives the real release binary in tmux on the
# sample sessions (sessions/) and the default model, captures each main view with its
# colours (tmux capture-pane -e) and turns the ANSI screens into SVG with rich (PyPI),
# installed into target/screenshots-venv. Re-running refreshes docs/screenshots/*.svg.
#
#   scripts/screenshots.sh            # after scripts/setup.sh (or scripts/test.sh)
#
# The Jobs picture shows a `command` recipe job run by tests/fixtures/fake_trainer.py,
# which prints the same progress events as the real trainers, so the script needs no torch.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1marbor screenshots:\033[0m %s\n' "$*"; }

bin=target/release/arbor
[ -x "$bin" ] || { echo "build first: scripts/setup.sh (or cargo build --release)" >&2; exit 1; }
command -v tmux >/dev/null || { echo "tmux is needed (apt-get install tmux)" >&2; exit 1; }
data_home="${ARBOR_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/arbor}"
model="${ARBOR_MODEL:-$data_home/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
[ -f "$model" ] || { echo "no default model at $model: run scripts/setup.sh first" >&2; exit 1; }

venv=target/screenshots-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import rich' 2>/dev/null; then
  say "installing rich into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'rich>=13'
fi

out=docs/screenshots
mkdir -p "$out"
work=$(mktemp -d)
session="arbor-shots-$$"
cleanup() {
  tmux kill-session -t "$session" 2>/dev/null || true
  [ -n "${job:-}" ] && arbor jobs cancel "$job" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
export ARBOR_DB="$work/arbor.db" ARBOR_CONFIG_DIR="$work/config" ARBOR_DATA_DIR="$work/data" \
  ARBOR_MODEL="$model" ARBOR_TRAINER_DIR="$work/trainer" USER=curator
unset NO_COLOR
arbor() { "$bin" --threads 2 "$@"; }

say "importing the sample sessions"
for f in clarification-sql.jsonl tool-calling.jsonl tool_calls.log; do
  arbor import "sessions/$f" >/dev/null
done
job=$(arbor train --recipe command \
  --command "python3 $PWD/tests/fixtures/fake_trainer.py {out} --steps 400 --sleep 0.04 --curve" \
  --data sessions/clarification-sql.jsonl 2>/dev/null | tail -1)

# tmux gives a session the server's environment: pass Arbor's explicitly.
tmux new-session -d -s "$session" -x 110 -y 30 \
  "exec env -u NO_COLOR TERM=xterm-256color ARBOR_DB=$ARBOR_DB ARBOR_CONFIG_DIR=$ARBOR_CONFIG_DIR \
   ARBOR_DATA_DIR=$ARBOR_DATA_DIR ARBOR_MODEL=$ARBOR_MODEL ARBOR_TRAINER_DIR=$ARBOR_TRAINER_DIR \
   USER=curator $PWD/$bin --threads 2"
keys() { for k in "$@"; do tmux send-keys -t "$session" "$k"; sleep 0.3; done; }
screen() { tmux capture-pane -p -t "$session"; }
wait_for() { # wait_for WHAT PATTERN [SECONDS]
  local end=$((SECONDS + ${3:-120}))
  until screen | grep -qE -- "$2"; do
    if [ $SECONDS -ge $end ]; then
      echo "timed out waiting for $1; screen:" >&2; screen >&2; exit 1
    fi
    sleep 0.3
  done
}
shot() { # shot NAME TITLE
  sleep 0.5
  tmux capture-pane -e -p -t "$session" > "$work/$1.ans"
  "$venv/bin/python" - "$work/$1.ans" "$out/$1.svg" "$2" <<'PY'
import io, sys
from rich.console import Console
from rich.text import Text
src, dst, title = sys.argv[1:4]
console = Console(record=True, width=110, force_terminal=True, color_system="truecolor",
                  file=io.StringIO(), legacy_windows=False)
for line in open(src, encoding="utf-8").read().rstrip("\n").split("\n"):
    console.print(Text.from_ansi(line), overflow="crop", no_wrap=True)
console.save_svg(dst, title=title)
PY
  say "wrote $out/$1.svg"
}

wait_for "the list" "conversations \("
shot list "arbor — conversations"

# A conversation with tool calls and ratings; regenerate its last answer so it has a
# sibling to walk.
keys j j Enter
wait_for "a conversation" "assistant #"
keys r
wait_for "the new answer" "‹ 2/2 ›"
sleep 1
until ! screen | grep -q "generating"; do sleep 0.3; done
keys 2
shot chat "arbor — chat: ratings, siblings, tool calls"

keys T
wait_for "the tree" "●"
shot tree "arbor — the conversation tree"
keys Escape

keys k R
wait_for "compare" "candidate"
sleep 1
until ! screen | grep -q "▍"; do sleep 0.3; done
shot compare "arbor — compare three candidates"
keys Escape Escape Escape
wait_for "the list" "conversations \("

keys J
wait_for "the job's loss chart" " loss "
sleep 3
shot jobs "arbor — training jobs with the loss chart"
keys Escape

keys x
wait_for "the export dialog" "openai"
sleep 2
shot export "arbor — export dialog with live counts"
keys Escape q
say "done: $(ls "$out" | tr '\n' ' ')"
