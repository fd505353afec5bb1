//! KV state on disk, through the real `arbor` binary on the real default model: a second
//! process continues a conversation from the state the first one saved, and answers
//! exactly as a process that evaluates everything again; the cache stays in its limit;
//! broken, stale and foreign files are ignored and removed.

mod common;

use common::Sandbox;
use std::path::PathBuf;

fn ask(s: &Sandbox, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["ask", "--temperature", "0", "--max-tokens", "24", "--json"];
    a.extend_from_slice(args);
    let v = s.json(&a);
    v["answers"][0].clone()
}

fn facts(answer: &serde_json::Value) -> (u64, u64, bool) {
    let f = &answer["facts"];
    (
        f["prompt_tokens"].as_u64().unwrap(),
        f["reused_tokens"].as_u64().unwrap(),
        f["reused_from_disk"].as_bool().unwrap(),
    )
}

fn states(s: &Sandbox) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let root = s.data_dir().join("kv-cache");
    for d in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(d.path()).unwrap().flatten() {
            out.push(f.path());
        }
    }
    out.sort();
    out
}

/// A second sandbox holding a copy of `s`'s database and no KV states: its answers are
/// fresh evaluations of the same prompts.
fn fresh_copy(s: &Sandbox) -> Sandbox {
    let fresh = Sandbox::new();
    std::fs::copy(s.db(), fresh.db()).unwrap();
    fresh.config("kv_cache_mb = 0\n");
    fresh
}

/// The prompt and reused tokens the studio recorded for answer `node`.
fn prompt_and_reused(db: &std::path::Path, node: i64) -> (i64, i64) {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT prompt_tokens, reused_tokens FROM nodes WHERE id = ?1",
            [node],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

const FIRST: &str = "Write three sentences about the history of Rome.";

#[test]
fn a_new_process_continues_from_the_saved_state_and_answers_as_a_fresh_evaluation() {
    let s = Sandbox::new();
    let first = ask(&s, &[FIRST]);
    assert!(!facts(&first).2);
    assert_eq!(states(&s).len(), 1, "the turn's state is saved");

    // Turn 2 in a new process, and the same turn in a copy that keeps no states.
    let fresh = fresh_copy(&s);
    let second = ask(&s, &["--conversation", "1", "And Greece?"]);
    let (prompt, reused, from_disk) = facts(&second);
    assert!(from_disk, "{second}");
    assert!(
        reused > 40 && reused < prompt,
        "most of the history comes from disk: {second}"
    );
    let again = ask(&fresh, &["--conversation", "1", "And Greece?"]);
    assert_eq!(facts(&again).1, 0, "{again}");
    assert!(fresh
        .data_dir()
        .join("kv-cache")
        .read_dir()
        .map_or(true, |mut d| d.next().is_none()));
    assert_eq!(second["content"], again["content"]);
    assert!(!second["content"].as_str().unwrap().is_empty());
    // The longer state replaced the one it extends.
    assert_eq!(states(&s).len(), 1);

    // An edit in the middle (the first answer changed): the saved state is used up to the
    // change only, and the answer is still the fresh evaluation's.
    let edit = "UPDATE nodes SET content = 'Rome was founded, grew, and fell.' WHERE id = 2";
    for db in [s.db(), fresh.db()] {
        rusqlite::Connection::open(db)
            .unwrap()
            .execute(edit, [])
            .unwrap();
    }
    let fresh = fresh_copy(&s);
    let edited = ask(&s, &["--conversation", "1", "And Egypt?"]);
    let (prompt, reused, from_disk) = facts(&edited);
    assert!(from_disk && reused > 10, "{edited}");
    assert!(reused < prompt - 30, "only up to the edit: {edited}");
    let again = ask(&fresh, &["--conversation", "1", "And Egypt?"]);
    assert_eq!(edited["content"], again["content"]);
    // The first branch's state and the edited one's are both kept.
    assert_eq!(states(&s).len(), 2);
    let info = s.ok(&["cache"]);
    assert!(info.starts_with("2 states"), "{info}");
    let doctor = s.run(&["doctor"]);
    assert!(
        String::from_utf8_lossy(&doctor.stdout).contains("KV cache         2 states"),
        "{}",
        String::from_utf8_lossy(&doctor.stdout)
    );
    let cleared = s.ok(&["cache", "clear"]);
    assert!(cleared.starts_with("removed 2 KV states"), "{cleared}");
    assert!(states(&s).is_empty());
}

#[test]
fn corrupt_truncated_and_foreign_states_are_ignored_and_removed() {
    let s = Sandbox::new();
    ask(&s, &[FIRST]);
    let fresh = fresh_copy(&s);
    let reference = ask(&fresh, &["--conversation", "1", "And Greece?"]);
    let path = states(&s).pop().unwrap();
    let good = std::fs::read(&path).unwrap();

    // One byte of the payload flipped: the checksum refuses it.
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 100] ^= 0x55;
    std::fs::write(&path, &bad).unwrap();
    // Truncated, garbage, and a stray temporary file from a killed process.
    let dir = path.parent().unwrap();
    std::fs::write(dir.join("truncated.kv"), &good[..good.len() / 2]).unwrap();
    std::fs::write(dir.join("garbage.kv"), b"ARBORKV1 not really").unwrap();
    let answer = ask(&s, &["--conversation", "1", "And Greece?"]);
    assert!(!facts(&answer).2, "nothing usable on disk: {answer}");
    assert_eq!(answer["content"], reference["content"]);
    let left: Vec<String> = states(&s)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left.len(),
        1,
        "the bad files are gone, the new state kept: {left:?}"
    );
    assert!(!left[0].contains("truncated") && !left[0].contains("garbage"));

    // A state of another model (Gemma's key) moved into this model's directory: refused.
    let g = Sandbox::new();
    g.config(&format!("model = {:?}\n", common::gemma_model()));
    let mut c = g.cmd();
    c.env_remove("ARBOR_MODEL");
    let out = c
        .args(["ask", "--temperature", "0", "--max-tokens", "8", FIRST])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let foreign = states(&g).pop().unwrap();
    for p in states(&s) {
        std::fs::remove_file(p).unwrap();
    }
    let planted = dir.join("foreign.kv");
    std::fs::copy(&foreign, &planted).unwrap();
    let answer = ask(&s, &["--conversation", "1", "And Rome again?"]);
    assert!(!facts(&answer).2, "{answer}");
    assert!(!planted.exists(), "a foreign state is removed");
}

