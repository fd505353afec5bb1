"""Steps/s of a peft trainer log: from its first step event to its last, on its own clock."""
import json
import sys

events = []
for line in open(sys.argv[1], errors="replace"):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if isinstance(e, dict) and e.get("event") == "step":
        events.append(e)
first, last = events[0], events[-1]
print(f"{(last['step'] - first['step']) / (last['elapsed_s'] - first['elapsed_s']):.3f}")
