//! The store against real SQLite files.

use arbor::domain::*;
use arbor::store::{Store, StoreError, SCHEMA_VERSION};
use std::path::PathBuf;
use std::process::Command;

fn db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("arbor.db");
    (dir, path)
}

fn chat(store: &Store) -> (Conversation, Node, Node) {
    let c = store.create_conversation("t", "sys", None).unwrap();
    let u = store
        .append_child(c.id, None, &NewNode::user("hello"))
        .unwrap();
    let a = store
        .append_child(
            c.id,
            Some(u.id),
            &NewNode::assistant("hi there", Origin::Generated),
        )
        .unwrap();
    (c, u, a)
}

#[test]
fn tree_paths_siblings_and_active_path() {
    let (_d, path) = db();
    let store = Store::open(&path).unwrap();
    let (c, u, a1) = chat(&store);
    let a2 = store
        .append_child(
            c.id,
            Some(u.id),
            &NewNode::assistant("hello!", Origin::Generated),
        )
        .unwrap();
    let u2 = store
        .append_child(c.id, Some(a2.id), &NewNode::user("more"))
        .unwrap();

    let sibs: Vec<_> = store
        .siblings(a1.id)
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(sibs, vec![a1.id, a2.id]);
    let p: Vec<_> = store
        .path_to_root(u2.id)
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(p, vec![u.id, a2.id, u2.id]);
    let active: Vec<_> = store
        .active_path(c.id)
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(active, vec![u.id, a2.id, u2.id]);

    // Switching to the first sibling makes the path end there.
    store.set_active(a1.id).unwrap();
    let active: Vec<_> = store
        .active_path(c.id)
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(active, vec![u.id, a1.id]);

    // Reopening the file returns the same path.
    drop(store);
    let store = Store::open(&path).unwrap();
    let active: Vec<_> = store
        .active_path(c.id)
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(active, vec![u.id, a1.id]);
}

#[test]
fn parent_must_be_in_the_same_conversation() {
    let (_d, path) = db();
    let store = Store::open(&path).unwrap();
    let (_c, u, _a) = chat(&store);
    let other = store.create_conversation("other", "", None).unwrap();
    let err = store
        .append_child(other.id, Some(u.id), &NewNode::user("x"))
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("not in conversation"), "{err}");
    assert_eq!(store.conversation_nodes(other.id).unwrap().len(), 0);
}

#[test]
fn edit_keeps_the_original_as_a_sibling() {
    let (_d, path) = db();
    let store = Store::open(&path).unwrap();
    let (c, u, a) = chat(&store);
    let e = store
        .edit_as_sibling(a.id, "a better answer", None)
        .unwrap();
    assert_eq!(e.origin, Origin::Edited);
    assert_eq!(e.edited_from, Some(a.id));
    assert_eq!(e.parent_id, Some(u.id));
    assert_eq!(store.node(a.id).unwrap().content, "hi there");
    let active: Vec<_> = store
        .active_path(c.id)
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(active, vec![u.id, e.id]);
    // Editing the root user message makes a second root.
    let u2 = store.edit_as_sibling(u.id, "hello again", None).unwrap();
    assert_eq!(u2.parent_id, None);
    assert_eq!(store.siblings(u.id).unwrap().len(), 2);
    assert_eq!(store.active_path(c.id).unwrap()[0].id, u2.id);
}

#[test]
fn deleting_a_branch_deletes_only_its_subtree() {
    let (_d, path) = db();
    let store = Store::open(&path).unwrap();
    let (c, u, a1) = chat(&store);
    let a2 = store
        .append_child(
            c.id,
            Some(u.id),
            &NewNode::assistant("second", Origin::Generated),
        )
        .unwrap();
    let below = store
        .append_child(c.id, Some(a2.id), &NewNode::user("deep"))
        .unwrap();
    store.rate(a2.id, "alice", Some(4)).unwrap();
    store.delete_branch(a2.id).unwrap();
    assert!(matches!(store.node(a2.id), Err(StoreError::NoNode(_))));
    assert!(matches!(store.node(below.id), Err(StoreError::NoNode(_))));
    assert_eq!(store.node(a1.id).unwrap().content, "hi there");
    assert!(store.ratings(a2.id).unwrap().is_empty());
    // The active path falls back to the remaining sibling.
    let active: Vec<_> = store
        .active_path(c.id)
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(active, vec![u.id, a1.id]);
    assert!(store.search("deep", 10).unwrap().is_empty());
}

