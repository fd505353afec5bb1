//! Daily use (#19, first part): backups made while something writes, the copy kept before a
//! migration, the clipboard through OSC 52, and screens without colour under NO_COLOR.

mod common;
use common::tmux::Tmux;
use common::{big_file, count, import_sessions, repo, stderr, Sandbox};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn a_backup_while_an_import_writes_is_intact_and_holds_every_committed_row() {
    let s = Sandbox::new();
    import_sessions(&s);
    let file = big_file(&s, 30_000);
    let mut import = s.spawn_quiet(&["import", file.to_str().unwrap()]);
    // Wait until the import has committed some of its bursts.
    let before = count(&s.db(), "SELECT count(*) FROM conversations");
    let t = Instant::now();
    let committed = loop {
        let n = count(&s.db(), "SELECT count(*) FROM conversations");
        if n > before + 1000 {
            break n;
        }
        assert!(
            import.try_wait().unwrap().is_none(),
            "the import ended first"
        );
        assert!(t.elapsed() < Duration::from_secs(120), "no burst committed");
        std::thread::sleep(Duration::from_millis(20));
    };
    let copy = s.dir.path().join("copy.db");
    let out = s.ok(&["backup", copy.to_str().unwrap()]);
    assert!(out.contains("backed up"), "{out}");
    assert!(
        import.try_wait().unwrap().is_none(),
        "the import was still writing during the backup"
    );
    let c = Connection::open(&copy).unwrap();
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let in_copy = count(&copy, "SELECT count(*) FROM conversations");
    assert!(in_copy >= committed, "{in_copy} < {committed}");
    assert!(!s.dir.path().join("copy.db.part").exists());
    assert!(import.wait().unwrap().success());
    // Opening the copy finishes what the import left hidden in it (the importer is gone).
    s.cmd()
        .env("ARBOR_DB", &copy)
        .args(["stats"])
        .output()
        .unwrap();
    assert_eq!(
        count(
            &copy,
            "SELECT count(*) FROM conversations WHERE pending_import IS NOT NULL"
        ),
        0
    );
    // A backup never overwrites.
    let again = s.run(&["backup", copy.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(stderr(&again).contains("exists"), "{}", stderr(&again));
    // Without a path: under the data directory.
    let out = s.ok(&["backup"]);
    let backups: Vec<PathBuf> = std::fs::read_dir(s.data_dir().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(backups.len(), 1, "{out}");
    assert!(out.contains(&backups[0].display().to_string()), "{out}");
}

#[test]
fn a_migration_keeps_the_file_as_it_was_beside_it_and_the_last_three() {
    let s = Sandbox::new();
    let fixture = repo().join("tests/fixtures/v1.db");
    let dir = s.dir.path();
    let bak = |dir: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                n.starts_with("arbor.db.v1-") && n.ends_with(".bak")
            })
            .collect();
        v.sort();
        v
    };
    for round in 1..=4 {
        std::fs::copy(&fixture, s.db()).unwrap();
        // Distinct names (they carry the time in seconds).
        std::thread::sleep(Duration::from_millis(1100));
        let out = s.run(&["stats"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("upgraded from schema v1"), "{err}");
        let kept = bak(dir);
        assert_eq!(kept.len(), round.min(3), "{kept:?}");
        let newest = kept.last().unwrap();
        assert!(err.contains(&newest.display().to_string()), "{err}");
        // The copy is the old file: schema 1, every conversation.
        assert_eq!(count(newest, "PRAGMA user_version"), 1);
        assert_eq!(
            count(newest, "SELECT count(*) FROM conversations"),
            count(&fixture, "SELECT count(*) FROM conversations")
        );
    }
    // Nothing to migrate: no copy, no line.
    let out = s.run(&["stats"]);
    assert!(!stderr(&out).contains("upgraded"), "{}", stderr(&out));
    assert_eq!(bak(dir).len(), 3);
}

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn y_and_shift_y_copy_through_osc52() {
    let s = Sandbox::new();
    import_sessions(&s);
    // tmux takes OSC 52 from applications into its paste buffer.
    tmux(&["start-server"]);
    let t = Tmux::in_sandbox(s, "");
    tmux(&["set-option", "-s", "set-clipboard", "on"]);
    t.open_first();
    // The last message is selected: copy it.
    t.keys(&["y"]);
    let screen = t.wait_for("the notice", |s| s.contains("copied message"));
    let id: i64 = screen
        .split("copied message ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{screen}"));
    let (content, calls): (String, String) = Connection::open(t.db())
        .unwrap()
        .query_row(
            "SELECT content, coalesce(tool_calls, '[]') FROM nodes WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let buffer = tmux(&["show-buffer"]);
    assert!(!content.trim().is_empty(), "{screen}");
    if calls == "[]" {
        assert_eq!(buffer.trim_end(), content.trim_end(), "{screen}");
    } else {
        assert!(buffer.contains(content.trim()), "{buffer}");
    }
    t.keys(&["Y"]);
    t.wait_for("the notice", |s| s.contains("copied the conversation"));
    let md = tmux(&["show-buffer"]);
    assert!(md.starts_with("# "), "{md}");
    assert!(
        md.contains("**user**") && md.contains("**assistant**"),
        "{md}"
    );
    t.quit();
}

#[test]
fn no_color_screens_carry_no_colour_escapes() {
    let s = Sandbox::new();
    import_sessions(&s);
    let t = Tmux::in_sandbox_env(s, "NO_COLOR=1", "");
    t.open_first();
    let escaped = tmux(&["capture-pane", "-e", "-p", "-t", &t.session]);
    // SGR colour parameters: 30–37, 38;…, 39, 40–47, 48;…, 49, 90–97, 100–107.
    let coloured = escaped.split("\x1b[").skip(1).any(|seq| {
        let params = seq.split('m').next().unwrap_or("");
        params
            .split(';')
            .any(|p| matches!(p.parse::<u32>(), Ok(30..=49) | Ok(90..=97) | Ok(100..=107)))
    });
    assert!(!coloured, "colour escapes under NO_COLOR:\n{escaped:?}");
    t.quit();
    // Without NO_COLOR the same screen has colours (the check above can fail).
    let s = Sandbox::new();
    import_sessions(&s);
    let t = Tmux::in_sandbox(s, "");
    t.open_first();
    let escaped = tmux(&["capture-pane", "-e", "-p", "-t", &t.session]);
    assert!(escaped.contains("\x1b[3"), "{escaped:?}");
    t.quit();
}

/// The id in the status line after `prefix` (e.g. "conversation 3 moved…").
fn id_after(screen: &str, prefix: &str) -> i64 {
    screen
        .split(prefix)
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no id after {prefix:?}:\n{screen}"))
}

#[test]
fn delete_then_u_restores_and_rating_then_u_clears_it() {
    let s = Sandbox::new();
    import_sessions(&s);
    let db = s.db();
    let convs = "SELECT count(*) FROM conversations WHERE trashed_at IS NULL";
    let all = count(&db, convs);
    let t = Tmux::in_sandbox(s, "");
    t.wait_for("the list", |s| {
        s.contains(&format!("conversations ({all})"))
    });

    // A conversation: d, y → in the trash and off the list; u → back.
    t.keys(&["d"]);
    t.wait_for("the question", |s| s.contains("to the trash? y/n"));
    t.keys(&["y"]);
    let screen = t.wait_for("the list without it", |s| {
        s.contains(&format!("conversations ({})", all - 1)) && s.contains("moved to the trash")
    });
    let conv = id_after(&screen, "conversation ");
    let trash = t.arbor_json(&["trash", "list", "--json"]);
    assert_eq!(trash.as_array().unwrap().len(), 1, "{trash}");
    assert_eq!(trash[0]["id"], conv);
    assert_eq!(trash[0]["kind"], "conversation");
    t.keys(&["u"]);
    t.wait_for("the list with it", |s| {
        s.contains(&format!("conversations ({all})")) && s.contains("undid the delete")
    });
    assert_eq!(count(&db, convs), all);
    assert_eq!(
        t.arbor_json(&["trash", "list", "--json"]),
        serde_json::json!([])
    );
    // Again, and back from the list's Trash filter this time.
    t.keys(&["d"]);
    t.wait_for("the question", |s| s.contains("to the trash? y/n"));
    t.keys(&["y"]);
    t.wait_for("the list without it", |s| {
        s.contains(&format!("conversations ({})", all - 1))
    });
    t.keys(&["D"]);
    t.wait_for("the trash", |s| s.contains("trash (1)"));
    t.keys(&["Enter"]);
    t.wait_for("the restore", |s| {
        s.contains(&format!("restored conversation {conv}")) && s.contains("trash (0)")
    });
    t.keys(&["D"]);
    t.wait_for("the list with it", |s| {
        s.contains(&format!("conversations ({all})"))
    });

    // A rating: 3 → stored; u → cleared again.
    t.keys(&["Enter"]);
    t.wait_for("a conversation", |s| s.contains("assistant #"));
    let mine = "SELECT count(*) FROM ratings WHERE rater = 'tester' AND stars = 3";
    let before = count(&db, mine);
    t.keys(&["3"]);
    let t0 = Instant::now();
    while count(&db, mine) != before + 1 {
        assert!(t0.elapsed() < Duration::from_secs(10), "{}", t.screen());
        std::thread::sleep(Duration::from_millis(100));
    }
    t.keys(&["u"]);
    t.wait_for("the undo", |s| s.contains("undid the rating"));
    assert_eq!(count(&db, mine), before);

    // A branch: d, y on the selected message → the path is shorter; u → as it was.
    let nodes = "SELECT count(*) FROM nodes n JOIN conversations c ON c.id = n.conversation_id \
                 WHERE c.trashed_at IS NULL";
    let visible = count(&db, nodes);
    t.keys(&["d"]);
    t.wait_for("the question", |s| s.contains("to the trash? y/n"));
    t.keys(&["y"]);
    let screen = t.wait_for("the notice", |s| {
        s.contains("its branch moved to the trash")
    });
    let node = id_after(&screen, "message ");
    assert!(count(&db, nodes) < visible);
    t.keys(&["u"]);
    t.wait_for("the undo", |s| s.contains("undid the delete"));
    assert_eq!(count(&db, nodes), visible);

    // Delete it again and quit: the CLI lists it and puts it back where it was.
    t.keys(&["d"]);
    t.wait_for("the question", |s| s.contains("to the trash? y/n"));
    t.keys(&["y"]);
    t.wait_for("the notice", |s| {
        s.contains("its branch moved to the trash")
    });
    // The path now ends at a question: the composer may be open for its answer.
    t.keys(&["Escape", "Escape"]);
    t.wait_for("the list", |s| s.contains("conversations ("));
    t.quit();
    let home: i64 = Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT trash_of FROM conversations WHERE trashed_at IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let trash = t.arbor_json(&["trash", "list", "--json"]);
    assert_eq!(trash[0]["kind"], "branch", "{trash}");
    assert_eq!(trash[0]["of"], home);
    let entry = trash[0]["id"].as_i64().unwrap();
    let out = t.sandbox.ok(&["trash", "restore", &entry.to_string()]);
    assert!(out.contains("restored the branch"), "{out}");
    let back: i64 = count(
        &db,
        &format!("SELECT conversation_id FROM nodes WHERE id = {node}"),
    );
    assert_eq!(back, home);
    assert_eq!(count(&db, nodes), visible);
    let o = t.sandbox.run(&["trash", "restore", &entry.to_string()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("nothing in the trash"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn trash_from_the_cli_hides_everywhere_until_restored_and_empty_deletes() {
    let s = Sandbox::new();
    import_sessions(&s);
    let list = s.json(&["sessions", "--json"]);
    let id = list[0]["id"].as_i64().unwrap();
    let title = list[0]["title"].as_str().unwrap().to_string();
    let (_, before) = s.export_json(&[]);
    let stats = s.json(&["stats", "--json"]);
    s.ok(&["sessions", "delete", &id.to_string()]);
    assert!(!s.ok(&["sessions"]).contains(&title));
    let o = s.run(&["sessions", "show", &id.to_string()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("in the trash"), "{}", stderr(&o));
    let (_, during) = s.export_json(&[]);
    assert!(
        during.len() < before.len(),
        "{} vs {}",
        during.len(),
        before.len()
    );
    assert_ne!(s.json(&["stats", "--json"]), stats);
    let out = s.ok(&["trash"]);
    assert!(
        out.contains(&title) && out.contains("1 in the trash"),
        "{out}"
    );
    s.ok(&["trash", "restore", &id.to_string()]);
    let (_, after) = s.export_json(&[]);
    assert_eq!(after, before);
    assert_eq!(s.json(&["stats", "--json"]), stats);
    // Empty: only what is old enough, then everything; gone for good.
    s.ok(&["sessions", "delete", &id.to_string()]);
    assert!(s
        .ok(&["trash", "empty", "--older-than", "1"])
        .contains("deleted 0"));
    assert!(s.ok(&["trash", "empty"]).contains("deleted 1 trash entry"));
    let o = s.run(&["trash", "restore", &id.to_string()]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        count(
            &s.db(),
            &format!("SELECT count(*) FROM nodes WHERE conversation_id = {id}")
        ),
        0
    );
}

#[test]
fn the_settings_form_refuses_top_p_7_beside_the_field() {
    let s = Sandbox::new();
    import_sessions(&s);
    let t = Tmux::in_sandbox(s, "");
    t.open_first();
    t.keys(&["s", "Tab", "Tab"]);
    t.wait_for("the form", |s| {
        s.contains("top_p") && s.contains("config's value")
    });
    t.keys(&["Down", "Down", "7"]);
    let screen = t.wait_for("the error", |s| s.contains("✗ top_p = 7 is out of range"));
    let row = screen
        .lines()
        .find(|l| l.contains("✗ top_p"))
        .unwrap_or_default();
    assert!(
        row.contains("▶ top_p"),
        "the error is on the field's row: {row}"
    );
    t.keys(&["C-s"]);
    t.wait_for("the refusal", |s| {
        s.contains("not saved — options: top_p = 7")
    });
    // Fixed, it saves: the conversation's settings hold the value the form showed.
    t.keys(&["BSpace"]);
    t.literal("0.5");
    t.keys(&["C-s"]);
    let t0 = Instant::now();
    loop {
        let n = count(
            &t.db(),
            "SELECT count(*) FROM conversations WHERE json_extract(settings, '$.sampling.top_p') = 0.5",
        );
        if n == 1 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{}", t.screen());
        std::thread::sleep(Duration::from_millis(100));
    }
    t.quit();
}

#[test]
fn the_light_theme_and_theme_toml_colour_the_studio_and_a_broken_one_is_named() {
    let s = Sandbox::new();
    import_sessions(&s);
    s.config("theme = \"light\"\n");
    let dir = s.dir.path().join("config");
    std::fs::write(dir.join("theme.toml"), "# my tags\ntag = \"#ff00ff\"\n").unwrap();
    let t = Tmux::in_sandbox(s, "");
    t.wait_for("the list", |s| s.contains("conversations ("));
    let escaped = tmux(&["capture-pane", "-e", "-p", "-t", &t.session]);
    // The light theme's stars (256-colour 130) and theme.toml's tag colour.
    assert!(escaped.contains("38;5;130"), "{escaped:?}");
    assert!(escaped.contains("38;2;255;0;255"), "{escaped:?}");
    t.quit();
    std::fs::write(dir.join("theme.toml"), "tag = \"cyan\"\nstar = \"red\"\n").unwrap();
    let o = t.sandbox.run(&[]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("theme.toml: line 2: unknown key 'star'"), "{e}");
    let o = t.sandbox.run(&["doctor"]);
    assert_eq!(o.status.code(), Some(2));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("theme            BROKEN"), "{out}");
}
