//! The import's writer: conversations written in short bursts under a hidden mark and
//! published in one statement, so readers never see a part; a killed import leaves
//! nothing visible and the next open removes it.

use super::{Result, Store, StoreError};
use crate::domain::*;
use rusqlite::config::DbConfig;
use rusqlite::params;

/// A message to insert during an import, with what the file said about it.
#[derive(Debug, Clone)]
pub struct ImportNode {
    pub node: NewNode,
    pub model: Option<String>,
    pub edited_from: Option<NodeId>,
    pub created_at: i64,
}

/// One import, written in short transactions (each holds the write lock for at most
/// about [`IMPORT_BURST`]) under conversations that stay hidden (`pending_import`) until
/// [`Importer::publish`] makes them all visible in one statement. Dropped without
/// publishing (an error), it removes what it wrote; killed, the next open does.
///
/// Inside a burst this connection runs without triggers (SQLite's per-connection
/// `SQLITE_DBCONFIG_ENABLE_TRIGGER`): the importer does their work itself, in bulk — the
/// full-text index gets the burst's messages in one statement before it commits, node
/// counts are added per conversation, and ids are assigned here (the burst holds the
/// write lock, so the next id is known), which sets each new message's active child as it
/// is inserted. A migration that adds a trigger on `nodes` or `conversations` must add its
/// work here too.
pub struct Importer<'a> {
    store: &'a Store,
    token: i64,
    in_tx: std::cell::Cell<bool>,
    burst_started: std::cell::Cell<std::time::Instant>,
    /// The id the next message gets, and the first id of this burst.
    next_id: std::cell::Cell<NodeId>,
    burst_first: std::cell::Cell<NodeId>,
    published: bool,
}

/// How long one of an import's transactions may hold the write lock (other writers wait
/// at most this long; readers never wait).
pub const IMPORT_BURST: std::time::Duration = std::time::Duration::from_millis(250);

impl Store {
    /// Starts an import (see [`Importer`]).
    pub fn importer(&self) -> Result<Importer<'_>> {
        // The importer keeps references and values right itself (ids it assigned, enums,
        // stars checked): SQLite's per-row foreign key lookups and CHECK constraints (whose
        // `IN (…)` lists build a temporary table for every row) are off for this
        // connection until the import ends.
        self.conn.pragma_update(None, "foreign_keys", "OFF")?;
        self.conn
            .pragma_update(None, "ignore_check_constraints", "ON")?;
        Ok(Importer {
            store: self,
            token: std::process::id() as i64,
            in_tx: std::cell::Cell::new(false),
            burst_started: std::cell::Cell::new(std::time::Instant::now()),
            next_id: std::cell::Cell::new(0),
            burst_first: std::cell::Cell::new(0),
            published: false,
        })
    }
}