#[test]
fn deleting_a_very_long_chain_works() {
    let (_d, path) = db();
    let store = Store::open(&path).unwrap();
    let c = store.create_conversation("long", "", None).unwrap();
    let msgs: Vec<NewNode> = (0..5000)
        .map(|i| {
            if i % 2 == 0 {
                NewNode::user(format!("q{i}"))
            } else {
                NewNode::assistant(format!("a{i}"), Origin::Imported)
            }
        })
        .collect();
    let ids = store.append_path(c.id, None, &msgs).unwrap();
    assert_eq!(store.active_path(c.id).unwrap().len(), 5000);
    store.delete_branch(ids[1]).unwrap();
    assert_eq!(store.conversation_nodes(c.id).unwrap().len(), 1);
    store.delete_conversation(c.id).unwrap();
    assert_eq!(store.counts().unwrap().nodes, 0);
}

#[test]
fn ratings_are_per_rater() {
    let (_d, path) = db();
    let store = Store::open(&path).unwrap();
    let (_c, _u, a) = chat(&store);
    store.rate(a.id, "alice", Some(5)).unwrap();
    store.rate(a.id, "bob", Some(2)).unwrap();
    store.critique(a.id, "bob", "too short").unwrap();
    store.rate(a.id, "alice", Some(4)).unwrap();
    let r = store.ratings(a.id).unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!((r[0].rater.as_str(), r[0].stars), ("alice", Some(4)));
    assert_eq!((r[1].rater.as_str(), r[1].stars), ("bob", Some(2)));
    assert_eq!(r[1].critique.as_deref(), Some("too short"));
    // Clearing alice's stars removes her row; bob keeps his critique after clearing stars.
    store.rate(a.id, "alice", None).unwrap();
    store.rate(a.id, "bob", None).unwrap();
    let r = store.ratings(a.id).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].critique.as_deref(), Some("too short"));
    assert!(store.rate(a.id, "alice", Some(6)).is_err());
    store.add_tag(a.id, "alice", "clarification").unwrap();
    store.add_tag(a.id, "bob", "clarification").unwrap();
    assert_eq!(store.tags(a.id).unwrap(), vec!["clarification"]);
    assert!(store.add_tag(a.id, "bob", "two words").is_err());
}

#[test]
fn full_text_search_finds_messages_and_follows_updates() {
    let (_d, path) = db();
    let store = Store::open(&path).unwrap();
    let c = store.create_conversation("sql", "", None).unwrap();
    let u = store
        .append_child(c.id, None, &NewNode::user("Show Manchester United players"))
        .unwrap();
    let a = store
        .append_child(c.id, Some(u.id), &NewNode::assistant("", Origin::Generated))
        .unwrap();
    store
        .update_generation(
            a.id,
            "SELECT player_name FROM players",
            Status::Complete,
            None,
            None,
            None,
        )
        .unwrap();
    let hits = store.search("manchester", 10).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].node_id, u.id);
    assert!(
        hits[0].snippet.contains("[Manchester]"),
        "{}",
        hits[0].snippet
    );
    let hits = store.search("player_name", 10).unwrap();
    assert_eq!(
        hits.iter().map(|h| h.node_id).collect::<Vec<_>>(),
        vec![a.id]
    );
    // Prefix match, and FTS syntax characters in user input are harmless.
    assert_eq!(store.search("playe", 10).unwrap().len(), 2);
    assert!(store.search("\"(AND*", 10).is_ok());
}

