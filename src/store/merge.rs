//! Several curators, one dataset: global ids recognise a conversation and a message in two
//! databases, and `arbor merge OTHER.db` brings in what the other holds — conversations,
//! branches, edits, each rater's ratings and critiques, tags, preferences — in one
//! transaction. Merging twice changes nothing; A into B and B into A give the same content.
//!
//! A global id is fixed once per row, derived from the row's id, time and text (the
//! migration for rows that existed then; the first merge that sees it for later ones), so
//! copies of one database made before the upgrade agree, and a copied row keeps it.

use super::*;
use rusqlite::types::Value;
use rusqlite::{params, OpenFlags, OptionalExtension};
use std::collections::HashMap;

/// The schema version that added global ids.
pub const GLOBAL_IDS_VERSION: i64 = 10;

fn hash_id(kind: &str, id: i64, created_at: i64, text: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"arbor-gid\0");
    h.update(kind.as_bytes());
    h.update(id.to_le_bytes());
    h.update(created_at.to_le_bytes());
    for t in text {
        h.update((t.len() as u64).to_le_bytes());
        h.update(t.as_bytes());
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn conversation_gid(id: i64, created_at: i64) -> String {
    hash_id("conversation", id, created_at, &[])
}

fn node_gid(id: i64, created_at: i64, role: &str, content: &str) -> String {
    hash_id("node", id, created_at, &[role, content])
}

/// Gives every row without a global id its own (in the caller's transaction).
pub(super) fn fill_gids(conn: &Connection) -> Result<usize> {
    let convs: Vec<(i64, i64)> = {
        let mut st = conn.prepare("SELECT id, created_at FROM conversations WHERE gid IS NULL")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut set = conn.prepare("UPDATE conversations SET gid = ?1 WHERE id = ?2")?;
    for (id, at) in &convs {
        set.execute(params![conversation_gid(*id, *at), id])?;
    }
    // In blocks: a million messages never sit in memory at once.
    let mut st = conn.prepare(
        "SELECT id, created_at, role, content FROM nodes
          WHERE gid IS NULL AND id > ?1 ORDER BY id LIMIT 5000",
    )?;
    let mut set = conn.prepare("UPDATE nodes SET gid = ?1 WHERE id = ?2")?;
    let (mut after, mut done) = (i64::MIN, 0);
    loop {
        let block: Vec<(i64, i64, String, String)> = st
            .query_map([after], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let Some(last) = block.last() else {
            break;
        };
        after = last.0;
        for (id, at, role, content) in &block {
            set.execute(params![node_gid(*id, *at, role, content), id])?;
        }
        done += block.len();
    }
    Ok(convs.len() + done)
}

/// What a merge brought in (or, with `--dry-run`, would).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct MergeReport {
    pub conversations: usize,
    pub messages: usize,
    pub ratings: usize,
    pub tags: usize,
    pub preferences: usize,
    /// Eval sets, cases, runs, answers and blind decisions brought in.
    pub eval_sets: usize,
    pub eval_cases: usize,
    pub eval_runs: usize,
    pub eval_answers: usize,
    pub eval_decisions: usize,
    /// The same rater gave the same answer different stars: the newer was kept.
    pub conflicts: Vec<MergeConflict>,
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MergeConflict {
    /// The message here.
    pub node: NodeId,
    pub rater: String,
    pub here: Option<u8>,
    pub there: Option<u8>,
    pub kept: Option<u8>,
}

/// A rating as both sides hold it.
#[derive(Debug, Clone, PartialEq)]
struct RatingRow {
    stars: Option<u8>,
    critique: Option<String>,
    updated_at: i64,
}

impl RatingRow {
    /// The newer wins; at the same time the larger (stars, critique), so the choice is the
    /// same from either side.
    fn wins_over(&self, other: &RatingRow) -> bool {
        (self.updated_at, self.stars, &self.critique)
            > (other.updated_at, other.stars, &other.critique)
    }
}

/// Node columns copied as they are (the rest are ids, mapped).
const NOT_COPIED: &[&str] = &[
    "id",
    "conversation_id",
    "parent_id",
    "edited_from",
    "active_child_id",
    "gid",
    "writer_pid",
];

impl Store {
    /// Brings `other`'s conversations, messages, ratings, tags and preferences into this
    /// database in one transaction (nothing is written with `dry_run`); `other` is only
    /// read. A file that is not an Arbor database, is damaged, or is newer is refused.
    pub fn merge_from(&self, other: &Path, dry_run: bool) -> Result<MergeReport> {
        let bad = |m: String| StoreError::Invalid(format!("{}: {m}", other.display()));
        if !other.is_file() {
            return Err(bad("no such file".into()));
        }
        if std::fs::canonicalize(other).ok() == std::fs::canonicalize(&self.path).ok() {
            return Err(bad("this is the database itself".into()));
        }
        let src = Connection::open_with_flags(other, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| bad(format!("cannot open it: {e}")))?;
        let check: String = src
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| bad(format!("not an SQLite database, or damaged ({e})")))?;
        if check != "ok" {
            return Err(bad(format!("the file is damaged ({check})")));
        }
        let arbor: bool = src.query_row(
            "SELECT count(*) = 2 FROM sqlite_master WHERE type = 'table' AND name IN ('conversations', 'nodes')",
            [],
            |r| r.get(0),
        )?;
        let version: i64 = src.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if !arbor || version == 0 {
            return Err(bad("not an Arbor database".into()));
        }
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: other.to_path_buf(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        // An older file is read through a migrated copy (the file itself is never written).
        let _copy;
        let src = if version < SCHEMA_VERSION {
            let tmp = tempfile::Builder::new()
                .prefix("arbor-merge-")
                .suffix(".db")
                .tempfile()
                .map_err(|e| bad(format!("a temporary copy: {e}")))?;
            src.backup(rusqlite::MAIN_DB, tmp.path(), None)?;
            drop(src);
            let migrated = Store::open(tmp.path())?;
            _copy = tmp;
            migrated.conn
        } else {
            src
        };
        let tx = self.tx()?;
        fill_gids(&tx)?;
        let mut report = MergeReport {
            dry_run,
            ..Default::default()
        };
        let cols: Vec<String> = {
            let mut st = tx.prepare("SELECT name FROM pragma_table_info('nodes')")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .filter(|c| !NOT_COPIED.contains(&c.as_str()))
                .collect()
        };
        let convs: Vec<(i64, Option<String>, i64)> = {
            let mut st = src.prepare(
                "SELECT id, gid, created_at FROM conversations
                  WHERE trashed_at IS NULL AND pending_import IS NULL ORDER BY id",
            )?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let select_nodes = format!(
            "SELECT id, parent_id, edited_from, active_child_id, gid, created_at, role, content, {}
               FROM nodes WHERE conversation_id = ?1 ORDER BY id",
            cols.join(", ")
        );
        let insert_node = format!(
            "INSERT INTO nodes (conversation_id, parent_id, edited_from, gid, {}) VALUES (?1, ?2, ?3, ?4, {})",
            cols.join(", "),
            (0..cols.len())
                .map(|i| format!("?{}", i + 5))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (cid, cgid, created) in convs {
            let cgid = cgid.unwrap_or_else(|| conversation_gid(cid, created));
            let here: Option<ConversationId> = tx
                .query_row(
                    "SELECT id FROM conversations WHERE gid = ?1",
                    [&cgid],
                    |r| r.get(0),
                )
                .optional()?;
            let (local_conv, fresh) = match here {
                Some(id) => (id, false),
                None => {
                    let row: (String, String, Option<String>, Option<String>, i64, i64) = src
                        .query_row(
                            "SELECT title, system_prompt, tools, settings, created_at, updated_at
                               FROM conversations WHERE id = ?1",
                            [cid],
                            |r| {
                                Ok((
                                    r.get(0)?,
                                    r.get(1)?,
                                    r.get(2)?,
                                    r.get(3)?,
                                    r.get(4)?,
                                    r.get(5)?,
                                ))
                            },
                        )?;
                    tx.execute(
                        "INSERT INTO conversations (title, system_prompt, tools, settings, created_at,
                                                    updated_at, gid)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![row.0, row.1, row.2, row.3, row.4, row.5, cgid],
                    )?;
                    report.conversations += 1;
                    (tx.last_insert_rowid(), true)
                }
            };
            // Their node id → ours.
            let mut ours: HashMap<i64, i64> = HashMap::new();
            let mut active: Vec<(i64, i64)> = Vec::new();
            let mut st = src.prepare_cached(&select_nodes)?;
            let mut rows = st.query([cid])?;
            while let Some(r) = rows.next()? {
                let id: i64 = r.get(0)?;
                let parent: Option<i64> = r.get(1)?;
                let edited_from: Option<i64> = r.get(2)?;
                let active_child: Option<i64> = r.get(3)?;
                let gid: Option<String> = r.get(4)?;
                let created: i64 = r.get(5)?;
                let role: String = r.get(6)?;
                let content: String = r.get(7)?;
                let gid = gid.unwrap_or_else(|| node_gid(id, created, &role, &content));
                if let Some(c) = active_child {
                    active.push((id, c));
                }
                let found: Option<i64> = tx
                    .prepare_cached("SELECT id FROM nodes WHERE gid = ?1")?
                    .query_row([&gid], |r| r.get(0))
                    .optional()?;
                if let Some(local) = found {
                    ours.insert(id, local);
                    continue;
                }
                // A message whose parent could not be placed cannot be either.
                let local_parent = match parent {
                    Some(p) => match ours.get(&p) {
                        Some(&lp) => Some(lp),
                        None => continue,
                    },
                    None => None,
                };
                let into: i64 = match local_parent {
                    Some(lp) => tx
                        .prepare_cached("SELECT conversation_id FROM nodes WHERE id = ?1")?
                        .query_row([lp], |r| r.get(0))?,
                    None => local_conv,
                };
                let mut values: Vec<Value> = vec![
                    Value::Integer(into),
                    local_parent.map_or(Value::Null, Value::Integer),
                    edited_from
                        .and_then(|e| ours.get(&e))
                        .map_or(Value::Null, |&e| Value::Integer(e)),
                    Value::Text(gid),
                ];
                for i in 0..cols.len() {
                    values.push(r.get::<_, Value>(8 + i)?);
                }
                tx.prepare_cached(&insert_node)?
                    .execute(rusqlite::params_from_iter(values))?;
                let local = tx.last_insert_rowid();
                ours.insert(id, local);
                report.messages += 1;
                // A leaf here that grows a branch shows it.
                if let Some(lp) = local_parent {
                    tx.prepare_cached(
                        "UPDATE nodes SET active_child_id = ?1 WHERE id = ?2 AND active_child_id IS NULL",
                    )?
                    .execute(params![local, lp])?;
                }
            }
            drop(rows);
            if fresh {
                // A new conversation keeps the other's active path.
                let root: Option<i64> = src.query_row(
                    "SELECT active_root_id FROM conversations WHERE id = ?1",
                    [cid],
                    |r| r.get(0),
                )?;
                tx.execute(
                    "UPDATE conversations SET active_root_id = ?1 WHERE id = ?2",
                    params![root.and_then(|r| ours.get(&r)), local_conv],
                )?;
                for (n, c) in active {
                    if let (Some(n), Some(c)) = (ours.get(&n), ours.get(&c)) {
                        tx.execute(
                            "UPDATE nodes SET active_child_id = ?1 WHERE id = ?2",
                            params![c, n],
                        )?;
                    }
                }
            }
            self.merge_judgements(&tx, &src, cid, &ours, &mut report)?;
        }
        merge_evals(&tx, &src, &mut report)?;
        if dry_run {
            drop(tx);
        } else {
            tx.commit()?;
        }
        Ok(report)
    }

    /// Ratings, tags and preferences of their conversation `cid` (nodes mapped by `ours`).
    fn merge_judgements(
        &self,
        tx: &Connection,
        src: &Connection,
        cid: i64,
        ours: &HashMap<i64, i64>,
        report: &mut MergeReport,
    ) -> Result<()> {
        let mut st = src.prepare_cached(
            "SELECT r.node_id, r.rater, r.stars, r.critique, r.updated_at FROM ratings r
               JOIN nodes n ON n.id = r.node_id WHERE n.conversation_id = ?1 ORDER BY r.node_id, r.rater",
        )?;
        let theirs: Vec<(i64, String, RatingRow)> = st
            .query_map([cid], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    RatingRow {
                        stars: r.get(2)?,
                        critique: r.get(3)?,
                        updated_at: r.get(4)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        for (node, rater, there) in theirs {
            let Some(&local) = ours.get(&node) else {
                continue;
            };
            let here: Option<RatingRow> = tx
                .prepare_cached(
                    "SELECT stars, critique, updated_at FROM ratings WHERE node_id = ?1 AND rater = ?2",
                )?
                .query_row(params![local, rater], |r| {
                        Ok(RatingRow {
                            stars: r.get(0)?,
                            critique: r.get(1)?,
                            updated_at: r.get(2)?,
                        })
                    })
                .optional()?;
            let write = match &here {
                None => {
                    report.ratings += 1;
                    true
                }
                Some(h) if h == &there => false,
                Some(h) => {
                    let theirs_win = there.wins_over(h);
                    if h.stars != there.stars {
                        report.conflicts.push(MergeConflict {
                            node: local,
                            rater: rater.clone(),
                            here: h.stars,
                            there: there.stars,
                            kept: if theirs_win { there.stars } else { h.stars },
                        });
                    }
                    theirs_win
                }
            };
            if write {
                tx.execute(
                    "INSERT INTO ratings (node_id, rater, stars, critique, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (node_id, rater) DO UPDATE SET stars = excluded.stars,
                         critique = excluded.critique, updated_at = excluded.updated_at",
                    params![local, rater, there.stars, there.critique, there.updated_at],
                )?;
            }
        }
        let mut st = src.prepare_cached(
            "SELECT t.node_id, t.rater, t.tag, t.created_at FROM tags t
               JOIN nodes n ON n.id = t.node_id WHERE n.conversation_id = ?1",
        )?;
        let tags: Vec<(i64, String, String, i64)> = st
            .query_map([cid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (node, rater, tag, at) in tags {
            if let Some(&local) = ours.get(&node) {
                report.tags += tx.execute(
                    "INSERT OR IGNORE INTO tags (node_id, rater, tag, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![local, rater, tag, at],
                )?;
            }
        }
        let mut st = src.prepare_cached(
            "SELECT p.chosen_id, p.rejected_id, p.rater, p.source, p.created_at FROM preferences p
               JOIN nodes n ON n.id = p.chosen_id WHERE n.conversation_id = ?1",
        )?;
        let prefs: Vec<(i64, i64, String, String, i64)> = st
            .query_map([cid], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        for (c, r, rater, source, at) in prefs {
            if let (Some(&c), Some(&r)) = (ours.get(&c), ours.get(&r)) {
                report.preferences += tx.execute(
                    "INSERT OR IGNORE INTO preferences (chosen_id, rejected_id, rater, source, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![c, r, rater, source, at],
                )?;
            }
        }
        Ok(())
    }
}

/// Our node with the other's node `id` (by its global id), if we have it.
fn our_node(tx: &Connection, src: &Connection, id: i64) -> Result<Option<i64>> {
    let row: Option<(Option<String>, i64, String, String)> = src
        .prepare_cached("SELECT gid, created_at, role, content FROM nodes WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((gid, at, role, content)) = row else {
        return Ok(None);
    };
    let gid = gid.unwrap_or_else(|| node_gid(id, at, &role, &content));
    Ok(tx
        .prepare_cached("SELECT id FROM nodes WHERE gid = ?1")?
        .query_row([gid], |r| r.get(0))
        .optional()?)
}

/// Eval sets (by name), their cases (by the turn's message), runs (by set, start time and
/// candidates), answers and blind decisions (a decision of the same rater on the same pair
/// keeps the newer). Cases whose turn did not come over (the other's trash) are left out,
/// and so is what hangs on them.
fn merge_evals(tx: &Connection, src: &Connection, report: &mut MergeReport) -> Result<()> {
    let sets: Vec<(i64, String, String, i64)> = src
        .prepare("SELECT id, name, source, created_at FROM eval_sets ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (sid, name, source, at) in sets {
        let set: i64 = match tx
            .query_row("SELECT id FROM eval_sets WHERE name = ?1", [&name], |r| {
                r.get(0)
            })
            .optional()?
        {
            Some(id) => id,
            None => {
                tx.execute(
                    "INSERT INTO eval_sets (name, source, created_at) VALUES (?1, ?2, ?3)",
                    params![name, source, at],
                )?;
                report.eval_sets += 1;
                tx.last_insert_rowid()
            }
        };
        // Their case id → ours.
        let mut cases: HashMap<i64, i64> = HashMap::new();
        let rows: Vec<(i64, i64, Option<i64>, String)> = src
            .prepare("SELECT id, user_node_id, reference_node_id, tags FROM eval_cases WHERE set_id = ?1 ORDER BY id")?
            .query_map([sid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (cid, user, reference, tags) in rows {
            let Some(u) = our_node(tx, src, user)? else {
                continue;
            };
            let found: Option<i64> = tx
                .query_row(
                    "SELECT id FROM eval_cases WHERE set_id = ?1 AND user_node_id = ?2",
                    params![set, u],
                    |r| r.get(0),
                )
                .optional()?;
            let ours = match found {
                Some(c) => c,
                None => {
                    let reference = match reference {
                        Some(r) => our_node(tx, src, r)?,
                        None => None,
                    };
                    tx.execute(
                        "INSERT INTO eval_cases (set_id, conversation_id, user_node_id, reference_node_id, tags)
                         SELECT ?1, conversation_id, id, ?2, ?3 FROM nodes WHERE id = ?4",
                        params![set, reference, tags, u],
                    )?;
                    report.eval_cases += 1;
                    tx.last_insert_rowid()
                }
            };
            cases.insert(cid, ours);
        }
        type Run = (i64, String, String, Option<String>, i64, Option<i64>);
        let runs: Vec<Run> = src
            .prepare("SELECT id, candidates, status, error, created_at, finished_at FROM eval_runs WHERE set_id = ?1 ORDER BY id")?
            .query_map([sid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (rid, candidates, status, error, at, finished) in runs {
            let found: Option<i64> = tx
                .query_row(
                    "SELECT id FROM eval_runs WHERE set_id = ?1 AND created_at = ?2 AND candidates = ?3",
                    params![set, at, candidates],
                    |r| r.get(0),
                )
                .optional()?;
            let run = match found {
                Some(r) => r,
                None => {
                    tx.execute(
                        "INSERT INTO eval_runs (set_id, candidates, status, error, created_at, finished_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![set, candidates, status, error, at, finished],
                    )?;
                    report.eval_runs += 1;
                    tx.last_insert_rowid()
                }
            };
            let answers: Vec<(i64, i64, i64)> = src
                .prepare("SELECT case_id, candidate, node_id FROM eval_answers WHERE run_id = ?1")?
                .query_map([rid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (case, cand, node) in answers {
                if let (Some(&c), Some(n)) = (cases.get(&case), our_node(tx, src, node)?) {
                    report.eval_answers += tx.execute(
                        "INSERT OR IGNORE INTO eval_answers (run_id, case_id, candidate, node_id) VALUES (?1, ?2, ?3, ?4)",
                        params![run, c, cand, n],
                    )?;
                }
            }
            type Verdict = (i64, i64, i64, Option<i64>, String, i64);
            let decisions: Vec<Verdict> = src
                .prepare("SELECT case_id, cand_a, cand_b, winner, rater, created_at FROM eval_decisions WHERE run_id = ?1")?
                .query_map([rid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (case, a, b, winner, rater, at) in decisions {
                let Some(&c) = cases.get(&case) else {
                    continue;
                };
                let here: Option<(Option<i64>, i64)> = tx
                    .query_row(
                        "SELECT winner, created_at FROM eval_decisions
                          WHERE run_id = ?1 AND case_id = ?2 AND cand_a = ?3 AND cand_b = ?4 AND rater = ?5",
                        params![run, c, a, b, rater],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let newer = match here {
                    None => true,
                    Some(h) => (at, winner) > (h.1, h.0),
                };
                if newer {
                    tx.execute(
                        "INSERT INTO eval_decisions (run_id, case_id, cand_a, cand_b, winner, rater, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                         ON CONFLICT (run_id, case_id, cand_a, cand_b, rater)
                         DO UPDATE SET winner = excluded.winner, created_at = excluded.created_at",
                        params![run, c, a, b, winner, rater, at],
                    )?;
                    report.eval_decisions += 1;
                }
            }
        }
    }
    Ok(())
}
