//! Eval sets through the real binary: made from the store with filters or from a file,
//! listed, shown, deleted, and held out of export and training.

mod common;

use common::{repo, Sandbox};
use serde_json::Value;
use std::path::PathBuf;

fn import_sessions(s: &Sandbox) {
    for f in [
        "clarification-sql.jsonl",
        "tool-calling.jsonl",
        "tool_calls.log",
    ] {
        s.ok(&["import", repo().join("sessions").join(f).to_str().unwrap()]);
    }
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn export_lines(s: &Sandbox, extra: &[&str]) -> (Value, Vec<Value>) {
    let f = s.dir.path().join("e.jsonl");
    let mut args = vec!["export", "-o", f.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let report = s.json(&args);
    let lines = std::fs::read_to_string(&f)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (report, lines)
}

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
    let (_, before) = export_lines(&s, &["--min-rating", "4"]);
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
    let (report, lines) = export_lines(&s, &["--min-rating", "4"]);
    assert_eq!(lines.len(), 5, "{report}");
    assert!(lines
        .iter()
        .all(|l| !l.to_string().contains("Find information about players")));
    assert_eq!(
        report["left_out"]["held out for an eval set (--include-eval trains on them)"], 9,
        "{report}"
    );
    let (_, lines) = export_lines(&s, &["--min-rating", "4", "--include-eval"]);
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
    let (_, lines) = export_lines(&s, &["--min-rating", "4"]);
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
