//! Curating at scale (#15): the LLM judge on the real default model — its scores stored as
//! `judge:` ratings that never change a default export — and its calibration against people.

mod common;
use common::{count, import_sessions, Sandbox};
use rusqlite::Connection;

#[test]
fn a_judge_run_stores_judge_ratings_that_a_default_export_ignores() {
    let s = Sandbox::new();
    import_sessions(&s);
    let (_, before) = s.export_json(&[]);
    let list_before = s.json(&["sessions", "--json"]);
    let v = s.json(&["judge", "--limit", "5", "--json"]);
    let rater = v["rater"].as_str().unwrap().to_string();
    assert_eq!(rater, "judge:SmolLM2-135M-Instruct.Q4_1");
    assert_eq!(v["scored"], 5, "{v:#}");
    assert_eq!(v["failed"], serde_json::json!([]), "{v:#}");
    let scores: u64 = v["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .sum();
    assert_eq!(scores, 5);
    let mine =
        format!("SELECT count(*) FROM ratings WHERE rater = '{rater}' AND stars BETWEEN 1 AND 5");
    assert_eq!(count(&s.db(), &mine), 5);
    // People's data is as it was: the export and the list's stars.
    let (_, after) = s.export_json(&[]);
    assert_eq!(after, before);
    assert_eq!(s.json(&["sessions", "--json"]), list_before);
    // A rerun updates, never duplicates; --unjudged takes the next ones.
    s.json(&["judge", "--limit", "5", "--json"]);
    assert_eq!(count(&s.db(), &mine), 5);
    let v = s.json(&["judge", "--unjudged", "--limit", "2", "--json"]);
    assert_eq!(v["scored"], 2);
    assert_eq!(count(&s.db(), &mine), 7);
    // Named, they count: an export by the judge's stars alone.
    let (report, rows) = s.export_json(&["--rater", &rater, "--min-rating", "1"]);
    assert!(!rows.is_empty(), "{report:#}");
    // The calibration compares with the imported people's stars on the same answers.
    let c = s.json(&["judge", "calibrate", "--json"]);
    assert_eq!(c["judge"], rater.as_str());
    let both = count(
        &s.db(),
        &format!(
            "SELECT count(*) FROM ratings h JOIN ratings j ON j.node_id = h.node_id AND j.rater = '{rater}'
              WHERE h.rater NOT LIKE 'judge:%' AND h.stars IS NOT NULL"
        ),
    );
    assert_eq!(c["n"], both);
    // arbor stats carries the same figures, per judge.
    let st = s.json(&["stats", "--json"]);
    assert_eq!(st["judges"][0], c);
}

#[test]
fn calibrate_equals_a_hand_computation_and_bad_input_is_refused() {
    let s = Sandbox::new();
    import_sessions(&s);
    let ids: Vec<i64> = {
        let c = Connection::open(s.db()).unwrap();
        let mut st = c
            .prepare("SELECT id FROM nodes WHERE role = 'assistant' ORDER BY id LIMIT 6")
            .unwrap();
        let rows = st.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    };
    // human 1 2 3 4 5 5, judge 1 3 3 5 4 5 (the case worked by hand in eval::judge's tests).
    for (id, (h, j)) in ids
        .iter()
        .zip([(1, 1), (2, 3), (3, 3), (4, 5), (5, 4), (5, 5)])
    {
        s.ok(&["rate", &id.to_string(), &h.to_string(), "--rater", "alice"]);
        s.ok(&[
            "rate",
            &id.to_string(),
            &j.to_string(),
            "--rater",
            "judge:fixture",
        ]);
    }
    let c = s.json(&["judge", "calibrate", "--rater", "alice", "--json"]);
    assert_eq!(c["judge"], "judge:fixture");
    assert_eq!(c["n"], 6);
    assert_eq!(c["exact"], 0.5);
    assert_eq!(c["within_one"], 1.0);
    let close = |v: &serde_json::Value, x: f64| (v.as_f64().unwrap() - x).abs() < 1e-9;
    assert!(
        close(&c["spearman"], 14.25 / (17.0f64 * 16.5).sqrt()),
        "{c}"
    );
    assert!(close(&c["kappa_quadratic"], 0.88), "{c}");
    assert_eq!(c["confusion"][3][4], 1);
    // Agreement between people: bob rates three of alice's answers.
    for (id, b) in ids.iter().zip([2, 2, 4]) {
        s.ok(&["rate", &id.to_string(), &b.to_string(), "--rater", "bob"]);
    }
    let st = s.json(&["stats", "--json"]);
    let pair = st["agreement"]["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["a"] == "alice" && p["b"] == "bob")
        .cloned()
        .unwrap_or_else(|| panic!("{st:#}"));
    assert_eq!(pair["n"], 3);
    use arbor::dataset::agreement::{alpha, Metric};
    let want = alpha(&[vec![1, 2], vec![2, 2], vec![3, 4]], Metric::Ordinal).unwrap();
    assert!(
        (pair["alpha"].as_f64().unwrap() - want).abs() < 1e-12,
        "{pair}"
    );
    assert!(st["agreement"]["raters"].as_u64().unwrap() >= 2);
    let text = s.ok(&["judge", "calibrate", "--rater", "alice"]);
    assert!(text.contains("Cohen's κ (quadratic)  0.88"), "{text}");
    // A rubric without {answer} is refused before anything loads; so is a misspelt one.
    let r = s.dir.path().join("rubric.txt");
    std::fs::write(&r, "Rate {question} from 1 to 5.\n").unwrap();
    let o = s.run(&["judge", "--rubric", r.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        common::stderr(&o).contains("no {answer} placeholder"),
        "{}",
        common::stderr(&o)
    );
    std::fs::write(&r, "{answer}\n{anwser}\n").unwrap();
    let o = s.run(&["judge", "--rubric", r.to_str().unwrap()]);
    assert!(common::stderr(&o).contains("line 2: unknown placeholder {anwser}"));
    let o = s.run(&["judge", "calibrate", "--judge", "nobody"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(common::stderr(&o).contains("no ratings by judge:nobody"));
}

#[test]
fn shift_e_edits_in_the_users_editor_and_saves_a_sibling() {
    use common::tmux::Tmux;
    let s = Sandbox::new();
    import_sessions(&s);
    let script = s.dir.path().join("editor.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n[ -f \"$1\" ] || exit 3\nprintf '\\nchecked by the script\\n' >> \"$1\"\n",
    )
    .unwrap();
    let failing = s.dir.path().join("failing.sh");
    std::fs::write(&failing, "#!/bin/sh\nexit 4\n").unwrap();
    for f in [&script, &failing] {
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(f)
            .status()
            .unwrap();
    }
    let t = Tmux::in_sandbox_env(s, &format!("VISUAL= EDITOR={}", script.display()), "");
    t.open_first();
    let edited = "SELECT count(*) FROM nodes WHERE origin = 'edited' AND content LIKE '%checked by the script'";
    assert_eq!(count(&t.db(), edited), 0);
    t.keys(&["E"]);
    t.wait_for("the edit saved as a sibling", |s| {
        s.contains("checked by the script")
    });
    assert_eq!(count(&t.db(), edited), 1);
    // The studio is itself again: keys work, and u takes the edit back.
    t.keys(&["u"]);
    t.wait_for("the undo", |s| s.contains("undid the edit"));
    t.quit();
    // An editor that fails saves nothing and says so.
    t.launch_env(&format!("VISUAL={}", failing.display()), "");
    // Arbor reopens on the conversation it was quit from.
    t.wait_for("the conversation", |s| s.contains("assistant #"));
    t.keys(&["E"]);
    t.wait_for("the refusal", |s| {
        s.contains("not saved") && s.contains("exited with")
    });
    t.quit();
    assert_eq!(count(&t.db(), edited), 1);
}

#[test]
fn the_review_queue_orders_unrated_then_disagreements_then_unsure_and_its_keys_work() {
    use common::tmux::Tmux;
    let s = Sandbox::new();
    import_sessions(&s);
    // The conversation with the most answers.
    let (conv, answers): (i64, Vec<i64>) = {
        let c = Connection::open(s.db()).unwrap();
        let conv: i64 = c
            .query_row(
                "SELECT conversation_id FROM nodes WHERE role = 'assistant' AND status = 'complete'
                  GROUP BY conversation_id ORDER BY count(*) DESC, conversation_id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let mut st = c
            .prepare("SELECT id FROM nodes WHERE conversation_id = ?1 AND role = 'assistant' ORDER BY id")
            .unwrap();
        let ids = st
            .query_map([conv], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        (conv, ids)
    };
    assert!(answers.len() >= 3, "{answers:?}");
    let (a0, a1) = (answers[0], answers[1]);
    // The studio's rater is `tester` (USER): a0 disagrees with the judge, a1 the judge was
    // unsure of; the rest are unrated by tester and come first.
    for (id, me, judge) in [(a0, 5, 1), (a1, 4, 3)] {
        s.ok(&[
            "rate",
            &id.to_string(),
            &me.to_string(),
            "--rater",
            "tester",
        ]);
        s.ok(&[
            "rate",
            &id.to_string(),
            &judge.to_string(),
            "--rater",
            "judge:fixture",
        ]);
    }
    let stars = |db: &std::path::Path, id: i64| {
        count(
            db,
            &format!("SELECT coalesce(max(stars), 0) FROM ratings WHERE node_id = {id} AND rater = 'tester'"),
        )
    };
    // Answers tester has not rated (the import may carry tester's own ratings).
    let unrated = answers
        .iter()
        .filter(|id| stars(&s.db(), **id) == 0)
        .count();
    let n = unrated + 2;
    let fours = format!(
        "SELECT count(*) FROM ratings WHERE rater = 'tester' AND stars = 4 AND node_id NOT IN ({a0}, {a1})"
    );
    let fours_before = count(&s.db(), &fours);
    let t = Tmux::in_sandbox(s, &format!("review --conversation {conv}"));
    let first = t.wait_for("the first unrated answer", |s| {
        s.contains(&format!("review 1 / {n}")) && s.contains("unrated")
    });
    // Whether to trust the judge: its agreement with this curator, on the screen.
    assert!(first.contains("⚖ judge:fixture vs you: κ"), "{first}");
    t.keys(&["4"]);
    t.wait_for("the next", |s| {
        s.contains(&format!("review 2 / {n}")) && s.contains("1 rated")
    });
    assert_eq!(
        count(&t.db(), &fours),
        fours_before + 1,
        "the first unrated answer got 4★"
    );
    t.keys(&["b"]);
    t.wait_for("back", |s| s.contains(&format!("review 1 / {n}")));
    for _ in 0..unrated {
        t.keys(&["n"]);
    }
    t.wait_for("the disagreement", |s| {
        s.contains(&format!("review {} / {n}", unrated + 1)) && s.contains("you 5★ vs judge 1★")
    });
    t.keys(&["a"]);
    t.wait_for("the unsure one", |s| {
        s.contains("judge unsure (3★), you 4★")
    });
    assert_eq!(stars(&t.db(), a0), 1, "a takes the judge's score");
    t.keys(&["m"]);
    let t0 = std::time::Instant::now();
    while count(
        &t.db(),
        &format!("SELECT count(*) FROM tags WHERE node_id = {a1} AND tag = 'clarification'"),
    ) != 1
    {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "{}",
            t.screen()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    t.keys(&["o"]);
    t.wait_for("the conversation at the answer", |s| {
        s.contains(&format!("#{a1}")) && !s.contains("review ")
    });
    t.quit();
}

/// A tiny seeded generator (the property test's randomness, reproducible by seed).
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Grows random branches on random conversations and rates and tags some answers as `rater`.
fn curate(store: &arbor::store::Store, rng: &mut Rng, rater: &str, new_conversations: usize) {
    use arbor::domain::*;
    for i in 0..new_conversations {
        let c = store
            .create_conversation(&format!("{rater} {i}"), "sys", None)
            .unwrap();
        let u = store
            .append_child(c.id, None, &NewNode::user(format!("q {rater} {i}")))
            .unwrap();
        store
            .append_child(
                c.id,
                Some(u.id),
                &NewNode::new(Role::Assistant, "a", Origin::Generated),
            )
            .unwrap();
    }
    let ids: Vec<i64> = {
        let mut st = store
            .conn()
            .prepare("SELECT id FROM nodes ORDER BY id")
            .unwrap();
        let rows = st.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    };
    for _ in 0..12 {
        let at = ids[rng.next(ids.len() as u64) as usize];
        let n = store.node(at).unwrap();
        match rng.next(4) {
            0 => {
                let role = if n.role == Role::User {
                    Role::Assistant
                } else {
                    Role::User
                };
                let text = format!("{rater} says {}", rng.next(1000));
                store
                    .append_child(
                        n.conversation_id,
                        Some(at),
                        &NewNode::new(role, text, Origin::Typed),
                    )
                    .unwrap();
            }
            1 => {
                store
                    .edit_as_sibling(at, &format!("edited by {rater} {}", rng.next(1000)), None)
                    .unwrap();
            }
            2 => store.rate(at, rater, Some(1 + rng.next(5) as u8)).unwrap(),
            _ => store
                .add_tag(at, rater, &format!("t{}", rng.next(3)))
                .unwrap(),
        }
    }
}

/// The rows a query gives, as sorted strings (comparing databases whose row ids differ).
fn sorted(c: &Connection, sql: &str) -> Vec<String> {
    let mut st = c.prepare(sql).unwrap();
    let mut v: Vec<String> = st
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    v.sort();
    v
}

/// What a database holds, by global ids (row ids differ between databases).
fn content(db: &std::path::Path) -> Vec<String> {
    let c = Connection::open(db).unwrap();
    let q = |sql: &str| sorted(&c, sql);
    let mut out = q("SELECT 'c ' || coalesce(gid, 'row ' || id) FROM conversations");
    out.extend(q(
        "SELECT 'n ' || coalesce(n.gid, 'row ' || n.id) || ' ' || coalesce(p.gid, p.id, '-') || ' ' || n.role || ' ' || n.origin || ' ' || n.content
           FROM nodes n LEFT JOIN nodes p ON p.id = n.parent_id",
    ));
    out.extend(q(
        "SELECT 'r ' || coalesce(n.gid, 'row ' || n.id) || ' ' || r.rater || ' ' || coalesce(r.stars, '-') || ' ' || coalesce(r.critique, '-')
           FROM ratings r JOIN nodes n ON n.id = r.node_id",
    ));
    out.extend(q(
        "SELECT 't ' || coalesce(n.gid, 'row ' || n.id) || ' ' || t.rater || ' ' || t.tag FROM tags t JOIN nodes n ON n.id = t.node_id",
    ));
    out
}

#[test]
fn merge_is_idempotent_and_symmetric_over_random_trees() {
    use arbor::store::Store;
    let dir = tempfile::tempdir().unwrap();
    for seed in 1..=12u64 {
        let mut rng = Rng(seed * 0x9E37_79B9_7F4A_7C15);
        let p = |n: &str| dir.path().join(format!("{seed}-{n}.db"));
        // One database, copied to two curators before they diverge.
        {
            let base = Store::open(p("base")).unwrap();
            curate(&base, &mut rng, "alice", 3);
            base.backup_to(&p("a")).unwrap();
            base.backup_to(&p("b")).unwrap();
        }
        {
            let a = Store::open(p("a")).unwrap();
            let n = 1 + rng.next(2) as usize;
            curate(&a, &mut rng, "alice", n);
            let b = Store::open(p("b")).unwrap();
            let n = 1 + rng.next(2) as usize;
            curate(&b, &mut rng, "bob", n);
            // alice rates in both copies: a conflict when the stars differ.
            curate(&b, &mut rng, "alice", 0);
            a.backup_to(&p("a-into-b")).unwrap();
            b.backup_to(&p("b-into-a")).unwrap();
        }
        let ab = Store::open(p("b-into-a")).unwrap();
        ab.merge_from(&p("a"), false).unwrap();
        let ba = Store::open(p("a-into-b")).unwrap();
        ba.merge_from(&p("b"), false).unwrap();
        let (x, y) = (content(&p("b-into-a")), content(&p("a-into-b")));
        let only_x: Vec<_> = x.iter().filter(|l| !y.contains(l)).collect();
        let only_y: Vec<_> = y.iter().filter(|l| !x.contains(l)).collect();
        assert!(
            only_x.is_empty() && only_y.is_empty(),
            "seed {seed}: {only_x:#?} vs {only_y:#?}"
        );
        // Twice: nothing more.
        let again = ab.merge_from(&p("a"), false).unwrap();
        assert_eq!(
            (
                again.conversations,
                again.messages,
                again.ratings,
                again.tags,
                again.preferences
            ),
            (0, 0, 0, 0, 0),
            "seed {seed}: {again:?}"
        );
        // Conflicts still differ between the files and are listed again, but nothing moves:
        // what is kept is what is here.
        assert!(
            again.conflicts.iter().all(|c| c.kept == c.here),
            "seed {seed}: {again:?}"
        );
        assert_eq!(
            content(&p("b-into-a")),
            content(&p("a-into-b")),
            "seed {seed}"
        );
    }
}

#[test]
fn merge_from_the_cli_reports_conflicts_and_refuses_bad_files_changing_nothing() {
    let a = Sandbox::new();
    import_sessions(&a);
    let b_db = a.dir.path().join("b.db");
    let b = |args: &[&str]| {
        let mut c = a.cmd();
        c.env("ARBOR_DB", &b_db).args(args);
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", common::stderr(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    a.ok(&["backup", a.dir.path().join("seed.db").to_str().unwrap()]);
    std::fs::copy(a.dir.path().join("seed.db"), &b_db).unwrap();
    // bob rates in b; both rate message 2 differently (tester in a later: a conflict).
    b(&["rate", "2", "1", "--rater", "tester"]);
    b(&["rate", "4", "5", "--rater", "bob", "--tag", "checked"]);
    std::thread::sleep(std::time::Duration::from_millis(20));
    a.ok(&["rate", "2", "3"]);
    let dry = a.json(&["merge", b_db.to_str().unwrap(), "--dry-run", "--json"]);
    assert_eq!(dry["dry_run"], true);
    let before = content(&a.db());
    let v = a.json(&["merge", b_db.to_str().unwrap(), "--json"]);
    assert_eq!(v["ratings"], 1, "{v:#}");
    assert_eq!(v["tags"], 1);
    assert_eq!(
        v["conflicts"][0]["kept"], 3,
        "the newer (here) is kept: {v:#}"
    );
    assert_eq!(v["ratings"], dry["ratings"]);
    assert_ne!(content(&a.db()), before);
    let again = a.json(&["merge", b_db.to_str().unwrap(), "--json"]);
    assert_eq!(
        (again["ratings"].as_u64(), again["messages"].as_u64()),
        (Some(0), Some(0))
    );
    // Bad files: exit 2, a clear reason, nothing changed.
    let now = content(&a.db());
    let text = a.dir.path().join("notes.txt");
    std::fs::write(&text, "not a database at all\n".repeat(100)).unwrap();
    let empty = a.dir.path().join("empty.db");
    Connection::open(&empty)
        .unwrap()
        .execute_batch("CREATE TABLE x (y)")
        .unwrap();
    let newer = a.dir.path().join("newer.db");
    std::fs::copy(a.dir.path().join("seed.db"), &newer).unwrap();
    Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let broken = a.dir.path().join("broken.db");
    let bytes = std::fs::read(a.dir.path().join("seed.db")).unwrap();
    let mut cut = bytes[..bytes.len() / 2].to_vec();
    cut[100..4096].fill(0xAB);
    std::fs::write(&broken, cut).unwrap();
    for (file, why) in [
        (&text, "not an SQLite database"),
        (&empty, "not an Arbor database"),
        (&newer, "newer than this Arbor knows"),
        (&broken, "damaged"),
    ] {
        let o = a.run(&["merge", file.to_str().unwrap()]);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{}: {}",
            file.display(),
            common::stderr(&o)
        );
        assert!(common::stderr(&o).contains(why), "{}", common::stderr(&o));
        assert_eq!(content(&a.db()), now, "{}", file.display());
    }
}

/// The eval data of a database, by global ids and names.
fn eval_content(db: &std::path::Path) -> Vec<String> {
    let c = Connection::open(db).unwrap();
    let q = |sql: &str| sorted(&c, sql);
    let mut out = q("SELECT 'set ' || name FROM eval_sets");
    out.extend(q(
        "SELECT 'case ' || s.name || ' ' || n.gid FROM eval_cases c JOIN eval_sets s ON s.id = c.set_id
           JOIN nodes n ON n.id = c.user_node_id",
    ));
    out.extend(q(
        "SELECT 'run ' || s.name || ' ' || r.created_at || ' ' || r.candidates FROM eval_runs r
           JOIN eval_sets s ON s.id = r.set_id",
    ));
    out.extend(q(
        "SELECT 'answer ' || r.created_at || ' ' || u.gid || ' ' || a.candidate || ' ' || n.gid
           FROM eval_answers a JOIN eval_runs r ON r.id = a.run_id JOIN eval_cases c ON c.id = a.case_id
           JOIN nodes u ON u.id = c.user_node_id JOIN nodes n ON n.id = a.node_id",
    ));
    out.extend(q(
        "SELECT 'decision ' || r.created_at || ' ' || u.gid || ' ' || d.cand_a || d.cand_b || ' '
                || coalesce(d.winner, '=') || ' ' || d.rater
           FROM eval_decisions d JOIN eval_runs r ON r.id = d.run_id JOIN eval_cases c ON c.id = d.case_id
           JOIN nodes u ON u.id = c.user_node_id",
    ));
    out
}

#[test]
fn merge_brings_eval_sets_runs_and_blind_decisions_both_ways() {
    use arbor::domain::*;
    use arbor::store::{NewCase, Store};
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(format!("{n}.db"));
    let turn = |s: &Store, text: &str| {
        let c = s.create_conversation(text, "", None).unwrap();
        let u = s.append_child(c.id, None, &NewNode::user(text)).unwrap();
        NewCase {
            conversation_id: c.id,
            user_node_id: u.id,
            reference_node_id: None,
            tags: vec![],
        }
    };
    let (run, nodes) = {
        let base = Store::open(p("base")).unwrap();
        let set = base
            .create_eval_set("held", "test", &[turn(&base, "q1")])
            .unwrap();
        let run = base
            .create_eval_run(set.id, &["base".into(), "tuned".into()])
            .unwrap();
        let case = base.eval_set("held").unwrap().1.remove(0);
        let a = NewNode::new(Role::Assistant, "x", Origin::Generated);
        let n0 = base.start_eval_answer(run, &case, 0, &a).unwrap();
        let n1 = base.start_eval_answer(run, &case, 1, &a).unwrap();
        base.backup_to(&p("a")).unwrap();
        base.backup_to(&p("b")).unwrap();
        (run, (n0, n1))
    };
    let case = |s: &Store| s.eval_set("held").unwrap().1[0].id;
    {
        let a = Store::open(p("a")).unwrap();
        a.record_decision(run, case(&a), (0, 1), nodes, Some(0), "alice")
            .unwrap();
        a.backup_to(&p("a-into-b")).unwrap();
        let b = Store::open(p("b")).unwrap();
        b.record_decision(run, case(&b), (0, 1), nodes, Some(1), "bob")
            .unwrap();
        b.create_eval_set("more", "test", &[turn(&b, "q2")])
            .unwrap();
        b.backup_to(&p("b-into-a")).unwrap();
    }
    let ab = Store::open(p("b-into-a")).unwrap();
    let r = ab.merge_from(&p("a"), false).unwrap();
    assert_eq!(r.eval_decisions, 1, "{r:?}");
    let ba = Store::open(p("a-into-b")).unwrap();
    let r = ba.merge_from(&p("b"), false).unwrap();
    assert_eq!(
        (r.eval_sets, r.eval_cases, r.eval_decisions),
        (1, 1, 1),
        "{r:?}"
    );
    assert_eq!(eval_content(&p("b-into-a")), eval_content(&p("a-into-b")));
    let e = eval_content(&p("a-into-b"));
    assert!(
        e.iter()
            .any(|l| l.starts_with("decision") && l.ends_with(" alice")),
        "{e:#?}"
    );
    assert!(
        e.iter()
            .any(|l| l.starts_with("decision") && l.ends_with(" bob")),
        "{e:#?}"
    );
    let again = ba.merge_from(&p("b"), false).unwrap();
    assert_eq!(
        (
            again.eval_sets,
            again.eval_cases,
            again.eval_runs,
            again.eval_answers,
            again.eval_decisions
        ),
        (0, 0, 0, 0, 0)
    );
}

#[test]
fn a_killed_judge_keeps_what_it_scored_and_unjudged_finishes_the_rest() {
    let s = Sandbox::new();
    import_sessions(&s);
    let scored = "SELECT count(*) FROM ratings WHERE rater LIKE 'judge:%'";
    let mut judge = s.spawn_quiet(&["judge"]);
    let t0 = std::time::Instant::now();
    while count(&s.db(), scored) < 2 {
        assert!(judge.try_wait().unwrap().is_none(), "the judge ended first");
        assert!(t0.elapsed() < std::time::Duration::from_secs(120));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    judge.kill().unwrap();
    judge.wait().unwrap();
    let kept = count(&s.db(), scored);
    assert!(kept >= 2);
    let v = s.json(&["judge", "--unjudged", "--json"]);
    let total = count(&s.db(), scored);
    assert_eq!(total, kept + v["scored"].as_i64().unwrap(), "{v:#}");
    // Every answer of the sample turns is scored once, none twice.
    let again = s.json(&["judge", "--unjudged", "--json"]);
    assert_eq!(again["scored"], 0, "{again:#}");
}
