//! Bulk reads for export and stats, and one-transaction writes for import.

use super::CONV_COLS;
use super::{conversation_from_row, set_active_in, Result, Store, StoreError};
use crate::domain::*;
use rusqlite::{params, Transaction};
use std::collections::HashMap;

/// Every rating and tag in the database, by node, read in two queries.
#[derive(Debug, Default, Clone)]
pub struct Judgements {
    pub ratings: HashMap<NodeId, Vec<Rating>>,
    /// (rater, tag) pairs per node.
    pub tags: HashMap<NodeId, Vec<(String, String)>>,
}

impl Judgements {
    pub fn has_tag(&self, node: NodeId, tag: &str, rater: Option<&str>) -> bool {
        self.tags.get(&node).is_some_and(|v| {
            v.iter()
                .any(|(r, t)| t == tag && rater.is_none_or(|x| r == x))
        })
    }

    pub fn tags_of(&self, node: NodeId) -> &[(String, String)] {
        self.tags.get(&node).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn ratings_of(&self, node: NodeId) -> &[Rating] {
        self.ratings.get(&node).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// A message to insert during an import, with what the file said about it.
#[derive(Debug, Clone)]
pub struct ImportNode {
    pub node: NewNode,
    pub model: Option<String>,
    pub edited_from: Option<NodeId>,
    pub created_at: i64,
}

/// One import: every write inside one transaction, committed by [`ImportTx::commit`]
/// (dropping it rolls everything back).
pub struct ImportTx<'a> {
    tx: Transaction<'a>,
}

impl Store {
    /// Reads every rating and tag.
    pub fn judgements(&self) -> Result<Judgements> {
        let mut j = Judgements::default();
        let mut stmt = self
            .conn
            .prepare("SELECT node_id, rater, stars, critique FROM ratings")?;
        let rows = stmt.query_map([], |r| {
            Ok(Rating {
                node_id: r.get(0)?,
                rater: r.get(1)?,
                stars: r.get(2)?,
                critique: r.get(3)?,
            })
        })?;
        for r in rows {
            let r = r?;
            j.ratings.entry(r.node_id).or_default().push(r);
        }
        let mut stmt = self.conn.prepare("SELECT node_id, rater, tag FROM tags")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, NodeId>(0)?, r.get::<_, String>(1)?, r.get(2)?))
        })?;
        for r in rows {
            let (node, rater, tag) = r?;
            j.tags.entry(node).or_default().push((rater, tag));
        }
        Ok(j)
    }

    /// Calls `f` with each conversation and all its nodes (ordered by id, so a parent
    /// always comes before its children), streaming: one conversation in memory at a
    /// time. `only` restricts to these conversations when not empty. Nodes carry what
    /// export and stats need (no sampling parameters or timing facts).
    ///
    /// One thread on purpose: a reader thread handing nodes to another thread measured
    /// twice as slow here (allocations freed across threads).
    pub fn for_each_tree(
        &self,
        only: &[ConversationId],
        mut f: impl FnMut(Conversation, Vec<Node>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        read_trees_where(&self.conn, only, None, &mut f)
    }

    /// [`Store::for_each_tree`] over the conversations with ids `lo..=hi` (a block of a
    /// parallel export).
    pub fn for_each_tree_in(
        &self,
        lo: ConversationId,
        hi: ConversationId,
        mut f: impl FnMut(Conversation, Vec<Node>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        read_trees_where(&self.conn, &[], Some((lo, hi)), &mut f)
    }

    /// Each rated node's stars: the given rater's, or the lowest of all raters'.
    pub fn stars(&self, rater: Option<&str>) -> Result<HashMap<NodeId, u8>> {
        let mut stmt = self.conn.prepare(
            "SELECT node_id, min(stars) FROM ratings
              WHERE stars IS NOT NULL AND (?1 IS NULL OR rater = ?1) GROUP BY node_id",
        )?;
        let rows = stmt.query_map([rater], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// `rater`'s stars on the messages of one conversation (the tree view).
    pub fn conversation_stars(
        &self,
        conversation: ConversationId,
        rater: &str,
    ) -> Result<HashMap<NodeId, u8>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.node_id, r.stars FROM ratings r JOIN nodes n ON n.id = r.node_id
              WHERE n.conversation_id = ?1 AND r.rater = ?2 AND r.stars IS NOT NULL",
        )?;
        let rows = stmt.query_map(rusqlite::params![conversation, rater], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Starts an import: everything until `commit` is one transaction.
    pub fn import_tx(&self) -> Result<ImportTx<'_>> {
        Ok(ImportTx { tx: self.tx()? })
    }
}

impl ImportTx<'_> {
    pub fn create_conversation(
        &self,
        title: &str,
        system_prompt: &str,
        tools: Option<&serde_json::Value>,
        created_at: i64,
    ) -> Result<ConversationId> {
        let tools = tools.map(serde_json::to_string).transpose()?;
        self.tx.execute(
            "INSERT INTO conversations (title, system_prompt, tools, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![title, system_prompt, tools, created_at],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    pub fn insert_node(
        &self,
        conversation: ConversationId,
        parent: Option<NodeId>,
        n: &ImportNode,
    ) -> Result<NodeId> {
        let tool_calls = if n.node.tool_calls.is_empty() {
            None
        } else {
            if let Some(c) = n.node.tool_calls.iter().find(|c| !c.arguments.is_object()) {
                return Err(StoreError::Invalid(format!(
                    "tool call '{}' arguments must be a JSON object, got {}",
                    c.name, c.arguments
                )));
            }
            Some(serde_json::to_string(&n.node.tool_calls)?)
        };
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO nodes (conversation_id, parent_id, role, content, tool_calls, tool_call_id,
                                origin, edited_from, status, model, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
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
            n.created_at
        ])?;
        Ok(self.tx.last_insert_rowid())
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
        self.tx.execute(
            "INSERT INTO ratings (node_id, rater, stars, critique, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (node_id, rater) DO UPDATE SET
                stars = coalesce(excluded.stars, stars),
                critique = coalesce(excluded.critique, critique),
                updated_at = excluded.updated_at",
            params![node, rater, stars, critique, now_ms()],
        )?;
        Ok(())
    }

    pub fn tag(&self, node: NodeId, rater: &str, tag: &str) -> Result<()> {
        self.tx.execute(
            "INSERT OR IGNORE INTO tags (node_id, rater, tag, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![node, rater, tag, now_ms()],
        )?;
        Ok(())
    }

    /// Makes the path to `node` the conversation's active path.
    pub fn set_active(&self, node: NodeId) -> Result<()> {
        set_active_in(&self.tx, node)
    }

    pub fn commit(self) -> Result<()> {
        self.tx.commit()?;
        Ok(())
    }
}

impl ImportTx<'_> {
    /// Records which node an imported edit replaced (resolved after both exist).
    pub fn set_edited_from(&self, node: NodeId, from: NodeId) -> Result<()> {
        self.tx.execute(
            "UPDATE nodes SET edited_from = ?1 WHERE id = ?2",
            params![from, node],
        )?;
        Ok(())
    }
}