#[test]
fn a_v1_database_opens_with_every_row_kept() {
    let (_d, path) = db();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1.db"),
        &path,
    )
    .unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let c = store.conversation(1).unwrap();
    assert_eq!(c.title, "Players query");
    assert_eq!(c.system_prompt, "You write SQL.");
    let path_ids: Vec<_> = store.active_path(1).unwrap().iter().map(|n| n.id).collect();
    assert_eq!(path_ids, vec![1, 3]);
    let edited = store.node(3).unwrap();
    assert_eq!(
        (edited.origin, edited.edited_from),
        (Origin::Edited, Some(2))
    );
    assert_eq!(store.node(2).unwrap().generated_tokens, Some(7));
    let r = store.ratings(2).unwrap();
    assert_eq!(
        (r[0].stars, r[0].critique.as_deref()),
        (Some(2), Some("too vague"))
    );
    assert_eq!(store.tags(3).unwrap(), vec!["clarification"]);
    assert_eq!(store.search("vague", 5).unwrap().len(), 0);
    assert_eq!(store.search("columns", 5).unwrap()[0].node_id, 3);
    let counts = store.counts().unwrap();
    assert_eq!(
        (
            counts.conversations,
            counts.nodes,
            counts.ratings,
            counts.tags
        ),
        (1, 3, 2, 1)
    );
    // The v2 tables exist and work.
    assert_eq!(counts.jobs, 0);
    // v6 counted each conversation's messages when it migrated.
    assert_eq!(store.list_conversations(None).unwrap()[0].messages, 3);
}

#[test]
fn a_newer_schema_is_refused_not_damaged() {
    let (_d, path) = db();
    drop(Store::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Store::open(&path).err().expect("must refuse").to_string();
    assert!(err.contains("schema version 99"), "{err}");
}

#[test]
fn answers_left_streaming_by_a_crash_reopen_as_interrupted() {
    let (_d, path) = db();
    let store = Store::open(&path).unwrap();
    let (c, u, _a) = chat(&store);
    let mut n = NewNode::assistant("", Origin::Generated);
    n.status = Status::Streaming;
    let s = store.append_child(c.id, Some(u.id), &n).unwrap();
    store
        .update_generation(s.id, "partial answ", Status::Streaming, None, None, None)
        .unwrap();
    std::mem::forget(store); // no orderly shutdown, as with kill -9
    let store = Store::open(&path).unwrap();
    let node = store.node(s.id).unwrap();
    assert_eq!(node.status, Status::Interrupted);
    assert_eq!(node.content, "partial answ");
}

#[test]
fn two_processes_write_the_same_file() {
    let (_d, path) = db();
    let store = Store::open(&path).unwrap();
    let (c, u, a) = chat(&store);
    // Another process (the real `arbor rate`, run over and over) rates while this one appends.
    let db = path.clone();
    let node = a.id;
    let rater = std::thread::spawn(move || {
        for i in 0..40u32 {
            let out = Command::new(env!("CARGO_BIN_EXE_arbor"))
                .args(["--db", db.to_str().unwrap(), "rate", &node.to_string()])
                .arg(((i % 5) + 1).to_string())
                .args([
                    "--rater",
                    &format!("rater{}", i % 10),
                    "--critique",
                    &format!("round {i}"),
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "arbor rate failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    });
    let mut parent = u.id;
    for i in 0..1000 {
        parent = store
            .append_child(c.id, Some(parent), &NewNode::user(format!("message {i}")))
            .unwrap()
            .id;
    }
    rater.join().expect("the rating process failed");
    assert_eq!(store.conversation_nodes(c.id).unwrap().len(), 2 + 1000);
    let ratings = store.ratings(a.id).unwrap();
    assert_eq!(ratings.len(), 10);
    let r9 = store.rating(a.id, "rater9").unwrap().unwrap();
    assert_eq!(
        (r9.stars, r9.critique.as_deref()),
        (Some(5), Some("round 39"))
    );
}
