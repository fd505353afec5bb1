#!/usr/bin/env python3
"""Writes the sample sessions in sessions/ (run from the repo root; the output is committed).

The clarification and tool-calling sessions are OpenAssistant-style trees with Arbor's own
fields (ratings per rater, tags, tool calls), exactly what `arbor export --format oasst`
writes, so `arbor import sessions/<file>` restores them with every rating. The tool-call
log is in the format of seed 002.
"""
import json, itertools

ids = itertools.count(1)
SQL_SYSTEM = open("assets/presets/sql.toml").read().split('"""')[1]
TOOLS_PRESET = open("assets/presets/tool-caller.toml").read()
TOOL_SYSTEM = TOOLS_PRESET.split('"""')[1].replace("\\\n", "")
TOOLS = json.loads(TOOLS_PRESET.split("'''")[1])
T0 = "2026-11-01T09:00:00Z"

def msg(role, text, stars=None, tags=(), calls=None, call_id=None, origin="typed", model=None, replies=()):
    i = next(ids)
    ext = {"role": role, "origin": origin}
    if calls:
        ext["tool_calls"] = [{"id": f"call_{i}_{k}", "type": "function",
                              "function": {"name": n, "arguments": json.dumps(a)}}
                             for k, (n, a) in enumerate(calls)]
    if call_id:
        ext["tool_call_id"] = call_id
    if stars:
        ext["ratings"] = [{"rater": "sample", "stars": stars, "critique": None}]
    if tags:
        ext["tags"] = [{"rater": "sample", "tag": t} for t in tags]
    m = {"message_id": f"sample-{i}", "text": text,
         "role": "assistant" if role == "assistant" else "prompter",
         "created_date": T0, "synthetic": origin == "generated", "model_name": model,
         "review_result": True, "rank": None, "arbor": ext, "replies": list(replies)}
    return m

def call_ids(m):
    return [c["id"] for c in m["arbor"]["tool_calls"]]

def tree(system, root, tools=None):
    ext = {"system": system}
    if tools:
        ext["tools"] = tools
    return {"message_tree_id": f"sample-tree-{next(ids)}", "tree_state": "ready_for_export",
            "prompt": root, "arbor": ext}

def clarification(incomplete, question, complete, sql, guess):
    """incomplete request → clarifying question (5★) → completed request → SQL (5★);
    a sibling that guessed instead of asking (2★)."""
    answer = msg("assistant", sql, stars=5)
    done = msg("user", complete, replies=[answer])
    ask = msg("assistant", question, stars=5, tags=["clarification"], replies=[done])
    bad = msg("assistant", guess, stars=2, origin="generated", model="SmolLM2-135M-Instruct")
    return tree(SQL_SYSTEM, msg("user", incomplete, replies=[ask, bad]))

clar = [
    clarification(
        "Find information about players",
        "Which information do you need, and about which players? For example: names and positions, ages, or the players of one team.",
        "Show me all current Manchester United players with their positions",
        "SELECT player_name, position FROM players WHERE team = 'Manchester United' AND status = 'active' ORDER BY position, player_name;",
        "SELECT * FROM players;"),
    clarification(
        "How many goals were scored?",
        "Scored by which team, and in which games or period? For example: all home goals in 2025, or the goals of one team.",
        "Total goals scored by Arsenal at home in 2025",
        "SELECT SUM(home_goals) FROM games WHERE home_team = 'Arsenal' AND played_on BETWEEN '2025-01-01' AND '2025-12-31';",
        "SELECT SUM(home_goals + away_goals) FROM games;"),
    clarification(
        "List the young ones",
        "Young players, I assume — under which age, and in which team (or all teams)?",
        "Players under 21 in any team, youngest first",
        "SELECT player_name, team, age FROM players WHERE age < 21 ORDER BY age;",
        "SELECT player_name FROM players ORDER BY age LIMIT 10;"),
]