const LEAN_COLS: &str = "id, conversation_id, parent_id, role, content, tool_calls, tool_call_id, \
                         origin, edited_from, status, model, created_at";

fn enum_ref<T: std::str::FromStr<Err = String>>(
    r: &rusqlite::Row,
    i: usize,
) -> rusqlite::Result<T> {
    let s = r.get_ref(i)?.as_str()?;
    s.parse().map_err(|e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    })
}

fn lean_node(r: &rusqlite::Row) -> rusqlite::Result<Node> {
    let tool_calls = match r.get_ref(5)?.as_str_or_null()? {
        Some(s) => serde_json::from_str(s).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, e.into())
        })?,
        None => Vec::new(),
    };
    Ok(Node {
        id: r.get(0)?,
        parent_id: r.get(2)?,
        tool_calls,
        tool_call_id: r.get(6)?,
        origin: enum_ref(r, 7)?,
        edited_from: r.get(8)?,
        status: enum_ref(r, 9)?,
        model: r.get(10)?,
        created_at: r.get(11)?,
        ..Node::new(r.get(1)?, enum_ref(r, 3)?, r.get::<_, String>(4)?)
    })
}

fn read_trees_where(
    conn: &rusqlite::Connection,
    only: &[ConversationId],
    range: Option<(ConversationId, ConversationId)>,
    f: &mut dyn FnMut(Conversation, Vec<Node>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let (lo, hi) = range.unwrap_or((ConversationId::MIN, ConversationId::MAX));
    let mut convs: HashMap<ConversationId, Conversation> = HashMap::new();
    {
        let mut stmt = conn.prepare(&format!(
            "SELECT {CONV_COLS} FROM conversations WHERE id BETWEEN ?1 AND ?2"
        ))?;
        for c in stmt.query_map([lo, hi], conversation_from_row)? {
            let c = c?;
            if only.is_empty() || only.contains(&c.id) {
                convs.insert(c.id, c);
            }
        }
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT {LEAN_COLS} FROM nodes WHERE conversation_id BETWEEN ?1 AND ?2
         ORDER BY conversation_id, id"
    ))?;
    let mut rows = stmt.query([lo, hi])?;
    let mut current: Option<(ConversationId, Vec<Node>)> = None;
    while let Some(row) = rows.next()? {
        let cid: ConversationId = row.get(1)?;
        if !convs.contains_key(&cid) {
            continue;
        }
        let node = lean_node(row)?;
        match &mut current {
            Some((id, nodes)) if *id == cid => nodes.push(node),
            _ => {
                if let Some((id, nodes)) = current.take() {
                    let conv = convs.remove(&id).expect("listed");
                    f(conv, nodes)?;
                }
                current = Some((cid, vec![node]));
            }
        }
    }
    if let Some((id, nodes)) = current.take() {
        let conv = convs.remove(&id).expect("listed");
        f(conv, nodes)?;
    }
    // Conversations without messages, in id order.
    let mut rest: Vec<Conversation> = convs.into_values().collect();
    rest.sort_by_key(|c| c.id);
    for c in rest {
        f(c, Vec::new())?;
    }
    Ok(())
}