impl Importer<'_> {
    fn conn(&self) -> &rusqlite::Connection {
        &self.store.conn
    }

    /// The connection as it was before the import.
    fn restore(&self) -> Result<()> {
        let conn = self.conn();
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, true)?;
        conn.pragma_update(None, "ignore_check_constraints", "OFF")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(())
    }

    /// The transaction of the current burst, begun if none is open.
    fn tx(&self) -> Result<&rusqlite::Connection> {
        if !self.in_tx.get() {
            let conn = self.conn();
            conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false)?;
            if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
                conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, true)?;
                return Err(e.into());
            }
            self.in_tx.set(true);
            self.burst_started.set(std::time::Instant::now());
            let next: NodeId =
                conn.query_row("SELECT coalesce(max(id), 0) + 1 FROM nodes", [], |r| {
                    r.get(0)
                })?;
            self.next_id.set(next);
            self.burst_first.set(next);
        }
        Ok(self.conn())
    }

    /// Indexes the burst's messages for search and commits.
    fn end_burst(&self) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO nodes_fts(rowid, content) SELECT id, content FROM nodes WHERE id >= ?1",
            [self.burst_first.get()],
        )?;
        conn.execute_batch("COMMIT")?;
        self.in_tx.set(false);
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, true)?;
        Ok(())
    }

    /// Commits the current burst when it has held the lock for [`IMPORT_BURST`]; called
    /// between records.
    pub fn checkpoint(&self) -> Result<()> {
        if self.in_tx.get() && self.burst_started.get().elapsed() >= IMPORT_BURST {
            self.end_burst()?;
        }
        Ok(())
    }

    /// The id the next inserted message will get (valid until the next checkpoint).
    pub fn next_node_id(&self) -> Result<NodeId> {
        self.tx()?;
        Ok(self.next_id.get())
    }

    /// A new (hidden) conversation whose active path starts at `active_root`.
    pub fn create_conversation(
        &self,
        title: &str,
        system_prompt: &str,
        tools: Option<&serde_json::Value>,
        created_at: i64,
        active_root: Option<NodeId>,
    ) -> Result<ConversationId> {
        let tools = tools.map(serde_json::to_string).transpose()?;
        let tx = self.tx()?;
        let mut stmt = tx.prepare_cached(
            "INSERT INTO conversations (title, system_prompt, tools, created_at, updated_at, \
                                        pending_import, active_root_id) \
             VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)",
        )?;
        stmt.execute(params![
            title,
            system_prompt,
            tools,
            created_at,
            self.token,
            active_root
        ])?;
        Ok(tx.last_insert_rowid())
    }

    /// Adds `n` messages to a conversation's count (what the count trigger would do).
    pub fn add_to_count(&self, conversation: ConversationId, n: i64) -> Result<()> {
        let mut stmt = self.tx()?.prepare_cached(
            "UPDATE conversations SET node_count = node_count + ?1 WHERE id = ?2",
        )?;
        stmt.execute(params![n, conversation])?;
        Ok(())
    }

    /// Makes `child` the active continuation of `node`.
    pub fn set_active_child(&self, node: NodeId, child: NodeId) -> Result<()> {
        let mut stmt = self
            .tx()?
            .prepare_cached("UPDATE nodes SET active_child_id = ?1 WHERE id = ?2")?;
        stmt.execute(params![child, node])?;
        Ok(())
    }

    /// Inserts a message with the next id; `has_children`: its first child will be the
    /// next message inserted, and is its active continuation.
    pub fn insert_node(
        &self,
        conversation: ConversationId,
        parent: Option<NodeId>,
        n: &ImportNode,
        has_children: bool,
    ) -> Result<NodeId> {
        let tool_calls = super::tool_calls_column(&n.node.tool_calls)?;
        let tx = self.tx()?;
        let id = self.next_id.get();
        let mut stmt = tx.prepare_cached(
            "INSERT INTO nodes (id, conversation_id, parent_id, role, content, tool_calls, tool_call_id,
                                origin, edited_from, status, model, created_at, active_child_id)
             VALUES (?12, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?13)",
        )?;
        stmt.execute(params![
            conversation,
            parent,
            n.node.role.as_str(),
            n.node.content,
            tool_calls,
            n.node.tool_call_id,
            n.node.origin.as_str(),
            n.edited_from,
            n.node.status.as_str(),
            n.model,
            n.created_at,
            id,
            has_children.then_some(id + 1)
        ])?;
        self.next_id.set(id + 1);
        Ok(id)
    }

    pub fn rate(
        &self,
        node: NodeId,
        rater: &str,
        stars: Option<u8>,
        critique: Option<&str>,
    ) -> Result<()> {
        if let Some(s) = stars {
            if !(1..=5).contains(&s) {
                return Err(StoreError::Invalid(format!(
                    "rating must be 1-5 stars, got {s}"
                )));
            }
        }
        if stars.is_none() && critique.is_none() {
            return Ok(());
        }
        let mut stmt = self.tx()?.prepare_cached(
            "INSERT INTO ratings (node_id, rater, stars, critique, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (node_id, rater) DO UPDATE SET
                stars = coalesce(excluded.stars, stars),
                critique = coalesce(excluded.critique, critique),
                updated_at = excluded.updated_at",
        )?;
        stmt.execute(params![node, rater, stars, critique, now_ms()])?;
        Ok(())
    }

    pub fn tag(&self, node: NodeId, rater: &str, tag: &str) -> Result<()> {
        let mut stmt = self.tx()?.prepare_cached(
            "INSERT OR IGNORE INTO tags (node_id, rater, tag, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?;
        stmt.execute(params![node, rater, tag, now_ms()])?;
        Ok(())
    }

    /// A human preference: `chosen` is a better answer than `rejected` (siblings).
    pub fn prefer(
        &self,
        chosen: NodeId,
        rejected: NodeId,
        rater: &str,
        source: &str,
    ) -> Result<()> {
        let mut stmt = self.tx()?.prepare_cached(
            "INSERT OR IGNORE INTO preferences (chosen_id, rejected_id, rater, source, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        stmt.execute(params![chosen, rejected, rater, source, now_ms()])?;
        Ok(())
    }

    /// Records which node an imported edit replaced (resolved after both exist).
    pub fn set_edited_from(&self, node: NodeId, from: NodeId) -> Result<()> {
        self.tx()?.execute(
            "UPDATE nodes SET edited_from = ?1 WHERE id = ?2",
            params![from, node],
        )?;
        Ok(())
    }

    /// Commits the last burst and makes every conversation of this import visible at once.
    pub fn publish(mut self) -> Result<()> {
        if self.in_tx.get() {
            self.end_burst()?;
        }
        self.restore()?;
        let tx = self.store.tx()?;
        tx.execute(
            "UPDATE conversations SET pending_import = NULL WHERE pending_import = ?1",
            [self.token],
        )?;
        tx.commit()?;
        self.published = true;
        Ok(())
    }
}

impl Drop for Importer<'_> {
    /// Not published: the open burst is rolled back and the committed ones removed.
    fn drop(&mut self) {
        if self.published {
            return;
        }
        if self.in_tx.get() {
            let _ = self.conn().execute_batch("ROLLBACK");
        }
        let _ = self.restore();
        let _ = self.store.remove_pending_import(self.token);
    }
}
