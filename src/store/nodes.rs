//! Messages: append, edit as a sibling, stream an answer into one, paths and
//! siblings, the active path, delete a branch; few-shot examples.

use super::*;
use rusqlite::{params, Connection, OptionalExtension};

impl Store {
    pub fn node(&self, id: NodeId) -> Result<Node> {
        self.conn
            .query_row(
                &format!("SELECT {NODE_COLS} FROM nodes WHERE id = ?1"),
                [id],
                node_from_row,
            )
            .optional()?
            .ok_or(StoreError::NoNode(id))
    }

    /// Adds `node` under `parent` (or as a root when `None`) and makes it the active
    /// continuation of its parent.
    pub fn append_child(
        &self,
        conversation: ConversationId,
        parent: Option<NodeId>,
        node: &NewNode,
    ) -> Result<Node> {
        let tx = self.tx()?;
        let id = insert_node(&tx, conversation, parent, node, None)?;
        set_active_in(&tx, id)?;
        tx.commit()?;
        self.node(id)
    }

    /// Adds a whole path of messages (root first) under `parent` in one transaction,
    /// returning the ids; used by import.
    pub fn append_path(
        &self,
        conversation: ConversationId,
        parent: Option<NodeId>,
        nodes: &[NewNode],
    ) -> Result<Vec<NodeId>> {
        let tx = self.tx()?;
        let mut ids = Vec::with_capacity(nodes.len());
        let mut parent = parent;
        for n in nodes {
            let id = insert_node(&tx, conversation, parent, n, None)?;
            ids.push(id);
            parent = Some(id);
        }
        if let Some(&last) = ids.last() {
            set_active_in(&tx, last)?;
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Edits `original` by adding a sibling with the new content (origin `edited`,
    /// `edited_from` = original). The original is kept untouched; the edit becomes active.
    pub fn edit_as_sibling(
        &self,
        original: NodeId,
        content: &str,
        tool_calls: Option<Vec<ToolCall>>,
    ) -> Result<Node> {
        let orig = self.node(original)?;
        let new = NewNode {
            role: orig.role,
            content: content.to_string(),
            tool_calls: tool_calls.unwrap_or(orig.tool_calls),
            tool_call_id: orig.tool_call_id,
            origin: Origin::Edited,
            status: Status::Complete,
            few_shot: Vec::new(),
        };
        let tx = self.tx()?;
        let id = insert_node(
            &tx,
            orig.conversation_id,
            orig.parent_id,
            &new,
            Some(original),
        )?;
        set_active_in(&tx, id)?;
        tx.commit()?;
        self.node(id)
    }

    /// Records streamed text and, when given, the final status and generation facts.
    pub fn update_generation(
        &self,
        id: NodeId,
        content: &str,
        status: Status,
        facts: Option<&GenerationFacts>,
        error: Option<&str>,
        tool_calls: Option<&[ToolCall]>,
    ) -> Result<()> {
        let tx = self.tx()?;
        let n = tx.execute(
            "UPDATE nodes SET content = ?1, status = ?2, error = COALESCE(?3, error) WHERE id = ?4",
            params![content, status.as_str(), error, id],
        )?;
        if n == 0 {
            return Err(StoreError::NoNode(id));
        }
        if let Some(calls) = tool_calls {
            let json = (!calls.is_empty())
                .then(|| serde_json::to_string(calls))
                .transpose()?;
            tx.execute(
                "UPDATE nodes SET tool_calls = ?1 WHERE id = ?2",
                params![json, id],
            )?;
        }
        if let Some(f) = facts {
            let sampling = f.sampling.as_ref().map(serde_json::to_string).transpose()?;
            tx.execute(
                "UPDATE nodes SET model = ?1, adapter = ?2, adapter_scale = ?3, sampling = ?4,
                    prompt_tokens = ?5, reused_tokens = ?6, generated_tokens = ?7, ttft_ms = ?8,
                    tokens_per_s = ?9, stop_reason = ?10 WHERE id = ?11",
                params![
                    f.model,
                    f.adapter,
                    f.adapter_scale.map(f64::from),
                    sampling,
                    f.prompt_tokens,
                    f.reused_tokens,
                    f.generated_tokens,
                    f.ttft_ms,
                    f.tokens_per_s,
                    f.stop_reason,
                    id
                ],
            )?;
        }
        touch_conversation_of(&tx, id)?;
        tx.commit()?;
        Ok(())
    }

    /// Few-shot from your own best: the `k` user messages most similar to `query` (FTS5
    /// BM25 over any of its words) whose answer someone rated `min_stars` or more, with
    /// that answer (the best rated when there are several). Conversation `exclude` is
    /// left out (its own turns are already in the prompt).
    pub fn best_examples(
        &self,
        query: &str,
        k: usize,
        min_stars: u8,
        exclude: Option<ConversationId>,
    ) -> Result<Vec<Example>> {
        let words: Vec<String> = query
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .filter(|w| w.chars().count() >= 2)
            .take(32)
            .map(|w| format!("\"{w}\""))
            .collect();
        if words.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare_cached(concat!(
            "SELECT u.id, u.content, a.id, a.content, a.tool_calls,
                    (SELECT MAX(stars) FROM ratings r WHERE r.node_id = a.id AND ",
            crate::person!("r.rater"),
            ") AS best
                 FROM nodes_fts
                 JOIN nodes u ON u.id = nodes_fts.rowid
                 JOIN nodes a ON a.parent_id = u.id
                 WHERE nodes_fts MATCH ?1 AND u.role = 'user' AND a.role = 'assistant'
                   AND a.status = 'complete' AND u.conversation_id IS NOT ?2 AND best >= ?3
                   AND u.conversation_id NOT IN ",
            hidden_conversations!(),
            " ORDER BY bm25(nodes_fts), best DESC, a.id LIMIT ?4"
        ))?;
        let rows = stmt.query_map(
            params![words.join(" OR "), exclude, min_stars, (k * 4) as i64],
            |r| {
                let calls: Option<String> = r.get(4)?;
                Ok(Example {
                    user_id: r.get(0)?,
                    user: r.get(1)?,
                    answer_id: r.get(2)?,
                    answer: r.get(3)?,
                    tool_calls: calls
                        .and_then(|c| serde_json::from_str(&c).ok())
                        .unwrap_or_default(),
                })
            },
        )?;
        let mut out: Vec<Example> = Vec::new();
        for e in rows {
            let e = e?;
            if out.len() < k
                && !out
                    .iter()
                    .any(|o| o.user_id == e.user_id || o.user == e.user)
            {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// The children of `parent` (or the roots of the conversation), oldest first.
    pub fn children(
        &self,
        conversation: ConversationId,
        parent: Option<NodeId>,
    ) -> Result<Vec<Node>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {NODE_COLS} FROM nodes WHERE conversation_id = ?1 AND parent_id IS ?2 ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![conversation, parent], node_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The node and its siblings (same parent), oldest first.
    pub fn siblings(&self, id: NodeId) -> Result<Vec<Node>> {
        let n = self.node(id)?;
        self.children(n.conversation_id, n.parent_id)
    }

    /// The path from the root to `id`, root first.
    pub fn path_to_root(&self, id: NodeId) -> Result<Vec<Node>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "WITH RECURSIVE up(id, depth) AS (
                 SELECT ?1, 0
                 UNION ALL SELECT n.parent_id, up.depth + 1 FROM nodes n JOIN up ON n.id = up.id
                 WHERE n.parent_id IS NOT NULL)
             SELECT {} FROM nodes JOIN up ON nodes.id = up.id ORDER BY up.depth DESC",
            NODE_COLS
                .split(", ")
                .map(|c| format!("nodes.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))?;
        let rows = stmt.query_map([id], node_from_row)?;
        let path: Vec<Node> = rows.collect::<rusqlite::Result<_>>()?;
        if path.is_empty() {
            return Err(StoreError::NoNode(id));
        }
        Ok(path)
    }

    /// The path the user left the conversation on: from the active root, following
    /// each node's active child.
    pub fn active_path(&self, conversation: ConversationId) -> Result<Vec<Node>> {
        let conv = self.conversation(conversation)?;
        let mut path = Vec::new();
        let mut next = conv.active_root_id;
        while let Some(id) = next {
            let node = self.node(id)?;
            next = node.active_child_id;
            path.push(node);
        }
        Ok(path)
    }

    /// The active path with what the chat view shows of each message, in one query:
    /// `rater`'s stars and whether they wrote a critique, every rater's tags, and the
    /// message's place among its siblings (1-based, of how many).
    pub fn path_view(&self, conversation: ConversationId, rater: &str) -> Result<Vec<PathEntry>> {
        let cols = NODE_COLS
            .split(", ")
            .map(|c| format!("nodes.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = self.conn.prepare_cached(&format!(
            "WITH RECURSIVE p(id, depth) AS (
                 SELECT active_root_id, 0 FROM conversations
                 WHERE id = ?1 AND active_root_id IS NOT NULL
                 UNION ALL SELECT n.active_child_id, p.depth + 1 FROM nodes n JOIN p ON n.id = p.id
                 WHERE n.active_child_id IS NOT NULL)
             SELECT {cols},
                 r.stars, r.critique IS NOT NULL,
                 (SELECT group_concat(tag, char(31)) FROM
                     (SELECT DISTINCT tag FROM tags t WHERE t.node_id = nodes.id ORDER BY tag)),
                 (SELECT COUNT(*) FROM nodes s WHERE s.conversation_id = nodes.conversation_id
                     AND s.parent_id IS nodes.parent_id AND s.id <= nodes.id),
                 (SELECT COUNT(*) FROM nodes s WHERE s.conversation_id = nodes.conversation_id
                     AND s.parent_id IS nodes.parent_id),
                 (SELECT j.stars || char(31) || j.rater || char(31) || coalesce(j.critique, '')
                     FROM ratings j WHERE j.node_id = nodes.id AND j.rater LIKE 'judge:%'
                      AND j.stars IS NOT NULL ORDER BY j.updated_at DESC LIMIT 1)
             FROM p JOIN nodes ON nodes.id = p.id
             LEFT JOIN ratings r ON r.node_id = nodes.id AND r.rater = ?2
             ORDER BY p.depth"
        ))?;
        let n = NODE_COLS.split(", ").count();
        let rows = stmt.query_map(params![conversation, rater], |r| {
            let tags: Option<String> = r.get(n + 2)?;
            Ok(PathEntry {
                node: node_from_row(r)?,
                stars: r.get::<_, Option<u8>>(n)?,
                has_critique: r.get::<_, Option<bool>>(n + 1)?.unwrap_or(false),
                tags: tags
                    .map(|t| t.split('\u{1f}').map(str::to_string).collect())
                    .unwrap_or_default(),
                sibling: (
                    r.get::<_, i64>(n + 3)? as usize,
                    r.get::<_, i64>(n + 4)? as usize,
                ),
                judge: r.get::<_, Option<String>>(n + 5)?.and_then(|j| {
                    let mut parts = j.splitn(3, '\u{1f}');
                    Some(Judged {
                        stars: parts.next()?.parse().ok()?,
                        rater: parts.next()?.to_string(),
                        reason: parts.next().unwrap_or("").to_string(),
                    })
                }),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The studio's own state, by key (`last_conversation`).
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: Option<&str>) -> Result<()> {
        match value {
            Some(v) => self.conn.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, v],
            )?,
            None => self
                .conn
                .execute("DELETE FROM meta WHERE key = ?1", [key])?,
        };
        Ok(())
    }

    /// All nodes of a conversation, in id order (the tree view and exporters).
    pub fn conversation_nodes(&self, conversation: ConversationId) -> Result<Vec<Node>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {NODE_COLS} FROM nodes WHERE conversation_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([conversation], node_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Makes the path through `id` the active one (and the active continuation below
    /// `id` stays as it was).
    pub fn set_active(&self, id: NodeId) -> Result<()> {
        let tx = self.tx()?;
        set_active_in(&tx, id)?;
        tx.commit()?;
        Ok(())
    }

    /// Deletes `id` and its whole subtree in one transaction. If it was on the active
    /// path, the parent's active child moves to the nearest remaining sibling.
    pub fn delete_branch(&self, id: NodeId) -> Result<()> {
        let node = self.node(id)?;
        let tx = self.tx()?;
        // Collect the subtree, detach it, then delete it: deleting through ON DELETE CASCADE
        // would recurse once per level and a 5,000-message chain exceeds SQLite's trigger depth.
        let subtree = subtree_of(&tx, id)?;
        {
            let mut detach = tx.prepare("UPDATE nodes SET parent_id = NULL WHERE id = ?1")?;
            let mut delete = tx.prepare("DELETE FROM nodes WHERE id = ?1")?;
            for n in &subtree {
                detach.execute([n])?;
            }
            for n in subtree.iter().rev() {
                delete.execute([n])?;
            }
        }
        active_to_nearest_sibling(&tx, &node)?;
        tx.commit()?;
        Ok(())
    }
}

/// `id` and every message below it, parents first.
pub(super) fn subtree_of(tx: &Connection, id: NodeId) -> Result<Vec<NodeId>> {
    let mut stmt = tx.prepare(
        "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL
           SELECT n.id FROM nodes n JOIN sub ON n.parent_id = sub.id)
         SELECT id FROM sub",
    )?;
    let ids = stmt.query_map([id], |r| r.get(0))?;
    Ok(ids.collect::<rusqlite::Result<_>>()?)
}

/// After `node` left its place (deleted, or moved to the trash): where the active path
/// went through it, it goes through the nearest remaining sibling; the conversation is
/// touched.
pub(super) fn active_to_nearest_sibling(tx: &Connection, node: &Node) -> Result<()> {
    let id = node.id;
    let replacement: Option<NodeId> = tx
        .query_row(
            "SELECT id FROM nodes WHERE conversation_id = ?1 AND parent_id IS ?2
             ORDER BY abs(id - ?3) LIMIT 1",
            params![node.conversation_id, node.parent_id, id],
            |r| r.get(0),
        )
        .optional()?;
    match node.parent_id {
        Some(p) => tx.execute(
            "UPDATE nodes SET active_child_id = ?1 WHERE id = ?2 AND active_child_id = ?3",
            params![replacement, p, id],
        )?,
        None => tx.execute(
            "UPDATE conversations SET active_root_id = ?1 WHERE id = ?2 AND active_root_id = ?3",
            params![replacement, node.conversation_id, id],
        )?,
    };
    tx.execute(
        "UPDATE conversations SET updated_at = ?1 WHERE id = ?2",
        params![now_ms(), node.conversation_id],
    )?;
    Ok(())
}

/// One message of the active path as the chat view shows it (`Store::path_view`).
#[derive(Debug, Clone, PartialEq)]
pub struct PathEntry {
    pub node: Node,
    pub stars: Option<u8>,
    pub has_critique: bool,
    pub tags: Vec<String>,
    /// (1-based position among siblings, number of siblings)
    pub sibling: (usize, usize),
    /// The latest LLM judge's score of it, if any (shown beside, never as, the stars).
    pub judge: Option<Judged>,
}

/// A judge's score of a message, with its reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub stars: u8,
    pub rater: String,
    pub reason: String,
}

impl PathEntry {
    /// A message alone: unrated, untagged, an only child.
    pub fn of(node: Node) -> Self {
        Self {
            node,
            stars: None,
            has_critique: false,
            tags: Vec::new(),
            sibling: (1, 1),
            judge: None,
        }
    }
}

/// A rated example for few-shot prompting: a user message and a well-rated answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Example {
    pub user_id: NodeId,
    pub user: String,
    pub answer_id: NodeId,
    pub answer: String,
    pub tool_calls: Vec<ToolCall>,
}

pub(super) fn ensure_node(tx: &Connection, id: NodeId) -> Result<()> {
    let exists: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM nodes WHERE id = ?1)",
        [id],
        |r| r.get(0),
    )?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::NoNode(id))
    }
}

pub(super) fn touch_conversation_of(tx: &Connection, node: NodeId) -> Result<()> {
    tx.execute(
        "UPDATE conversations SET updated_at = ?1
         WHERE id = (SELECT conversation_id FROM nodes WHERE id = ?2)",
        params![now_ms(), node],
    )?;
    Ok(())
}

/// The `tool_calls` column of a message: NULL without calls, else the JSON array; every
/// call's arguments must be an object.
pub(crate) fn tool_calls_column(calls: &[ToolCall]) -> Result<Option<String>> {
    if calls.is_empty() {
        return Ok(None);
    }
    if let Some(c) = calls.iter().find(|c| !c.arguments.is_object()) {
        return Err(StoreError::Invalid(format!(
            "tool call '{}' arguments must be a JSON object, got {}",
            c.name, c.arguments
        )));
    }
    Ok(Some(serde_json::to_string(calls)?))
}

pub(crate) fn insert_node(
    tx: &Connection,
    conversation: ConversationId,
    parent: Option<NodeId>,
    node: &NewNode,
    edited_from: Option<NodeId>,
) -> Result<NodeId> {
    let tool_calls = tool_calls_column(&node.tool_calls)?;
    let few_shot = (!node.few_shot.is_empty())
        .then(|| serde_json::to_string(&node.few_shot))
        .transpose()?;
    let exists: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM conversations WHERE id = ?1)",
        [conversation],
        |r| r.get(0),
    )?;
    if !exists {
        return Err(StoreError::NoConversation(conversation));
    }
    let now = now_ms();
    tx.execute(
        "INSERT INTO nodes (conversation_id, parent_id, role, content, tool_calls, tool_call_id,
                            origin, edited_from, status, created_at, writer_pid, few_shot)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            conversation,
            parent,
            node.role.as_str(),
            node.content,
            tool_calls,
            node.tool_call_id,
            node.origin.as_str(),
            edited_from,
            node.status.as_str(),
            now,
            (node.status == Status::Streaming).then(std::process::id),
            few_shot,
        ],
    )
    .map_err(|e| match e {
        rusqlite::Error::SqliteFailure(_, Some(ref msg))
            if msg.contains("another conversation") =>
        {
            StoreError::Invalid(format!(
                "parent message {} is not in conversation {conversation}",
                parent.unwrap_or_default()
            ))
        }
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Invalid(format!(
                "parent message {} does not exist",
                parent.unwrap_or_default()
            ))
        }
        e => e.into(),
    })?;
    let id = tx.last_insert_rowid();
    tx.execute(
        "UPDATE conversations SET updated_at = ?1 WHERE id = ?2",
        params![now, conversation],
    )?;
    Ok(id)
}

/// Points every ancestor of `id` (and the conversation's root pointer) along the path to `id`.
pub(super) fn set_active_in(tx: &Connection, id: NodeId) -> Result<()> {
    let mut current = id;
    loop {
        let (parent, conv): (Option<NodeId>, ConversationId) = tx
            .query_row(
                "SELECT parent_id, conversation_id FROM nodes WHERE id = ?1",
                [current],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or(StoreError::NoNode(current))?;
        match parent {
            Some(p) => {
                tx.execute(
                    "UPDATE nodes SET active_child_id = ?1 WHERE id = ?2",
                    params![current, p],
                )?;
                current = p;
            }
            None => {
                tx.execute(
                    "UPDATE conversations SET active_root_id = ?1 WHERE id = ?2",
                    params![current, conv],
                )?;
                return Ok(());
            }
        }
    }
}