#[test]
fn the_cache_stays_within_its_limit_least_recently_used_first() {
    let s = Sandbox::new();
    ask(&s, &["Tell me about Rome in three sentences."]);
    // A limit of about two and a half states of this size.
    let one = std::fs::metadata(&states(&s)[0]).unwrap().len();
    let limit_mb = (one * 5 / 2) / (1024 * 1024);
    assert!(limit_mb >= 1, "{one}");
    s.config(&format!("kv_cache_mb = {limit_mb}\n"));
    for topic in ["Egypt", "Persia"] {
        ask(&s, &[&format!("Tell me about {topic} in three sentences.")]);
    }
    let total: u64 = states(&s)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(total <= limit_mb * 1024 * 1024, "{total}");
    let n = states(&s).len();
    assert!((1..3).contains(&n), "{:?}", states(&s));
    // The oldest conversation (Rome) was evicted: continuing it reads its history again
    // (at most the template's opening, shared with the other conversations, comes from
    // disk); the newest (Persia) continues from its own state.
    let persia = ask(&s, &["--conversation", "3", "Go on."]);
    let rome = ask(&s, &["--conversation", "1", "Go on."]);
    let (rome_prompt, rome_reused, _) = facts(&rome);
    let (persia_prompt, persia_reused, persia_disk) = facts(&persia);
    assert!(rome_reused <= 32 && rome_prompt > 60, "{rome}");
    assert!(
        persia_disk && persia_reused + 32 > persia_prompt,
        "{persia}"
    );
    // Off: nothing is written.
    let off = Sandbox::new();
    off.config("kv_cache_mb = 0\n");
    ask(&off, &[FIRST]);
    assert!(states(&off).is_empty());
    assert!(off.ok(&["cache"]).starts_with("off"));
}

