//! Eval sets through the real binary: made from the store with filters or from a file,
//! listed, shown, deleted, and held out of export and training.

mod common;

use common::{import_sessions, kill_when, stderr, Sandbox};
use serde_json::Value;
use std::path::PathBuf;

fn convs_in(lines: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = lines
        .iter()
        .map(|l| {
            l["messages"][1]["content"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn an_eval_set_from_the_store_is_held_out_of_export() {
    let s = Sandbox::new();
    import_sessions(&s);
    let (_, before) = s.export_json(&["--min-rating", "4"]);
    assert_eq!(before.len(), 8);

    // The three clarification dialogues: two user turns each.
    let set = s.json(&["eval", "set", "clarify", "--tag", "clarification", "--json"]);
    assert_eq!(set["cases"], 6, "{set}");
    assert_eq!(set["conversations"], 3);
    assert_eq!(set["with_reference"], 6);
    let shown = s.json(&["eval", "show", "clarify", "--json"]);
    let cases = shown["cases"].as_array().unwrap();
    assert_eq!(cases[0]["user"], "Find information about players");
    // The reference is the 5★ clarifying question, not the 2★ SQL sibling.
    assert!(cases[0]["reference"]
        .as_str()
        .unwrap()
        .starts_with("Which information do you need"));
    assert_eq!(cases[0]["tags"], serde_json::json!(["clarification"]));
    assert!(cases[1]["reference"]
        .as_str()
        .unwrap()
        .starts_with("SELECT player_name, position"));
    let text = s.ok(&["eval", "show", "clarify"]);
    assert!(text.contains("Find information about players"), "{text}");

    // Held out: the clarification conversations are not exported, and the report says so.
    let (report, lines) = s.export_json(&["--min-rating", "4"]);
    assert_eq!(lines.len(), 5, "{report}");
    assert!(lines
        .iter()
        .all(|l| !l.to_string().contains("Find information about players")));
    assert_eq!(
        report["left_out"]["held out for an eval set (--include-eval trains on them)"], 9,
        "{report}"
    );
    let (_, lines) = s.export_json(&["--min-rating", "4", "--include-eval"]);
    assert_eq!(lines.len(), 8);

    // A --max-tokens-free sample is deterministic by seed, whole conversations first.
    let a = s.json(&["eval", "set", "a", "--sample", "3", "--seed", "7", "--json"]);
    assert_eq!(a["cases"], 3);
    let b = s.json(&["eval", "set", "b", "--sample", "3", "--seed", "7", "--json"]);
    assert_eq!(b["cases"], 3);
    let ids = |name: &str| -> Vec<Value> {
        s.json(&["eval", "show", name, "--json"])["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["user_node_id"].clone())
            .collect()
    };
    assert_eq!(ids("a"), ids("b"));

    let list = s.json(&["eval", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 3);
    // Deleting the sets puts their conversations back into training.
    for n in ["clarify", "a", "b"] {
        s.ok(&["eval", "delete", n]);
    }
    let (_, lines) = s.export_json(&["--min-rating", "4"]);
    assert_eq!(lines.len(), 8);
    let _ = convs_in(&lines);
}

#[test]
fn an_eval_set_from_a_file_and_bad_input() {
    let s = Sandbox::new();
    import_sessions(&s);
    let f: PathBuf = s.dir.path().join("cases.jsonl");
    std::fs::write(
        &f,
        concat!(
            r#"{"messages": [{"role": "system", "content": "Answer with SQL."}, {"role": "user", "content": "How many players?"}, {"role": "assistant", "content": "SELECT count(*) FROM players;"}]}"#, "\n",
            r#"{"messages": [{"role": "user", "content": "List the teams"}]}"#, "\n",
        ),
    )
    .unwrap();
    let set = s.json(&[
        "eval",
        "set",
        "file-set",
        "--from",
        f.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(set["cases"], 2, "{set}");
    assert_eq!(set["with_reference"], 1);
    let shown = s.json(&["eval", "show", "file-set", "--json"]);
    let cases = shown["cases"].as_array().unwrap();
    assert_eq!(cases[0]["user"], "How many players?");
    assert_eq!(cases[0]["reference"], "SELECT count(*) FROM players;");
    assert_eq!(cases[1]["user"], "List the teams");
    assert!(cases[1]["reference"].is_null());
    // Those conversations are held out too.
    let f2 = s.dir.path().join("x.jsonl");
    let r = s.json(&[
        "export",
        "-o",
        f2.to_str().unwrap(),
        "--json",
        "--include-low-rated",
    ]);
    assert!(
        !std::fs::read_to_string(&f2)
            .unwrap()
            .contains("How many players?"),
        "{r}"
    );

    let count = |s: &Sandbox| s.json(&["stats", "--json"])["conversations"].clone();
    let before = count(&s);
    // Bad input: exit 2, nothing changed.
    let bad = s.dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"messages\": [{\"role\": \"user\", \"content\": \"ok\"}]}\n{\"messages\": [{\"role\": \"narrator\", \"content\": \"x\"}]}\n").unwrap();
    let out = s.run(&["eval", "set", "bad", "--from", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("{}:2: messages[0].role", bad.display())),
        "{}",
        stderr(&out)
    );
    for args in [
        vec!["eval", "show", "nope"],
        vec!["eval", "delete", "nope"],
        vec!["eval", "set", "file-set", "--tag", "clarification"],
        vec!["eval", "set", "empty", "--tag", "no-such-tag"],
        vec!["eval", "set", "bad name!"],
        vec!["eval", "set", "x", "--conversation", "999999"],
    ] {
        let out = s.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(count(&s), before);
    assert_eq!(
        s.json(&["eval", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

// ------------------------------------------------------------- runs and reports

use arbor::domain::{GenerationFacts, NewNode, Origin, Status, ToolCall};
use arbor::store::Store;
use std::process::Stdio;
use std::time::Duration;

/// A fixture whose metrics are known by hand: an SQL case, a tool case and a
/// clarification case, answered by two hand-written "candidates".
#[test]
fn report_numbers_equal_a_hand_computation() {
    let s = Sandbox::new();
    s.ok(&["stats"]); // the schema
    let store = Store::open(s.db()).unwrap();
    let tools = serde_json::json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}]);
    let call = |city: &str| ToolCall {
        id: "c1".into(),
        name: "get_weather".into(),
        arguments: serde_json::json!({ "city": city }),
    };
    // 1. SQL: schema in the system prompt, reference rated 5.
    let sql = store
        .create_conversation(
            "sql",
            "Answer with SQL.\nCREATE TABLE players (id INTEGER, name TEXT, age INTEGER);",
            None,
        )
        .unwrap();
    let u1 = store
        .append_child(sql.id, None, &NewNode::user("Oldest player?"))
        .unwrap();
    let r1 = store
        .append_child(
            sql.id,
            Some(u1.id),
            &NewNode::assistant(
                "SELECT name FROM players ORDER BY age DESC LIMIT 1;",
                Origin::Typed,
            ),
        )
        .unwrap();
    store.rate(r1.id, "me", Some(5)).unwrap();
    // 2. Tools: the reference calls get_weather(Paris).
    let tc = store
        .create_conversation("tools", "", Some(&tools))
        .unwrap();
    let u2 = store
        .append_child(tc.id, None, &NewNode::user("Weather in Paris?"))
        .unwrap();
    let r2 = store
        .append_child(
            tc.id,
            Some(u2.id),
            &NewNode {
                tool_calls: vec![call("Paris")],
                ..NewNode::assistant("", Origin::Typed)
            },
        )
        .unwrap();
    store.rate(r2.id, "me", Some(5)).unwrap();
    // 3. Clarification: the reference asks back, tagged.
    let cl = store.create_conversation("clar", "", None).unwrap();
    let u3 = store
        .append_child(cl.id, None, &NewNode::user("Find the players"))
        .unwrap();
    let r3 = store
        .append_child(
            cl.id,
            Some(u3.id),
            &NewNode::assistant("Which team?", Origin::Typed),
        )
        .unwrap();
    store.rate(r3.id, "me", Some(4)).unwrap();
    store.add_tag(r3.id, "me", "clarification").unwrap();
    drop(store);
    let set = s.json(&["eval", "set", "fixture", "--json"]);
    assert_eq!(set["cases"], 3);
    assert_eq!(set["with_reference"], 3);

    // Two candidates' answers, written as a run would write them.
    let store = Store::open(s.db()).unwrap();
    let run = store
        .create_eval_run(
            set["id"].as_i64().unwrap(),
            &["a".to_string(), "b".to_string()],
        )
        .unwrap();
    let (_, cases) = store.eval_set("fixture").unwrap();
    let answer = |case: usize, cand: usize, text: &str, calls: Vec<ToolCall>, tokens: i64| {
        let id = store
            .start_eval_answer(
                run,
                &cases[case],
                cand,
                &NewNode::assistant("", Origin::Generated),
            )
            .unwrap();
        let facts = GenerationFacts {
            generated_tokens: tokens as u32,
            tokens_per_s: 10.0,
            ..Default::default()
        };
        store
            .update_generation(id, text, Status::Complete, Some(&facts), None, Some(&calls))
            .unwrap();
        id
    };
    // a: compiles, right call, asks back. b: bad column, wrong city, answers blindly.
    answer(
        0,
        0,
        "SELECT name FROM players ORDER BY age DESC LIMIT 1;",
        vec![],
        10,
    );
    answer(1, 0, "", vec![call("Paris")], 20);
    answer(2, 0, "Which team do you mean?", vec![], 30);
    answer(0, 1, "SELECT nom FROM players;", vec![], 40);
    answer(1, 1, "", vec![call("Lyon")], 50);
    let b_clar = answer(2, 1, "SELECT * FROM players;", vec![], 60);
    store.rate(b_clar, "me", Some(2)).unwrap();
    store.finish_eval_run(run, None).unwrap();
    drop(store);

    let r = s.json(&["eval", "report", &run.to_string(), "--json"]);
    let rate = |cand: usize, m: &str| {
        let x = &r["candidates"][cand]["all"]["rates"][m];
        (x["k"].as_u64().unwrap(), x["n"].as_u64().unwrap())
    };
    // By hand: a — SQL compiles 1/1 (the SQL case; the others have no schema), exact match
    // 1/2 (SQL and clarification references have text; the tool reference has none),
    // calls made/names/valid/equal 1/1, clarification asked 1/1, unnecessary question 0/2.
    assert_eq!(rate(0, "sql_compiles"), (1, 1));
    assert_eq!(rate(0, "exact_match"), (1, 2));
    assert_eq!(rate(0, "tool_call_made"), (1, 1));
    assert_eq!(rate(0, "tool_args_equal"), (1, 1));
    assert_eq!(rate(0, "asks_clarification"), (1, 1));
    assert_eq!(rate(0, "unnecessary_question"), (0, 2));
    // b — 'nom' is no column: 0/1; the call is valid but not equal; no question asked.
    assert_eq!(rate(1, "sql_compiles"), (0, 1));
    assert_eq!(rate(1, "exact_match"), (0, 2));
    assert_eq!(rate(1, "tool_args_valid"), (1, 1));
    assert_eq!(rate(1, "tool_args_equal"), (0, 1));
    assert_eq!(rate(1, "asks_clarification"), (0, 1));
    // Means: tokens (10+20+30)/3 = 20 and (40+50+60)/3 = 50; stars only where rated.
    assert_eq!(r["candidates"][0]["all"]["mean_tokens"], 20.0);
    assert_eq!(r["candidates"][1]["all"]["mean_tokens"], 50.0);
    assert!(r["candidates"][0]["all"]["mean_stars"].is_null());
    assert_eq!(r["candidates"][1]["all"]["mean_stars"], 2.0);
    // Token F1 of b on the SQL case: {select, nom, from, players} vs {select, name, from,
    // players, order, by, age, desc, limit, 1}: 3 common, P = 3/4, R = 3/10, F1 = 3/7; on
    // the clarification case {select, from, players} vs {which, team}: 0. Mean 3/14.
    let f1 = r["candidates"][1]["all"]["mean_token_f1"].as_f64().unwrap();
    assert!((f1 - 3.0 / 14.0).abs() < 1e-9, "{f1}");
    // 1 of 1: Wilson 95% [0.2065, 1].
    let x = &r["candidates"][0]["all"]["rates"]["sql_compiles"];
    assert!((x["low"].as_f64().unwrap() - 0.2065).abs() < 1e-3, "{x}");
    // Groups: the SQL case is in `sql`, the tool case in `tools`, the clarifying one in
    // `clarification`.
    assert_eq!(
        r["candidates"][0]["groups"]["sql"]["rates"]["sql_compiles"]["n"],
        1
    );
    assert_eq!(
        r["candidates"][0]["groups"]["tools"]["rates"]["tool_call_made"]["n"],
        1
    );
    assert_eq!(
        r["candidates"][0]["groups"]["clarification"]["rates"]["asks_clarification"]["k"],
        1
    );
    // The report's JSON shape is stable: these keys are what scripts read.
    for key in [
        "run",
        "set",
        "status",
        "cases",
        "candidates",
        "answers",
        "pairs",
    ] {
        assert!(r.get(key).is_some(), "{key} missing");
    }
    assert_eq!(r["answers"].as_array().unwrap().len(), 6);
    // Markdown to a file, the same as printed.
    let md = s.dir.path().join("report.md");
    let printed = s.ok(&[
        "eval",
        "report",
        &run.to_string(),
        "--markdown",
        md.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(&md).unwrap(), printed);
    assert!(
        printed.contains("| sql_compiles | 1/1 (100% [21–100]) | 0/1 (0% [0–79]) |"),
        "{printed}"
    );
    // Execution accuracy against a database with data: a's query returns the reference's
    // row; b's does not compile there either.
    let data = s.dir.path().join("players.db");
    let c = rusqlite::Connection::open(&data).unwrap();
    c.execute_batch(
        "CREATE TABLE players (id INTEGER, name TEXT, age INTEGER);
         INSERT INTO players VALUES (1, 'Ann', 31), (2, 'Bo', 38), (3, 'Cy', 22);",
    )
    .unwrap();
    drop(c);
    let r = s.json(&[
        "eval",
        "report",
        &run.to_string(),
        "--json",
        "--sql-db",
        data.to_str().unwrap(),
    ]);
    let x = |cand: usize| r["candidates"][cand]["all"]["rates"]["sql_same_result"].clone();
    assert_eq!(
        (x(0)["k"].as_u64(), x(0)["n"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );
    assert_eq!(
        (x(1)["k"].as_u64(), x(1)["n"].as_u64()),
        (Some(0), Some(1)),
        "{r}"
    );
    let bad = s.run(&[
        "eval",
        "report",
        &run.to_string(),
        "--sql-db",
        "/no/such.db",
    ]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn a_run_on_the_real_model_survives_kill_9_and_resumes() {
    let s = Sandbox::new();
    import_sessions(&s);
    s.ok(&["eval", "set", "all"]);
    let active_before = s.json(&["sessions", "show", "1", "--json"])["nodes"].clone();
    let mut child = s
        .cmd()
        .args([
            "eval",
            "run",
            "all",
            "--candidate",
            "base@temperature=0,max_tokens=24",
            "--candidate",
            "base@temperature=1.0,seed=5,max_tokens=24",
            "--json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once a few answers are finished.
    let finished = || {
        Store::open(s.db())
            .ok()
            .and_then(|st| {
                let answers = st.eval_answers(1).ok()?;
                Some(
                    answers
                        .iter()
                        .filter(|a| {
                            st.node(a.node_id)
                                .is_ok_and(|n| n.status == Status::Complete)
                        })
                        .count(),
                )
            })
            .unwrap_or(0)
    };
    kill_when(
        &mut child,
        Duration::from_secs(300),
        "3 finished answers",
        || finished() >= 3,
    );
    let kept: Vec<(i64, usize, i64)> = {
        let st = Store::open(s.db()).unwrap();
        st.eval_answers(1)
            .unwrap()
            .iter()
            .filter(|a| st.node(a.node_id).unwrap().status == Status::Complete)
            .map(|a| (a.case_id, a.candidate, a.node_id))
            .collect()
    };
    assert!(kept.len() >= 3 && kept.len() < 24, "{kept:?}");
    let out = s.json(&["eval", "run", "--resume", "1", "--json"]);
    assert_eq!(out["run"], 1);
    let st = Store::open(s.db()).unwrap();
    let answers = st.eval_answers(1).unwrap();
    // Every case × candidate once, finished; what was finished before is the same node.
    assert_eq!(answers.len(), 12 * 2);
    for a in &answers {
        assert_eq!(st.node(a.node_id).unwrap().status, Status::Complete);
    }
    for (case, cand, node) in &kept {
        assert!(answers
            .iter()
            .any(|a| a.case_id == *case && a.candidate == *cand && a.node_id == *node));
    }
    assert_eq!(st.eval_run(1).unwrap().status, "done");
    // The conversations' active paths did not move to the eval answers.
    drop(st);
    assert_eq!(
        s.json(&["sessions", "show", "1", "--json"])["nodes"],
        active_before
    );
    let summary = &out["candidates"];
    assert_eq!(summary[0]["answers"], 12);
    assert_eq!(
        summary[1]["spec"],
        "base@temperature=1.0,seed=5,max_tokens=24"
    );
    // The eval answers stay out of training with their conversations.
    let f = s.dir.path().join("x.jsonl");
    let r = s.json(&[
        "export",
        "--include-low-rated",
        "-o",
        f.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(r["written"]["train"], serde_json::Value::Null, "{r}");
}

#[test]
fn bad_runs_are_refused_before_anything_is_written() {
    let s = Sandbox::new();
    import_sessions(&s);
    s.ok(&["eval", "set", "all"]);
    for args in [
        vec!["eval", "run", "nope", "--candidate", "base"],
        vec!["eval", "run", "all", "--candidate", "no-such-adapter"],
        vec!["eval", "run", "all", "--candidate", "base@temprature=1"],
        vec!["eval", "run", "all", "--candidate", "base@top_p=7"],
        vec!["eval", "run", "all", "--candidate", "base@seed"],
        vec!["eval", "run", "all", "--candidate", "server:qwen"],
        vec!["eval", "run", "all"],
        vec!["eval", "run", "--resume", "42"],
        vec!["eval", "report", "42"],
    ] {
        let out = s.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(
        s.json(&["eval", "runs", "--json"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // A set whose conversations were all deleted has no cases left: a run of it is refused.
    s.ok(&["eval", "set", "one", "--conversation", "1"]);
    let store = Store::open(s.db()).unwrap();
    store.delete_conversation(1).unwrap();
    drop(store);
    let out = s.run(&["eval", "run", "one", "--candidate", "base"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("has no cases"), "{}", stderr(&out));
}

/// The sample sessions, an eval set of their clarification turns (6 cases) and run 1 of it
/// with these two candidates on the real model.
fn clarification_run(specs: [&str; 2]) -> Sandbox {
    let s = Sandbox::new();
    import_sessions(&s);
    s.ok(&["eval", "set", "clar", "--tag", "clarification"]);
    s.ok(&[
        "eval",
        "run",
        "clar",
        "--candidate",
        specs[0],
        "--candidate",
        specs[1],
        "--json",
    ]);
    s
}

#[test]
fn blind_review_in_the_terminal_stores_decisions_and_the_report_counts_them() {
    use common::tmux::Tmux;
    let specs = [
        "base@temperature=0,max_tokens=16",
        "base@temperature=1.0,seed=9,max_tokens=16",
    ];
    let s = clarification_run(specs);
    let t = Tmux::in_sandbox(s, "eval review 1");
    t.wait_for("the review", |sc| {
        sc.contains("blind review · run 1 · 0 / 6 decided")
    });
    // Which candidate each verdict chose, read from what the screen reveals.
    let verdict = |key: &str, decided: usize| -> Option<usize> {
        t.keys(&[key]);
        let sc = t.wait_for("the reveal", |sc| {
            sc.contains(&format!("{decided} / 6 decided")) && sc.contains(" — left was")
        });
        let line = sc
            .lines()
            .find(|l| l.contains(" — left was"))
            .unwrap()
            .to_string();
        if line.contains("a tie") {
            None
        } else if line.contains(&format!("{} preferred", specs[0])) {
            Some(0)
        } else {
            assert!(line.contains("preferred"), "{line}");
            Some(1)
        }
    };
    let mut winners = vec![verdict("h", 1), verdict("l", 2), verdict("=", 3)];
    // Undo the tie and decide that case again.
    t.keys(&["u"]);
    t.wait_for("the undo", |sc| {
        sc.contains("2 / 6 decided") && sc.contains("undone")
    });
    winners.pop();
    winners.push(verdict("Right", 3));
    winners.push(verdict("Left", 4));
    t.quit();
    let wins = winners.iter().filter(|w| **w == Some(0)).count();
    let losses = winners.iter().filter(|w| **w == Some(1)).count();
    let ties = winners.iter().filter(|w| w.is_none()).count();
    assert_eq!(wins + losses + ties, 4);
    let r = t.sandbox.json(&["eval", "report", "1", "--json"]);
    let p = &r["pairs"][0];
    assert_eq!(
        (p["wins"].as_u64(), p["ties"].as_u64(), p["losses"].as_u64()),
        (Some(wins as u64), Some(ties as u64), Some(losses as u64)),
        "{r}"
    );
    assert_eq!(p["a"], specs[0]);
    let expected = arbor::eval::report::wilson(wins, wins + losses);
    assert!((p["win_rate"]["rate"].as_f64().unwrap() - expected.rate).abs() < 1e-12);
    assert!((p["win_rate"]["low"].as_f64().unwrap() - expected.low).abs() < 1e-12);
    let sign = arbor::eval::report::sign_test(wins, losses);
    assert!((p["sign_test_p"].as_f64().unwrap() - sign).abs() < 1e-12);
    // Progress is kept: reopening shows 4 of 6 decided.
    t.launch("eval review 1");
    t.wait_for("the review again", |sc| sc.contains("4 / 6 decided"));
    t.quit();
    // Each decisive verdict is a preference pair (held out with its conversation unless
    // --include-eval).
    let blind: i64 = rusqlite::Connection::open(t.db())
        .unwrap()
        .query_row(
            "SELECT count(*) FROM preferences WHERE source = 'blind'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(blind as usize, wins + losses);
    // The sample's 4 rated pairs plus one per decisive verdict.
    let out = t.sandbox.ok(&[
        "export",
        "--format",
        "trl-preference",
        "--include-eval",
        "-o",
        "-",
    ]);
    assert_eq!(out.lines().count(), 4 + wins + losses, "{out}");
    let held = t
        .sandbox
        .ok(&["export", "--format", "trl-preference", "-o", "-"]);
    assert_eq!(
        held.lines().count(),
        1,
        "only the tool-call pair is outside the eval set"
    );
}

#[test]
fn batched_and_one_at_a_time_runs_answer_the_same_prompts() {
    let s = Sandbox::new();
    import_sessions(&s);
    s.ok(&["eval", "set", "all"]);
    let spec = "base@temperature=0,max_tokens=12";
    s.ok(&[
        "eval",
        "run",
        "all",
        "--batch",
        "1",
        "--candidate",
        spec,
        "--json",
    ]);
    s.ok(&[
        "eval",
        "run",
        "all",
        "--batch",
        "5",
        "--candidate",
        spec,
        "--json",
    ]);
    let st = Store::open(s.db()).unwrap();
    let facts = |run: i64| -> std::collections::BTreeMap<i64, (Status, Option<i64>, String)> {
        st.eval_answers(run)
            .unwrap()
            .iter()
            .map(|a| {
                let n = st.node(a.node_id).unwrap();
                (
                    a.case_id,
                    (n.status, n.prompt_tokens, n.model.unwrap_or_default()),
                )
            })
            .collect()
    };
    let (one, five) = (facts(1), facts(2));
    assert_eq!(one.len(), 12);
    // Every case answered in both, from prompts of the same length, by the same model.
    assert_eq!(one, five);
    assert!(one
        .values()
        .all(|(st, p, m)| *st == Status::Complete && p.unwrap() > 0 && !m.is_empty()));
}

#[test]
fn the_studio_evals_view_charts_runs_and_opens_the_review() {
    use common::tmux::Tmux;
    let specs = [
        "base@temperature=0,max_tokens=8",
        "base@temperature=1.0,seed=4,max_tokens=8",
    ];
    let s = clarification_run(specs);
    let t = Tmux::in_sandbox(s, "");
    t.wait_for("the list", |sc| sc.contains("conversations (9)"));
    t.keys(&["E"]);
    let sc = t.wait_for("the evals view", |sc| {
        sc.contains("eval runs") && sc.contains("run 1")
    });
    assert!(
        sc.contains("sql_compiles") && sc.contains("asks_clarification"),
        "{sc}"
    );
    assert!(sc.contains("blind review: no decisions yet"), "{sc}");
    t.keys(&["Enter"]);
    t.wait_for("the review", |sc| {
        sc.contains("blind review · run 1 · 0 / 6 decided")
    });
    t.keys(&["h"]);
    t.wait_for("a verdict", |sc| {
        sc.contains("1 / 6 decided") && sc.contains(" — left was")
    });
    t.keys(&["q"]);
    let sc = t.wait_for("the chart of the verdict", |sc| sc.contains("blind: base@"));
    assert!(sc.contains("wins") && sc.contains("sign p"), "{sc}");
    t.keys(&["Escape"]);
    t.wait_for("the list again", |sc| sc.contains("conversations (9)"));
    t.quit();
    let r = t.sandbox.json(&["eval", "report", "1", "--json"]);
    let p = &r["pairs"][0];
    assert_eq!(
        p["wins"].as_u64().unwrap() + p["losses"].as_u64().unwrap(),
        1,
        "{r}"
    );
}
