"""The plain way to load an OpenAI chat JSONL file into Arbor's schema: Python's json and
sqlite3, one transaction, one INSERT per conversation and message, the parent's active
child and the conversation's active root set as each message goes in. No merging of
shared beginnings (Arbor does that too, and more checks). usage: import_baseline.py DB FILE"""
import json, sqlite3, sys, time

db, path = sys.argv[1], sys.argv[2]
con = sqlite3.connect(db)
con.execute("PRAGMA journal_mode=WAL")
con.execute("PRAGMA synchronous=NORMAL")
now = int(time.time() * 1000)
cur = con.cursor()
cur.execute("BEGIN IMMEDIATE")
with open(path, encoding="utf-8") as f:
    for line in f:
        if not line.strip():
            continue
        rec = json.loads(line)
        msgs = rec["messages"]
        system = ""
        if msgs and msgs[0]["role"] == "system":
            system = msgs[0]["content"]
            msgs = msgs[1:]
        tools = json.dumps(rec["tools"]) if rec.get("tools") else None
        cur.execute(
            "INSERT INTO conversations (title, system_prompt, tools, created_at, updated_at) VALUES (?,?,?,?,?)",
            (msgs[0]["content"][:60], system, tools, now, now),
        )
        conv = cur.lastrowid
        parent = None
        for m in msgs:
            calls = m.get("tool_calls")
            cur.execute(
                "INSERT INTO nodes (conversation_id, parent_id, role, content, tool_calls, tool_call_id, origin, status, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (conv, parent, m["role"], m.get("content") or "", json.dumps(calls) if calls else None, m.get("tool_call_id"), "imported", "complete", now),
            )
            node = cur.lastrowid
            if parent is None:
                cur.execute("UPDATE conversations SET active_root_id = ? WHERE id = ?", (node, conv))
            else:
                cur.execute("UPDATE nodes SET active_child_id = ? WHERE id = ?", (node, parent))
            parent = node
con.commit()
