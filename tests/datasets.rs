//! Datasets on real SQLite files and the real `arbor` binary: the export invariants as
//! property tests over random trees, round trips, bad input, validate, stats, and every
//! export loaded by the real consumers (datasets, TRL, mlx-lm, the OpenAI schema).

mod common;
use arbor::dataset::export::{self, ExportOptions};
use arbor::dataset::{Format, SplitSpec};
use arbor::domain::*;
use arbor::store::{Store, TreeFields};
use common::*;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::Path;

// ---------------------------------------------------------------- random trees

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

/// A database of random conversation trees: branching, edits, tool calls and results,
/// interrupted answers, ratings by two raters, tags. Every message's content is unique
/// (`c<conversation>m<k>`) so exported lines can be traced back to nodes.
fn random_db(store: &Store, seed: u64, conversations: usize) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let tools = json!([{"type": "function", "function": {"name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}]);
    // (conversation, its first message), for answers added after all conversations.
    let mut roots = Vec::new();
    for _ in 0..conversations {
        let with_tools = rng.chance(30);
        let system = if rng.chance(50) { "be brief" } else { "" };
        let conv = store
            .create_conversation("t", system, with_tools.then_some(&tools))
            .unwrap();
        let cid = conv.id;
        let mut k = 0;
        let mut content = || {
            k += 1;
            format!("c{cid}m{k}")
        };
        let root = store
            .append_child(cid, None, &NewNode::user(content()))
            .unwrap();
        roots.push((cid, root.id));
        let mut users = vec![root.id];
        let steps = 2 + rng.below(10);
        for _ in 0..steps {
            let parent = users[rng.below(users.len() as u64) as usize];
            let text = content();
            let mut answer = NewNode::assistant(text.clone(), Origin::Generated);
            let calls = with_tools && rng.chance(40);
            if calls {
                let n = 1 + rng.below(2) as usize;
                answer.tool_calls = (0..n)
                    .map(|i| ToolCall {
                        id: format!("call{cid}_{i}_{}", rng.below(1_000_000)),
                        name: "lookup".into(),
                        arguments: json!({"q": format!("{text}q{i}")}),
                    })
                    .collect();
            }
            if rng.chance(10) {
                answer.status = Status::Interrupted;
            }
            let a = store.append_child(cid, Some(parent), &answer).unwrap();
            for rater in ["ann", "bob"] {
                if rng.chance(70) {
                    store
                        .rate(a.id, rater, Some(1 + rng.below(5) as u8))
                        .unwrap();
                }
            }
            if rng.chance(10) {
                store.add_tag(a.id, "ann", "refusal").unwrap();
            }
            let mut last = a.id;
            if calls {
                for c in &answer.tool_calls {
                    let mut r = NewNode::new(Role::Tool, content(), Origin::Typed);
                    r.tool_call_id = Some(c.id.clone());
                    last = store.append_child(cid, Some(last), &r).unwrap().id;
                }
                let fin = store
                    .append_child(
                        cid,
                        Some(last),
                        &NewNode::assistant(content(), Origin::Generated),
                    )
                    .unwrap();
                if rng.chance(80) {
                    store
                        .rate(fin.id, "ann", Some(1 + rng.below(5) as u8))
                        .unwrap();
                }
                last = fin.id;
            }
            if rng.chance(15) {
                // The edit is a plain answer (no copied calls), so exported text traces to one node.
                let e = store
                    .edit_as_sibling(a.id, &content(), Some(Vec::new()))
                    .unwrap();
                if rng.chance(50) {
                    store
                        .rate(e.id, "ann", Some(1 + rng.below(5) as u8))
                        .unwrap();
                }
            }
            if rng.chance(60) {
                let u = store
                    .append_child(cid, Some(last), &NewNode::user(content()))
                    .unwrap();
                users.push(u.id);
            }
        }
    }
    // Later answers to earlier conversations (a user going back to one), so conversations'
    // messages interleave in the table as they do in real use.
    for (k, (cid, root)) in roots.into_iter().enumerate() {
        if k % 7 == 3 {
            let a = store
                .append_child(
                    cid,
                    Some(root),
                    &NewNode::assistant(format!("c{cid}late"), Origin::Generated),
                )
                .unwrap();
            store
                .rate(a.id, "ann", Some(1 + rng.below(5) as u8))
                .unwrap();
        }
    }
}

/// Every node by its (unique) content.
fn nodes_by_content(store: &Store) -> HashMap<String, Node> {
    let mut m = HashMap::new();
    store
        .for_each_tree::<arbor::store::StoreError>(&[], TreeFields::ALL, |_, nodes| {
            for n in nodes {
                m.insert(n.content.clone(), n.clone());
            }
            Ok(())
        })
        .unwrap();
    m
}

fn lines_of(store: &Store, opts: &ExportOptions) -> (Vec<(Split, Value)>, export::Report) {
    let mut out = Vec::new();
    let report = export::run(
        store,
        opts,
        None,
        &mut |s, l| {
            out.push((s, serde_json::from_str(l).unwrap()));
            Ok(())
        },
        &mut |_, _| {},
    )
    .unwrap();
    (out, report)
}
use arbor::dataset::Split;

fn min_stars(store: &Store, n: &Node) -> Option<u8> {
    store
        .ratings(n.id)
        .unwrap()
        .iter()
        .filter_map(|r| r.stars)
        .min()
}

fn trainable(store: &Store, n: &Node, t: u8) -> bool {
    n.role == Role::Assistant
        && n.status == Status::Complete
        && min_stars(store, n).is_some_and(|s| s >= t)
}

/// Messages of an exported example, as nodes (the system prompt is not a node).
fn example_nodes<'a>(msgs: &[Value], by: &'a HashMap<String, Node>) -> Vec<&'a Node> {
    msgs.iter()
        .filter(|m| m["role"] != "system")
        .map(|m| {
            let c = m["content"].as_str().unwrap_or_default();
            by.get(c)
                .unwrap_or_else(|| panic!("exported content {c:?} is no node"))
        })
        .collect()
}

fn is_root_path(nodes: &[&Node]) -> bool {
    nodes.first().is_some_and(|n| n.parent_id.is_none())
        && nodes.windows(2).all(|w| w[1].parent_id == Some(w[0].id))
}

#[test]
fn export_invariants_hold_on_random_trees() {
    let split = SplitSpec {
        valid: 0.2,
        test: 0.1,
    };
    for seed in 1..=12u64 {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("p.db")).unwrap();
        random_db(&store, seed, 25);
        let by = nodes_by_content(&store);
        let t = 1 + (seed % 5) as u8;

        for format in [Format::Openai, Format::Trl, Format::Mlx, Format::Sharegpt] {
            let mut opts = ExportOptions::new(format);
            opts.min_rating = Some(t);
            opts.split = split;
            opts.seed = seed;
            let (lines, report) = lines_of(&store, &opts);
            let (again, _) = lines_of(&store, &opts);
            assert_eq!(
                lines, again,
                "seed {seed} {format}: the same export twice differs"
            );
            let mut paths: Vec<Vec<i64>> = Vec::new();
            let mut split_of: HashMap<i64, Split> = HashMap::new();
            for (s, line) in &lines {
                let msgs: Vec<Value> = if format == Format::Sharegpt {
                    // Map ShareGPT turns back to contents: a function_call's first call
                    // names its message (`<content>q0`); observations are skipped.
                    line["conversations"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|t| t["from"] != "observation")
                        .map(|t| {
                            if t["from"] == "function_call" {
                                let v: Value =
                                    serde_json::from_str(t["value"].as_str().unwrap()).unwrap();
                                let first = if v.is_array() { v[0].clone() } else { v };
                                let q = first["arguments"]["q"].as_str().unwrap();
                                json!({"role": "assistant", "content": q.trim_end_matches("q0")})
                            } else {
                                json!({"role": "x", "content": t["value"]})
                            }
                        })
                        .collect()
                } else {
                    line["messages"].as_array().unwrap().clone()
                };
                let nodes = example_nodes(&msgs, &by);
                if format != Format::Sharegpt {
                    assert!(
                        is_root_path(&nodes),
                        "seed {seed} {format}: not a root path: {line}"
                    );
                }
                let last = *nodes.last().unwrap();
                assert!(
                    trainable(&store, last, t),
                    "seed {seed} {format}: example ends with an untrainable answer: {line}"
                );
                // No assistant turn below the threshold is trained on.
                for (m, n) in msgs.iter().filter(|m| m["role"] != "system").zip(&nodes) {
                    if n.role != Role::Assistant {
                        continue;
                    }
                    let trained = match format {
                        Format::Openai => m["weight"] == 1,
                        _ => true,
                    };
                    if format == Format::Openai {
                        assert!(
                            m.get("weight").is_some(),
                            "seed {seed}: openai answer without weight"
                        );
                    }
                    assert!(
                        !trained || trainable(&store, n, t),
                        "seed {seed} {format}: answer {} rated {:?} is trained on (threshold {t})",
                        n.id,
                        min_stars(&store, n)
                    );
                    // Tool-call arguments: a JSON string of an object (OpenAI/mlx), an object (TRL).
                    for c in m["tool_calls"].as_array().into_iter().flatten() {
                        let args = &c["function"]["arguments"];
                        match format {
                            Format::Trl => assert!(args.is_object(), "{args}"),
                            _ => {
                                let parsed: Value =
                                    serde_json::from_str(args.as_str().unwrap()).unwrap();
                                assert!(parsed.is_object(), "double-encoded: {args}");
                            }
                        }
                    }
                }
                let cid = last.conversation_id;
                let prev = split_of.insert(cid, *s);
                assert!(
                    prev.is_none_or(|p| p == *s),
                    "seed {seed} {format}: conversation {cid} in two splits"
                );
                if format != Format::Sharegpt {
                    paths.push(nodes.iter().map(|n| n.id).collect());
                }
            }
            // No exported path is a prefix of another (or exported twice).
            for (i, a) in paths.iter().enumerate() {
                for (j, b) in paths.iter().enumerate() {
                    if i != j {
                        assert!(
                            !(a.len() <= b.len() && b[..a.len()] == a[..]),
                            "seed {seed} {format}: {a:?} is a prefix of {b:?}"
                        );
                    }
                }
            }
            // Completeness (OpenAI): every trainable answer is trained in some example.
            if format == Format::Openai {
                let trained: HashSet<i64> = lines
                    .iter()
                    .flat_map(|(_, l)| {
                        let msgs = l["messages"].as_array().unwrap().clone();
                        example_nodes(&msgs, &by)
                            .into_iter()
                            .zip(msgs.into_iter().filter(|m| m["role"] != "system"))
                            .filter(|(_, m)| m["weight"] == 1)
                            .map(|(n, _)| n.id)
                            .collect::<Vec<_>>()
                    })
                    .collect();
                for n in by.values() {
                    if trainable(&store, n, t) {
                        assert!(
                            trained.contains(&n.id),
                            "seed {seed}: trainable answer {} never trained",
                            n.id
                        );
                    }
                }
                assert!(report.total() > 0 || by.values().all(|n| !trainable(&store, n, t)));
            }
        }

        // Preference pairs: chosen ≥ threshold, at least the margin above rejected (or an
        // edit against its original); KTO labels follow the threshold.
        let mut opts = ExportOptions::new(Format::TrlPreference);
        opts.min_rating = Some(t);
        opts.margin = 2;
        let (lines, _) = lines_of(&store, &opts);
        for (_, l) in &lines {
            let c = &by[l["chosen"][0]["content"].as_str().unwrap()];
            let r = &by[l["rejected"][0]["content"].as_str().unwrap()];
            assert_eq!(c.parent_id, r.parent_id, "pair of non-siblings");
            let sc = min_stars(&store, c);
            let sr = min_stars(&store, r);
            if c.edited_from == Some(r.id) {
                assert!(sc.unwrap_or(5) >= t && sr.is_none_or(|x| x < sc.unwrap_or(5)));
            } else {
                let (sc, sr) = (sc.unwrap(), sr.unwrap());
                assert!(
                    sc >= t && sc >= sr + 2,
                    "pair {sc}★ vs {sr}★ (threshold {t}, margin 2)"
                );
            }
        }
        let mut opts = ExportOptions::new(Format::Kto);
        opts.min_rating = Some(t);
        for (_, l) in lines_of(&store, &opts).0 {
            let n = &by[l["completion"][0]["content"].as_str().unwrap()];
            assert_eq!(l["label"], json!(min_stars(&store, n).unwrap() >= t));
        }
    }
}

