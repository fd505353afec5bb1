//! What a new user hit on day one (issue: hardening), each through the real binary on
//! real files: low-rated answers out of training, OASST ranks as preferences, imports
//! that stream and never block others, no litter, bounded templates, strict config,
//! exit codes, and `-` for standard input and output.

mod common;

use common::{big_file, count, import_sessions, json_lines, kill_when, stderr, Sandbox};
use rusqlite::Connection;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn write(s: &Sandbox, name: &str, text: &str) -> PathBuf {
    let p = s.dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs arbor with `input` on its standard input.
fn with_stdin(s: &Sandbox, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = s
        .cmd()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

// ------------------------------------------------------------- 1. data semantics

#[test]
fn a_default_export_never_trains_on_what_a_curator_rated_1_or_2_stars() {
    let s = Sandbox::new();
    import_sessions(&s);
    let out = s.dir.path().join("default.jsonl");
    let report = s.json(&["export", "-o", out.to_str().unwrap(), "--json"]);
    // The sample's 1★ run_sql call and its three 2★ SQL answers, and the log's 1★ rm -rf.
    assert_eq!(
        report["left_out"]["rated 2 stars or lower (--include-low-rated trains on them)"], 5,
        "{report}"
    );
    // What validate rejected before (the 1★ call's wrong argument) is not in the file.
    let v = s.run(&["validate", out.to_str().unwrap()]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(!text.contains("rm -rf /") && !text.contains("goalkeepers\\\""));
    // The flag puts them back, and then validate finds the bad call again.
    let all = s.dir.path().join("all.jsonl");
    s.ok(&["export", "--include-low-rated", "-o", all.to_str().unwrap()]);
    assert!(json_lines(&all).len() > json_lines(&out).len());
    let v = s.run(&["validate", all.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(1));
    // OpenAI keeps a low answer as context with weight 0 where a later answer is good:
    // no line carries a 1-2★ answer with weight 1.
    for l in json_lines(&out) {
        for m in l["messages"].as_array().unwrap() {
            if m["content"] == "SELECT * FROM players;" {
                assert_eq!(m["weight"], 0, "{l}");
            }
        }
    }
    // Preference pairs never choose a 1-2★ answer; min-rating and the flag exclude each other.
    let bad = s.run(&["export", "--min-rating", "4", "--include-low-rated"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn oasst_ranks_are_preferences_and_round_trip() {
    let s = Sandbox::new();
    let tree = json!({"message_tree_id": "t", "tree_state": "ready_for_export", "prompt": {
        "message_id": "p", "text": "Name a prime number.", "role": "prompter", "replies": [
            {"message_id": "c", "text": "Nine.", "role": "assistant", "rank": 2, "replies": []},
            {"message_id": "a", "text": "Seven.", "role": "assistant", "rank": 0, "replies": []},
            {"message_id": "b", "text": "Seven, I think.", "role": "assistant", "rank": 1, "replies": []},
            {"message_id": "d", "text": "Unranked.", "role": "assistant", "replies": []}]}});
    let f = write(&s, "ranked.jsonl", &format!("{tree}\n"));
    let out = s.ok(&["import", f.to_str().unwrap()]);
    assert!(out.contains("3 preferences (ranks)"), "{out}");
    let pairs = |s: &Sandbox, format: &str| -> Vec<(String, String)> {
        let p = s.dir.path().join(format!("{format}.jsonl"));
        s.ok(&["export", "--format", format, "-o", p.to_str().unwrap()]);
        let mut v: Vec<(String, String)> = json_lines(&p)
            .iter()
            .map(|l| {
                let (c, r) = if format == "openai-dpo" {
                    (&l["preferred_output"], &l["non_preferred_output"])
                } else {
                    (&l["chosen"], &l["rejected"])
                };
                let text = |x: &Value| x[0]["content"].as_str().unwrap().to_string();
                (text(c), text(r))
            })
            .collect();
        v.sort();
        v
    };
    let expected = vec![
        ("Seven, I think.".to_string(), "Nine.".to_string()),
        ("Seven.".to_string(), "Nine.".to_string()),
        ("Seven.".to_string(), "Seven, I think.".to_string()),
    ];
    assert_eq!(pairs(&s, "trl-preference"), expected);
    assert_eq!(pairs(&s, "openai-dpo"), expected);
    // `--format oasst` writes the ranks back; importing that gives the same pairs.
    let back = s.dir.path().join("back.jsonl");
    s.ok(&["export", "--format", "oasst", "-o", back.to_str().unwrap()]);
    let t = &json_lines(&back)[0];
    let ranks: Vec<(String, Value)> = t["prompt"]["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["text"].as_str().unwrap().to_string(), r["rank"].clone()))
        .collect();
    assert_eq!(
        ranks,
        vec![
            ("Seven.".into(), json!(0)),
            ("Seven, I think.".into(), json!(1)),
            ("Nine.".into(), json!(2)),
            ("Unranked.".into(), Value::Null),
        ]
    );
    let b = Sandbox::new();
    b.ok(&["import", back.to_str().unwrap()]);
    assert_eq!(pairs(&b, "trl-preference"), expected);
}

// ------------------------------------------------------------- 3-4. what import accepts

#[test]
fn a_byte_order_mark_is_accepted_and_bad_utf8_names_its_line() {
    let s = Sandbox::new();
    let mut text = b"\xef\xbb\xbf".to_vec();
    text.extend_from_slice(
        br#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}"#,
    );
    text.extend_from_slice(b"\n{\"messages\": [{\"role\": \"user\", \"content\": \"caf\xe9\"}]}\n");
    text.extend_from_slice(
        br#"{"messages": [{"role": "user", "content": "two"}, {"role": "assistant", "content": "2"}]}"#,
    );
    let f = s.dir.path().join("bom.jsonl");
    std::fs::write(&f, &text).unwrap();
    let out = s.run(&["import", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("{}:2: not valid UTF-8", f.display())),
        "{}",
        stderr(&out)
    );
    let out = s.ok(&["import", "--skip-bad", f.to_str().unwrap()]);
    assert!(
        out.contains("imported 2 records") && out.contains("skipped 1 bad records"),
        "{out}"
    );
    // The file without its bad line, BOM and all, imports whole.
    let good: Vec<u8> = text
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .flat_map(|(_, l)| l.iter().copied().chain([b'\n']))
        .collect();
    let g = s.dir.path().join("good.jsonl");
    std::fs::write(&g, good).unwrap();
    let t = Sandbox::new();
    assert!(t
        .ok(&["import", g.to_str().unwrap()])
        .contains("imported 2 records"));
}

#[test]
fn import_holds_records_to_the_structure_validate_checks() {
    let s = Sandbox::new();
    let f = write(
        &s,
        "shapes.jsonl",
        concat!(
            r#"{"messages": [{"role": "assistant", "content": "I speak first"}, {"role": "user", "content": "q"}]}"#,
            "\n",
            r#"{"messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "42", "tool_call_id": "x"}]}"#,
            "\n",
            r#"{"messages": [{"role": "user", "content": "q"}, {"role": "system", "content": "late"}, {"role": "assistant", "content": "a"}]}"#,
            "\n",
            r#"{"messages": [{"role": "user", "content": null}, {"role": "assistant", "content": "a"}]}"#,
            "\n",
            r#"{"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]}"#,
            "\n",
            r#"{"messages": [{"role": "user", "content": "fine"}, {"role": "assistant", "content": "ok"}]}"#,
            "\n",
        ),
    );
    let out = s.run(&["import", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let n = f.display().to_string();
    for expected in [
        format!("{n}:1: message 0: starts with a assistant message, not a user message"),
        format!("{n}:2: message 1: tool result that does not follow a tool call"),
        format!("{n}:3: message 1: system message after the start"),
        format!("{n}:4: messages[0].content: null"),
        format!("{n}:5: messages[0].content: missing"),
    ] {
        assert!(err.contains(&expected), "missing «{expected}» in:\n{err}");
    }
    assert!(
        err.contains("5 bad record(s); nothing was imported"),
        "{err}"
    );
    // Validate says the same about the same lines.
    let v = output_with_code(&s, &["validate", f.to_str().unwrap()], 1);
    assert!(v.contains(":4: messages[0].content: null"), "{v}");
    // --skip-bad imports the good one and lists the rest.
    let out = s.run(&["import", "--skip-bad", f.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("skipped 5 bad records"));
    assert_eq!(stderr(&out).matches("skipped ").count(), 5);
    // A file where every record is bad fails even with --skip-bad.
    let all_bad = write(&s, "all-bad.jsonl", "{\"messages\": 3}\n[oops\n");
    let out = s.run(&["import", "--skip-bad", all_bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("every record (2) is bad"),
        "{}",
        stderr(&out)
    );
    // A ShareGPT value of the wrong type says its type.
    let sg = write(
        &s,
        "sg.jsonl",
        r#"{"conversations": [{"from": "human", "value": 7}, {"from": "gpt", "value": "x"}]}"#,
    );
    let out = s.run(&["import", sg.to_str().unwrap()]);
    assert!(
        stderr(&out).contains("conversations[0].value: expected a string, got a number"),
        "{}",
        stderr(&out)
    );
}

// ------------------------------------------------------------- 5-6. imports at scale

#[test]
fn a_long_import_never_blocks_others_and_appears_all_at_once() {
    let s = Sandbox::new();
    import_sessions(&s);
    let before = count(&s.db(), "SELECT count(*) FROM conversations");
    let file = big_file(&s, 30_000);
    // Alone, for the expected final state.
    let alone = Sandbox::new();
    import_sessions(&alone);
    alone.ok(&["import", file.to_str().unwrap()]);
    let expected_convs = count(&alone.db(), "SELECT count(*) FROM conversations");
    let expected_msgs = count(&alone.db(), "SELECT count(*) FROM nodes");

    let import = s
        .cmd()
        .args(["import", file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut seen = std::collections::BTreeSet::new();
    let mut rounds = 0;
    let answer = count(
        &s.db(),
        "SELECT max(id) FROM nodes WHERE role = 'assistant'",
    );
    let mut import = Some(import);
    while let Some(child) = import.as_mut() {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        for args in [
            vec!["sessions", "--json"],
            vec!["stats", "--json"],
            vec!["export", "-o", "-"],
            vec!["rate", &answer.to_string(), &(1 + rounds % 5).to_string()],
        ] {
            let out = s.run(&args);
            assert!(
                out.status.success(),
                "arbor {args:?} during an import: {}",
                stderr(&out)
            );
            assert!(!stderr(&out).contains("locked"), "{}", stderr(&out));
            if args[0] == "stats" {
                let st: Value = serde_json::from_slice(&out.stdout).unwrap();
                seen.insert(st["conversations"].as_i64().unwrap());
            }
        }
        rounds += 1;
        assert!(started.elapsed() < Duration::from_secs(600), "import hangs");
    }
    let out = import.take().unwrap().wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        rounds >= 2,
        "the import ended before the others ran ({rounds} rounds)"
    );
    // Readers saw nothing of it, or all of it: never a part.
    for n in &seen {
        assert!(
            *n == before || *n == expected_convs,
            "saw {n} conversations: {seen:?}"
        );
    }
    assert_eq!(
        count(&s.db(), "SELECT count(*) FROM conversations"),
        expected_convs
    );
    assert_eq!(count(&s.db(), "SELECT count(*) FROM nodes"), expected_msgs);
    assert_eq!(
        count(
            &s.db(),
            "SELECT count(*) FROM conversations WHERE pending_import IS NOT NULL"
        ),
        0
    );
    // Search and counts are what the triggers would have made.
    assert_eq!(
        count(
            &s.db(),
            "SELECT count(*) FROM nodes_fts WHERE nodes_fts MATCH 'season'"
        ),
        count(
            &s.db(),
            "SELECT count(*) FROM nodes WHERE content LIKE '%season%'"
        )
    );
    assert_eq!(
        count(&s.db(), "SELECT sum(node_count) FROM conversations"),
        expected_msgs
    );
    let check: String = Connection::open(s.db())
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

/// Runs arbor, expecting exit `code`; returns its standard output.
fn output_with_code(s: &Sandbox, args: &[&str], code: i32) -> String {
    let out = s.run(args);
    assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_killed_import_leaves_nothing_visible_and_nothing_behind() {
    let s = Sandbox::new();
    import_sessions(&s);
    let before = s.ok(&["sessions", "--json"]);
    let file = big_file(&s, 40_000);
    let mut child = s.spawn_quiet(&["import", file.to_str().unwrap()]);
    // Kill it once some of its bursts are committed (hidden rows exist).
    let hidden = || {
        Connection::open(s.db())
            .unwrap()
            .query_row(
                "SELECT count(*) FROM conversations WHERE pending_import IS NOT NULL",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap_or(0)
    };
    kill_when(&mut child, Duration::from_secs(120), "hidden rows", || {
        hidden() > 0
    });
    assert!(
        count(
            &s.db(),
            "SELECT count(*) FROM conversations WHERE pending_import IS NOT NULL"
        ) > 0
    );
    // Nothing of it is visible, and the next open removes it.
    assert_eq!(s.ok(&["sessions", "--json"]), before);
    assert_eq!(
        count(
            &s.db(),
            "SELECT count(*) FROM conversations WHERE pending_import IS NOT NULL"
        ),
        0
    );
    assert_eq!(count(&s.db(), "SELECT count(*) FROM conversations"), 9);
    assert_eq!(
        count(&s.db(), "SELECT count(*) FROM nodes"),
        count(&s.db(), "SELECT sum(node_count) FROM conversations")
    );
    assert_eq!(
        count(
            &s.db(),
            "SELECT count(*) FROM nodes_fts WHERE nodes_fts MATCH 'season'"
        ),
        0
    );
}

#[test]
fn opening_the_database_does_not_write() {
    let s = Sandbox::new();
    import_sessions(&s);
    // Another connection holds the write lock: reading commands still run at once.
    let conn = Connection::open(s.db()).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    for args in [
        vec!["sessions"],
        vec!["stats"],
        vec!["export", "-o", "-"],
        vec!["sessions", "show", "1"],
    ] {
        let t = Instant::now();
        let out = s.run(&args);
        assert!(out.status.success(), "arbor {args:?}: {}", stderr(&out));
        // The busy timeout is 30 s: a command that waited on the lock would take that.
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "arbor {args:?} waited for the lock"
        );
    }
    conn.execute_batch("ROLLBACK").unwrap();
}

// ------------------------------------------------------------- 7. files

#[test]
fn exports_leave_no_litter_and_refuse_a_directory() {
    let s = Sandbox::new();
    import_sessions(&s);
    let dir = s.dir.path().join("out");
    std::fs::create_dir_all(&dir).unwrap();
    // A temporary file of an export killed earlier (its process is gone), and one of a
    // process that still runs (this test).
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let stale = dir.join(format!(".data.jsonl.tmp-{dead_pid}"));
    std::fs::write(&stale, "half a dataset").unwrap();
    let live = dir.join(format!(".data.jsonl.tmp-{}", std::process::id()));
    std::fs::write(&live, "still being written").unwrap();
    s.ok(&["export", "-o", dir.join("data.jsonl").to_str().unwrap()]);
    assert!(
        !stale.exists(),
        "the dead export's temporary file is still there"
    );
    assert!(live.exists(), "a live process's file was removed");
    std::fs::remove_file(&live).unwrap();

    // A single-file format onto a directory: refused, nothing written.
    let out = s.run(&["export", "-o", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is a directory"), "{}", stderr(&out));
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");

    // A failed mlx export removes the directory it made.
    let mlx = s.dir.path().join("mlx-new");
    let out = s.run(&[
        "export",
        "--format",
        "mlx",
        "--conversation",
        "999999",
        "-o",
        mlx.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no conversation with id 999999"),
        "{}",
        stderr(&out)
    );
    assert!(!mlx.exists());

    // A full disk: the error names the file, and nothing is left.
    let more = big_file(&s, 200);
    s.ok(&["import", more.to_str().unwrap()]);
    let small = s.dir.path().join("small");
    std::fs::create_dir_all(&small).unwrap();
    let mounted = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=16k",
            "tmpfs",
            small.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "mounting a 16 KiB tmpfs (tests run as root, as CI does)"
    );
    let target = small.join("data.jsonl");
    let out = s.run(&[
        "export",
        "--include-low-rated",
        "-o",
        target.to_str().unwrap(),
    ]);
    let listing: Vec<_> = std::fs::read_dir(&small)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    Command::new("umount").arg(&small).status().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}", small.display())) && err.contains("No space left on device"),
        "{err}"
    );
    assert!(listing.is_empty(), "{listing:?}");
}

// ------------------------------------------------------------- 8. templates

#[test]
fn templates_that_blow_up_are_clear_errors_not_aborts() {
    let s = Sandbox::new();
    import_sessions(&s);
    let doubling = |op: &str, start: &str| {
        let mut t = format!("{{% set ns = namespace(a={start}) %}}");
        for _ in 0..64 {
            t.push_str(&format!("{{% set ns.a = ns.a {op} ns.a %}}"));
        }
        t + "{{ ns.a | length }}"
    };
    for (name, text, limit) in [
        ("strings.jinja", doubling("~", "'x'"), "MiB of memory"),
        ("lists.jinja", doubling("+", "[1]"), "MiB of memory"),
        (
            "output.jinja",
            "{% for m in messages %}{{ 'x' * 100000000 }}{% endfor %}".to_string(),
            "output is longer than the limit of 32 MiB",
        ),
    ] {
        let tpl = write(&s, name, &text);
        let out_file = s.dir.path().join("text.jsonl");
        let out = s.run(&[
            "export",
            "--format",
            "text",
            "--template-file",
            tpl.to_str().unwrap(),
            "-o",
            out_file.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("chat template {}: stopped:", tpl.display()))
                && err.contains(limit),
            "{name}: {err}"
        );
        assert!(!err.contains("memory allocation of"), "{err}");
        assert!(!out_file.exists());
    }
}

// ------------------------------------------------------------- 9. config

#[test]
fn config_and_keymap_are_strict_and_doctor_says_so() {
    let s = Sandbox::new();
    s.config("threads = 1\n[sampling]\ntemprature = 0.3\n");
    let out = s.run(&["sessions"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("config.toml: line 3: unknown field `temprature`"),
        "{}",
        stderr(&out)
    );
    for (toml, says) in [
        (
            "[sampling]\ntemperature = -5\n",
            "line 2: sampling.temperature = -5 is out of range",
        ),
        (
            "[sampling]\ntop_p = 7\n",
            "line 2: sampling.top_p = 7 is out of range",
        ),
        ("threads = 0\n", "line 1: threads = 0 is out of range"),
        (
            "template = \"chatm\"\n",
            "line 1: template: unknown built-in template 'chatm'",
        ),
        (
            "[sampling]\nmax_tokens = \"many\"\n",
            "line 2: max_tokens: invalid type",
        ),
    ] {
        s.config(toml);
        let out = s.run(&["doctor"]);
        assert_eq!(out.status.code(), Some(2), "{toml}");
        assert!(stderr(&out).contains(says), "{toml}: {}", stderr(&out));
        assert!(!String::from_utf8_lossy(&out.stdout).contains("all good"));
    }
    s.config("threads = 1\n");
    let keymap = s.dir.path().join("config/keymap.toml");
    std::fs::write(
        &keymap,
        "[chat]\n# regenerate = \"g\"\nregenerate = \"hyper-g\"\n",
    )
    .unwrap();
    let out = s.run(&["doctor"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("line 3: chat.regenerate: 'hyper-g' is not a key"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(&keymap).unwrap();

    // The same ranges where values enter from the command line.
    import_sessions(&s);
    for args in [
        vec!["sessions", "set", "1", "--temperature", "-5"],
        vec!["sessions", "set", "1", "--top-p", "7"],
        vec!["ask", "hello", "--top-p", "7"],
        vec!["ask", "hello", "--max-tokens", "0"],
    ] {
        let out = s.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("is out of range"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // Nothing was stored by the refused commands.
    let shown = s.json(&["sessions", "show", "1", "--json"]);
    assert!(shown["conversation"]["settings"].is_null(), "{shown}");
    assert_eq!(count(&s.db(), "SELECT count(*) FROM conversations"), 9);
}

// ------------------------------------------------------------- 10-11. CLI

#[test]
fn exit_codes_follow_one_rule() {
    let s = Sandbox::new();
    import_sessions(&s);
    for args in [
        vec!["export", "--conversation", "999999"],
        vec!["sessions", "show", "999999"],
        vec!["rate", "999999", "5"],
        vec!["jobs", "show", "999"],
        vec!["jobs", "cancel", "999"],
        vec!["import", "/no/such/file.jsonl"],
        vec!["ask", "--k", "0", "hi"],
    ] {
        let out = s.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    let out = s.run(&["export", "--conversation", "999999"]);
    assert!(stderr(&out).contains("no conversation with id 999999"));
    // The studio (and the blind review) without a terminal: a clear error, not a panic.
    let out = s.cmd().stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("run it in a terminal"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn dash_is_standard_input_and_output() {
    let s = Sandbox::new();
    import_sessions(&s);
    // export -o -: the data on stdout, the report on stderr, no file named "-".
    let out = s.run(&["export", "--min-rating", "4", "-o", "-"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let data = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(data.lines().count(), 8);
    for l in data.lines() {
        serde_json::from_str::<Value>(l).unwrap();
    }
    assert!(
        stderr(&out).contains("wrote 8 examples"),
        "{}",
        stderr(&out)
    );
    assert!(!Path::new("-").exists() && !s.dir.path().join("-").exists());
    // The same file as -o FILE, byte for byte.
    let f = s.dir.path().join("f.jsonl");
    s.ok(&["export", "--min-rating", "4", "-o", f.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&f).unwrap(), data);
    // import - and validate - read standard input.
    let t = Sandbox::new();
    let out = with_stdin(&t, &["import", "-"], data.as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 8 records from -"));
    let out = with_stdin(&t, &["validate", "-"], data.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = with_stdin(&t, &["validate", "-"], b"{\"messages\": 1}\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("-:1: messages"));
    // A reader that stops early (| head) ends the export quietly.
    let mut child = s
        .cmd()
        .args(["export", "--include-low-rated", "-o", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn ask_reads_a_long_message_from_stdin_or_a_file() {
    let s = Sandbox::new();
    let long = format!(
        "Summarise this in one word: {}",
        "trees grow slowly. ".repeat(150)
    );
    let out = with_stdin(
        &s,
        &[
            "ask",
            "-",
            "--max-tokens",
            "4",
            "--temperature",
            "0",
            "--json",
        ],
        long.as_bytes(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = s.json(&["sessions", "show", "1", "--json"]);
    assert_eq!(shown["nodes"][0]["node"]["content"], long.as_str());
    let f = write(&s, "message.txt", "What is a tree?\nAnswer briefly.");
    let out = s.run(&[
        "ask",
        "--file",
        f.to_str().unwrap(),
        "--max-tokens",
        "4",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = s.json(&["sessions", "show", "2", "--json"]);
    assert_eq!(
        shown["nodes"][0]["node"]["content"],
        "What is a tree?\nAnswer briefly."
    );
    let empty = with_stdin(&s, &["ask", "-"], b"  \n");
    assert_eq!(empty.status.code(), Some(2));
    assert!(stderr(&empty).contains("the message is empty"));
}