/// The studio reopened on a conversation continues it from the state the last session
/// saved (the studio waits for that write when it quits).
#[test]
fn a_reopened_studio_continues_from_the_saved_state() {
    use common::tmux::{answer_done as done, Tmux};
    let t = Tmux::start("chat", "[sampling]\nmax_tokens = 24\ntemperature = 0.0\n");
    t.send_first("Write three sentences about the history of Rome.");
    t.wait_for("the answer", done);
    t.keys(&["Escape"]);
    t.quit();
    assert_eq!(
        states(&t.sandbox).len(),
        1,
        "the studio saved the state before exiting"
    );
    // The studio reopens on the conversation it quit from.
    t.launch("");
    t.wait_for("the conversation, model loaded", |s| {
        s.contains("assistant #2") && s.contains("model's own")
    });
    t.keys(&["i"]);
    t.send("And Greece?");
    t.wait_for("the second answer", |s| {
        s.contains("assistant #4") && done(s)
    });
    t.keys(&["Escape"]);
    t.quit();
    let (prompt, reused) = prompt_and_reused(&t.db(), 4);
    assert!(
        reused > 40 && reused < prompt,
        "the reopened studio reused {reused} of {prompt} tokens"
    );
}

/// In one studio session: conversation A, then B (the engine's memory now holds B), then
/// back to A — whose next turn continues from A's state on disk, not from the start.
#[test]
fn switching_back_to_a_conversation_continues_from_its_saved_state() {
    use common::tmux::{answer_done as done, Tmux};
    let t = Tmux::start("chat", "[sampling]\nmax_tokens = 24\ntemperature = 0.0\n");
    t.send_first("Write three sentences about the history of Rome.");
    t.wait_for("A's answer", done);
    t.keys(&["Escape", "Escape"]);
    t.wait_for("the list", |s| s.contains("conversations (1)"));
    t.keys(&["n"]);
    t.send("Name three rivers in Africa.");
    t.wait_for("B's answer", |s| s.contains("assistant #4") && done(s));
    t.keys(&["Escape", "Escape"]);
    t.wait_for("the list", |s| s.contains("conversations (2)"));
    // The list shows B (newest) first: A is the second row.
    t.keys(&["j", "Enter"]);
    t.wait_for("A again", |s| {
        s.contains("history of Rome") && s.contains("assistant #2")
    });
    t.keys(&["i"]);
    t.send("And Greece?");
    t.wait_for("A's second answer", |s| {
        s.contains("assistant #6") && done(s)
    });
    t.keys(&["Escape"]);
    t.quit();
    let (prompt, reused) = prompt_and_reused(&t.db(), 6);
    assert!(
        reused > 40 && reused < prompt,
        "A's turn reused {reused} of {prompt} tokens"
    );
}

/// A model file replaced in place (another modification time) makes its states stale: they
/// are not used, and go when an engine loads on the new file.
#[test]
fn states_of_a_model_file_changed_in_place_are_not_used_and_removed() {
    let s = Sandbox::new();
    let model = s.dir.path().join("copy.gguf");
    std::fs::copy(common::default_model(), &model).unwrap();
    let ask_copy = |args: &[&str]| -> serde_json::Value {
        let out = s
            .cmd()
            .env("ARBOR_MODEL", &model)
            .args(["ask", "--temperature", "0", "--max-tokens", "24", "--json"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", common::stderr(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["answers"][0].clone()
    };
    assert!(!facts(&ask_copy(&[FIRST])).2);
    let before = states(&s);
    assert_eq!(before.len(), 1);
    // The "new version" of the model: same path and bytes, a new modification time.
    std::fs::File::options()
        .append(true)
        .open(&model)
        .unwrap()
        .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .unwrap();
    let next = ask_copy(&["--conversation", "1", "And Greece?"]);
    assert!(!facts(&next).2, "a stale state is not used: {next}");
    let after = states(&s);
    assert_eq!(after.len(), 1, "{after:?}");
    assert!(!before[0].exists(), "the stale state is removed");
}