// ---------------------------------------------------------------- the binary

fn sessions() -> Vec<String> {
    [
        "clarification-sql.jsonl",
        "tool-calling.jsonl",
        "tool_calls.log",
    ]
    .iter()
    .map(|f| repo().join("sessions").join(f).display().to_string())
    .collect()
}

fn import_sessions(s: &Sandbox) {
    for f in sessions() {
        let out = s.ok(&["import", &f]);
        assert!(out.contains("imported 3 records"), "{out}");
    }
}

/// Every conversation as comparable data: system, tools, and the tree of (role, content,
/// tool calls, ratings, tags), children in order.
fn snapshot(db: &Path) -> Vec<Value> {
    let store = Store::open(db).unwrap();
    let j = store.judgements().unwrap();
    let mut out = Vec::new();
    store
        .for_each_tree::<arbor::store::StoreError>(&[], TreeFields::ALL, |conv, nodes| {
            fn sub(nodes: &[Node], j: &arbor::store::Judgements, parent: Option<i64>) -> Vec<Value> {
                nodes
                    .iter()
                    .filter(|n| n.parent_id == parent)
                    .map(|n| {
                        let mut ratings: Vec<Value> = j
                            .ratings_of(n.id)
                            .iter()
                            .map(|r| json!([r.rater, r.stars, r.critique]))
                            .collect();
                        ratings.sort_by_key(|v| v.to_string());
                        let mut tags: Vec<Value> = j.tags_of(n.id).iter().map(|t| json!(t)).collect();
                        tags.sort_by_key(|v| v.to_string());
                        let calls: Vec<Value> = n
                            .tool_calls
                            .iter()
                            .map(|c| json!([c.name, c.arguments]))
                            .collect();
                        json!({"role": n.role, "content": n.content, "calls": calls,
                               "ratings": ratings, "tags": tags, "kids": sub(nodes, j, Some(n.id))})
                    })
                    .collect()
            }
            out.push(json!({"system": conv.system_prompt, "tools": conv.tools, "tree": sub(nodes, &j, None)}));
            Ok(())
        })
        .unwrap();
    out.sort_by_key(|v| v.to_string());
    out
}

