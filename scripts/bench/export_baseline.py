"""The baseline for `arbor export --min-rating 4 --format openai`: the same semantics in
plain Python with sqlite3 + json (what a user's own script would do).
usage: export_baseline.py DB OUT.jsonl"""
import json, sqlite3, sys

db, out = sys.argv[1], sys.argv[2]
con = sqlite3.connect(db)
stars = {}
for node, s in con.execute("SELECT node_id, stars FROM ratings WHERE stars IS NOT NULL"):
    stars[node] = min(s, stars.get(node, 9))
convs = {cid: (system, tools) for cid, system, tools in con.execute("SELECT id, system_prompt, tools FROM conversations")}
nodes = {}
by_conv = {}
for row in con.execute("SELECT id, conversation_id, parent_id, role, content, tool_calls, tool_call_id, status FROM nodes ORDER BY conversation_id, id"):
    nodes[row[0]] = row
    by_conv.setdefault(row[1], []).append(row[0])

def ok(n):
    r = nodes[n]
    return r[3] == "assistant" and r[7] == "complete" and stars.get(n, 0) >= 4

def message(n):
    _, _, _, role, content, calls, call_id, _ = nodes[n]
    m = {"role": role, "content": content}
    if role == "assistant" and calls:
        cs = json.loads(calls)
        m["tool_calls"] = [{"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": json.dumps(c["arguments"], ensure_ascii=False, separators=(",", ":"))}} for c in cs]
        if not content:
            m["content"] = None
    if role == "tool" and call_id:
        m["tool_call_id"] = call_id
    if role == "assistant":
        m["weight"] = 1 if ok(n) else 0
    return m

written = 0
with open(out, "w") as f:
    for cid, ids in by_conv.items():
        paths = []
        for n in ids:
            if not ok(n):
                continue
            p = [n]
            while nodes[p[-1]][2] is not None:
                p.append(nodes[p[-1]][2])
            paths.append(p[::-1])
        interior = {x for p in paths for x in p[:-1]}
        system, tools = convs[cid]
        for p in paths:
            if p[-1] in interior:
                continue
            msgs = ([{"role": "system", "content": system}] if system else []) + [message(n) for n in p]
            line = {"messages": msgs}
            if tools:
                line["tools"] = json.loads(tools)
                line["parallel_tool_calls"] = any(len(m.get("tool_calls", [])) > 1 for m in msgs)
            f.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
            written += 1
print(written)
