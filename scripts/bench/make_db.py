"""Fills an Arbor database (schema made by `arbor stats`) with N conversations of 10
messages: four user/assistant turns plus two regenerated siblings, ~70% of answers rated
1-5 stars, a few tags, some tool calls. usage: make_db.py DB N"""
import json, random, sqlite3, sys, time

db, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
con = sqlite3.connect(db)
con.execute("PRAGMA journal_mode=WAL")
con.execute("PRAGMA synchronous=OFF")
now = int(time.time() * 1000)
words = "the a players team goals select from where order by group count table query answer season".split()

def text(k):
    return " ".join(rng.choice(words) for _ in range(k))

nid = con.execute("SELECT coalesce(max(id), 0) FROM nodes").fetchone()[0]
cid = con.execute("SELECT coalesce(max(id), 0) FROM conversations").fetchone()[0]
nodes, ratings, tags, convs = [], [], [], []
tools = json.dumps([{"type": "function", "function": {"name": "run_sql", "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}])
for c in range(n):
    cid += 1
    convs.append((cid, f"bench {c}", "You answer with SQL." if c % 2 else "", tools if c % 10 == 0 else None, now, now))
    parent = None
    for turn in range(4):
        nid += 1
        user = nid
        nodes.append((user, cid, parent, "user", text(12), None, None, "typed", "complete", None, now))
        answers = 2 if turn in (1, 3) else 1
        for k in range(answers):
            nid += 1
            calls = None
            if c % 10 == 0 and turn == 0:
                calls = json.dumps([{"id": f"call_{nid}", "name": "run_sql", "arguments": {"query": text(6)}}])
            nodes.append((nid, cid, user, "assistant", text(30), calls, None, "generated", "complete", "bench-model", now))
            if rng.random() < 0.7:
                ratings.append((nid, "me", rng.randint(1, 5), now))
            if rng.random() < 0.02:
                tags.append((nid, "me", "refusal", now))
        parent = nid  # continue from the last answer
con.executemany("INSERT INTO conversations (id, title, system_prompt, tools, created_at, updated_at) VALUES (?,?,?,?,?,?)", convs)
con.executemany("INSERT INTO nodes (id, conversation_id, parent_id, role, content, tool_calls, tool_call_id, origin, status, model, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)", nodes)
con.executemany("INSERT INTO ratings (node_id, rater, stars, updated_at) VALUES (?,?,?,?)", ratings)
con.executemany("INSERT INTO tags (node_id, rater, tag, created_at) VALUES (?,?,?,?)", tags)
con.commit()
print(f"{n} conversations, {len(nodes)} messages, {len(ratings)} ratings")