def weather_chain():
    final = msg("assistant", "It is 18 °C and sunny in Paris, and 12 °C with rain in London: take an umbrella to London.", stars=5)
    a1 = msg("assistant", "", stars=5, calls=[("get_weather", {"city": "Paris", "unit": "celsius"}),
                                               ("get_weather", {"city": "London", "unit": "celsius"})])
    r2 = msg("tool", '{"city": "London", "temperature": 12, "conditions": "rain"}', call_id=call_ids(a1)[1], replies=[final])
    r1 = msg("tool", '{"city": "Paris", "temperature": 18, "conditions": "sunny"}', call_id=call_ids(a1)[0], replies=[r2])
    a1["replies"] = [r1]
    return tree(TOOL_SYSTEM, msg("user", "Compare the weather in Paris and London right now.", replies=[a1]), TOOLS)

def sql_chain():
    answer = msg("assistant", "Manchester United has 3 active goalkeepers; the oldest is Tom Heaton (39).", stars=5)
    r2 = msg("tool", '[["Tom Heaton", 39]]', replies=[answer])
    a2 = msg("assistant", "", stars=5, calls=[("run_sql", {"query": "SELECT player_name, age FROM players WHERE team = 'Manchester United' AND position = 'GK' AND status = 'active' ORDER BY age DESC LIMIT 1;"})], replies=[r2])
    r2["arbor"]["tool_call_id"] = call_ids(a2)[0]
    r1 = msg("tool", "[[3]]", replies=[a2])
    a1 = msg("assistant", "", stars=5, calls=[("run_sql", {"query": "SELECT COUNT(*) FROM players WHERE team = 'Manchester United' AND position = 'GK' AND status = 'active';"})], replies=[r1])
    r1["arbor"]["tool_call_id"] = call_ids(a1)[0]
    bad = msg("assistant", "", stars=1, origin="generated", model="SmolLM2-135M-Instruct",
              calls=[("run_sql", {"sql": "goalkeepers"})])
    return tree(TOOL_SYSTEM, msg("user", "How many active goalkeepers does Manchester United have, and who is the oldest?", replies=[a1, bad]), TOOLS)

def direct():
    ok = msg("assistant", "2 + 2 = 4. No tool needed for that.", stars=4)
    return tree(TOOL_SYSTEM, msg("user", "What is 2 + 2?", replies=[ok]), TOOLS)

with open("sessions/clarification-sql.jsonl", "w") as f:
    for t in clar:
        f.write(json.dumps(t, ensure_ascii=False) + "\n")
with open("sessions/tool-calling.jsonl", "w") as f:
    for t in [weather_chain(), sql_chain(), direct()]:
        f.write(json.dumps(t, ensure_ascii=False) + "\n")

log = [
    {"timestamp": "2025-11-16T13:10:33.85769013-05:00", "model": "qwen2.5-coder:3b", "user_query": "Check current users",
     "model_response": json.dumps({"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "run_commands", "arguments": {"command": "who"}}}]}),
     "tool_name": "run_commands", "arguments": "{\"command\":\"who\"}", "status": "success",
     "message": "Command executed successfully", "output": "cal      pts/0        2025-11-16 10:06 (192.168.2.25)\n", "tools_enabled": True, "rating": 5},
    {"timestamp": "2025-11-16T13:12:02.10000000-05:00", "model": "qwen2.5-coder:3b", "user_query": "Show disk usage",
     "model_response": json.dumps({"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "run_commands", "arguments": {"command": "df -h"}}}]}),
     "tool_name": "run_commands", "arguments": "{\"command\":\"df -h\"}", "status": "success",
     "message": "Command executed successfully", "output": "Filesystem      Size  Used Avail Use% Mounted on\n/dev/sda1        50G   20G   28G  42% /\n", "tools_enabled": True, "rating": 4},
    {"timestamp": "2025-11-16T13:15:40.50000000-05:00", "model": "qwen2.5-coder:3b", "user_query": "Delete the temp files",
     "model_response": json.dumps({"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "run_commands", "arguments": {"command": "rm -rf /"}}}]}),
     "tool_name": "run_commands", "arguments": "{\"command\":\"rm -rf /\"}", "status": "error",
     "message": "Command refused", "output": "", "tools_enabled": True, "rating": 1},
]
with open("sessions/tool_calls.log", "w") as f:
    for l in log:
        f.write(json.dumps(l) + "\n")
