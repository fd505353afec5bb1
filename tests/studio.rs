//! The real studio binary in tmux on the real default model, typed at like a user,
//! then checked through `arbor` commands.

mod common;
use common::tmux::{answer_done, Tmux};
use std::process::Command;
use std::time::Duration;

/// Runs `arbor` on the database `db`; its stdout, after checking it succeeded.
fn arbor_ok(db: &std::path::Path, args: &[&str]) -> Vec<u8> {
    arbor_env(&[("ARBOR_DB", db.into())], args)
}

/// Runs `arbor` with these environment variables; its stdout, after checking it succeeded.
fn arbor_env(vars: &[(&str, std::ffi::OsString)], args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_arbor"))
        .envs(vars.iter().map(|(k, v)| (*k, v)))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "arbor {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Imports sample sessions (files of `sessions/`) into `db`.
fn import_sessions(db: &std::path::Path, files: &[&str]) {
    for f in files {
        let path = format!("{}/sessions/{f}", env!("CARGO_MANIFEST_DIR"));
        arbor_ok(db, &["import", &path]);
    }
}

#[test]
fn chat_rate_edit_regenerate_switch_siblings_and_quit() {
    let t = Tmux::start("chat", "[sampling]\nmax_tokens = 24\n");
    t.send_first("Name a fruit.");
    t.wait_for("the answer", answer_done);
    // Leave the composer (the answer is selected) and rate it 5.
    t.keys(&["Escape", "5"]);
    t.wait_for("the rating", |s| s.contains("★★★★★"));
    // Edit the answer: a new sibling, the original stays.
    t.keys(&["e"]);
    t.wait_for("the editor", |s| s.contains("Ctrl-S saves"));
    t.literal("Apple. ");
    t.keys(&["C-s"]);
    t.wait_for("the edited sibling", |s| {
        s.contains("‹ 2/2 ›") && s.contains("edited")
    });
    // Regenerate: a third sibling.
    t.keys(&["r"]);
    t.wait_for("the regenerated answer", |s| {
        s.contains("‹ 3/3 ›") && answer_done(s)
    });
    // Walk back to the first sibling: it still has its 5 stars.
    t.keys(&["h", "h"]);
    let s = t.wait_for("the first sibling", |s| s.contains("‹ 1/3 ›"));
    assert!(s.contains("★★★★★"), "{s}");
    t.keys(&["?"]);
    let help = t.wait_for("the help overlay", |s| {
        s.contains("keys") && s.contains("key closes")
    });
    assert!(help.contains("regenerate the selected answer"), "{help}");
    t.keys(&["Escape", "q"]);
    std::thread::sleep(Duration::from_millis(500));

    let tree = t.arbor_json(&["sessions", "show", "1", "--tree", "--json"]);
    let nodes = tree["nodes"].as_array().unwrap();
    let assistants: Vec<_> = nodes
        .iter()
        .filter(|n| n["node"]["role"] == "assistant")
        .collect();
    assert_eq!(assistants.len(), 3, "{tree:#}");
    let original = &assistants[0];
    let edited = &assistants[1];
    let regenerated = &assistants[2];
    assert_eq!(original["ratings"][0]["stars"], 5);
    assert_eq!(original["ratings"][0]["rater"], "tester");
    assert_eq!(edited["node"]["origin"], "edited");
    assert_eq!(edited["node"]["edited_from"], original["node"]["id"]);
    assert!(edited["node"]["content"]
        .as_str()
        .unwrap()
        .starts_with("Apple. "));
    assert_eq!(regenerated["node"]["origin"], "generated");
    assert_eq!(regenerated["node"]["status"], "complete");
    // The active path is where the user left it: the first sibling.
    let active = t.arbor_json(&["sessions", "show", "1", "--json"]);
    assert_eq!(active["nodes"][1]["node"]["id"], original["node"]["id"]);
}

#[test]
fn kill_9_mid_stream_keeps_the_partial_answer() {
    let t = Tmux::start("chat", "[sampling]\nmax_tokens = 2000\ntemperature = 0.8\n");
    t.send_first("Write a very long story about a forest, with many chapters.");
    t.wait_for("streaming to start", |s| {
        s.contains("generating") && s.contains("assistant #2")
    });
    std::thread::sleep(Duration::from_millis(1200));
    let pid = t.pane_pid();
    let st = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    std::thread::sleep(Duration::from_millis(300));
    let shown = t.arbor_json(&["sessions", "show", "1", "--json"]);
    let answer = &shown["nodes"][1]["node"];
    assert_eq!(answer["role"], "assistant");
    assert_eq!(answer["status"], "interrupted");
    assert!(answer["content"].as_str().unwrap().len() > 20, "{answer:#}");
    assert_eq!(
        shown["nodes"][0]["node"]["content"],
        "Write a very long story about a forest, with many chapters."
    );
}

#[test]
fn export_dialog_counts_previews_and_writes() {
    let t = Tmux::start_prepared("", "", |db| {
        import_sessions(
            db,
            &[
                "clarification-sql.jsonl",
                "tool-calling.jsonl",
                "tool_calls.log",
            ],
        )
    });
    t.wait_for("the list", |s| s.contains("conversations (9)"));
    t.keys(&["x"]);
    // Opens on openai with --min-rating 4: the counts of `arbor export --min-rating 4`.
    let s = t.wait_for("counts", |s| s.contains("8 examples from 9 conversations"));
    assert!(s.contains("‹ openai ›") && s.contains("4★ and up"), "{s}");
    assert!(s.contains("left out: rated below --min-rating"), "{s}");
    assert!(
        s.contains("first example:") && s.contains("\"messages\""),
        "{s}"
    );
    // Lower the threshold to none: every complete answer except the curator's 1-2★ ones
    // (the 5 rated that low are never trained on by default).
    t.keys(&["-", "-", "-", "-"]);
    let s = t.wait_for("no threshold", |s| {
        s.contains("none (every complete answer except those rated 1-2★)")
            && s.contains("8 examples from 9")
    });
    assert!(s.contains("rated 2 stars or lower"), "{s}");
    t.keys(&["+", "+", "+", "+", "Right"]);
    t.wait_for("trl", |s| s.contains("‹ trl ›") && s.contains("8 examples"));
    t.keys(&["Enter"]);
    let s = t.wait_for("written", |s| s.contains("wrote 8 examples to"));
    let dir = t.dir().join("data/exports");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}\n{s}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert_eq!(text.lines().count(), 8);
    assert!(files[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("trl-"));
    t.keys(&["Escape"]);
    t.wait_for("dialog closed", |s| !s.contains("first example:"));
    t.keys(&["q"]);
}

#[test]
fn the_user_plays_the_tool_and_the_model_continues() {
    let t = Tmux::start(
        "chat --preset tool-caller",
        "tool_choice = \"required\"\n[sampling]\ntemperature = 0.0\nmax_tokens = 64\n",
    );
    t.wait_for("the preset's tools", |s| s.contains("2 tools"));
    t.send_first("What is the weather in Paris?");
    // The call is shown as a block, and the composer now takes its result.
    let s = t.wait_for("the tool call", |s| {
        s.contains("result of get_weather(") && answer_done(s)
    });
    assert!(s.contains("⚙ call get_weather"), "{s}");
    assert!(!s.contains("<tool_call>"), "{s}");
    t.send("{\"temp_c\": 14, \"sky\": \"cloudy\"}");
    t.wait_for("the continuation", |s| {
        s.contains("tool #3 · result of get_weather(")
            && s.contains("assistant #4")
            && answer_done(s)
    });
    // Mark the last answer as a clarifying question; open the settings and close them.
    t.keys(&["Escape", "m"]);
    t.wait_for("the tag", |s| s.contains("#clarification"));
    t.keys(&["s"]);
    t.wait_for("the settings", |s| {
        s.contains("system prompt") && s.contains("You are an assistant that can call tools")
    });
    t.keys(&["Tab"]);
    t.wait_for("the tools tab", |s| s.contains("\"get_weather\""));
    t.keys(&["Escape", "q"]);
    std::thread::sleep(Duration::from_millis(500));

    let shown = t.arbor_json(&["sessions", "show", "1", "--json"]);
    let nodes: Vec<&serde_json::Value> = shown["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| &n["node"])
        .collect();
    let roles: Vec<&str> = nodes.iter().map(|n| n["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant"]);
    assert_eq!(nodes[1]["tool_calls"][0]["name"], "get_weather");
    assert_eq!(nodes[2]["tool_call_id"], nodes[1]["tool_calls"][0]["id"]);
    assert_eq!(nodes[2]["content"], "{\"temp_c\": 14, \"sky\": \"cloudy\"}");
    assert_eq!(shown["nodes"][3]["tags"][0], "clarification");
}

#[test]
fn compare_candidates_walk_the_tree_and_reopen_where_we_left() {
    let t = Tmux::start("chat", "[sampling]\nmax_tokens = 16\n");
    t.send_first("Name a fruit.");
    t.wait_for("the first answer", answer_done);
    t.send("Name another one.");
    t.wait_for("the second answer", |s| {
        s.contains("assistant #4") && answer_done(s)
    });
    // Three candidates for the last turn, side by side; rate the second 5 and keep it.
    t.keys(&["Escape", "R"]);
    t.wait_for("the candidates", |s| {
        s.contains("compare 3 candidates") && s.contains("Esc closes")
    });
    t.keys(&["l", "5"]);
    t.wait_for("the rating", |s| s.contains("2/3 #6 ★★★★★"));
    t.keys(&["Enter"]);
    let s = t.wait_for("the kept candidate", |s| s.contains("assistant #6 ‹ 3/4 ›"));
    assert!(s.contains("★★★★★"), "{s}");
    // The tree: every message, the active path marked; pick the first answer of turn 2.
    t.keys(&["T"]);
    let s = t.wait_for("the tree", |s| s.contains("tree — j/k move"));
    for id in 1..=7 {
        assert!(s.contains(&format!(" #{id} ")), "#{id} missing:\n{s}");
    }
    t.keys(&["k", "k", "Enter"]);
    t.wait_for("the picked path", |s| {
        s.contains("assistant #4 ‹ 1/4 ›") && !s.contains("tree —")
    });
    t.quit();

    // Reopening returns to the same conversation and path.
    t.launch("");
    let s = t.wait_for("the reopened conversation", |s| {
        s.contains("assistant #4 ‹ 1/4 ›") && s.contains("Name another one.")
    });
    assert!(!s.contains("conversations ("), "{s}");
    t.quit();
    let path = t.arbor_json(&["sessions", "show", "1", "--json"]);
    let ids: Vec<i64> = path["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    let tree = t.arbor_json(&["sessions", "show", "1", "--tree", "--json"]);
    let six = tree["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"]["id"] == 6)
        .unwrap();
    assert_eq!(six["ratings"][0]["stars"], 5);
}

#[test]
fn list_search_tag_filter_and_rename() {
    let t = Tmux::start_prepared("", "", |db| {
        import_sessions(db, &["clarification-sql.jsonl"])
    });
    t.wait_for("the list", |s| s.contains("conversations (3)"));
    // Full-text search over every message, as typed: "Arsenal" is only in an answer.
    t.keys(&["/"]);
    t.literal("Arsenal");
    let s = t.wait_for("the search", |s| s.contains("conversations (1) matching"));
    assert!(s.contains("How many goals were scored?"), "{s}");
    t.keys(&["Enter", "Escape"]);
    t.wait_for("everything again", |s| s.contains("conversations (3) —"));
    t.keys(&["f"]);
    t.send("clarification");
    t.wait_for("the tag filter", |s| {
        s.contains("conversations (3) tagged #clarification")
    });
    t.keys(&["Escape", "r"]);
    t.keys(&["BSpace"; 40]);
    t.send("Players, clarified");
    t.wait_for("the new title", |s| s.contains("Players, clarified"));
    t.quit();
    let list = t.arbor_json(&["sessions", "--json"]);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["title"] == "Players, clarified"));
}

