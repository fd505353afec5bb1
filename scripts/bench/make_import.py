"""Writes an OpenAI chat JSONL file of N conversations of 10 messages (a system prompt
on every other one, five user/assistant turns, some tool calls, ~1 in 5 conversations
sharing its first turn with the one before, so import has trees to merge).
usage: make_import.py FILE N [SEED]"""
import json, random, sys

path, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 11)
words = "the a players team goals select from where order by group count table query answer season".split()


def text(k):
    return " ".join(rng.choice(words) for _ in range(k))


tools = [{"type": "function", "function": {"name": "run_sql", "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}]
first = None
with open(path, "w") as f:
    for c in range(n):
        msgs = []
        if c % 2:
            msgs.append({"role": "system", "content": "You answer with SQL."})
        user = first if (first and rng.random() < 0.2) else f"question {c}: {text(12)}"
        first = user
        for turn in range(5):
            msgs.append({"role": "user", "content": user if turn == 0 else text(12)})
            msgs.append({"role": "assistant", "content": text(30)})
        rec = {"messages": msgs}
        if c % 10 == 0:
            rec["tools"] = tools
        f.write(json.dumps(rec) + "\n")