#[test]
fn import_export_import_keeps_trees_ratings_and_tool_calls() {
    let a = Sandbox::new();
    import_sessions(&a);
    let before = snapshot(&a.db());
    assert_eq!(before.len(), 9);

    // OASST carries everything: trees, ratings per rater, tags, tool calls.
    let file = a.dir.path().join("trees.jsonl");
    a.ok(&["export", "--format", "oasst", "-o", file.to_str().unwrap()]);
    let b = Sandbox::new();
    b.ok(&["import", file.to_str().unwrap()]);
    assert_eq!(
        snapshot(&b.db()),
        before,
        "oasst round trip changed the trees"
    );

    // Flat OpenAI examples of a tree come back as the same tree (shared prefixes merge).
    let flat = a.dir.path().join("flat.jsonl");
    // Every answer, the curator's 1-2★ ones too (left out of training by default).
    a.ok(&[
        "export",
        "--format",
        "openai",
        "--include-low-rated",
        "-o",
        flat.to_str().unwrap(),
    ]);
    let c = Sandbox::new();
    let out = c.ok(&["import", flat.to_str().unwrap()]);
    assert!(out.contains("(openai, detected)"), "{out}");
    let strip = |v: &[Value]| -> Vec<Value> {
        // OpenAI has no ratings, tags or interrupted answers; compare structure and text.
        fn clean(v: &Value) -> Value {
            json!({"role": v["role"], "content": v["content"], "calls": v["calls"],
                   "kids": v["kids"].as_array().unwrap().iter().map(clean).collect::<Vec<_>>()})
        }
        let mut out: Vec<Value> = v
            .iter()
            .map(|c| json!({"system": c["system"], "tools": c["tools"],
                            "tree": c["tree"].as_array().unwrap().iter().map(clean).collect::<Vec<_>>()}))
            .collect();
        out.sort_by_key(|v| v.to_string());
        out
    };
    let again = strip(&snapshot(&c.db()));
    // Every answer of the sample sessions is complete, so every one is an example's end
    // or inside one; but tool results after the last answer (the log's) are not in any
    // example, so compare against the trees without trailing tool results.
    fn prune(v: &Value) -> Option<Value> {
        let kids: Vec<Value> = v["kids"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(prune)
            .collect();
        if v["role"] == "tool" && kids.is_empty() {
            return None;
        }
        Some(json!({"role": v["role"], "content": v["content"], "calls": v["calls"], "kids": kids}))
    }
    let mut expected: Vec<Value> = strip(&before)
        .iter()
        .map(|c| json!({"system": c["system"], "tools": c["tools"],
                        "tree": c["tree"].as_array().unwrap().iter().filter_map(prune).collect::<Vec<_>>()}))
        .collect();
    expected.sort_by_key(|v| v.to_string());
    assert_eq!(again, expected, "openai round trip changed the trees");
}

#[test]
fn bad_lines_name_file_line_and_field_and_import_nothing() {
    let s = Sandbox::new();
    let f = s.dir.path().join("bad.jsonl");
    std::fs::write(
        &f,
        concat!(
            r#"{"messages": [{"role": "user", "content": "fine"}, {"role": "assistant", "content": "ok"}]}"#, "\n",
            r#"{"messages": [{"role": "narrator", "content": "x"}]}"#, "\n",
            "{not json\n",
            r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{\"a\": "}}]}]}"#, "\n",
        ),
    )
    .unwrap();
    let out = s.run(&["import", "--format", "openai", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let name = f.display().to_string();
    assert!(
        err.contains(&format!(
            "{name}:2: messages[0].role: unknown role 'narrator'"
        )),
        "{err}"
    );
    assert!(err.contains(&format!("{name}:3: not valid JSON")), "{err}");
    assert!(
        err.contains(&format!(
            "{name}:4: messages[1].tool_calls[0].function.arguments: arguments are not valid JSON"
        )),
        "{err}"
    );
    assert!(err.contains("nothing was imported"), "{err}");
    let store = Store::open(s.db()).unwrap();
    assert_eq!(
        store.counts().unwrap().nodes,
        0,
        "a failed import left messages behind"
    );
    drop(store);

    let out = s.ok(&["import", "--skip-bad", f.to_str().unwrap()]);
    assert!(
        out.contains("imported 1 records") && out.contains("skipped 3 bad records"),
        "{out}"
    );
    assert_eq!(Store::open(s.db()).unwrap().counts().unwrap().nodes, 2);
}

#[test]
fn validate_counts_what_the_seeds_care_about() {
    let s = Sandbox::new();
    let tools = s.dir.path().join("tools.json");
    std::fs::write(
        &tools,
        r#"[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]"#,
    )
    .unwrap();
    let f = s.dir.path().join("data.jsonl");
    let call = |name: &str, args: &str| {
        json!({"messages": [{"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": name, "arguments": args}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "assistant", "content": "Sunny."}]})
        .to_string()
    };
    let text = [
        call("get_weather", r#"{"city": "Paris"}"#),
        call("get_weather", r#"{"town": "Paris"}"#),
        call("get_wether", r#"{"city": "Paris"}"#),
        json!({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "assistant", "content": "c"}]}).to_string(),
        "[1, 2".to_string(),
    ]
    .join("\n");
    std::fs::write(&f, text).unwrap();
    let out = s.run(&[
        "validate",
        "--format",
        "openai",
        "--tools",
        tools.to_str().unwrap(),
        f.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "errors must fail validate");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let e = &r[0]["errors"];
    assert_eq!(e["JSON errors"], 1, "{r}");
    assert_eq!(e["invalid tool-call arguments"], 1, "{r}");
    assert_eq!(e["invalid tool names"], 1, "{r}");
    assert_eq!(e["role-order problems"], 1, "{r}");
    assert_eq!(r[0]["calls_per_tool"]["get_weather"], 2);
    assert_eq!(r[0]["single_step"], 3);
    assert!(
        r[0]["tokens_max"].as_u64().unwrap() > 10,
        "tokens counted with the model's tokenizer: {r}"
    );

    // Over the token limit.
    let out = s.run(&[
        "validate",
        "--max-tokens",
        "20",
        f.to_str().unwrap(),
        "--json",
    ]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        r[0]["errors"]["over the token limit"].as_u64().unwrap() >= 3,
        "{r}"
    );
}

#[test]
fn seed_text_styles_import_and_export_back() {
    let s = Sandbox::new();
    let f = s.dir.path().join("train.jsonl");
    // The seed's own lines (000): Q:/A: with a table preamble, and System:/Human:/AI:.
    std::fs::write(
        &f,
        concat!(
            r#"{"text": "table: 1-1000181-1\ncolumns: State/territory, Text/background colour, Format, Current slogan, Current series, Notes\nQ: Tell me what the notes are for South Australia \nA: SELECT Notes FROM 1-1000181-1 WHERE Current slogan = 'SOUTH AUSTRALIA'"}"#, "\n",
            r#"{"text": "System: You are Gilfoyle from Silicon Valley TV show...\nHuman: what is the capital of China\nAI: It's Beijing. Even Dinesh could've told you that."}"#, "\n",
        ),
    )
    .unwrap();
    let out = s.ok(&["import", f.to_str().unwrap()]);
    assert!(
        out.contains("(text, detected)") && out.contains("2 conversations"),
        "{out}"
    );
    let list = s.json(&["sessions", "--json"]);
    let ids: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    let shown: Vec<Value> = ids
        .iter()
        .map(|id| s.json(&["sessions", "show", &id.to_string(), "--json"]))
        .collect();
    let sql = shown
        .iter()
        .find(|c| {
            c["conversation"]["system_prompt"]
                .as_str()
                .unwrap()
                .starts_with("table:")
        })
        .unwrap();
    assert_eq!(
        sql["nodes"][0]["node"]["content"],
        "Tell me what the notes are for South Australia"
    );
    assert_eq!(sql["nodes"][1]["node"]["role"], "assistant");
    assert_eq!(sql["nodes"][1]["node"]["origin"], "imported");

    let out_file = s.dir.path().join("qa.jsonl");
    s.ok(&[
        "export",
        "--format",
        "text",
        "--template-file",
        "qa",
        "-o",
        out_file.to_str().unwrap(),
        "--conversation",
        &sql["conversation"]["id"].to_string(),
    ]);
    let line: Value =
        serde_json::from_str(std::fs::read_to_string(&out_file).unwrap().trim()).unwrap();
    assert_eq!(
        line["text"],
        "table: 1-1000181-1\ncolumns: State/territory, Text/background colour, Format, Current slogan, Current series, Notes\nQ: Tell me what the notes are for South Australia\nA: SELECT Notes FROM 1-1000181-1 WHERE Current slogan = 'SOUTH AUSTRALIA'"
    );
    // Through the model's own chat template (ChatML for the default model).
    let chat = s.dir.path().join("chat.jsonl");
    s.ok(&["export", "--format", "text", "-o", chat.to_str().unwrap()]);
    let text = std::fs::read_to_string(&chat).unwrap();
    assert!(
        text.contains(r"<|im_start|>user\nwhat is the capital of China<|im_end|>"),
        "{text}"
    );
}

#[test]
fn stats_and_filters_on_the_sample_sessions() {
    let s = Sandbox::new();
    import_sessions(&s);
    let st = s.json(&["stats", "--json"]);
    assert_eq!(st["conversations"], 9);
    assert_eq!(st["clarification_turns"], 3);
    assert_eq!(st["clarification_dialogues"], 3);
    assert_eq!(st["by_stars"]["1"], 2);
    assert_eq!(st["calls_per_tool"]["run_sql"], 3);
    assert_eq!(st["by_tag"]["clarification"], 3);

    let out = |args: &[&str]| s.export_json(args);
    // The seed's tool: --min-rating 4.
    let (r, lines) = out(&["--min-rating", "4"]);
    assert_eq!(lines.len(), 8, "{r}");
    assert_eq!(r["left_out"]["rated below --min-rating"], 5);
    // The clarification dialogues only.
    let (_, lines) = out(&["--min-rating", "4", "--tag", "clarification"]);
    assert_eq!(lines.len(), 3);
    assert!(lines
        .iter()
        .all(|l| l["messages"].as_array().unwrap().len() == 5));
    // --model: answers of one model (one of its three was rated 1★: not trained on unless
    // asked).
    let (r, lines) = out(&["--model", "qwen2.5-coder"]);
    assert_eq!(lines.len(), 2, "{r}");
    let (_, lines) = out(&["--model", "qwen2.5-coder", "--include-low-rated"]);
    assert_eq!(lines.len(), 3);
    // --max-tokens with the model's tokenizer drops and counts.
    let (r, _) = out(&["--max-tokens", "150"]);
    assert!(
        r["left_out"]["over --max-tokens"].as_u64().unwrap() > 0,
        "{r}"
    );
    // Preference pairs: 3 clarification pairs (5★ vs 2★) and the bad tool call (5★ vs 1★).
    let (_, lines) = out(&["--format", "openai-dpo"]);
    assert_eq!(lines.len(), 4);
    let (_, lines) = out(&["--format", "openai-dpo", "--margin", "4"]);
    assert_eq!(lines.len(), 1);
}

#[test]
fn a_failed_export_leaves_no_file() {
    let s = Sandbox::new();
    import_sessions(&s);
    let tpl = s.dir.path().join("bad.jinja");
    std::fs::write(
        &tpl,
        "{% for m in messages %}{{ raise_exception('no ' + m.role) }}{% endfor %}",
    )
    .unwrap();
    let f = s.dir.path().join("out.jsonl");
    let out = s.run(&[
        "export",
        "--format",
        "text",
        "--template-file",
        tpl.to_str().unwrap(),
        "-o",
        f.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no system"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !f.exists(),
        "a failed export left a file under the final name"
    );
    let leftovers: Vec<_> = std::fs::read_dir(s.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn every_export_loads_in_the_real_consumers() {
    let s = Sandbox::new();
    import_sessions(&s);
    let dir = s.dir.path().join("exports");
    std::fs::create_dir_all(&dir).unwrap();
    for f in [
        "openai",
        "openai-dpo",
        "trl",
        "trl-prompt-completion",
        "trl-preference",
        "kto",
        "sharegpt",
        "alpaca",
        "oasst",
    ] {
        let path = dir.join(format!("{f}.jsonl"));
        s.ok(&[
            "export",
            "--format",
            f,
            "--min-rating",
            "4",
            "-o",
            path.to_str().unwrap(),
        ]);
        let v = s.run(&["validate", "--format", f, path.to_str().unwrap()]);
        assert!(
            v.status.success(),
            "validate {f}: {}",
            String::from_utf8_lossy(&v.stdout)
        );
    }
    s.ok(&[
        "export",
        "--format",
        "text",
        "--min-rating",
        "4",
        "-o",
        dir.join("text.jsonl").to_str().unwrap(),
    ]);
    s.ok(&[
        "export",
        "--format",
        "mlx",
        "--min-rating",
        "4",
        "--split",
        "valid=0.3",
        "--seed",
        "1",
        "-o",
        dir.join("mlx").to_str().unwrap(),
    ]);
    let v = s.run(&["validate", dir.join("mlx").to_str().unwrap()]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));

    let out = std::process::Command::new(consumer_python())
        .arg(repo().join("tests/consumers/check_exports.py"))
        .arg(&dir)
        .arg(default_model())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "consumers failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in [
        "ok openai-schema openai.jsonl 8",
        "ok openai-schema openai-dpo.jsonl 4",
        "ok trl trl.jsonl 8",
        "ok trl trl-prompt-completion.jsonl 14",
        "ok trl trl-preference.jsonl 4",
        "ok trl kto.jsonl 19",
        "ok mlx-lm train",
        "ok llama-factory dataset_info 2 entries",
        "ok datasets oasst.jsonl 9",
    ] {
        assert!(stdout.contains(check), "missing '{check}' in:\n{stdout}");
    }
}

#[test]
fn the_two_worker_export_writes_exactly_what_one_pass_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("big.db")).unwrap();
    // Enough conversations for three blocks of the parallel export.
    random_db(&store, 99, 4_300);
    for (i, format) in [
        Format::Openai,
        Format::Trl,
        Format::Kto,
        Format::Oasst,
        Format::TrlPreference,
    ]
    .into_iter()
    .enumerate()
    {
        let run = |threads: usize| {
            let mut opts = ExportOptions::new(format);
            opts.min_rating = (i % 2 == 0).then_some(3);
            opts.split = SplitSpec {
                valid: 0.1,
                test: 0.0,
            };
            opts.threads = threads;
            let out = dir.path().join(format!("{format}-{threads}"));
            let report = export::write(&store, &opts, None, &out, &mut |_, _| {}).unwrap();
            let files: Vec<(String, String)> = report
                .files
                .iter()
                .map(|f| {
                    (
                        f.file_name().unwrap().to_string_lossy().into_owned(),
                        std::fs::read_to_string(f).unwrap(),
                    )
                })
                .collect();
            (files, serde_json::to_value(&report).unwrap())
        };
        let (one, r1) = run(1);
        let (two, r2) = run(2);
        assert!(
            one.iter().any(|(_, text)| !text.is_empty()),
            "{format}: nothing written"
        );
        assert_eq!(one, two, "{format}: the files differ");
        for key in [
            "written",
            "left_out",
            "within_longer",
            "conversations",
            "first",
            "notes",
        ] {
            assert_eq!(r1[key], r2[key], "{format}: report field {key} differs");
        }
    }
}