/// The `step N/T` the Jobs view shows.
fn step_shown(screen: &str) -> Option<u32> {
    let at = screen.find("step ")? + 5;
    screen[at..].split('/').next()?.trim().parse().ok()
}

#[test]
fn jobs_view_follows_a_job_across_closing_and_reopening_the_studio_and_cancels_it() {
    let t = Tmux::start("", "[train]\ncancel_grace_s = 1\n");
    let script = format!(
        "{}/tests/fixtures/fake_trainer.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let data = format!(
        "{}/sessions/clarification-sql.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    let command = format!("python3 {script} {{out}} --steps 3000 --sleep 0.1");
    let id = t.sandbox.ok(&[
        "train",
        "--recipe",
        "command",
        "--command",
        &command,
        "--data",
        &data,
    ]);
    let id = id.trim();
    t.wait_for("the list", |s| s.contains("? help"));
    t.keys(&["J"]);
    // A new job from the view needs rated answers; this database has none.
    t.keys(&["n"]);
    t.wait_for("why no job starts", |s| {
        s.contains("no examples to train on")
    });
    let s = t.wait_for("the running job with its loss chart", |s| {
        s.contains(&format!("job {id} running")) && s.contains(" loss ") && step_shown(s).is_some()
    });
    let before = step_shown(&s).unwrap();
    // Close the studio while the job runs; it goes on without it.
    t.keys(&["Escape"]);
    t.quit();
    std::thread::sleep(Duration::from_millis(1500));
    t.launch("");
    t.wait_for("the list", |s| s.contains("? help"));
    t.keys(&["J"]);
    let s = t.wait_for("the job further along", |s| {
        s.contains(&format!("job {id} running")) && step_shown(s).is_some_and(|n| n > before + 5)
    });
    assert!(s.contains("log"), "{s}");
    // Cancel it from the view.
    t.keys(&["c"]);
    t.wait_for("the job cancelled", |s| {
        s.contains(&format!("job {id} cancelled"))
    });
    let j: serde_json::Value = t.arbor_json(&["jobs", "show", id, "--json"]);
    assert_eq!(j["status"], "cancelled");
    assert!(j["finished_at"].as_i64().is_some());
}

#[test]
fn v_adds_the_selected_turn_to_an_eval_set_held_out_of_export() {
    let t = Tmux::start_prepared("", "", |db| {
        import_sessions(db, &["clarification-sql.jsonl"])
    });
    t.wait_for("the list", |s| s.contains("conversations (3)"));
    t.keys(&["Enter"]);
    t.wait_for("the conversation", |s| s.contains("SELECT"));
    // The last answer (5★ SQL) is selected on opening; its turn goes in.
    t.keys(&["v"]);
    t.wait_for("the eval set prompt", |s| {
        s.contains("eval set for the turn")
    });
    t.send("held");
    t.wait_for("the notice", |s| {
        s.contains("turn added to new eval set held (1 cases)")
    });
    // A second turn of the same conversation into the same set.
    t.keys(&["k", "k", "v"]);
    t.wait_for("the eval set prompt", |s| {
        s.contains("eval set for the turn")
    });
    t.send("held");
    t.wait_for("the notice", |s| {
        s.contains("turn added to the eval set held (2 cases)")
    });
    t.quit();
    let shown = t.arbor_json(&["eval", "show", "held", "--json"]);
    let cases = shown["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2, "{shown}");
    assert!(cases.iter().all(|c| c["reference"].is_string()), "{shown}");
    // Its conversation is held out: 2 of the 3 dialogues are exported.
    let out = t.sandbox.ok(&["export", "--min-rating", "4", "-o", "-"]);
    assert_eq!(out.lines().count(), 2, "{out}");
}
