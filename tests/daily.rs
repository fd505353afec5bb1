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
    t.wait_for("the list", |s| s.contains("conversations ("));
    t.keys(&["Enter"]);
    t.wait_for("a conversation", |s| s.contains("assistant #"));
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
    t.wait_for("the list", |s| s.contains("conversations ("));
    t.keys(&["Enter"]);
    t.wait_for("a conversation", |s| s.contains("assistant #"));
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
    t.wait_for("the list", |s| s.contains("conversations ("));
    t.keys(&["Enter"]);
    t.wait_for("a conversation", |s| s.contains("assistant #"));
    let escaped = tmux(&["capture-pane", "-e", "-p", "-t", &t.session]);
    assert!(escaped.contains("\x1b[3"), "{escaped:?}");
    t.quit();
}
