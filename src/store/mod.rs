//! The one SQLite file: conversation trees, ratings, tags, jobs and adapters.
//!
//! Every write is a transaction (`BEGIN IMMEDIATE`, so two processes writing the same
//! file wait for each other through the busy timeout instead of failing). The store
//! knows domain types only; it never imports the UI or the engine.

use crate::domain::*;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod bulk;
mod evals;
mod jobs;
mod raw;
pub use bulk::{
    ImportNode, Importer, Judgements, Stars, TreeBlock, TreeFields, IMPORT_BURST, TREE_BLOCK,
};
pub use evals::{check_eval_name, Decision, EvalAnswer, EvalCase, EvalRun, EvalSet, NewCase};
pub use jobs::{AdapterRow, Job, JobMetric, JobStatus, NewJob};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_conversation_trees.sql"),
    include_str!("migrations/0002_jobs_adapters.sql"),
    include_str!("migrations/0003_streaming_index.sql"),
    include_str!("migrations/0004_few_shot_and_meta.sql"),
    include_str!("migrations/0005_job_supervision.sql"),
    include_str!("migrations/0006_node_counts.sql"),
    include_str!("migrations/0007_pending_imports_preferences.sql"),
    include_str!("migrations/0008_eval_sets.sql"),
];

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database {path} has schema version {found}, newer than this Arbor knows ({known}); upgrade Arbor")]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("no conversation with id {0}")]
    NoConversation(ConversationId),
    #[error("no message with id {0}")]
    NoNode(NodeId),
    #[error("no eval set named {0} (see arbor eval list)")]
    NoEvalSet(String),
    #[error("no eval run with id {0} (see arbor eval runs)")]
    NoEvalRun(i64),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

const NODE_COLS: &str =
    "id, conversation_id, parent_id, role, content, tool_calls, tool_call_id, origin, \
     edited_from, active_child_id, status, model, adapter, adapter_scale, sampling, prompt_tokens, \
     reused_tokens, generated_tokens, ttft_ms, tokens_per_s, stop_reason, error, created_at, few_shot";

fn parse_enum<T: std::str::FromStr<Err = String>>(idx: usize, s: String) -> rusqlite::Result<T> {
    s.parse().map_err(|e: String| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into())
    })
}

fn json_col(idx: usize, s: Option<&str>) -> rusqlite::Result<Option<serde_json::Value>> {
    s.map(|s| {
        serde_json::from_str(s).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into())
        })
    })
    .transpose()
}

/// A JSON column of `r`.
fn json_at(r: &Row, idx: usize) -> rusqlite::Result<Option<serde_json::Value>> {
    json_col(idx, r.get_ref(idx)?.as_str_or_null()?)
}

fn node_from_row(r: &Row) -> rusqlite::Result<Node> {
    let tool_calls: Option<String> = r.get(5)?;
    let tool_calls = match tool_calls {
        Some(s) => serde_json::from_str(&s).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, e.into())
        })?,
        None => Vec::new(),
    };
    Ok(Node {
        id: r.get(0)?,
        conversation_id: r.get(1)?,
        parent_id: r.get(2)?,
        role: parse_enum(3, r.get(3)?)?,
        content: r.get(4)?,
        tool_calls,
        tool_call_id: r.get(6)?,
        origin: parse_enum(7, r.get(7)?)?,
        edited_from: r.get(8)?,
        active_child_id: r.get(9)?,
        status: parse_enum(10, r.get(10)?)?,
        model: r.get(11)?,
        adapter: r.get(12)?,
        adapter_scale: r.get(13)?,
        sampling: json_at(r, 14)?,
        prompt_tokens: r.get(15)?,
        reused_tokens: r.get(16)?,
        generated_tokens: r.get(17)?,
        ttft_ms: r.get(18)?,
        tokens_per_s: r.get(19)?,
        stop_reason: r.get(20)?,
        error: r.get(21)?,
        created_at: r.get(22)?,
        few_shot: json_at(r, 23)?
            .and_then(|v: serde_json::Value| serde_json::from_value(v).ok())
            .unwrap_or_default(),
    })
}

fn conversation_from_row(r: &Row) -> rusqlite::Result<Conversation> {
    conversation_from_row_with(r, &mut None)
}

/// [`conversation_from_row`], reusing the tools of the row before when they are the same
/// text (`last` holds that text and its value).
fn conversation_from_row_with(
    r: &Row,
    last: &mut Option<(String, serde_json::Value)>,
) -> rusqlite::Result<Conversation> {
    let tools = match (r.get_ref(3)?.as_str_or_null()?, last.as_ref()) {
        (Some(text), Some((t, v))) if t == text => Some(v.clone()),
        (text, _) => {
            let v = json_col(3, text)?;
            if let (Some(text), Some(v)) = (text, &v) {
                *last = Some((text.to_string(), v.clone()));
            }
            v
        }
    };
    Ok(Conversation {
        id: r.get(0)?,
        title: r.get(1)?,
        system_prompt: r.get(2)?,
        tools,
        settings: json_at(r, 4)?,
        active_root_id: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
    })
}

/// The conversations an unfinished import holds (hidden from every reader), as a
/// subquery: `… NOT IN hidden_conversations!()`.
macro_rules! hidden_conversations {
    () => {
        "(SELECT id FROM conversations WHERE pending_import IS NOT NULL)"
    };
}

const CONV_COLS: &str =
    "id, title, system_prompt, tools, settings, active_root_id, created_at, updated_at";

/// See [`Store::visible_only`]; dropping it removes the views.
pub struct VisibleOnly<'a> {
    store: &'a Store,
}

impl Drop for VisibleOnly<'_> {
    fn drop(&mut self) {
        let _ = self.store.conn.execute_batch(
            "DROP VIEW IF EXISTS temp.conversations; DROP VIEW IF EXISTS temp.nodes;
             DROP VIEW IF EXISTS temp.ratings; DROP VIEW IF EXISTS temp.tags;",
        );
    }
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

/// Row counts, for `arbor doctor` and `arbor stats`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Counts {
    pub conversations: i64,
    pub nodes: i64,
    pub ratings: i64,
    pub tags: i64,
    pub jobs: i64,
    pub adapters: i64,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, migrates it to the current
    /// schema, and marks answers left `streaming` by a crashed process as interrupted.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                    path: path.clone(),
                    source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
                })?;
            }
        }
        let store = Self::connect(path)?;
        store.migrate()?;
        store.recover_streaming()?;
        store.recover_imports()?;
        Ok(store)
    }

    /// A configured connection to `path`, nothing else.
    fn connect(path: PathBuf) -> Result<Self> {
        let conn = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        let store = Self { conn, path };
        store.configure().map_err(|source| StoreError::Open {
            path: store.path.clone(),
            source,
        })?;
        Ok(store)
    }

    /// A second connection to a database another connection of this process already
    /// opened (and migrated): no migration and no crash recovery, which would mark the
    /// answer the first connection is streaming as interrupted. For background readers.
    pub fn open_again(path: impl AsRef<Path>) -> Result<Self> {
        Self::connect(path.as_ref().to_path_buf())
    }

    /// An in-memory database (unit tests of code above the store).
    pub fn open_in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory()?;
        let store = Self {
            conn,
            path: PathBuf::from(":memory:"),
        };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    fn configure(&self) -> rusqlite::Result<()> {
        self.conn.busy_timeout(Duration::from_secs(30))?;
        self.conn
            .pragma_update(None, "journal_mode", "WAL")
            .or_else(|_| Ok::<_, rusqlite::Error>(()))?;
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    fn migrate(&self) -> Result<()> {
        self.migrate_to(SCHEMA_VERSION)
    }

    /// Applies migrations up to `target` (tests build old-version databases with it).
    /// A database already at `target` is only read: opening never takes the write lock
    /// unless there is something to migrate.
    pub fn migrate_to(&self, target: i64) -> Result<()> {
        let found = self.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        if found >= target {
            return Ok(());
        }
        let tx = self.tx()?;
        // Read again under the lock: another process may have migrated meanwhile.
        let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().take(target as usize) {
            let version = i as i64 + 1;
            if version > found {
                tx.execute_batch(sql)?;
                tx.pragma_update(None, "user_version", version)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Answers left `streaming` by a process that is gone (crashed, killed) become
    /// `interrupted`, keeping their text. An answer another live Arbor process is still
    /// writing is left alone.
    fn recover_streaming(&self) -> Result<()> {
        let stale: Vec<NodeId> = {
            let mut stmt = self
                .conn
                .prepare("SELECT id, writer_pid FROM nodes WHERE status = 'streaming'")?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, NodeId>(0)?, r.get::<_, Option<u32>>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, pid) = row?;
                if !pid.is_some_and(writer_alive) {
                    out.push(id);
                }
            }
            out
        };
        if stale.is_empty() {
            return Ok(());
        }
        let tx = self.tx()?;
        for id in stale {
            tx.execute(
                "UPDATE nodes SET status = 'interrupted', stop_reason = COALESCE(stop_reason, 'crash') \
                 WHERE id = ?1 AND status = 'streaming'",
                [id],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes what imports that are gone (killed, crashed) left hidden. An import another
    /// live process is still writing is left alone. Reads only, unless there is litter.
    fn recover_imports(&self) -> Result<()> {
        let dead: Vec<i64> = {
            let mut stmt = self.conn.prepare(
                "SELECT DISTINCT pending_import FROM conversations WHERE pending_import IS NOT NULL",
            )?;
            let rows = stmt.query_map([], |r| r.get::<_, i64>(0))?;
            let mut out = Vec::new();
            for pid in rows {
                let pid = pid?;
                // Any live process with that id keeps it (an import may run under another
                // name, e.g. a test binary); this process's own import is alive too.
                if pid != std::process::id() as i64 && !process_alive(pid as u32, None) {
                    out.push(pid);
                }
            }
            out
        };
        for pid in dead {
            self.remove_pending_import(pid)?;
        }
        Ok(())
    }

    /// Deletes the hidden conversations of import `token`, a few thousand per transaction.
    pub(crate) fn remove_pending_import(&self, token: i64) -> Result<()> {
        loop {
            let tx = self.tx()?;
            let ids: Vec<ConversationId> = {
                let mut stmt = tx
                    .prepare("SELECT id FROM conversations WHERE pending_import = ?1 LIMIT 2000")?;
                let rows = stmt.query_map([token], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            if ids.is_empty() {
                return Ok(());
            }
            for id in ids {
                delete_conversation_in(&tx, id)?;
            }
            tx.commit()?;
        }
    }

    fn tx(&self) -> Result<Transaction<'_>> {
        Ok(Transaction::new_unchecked(
            &self.conn,
            TransactionBehavior::Immediate,
        )?)
    }

    // ---------------------------------------------------------------- conversations

    pub fn create_conversation(
        &self,
        title: &str,
        system_prompt: &str,
        tools: Option<&serde_json::Value>,
    ) -> Result<Conversation> {
        let now = now_ms();
        let tools = tools.map(serde_json::to_string).transpose()?;
        let tx = self.tx()?;
        tx.execute(
            "INSERT INTO conversations (title, system_prompt, tools, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![title, system_prompt, tools, now],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        self.conversation(id)
    }

    pub fn conversation(&self, id: ConversationId) -> Result<Conversation> {
        self.conn
            .query_row(
                &format!("SELECT {CONV_COLS} FROM conversations WHERE id = ?1"),
                [id],
                conversation_from_row,
            )
            .optional()?
            .ok_or(StoreError::NoConversation(id))
    }

    pub fn set_title(&self, id: ConversationId, title: &str) -> Result<()> {
        self.update_conversation(id, "title", &title)
    }

    pub fn set_system_prompt(&self, id: ConversationId, prompt: &str) -> Result<()> {
        self.update_conversation(id, "system_prompt", &prompt)
    }

    pub fn set_tools(&self, id: ConversationId, tools: Option<&serde_json::Value>) -> Result<()> {
        let tools = tools.map(serde_json::to_string).transpose()?;
        self.update_conversation(id, "tools", &tools)
    }

    pub fn set_settings(
        &self,
        id: ConversationId,
        settings: Option<&serde_json::Value>,
    ) -> Result<()> {
        let settings = settings.map(serde_json::to_string).transpose()?;
        self.update_conversation(id, "settings", &settings)
    }

    /// System prompt, tools and settings in one transaction (the settings popup).
    pub fn set_conversation_setup(
        &self,
        id: ConversationId,
        system_prompt: &str,
        tools: Option<&serde_json::Value>,
        settings: Option<&serde_json::Value>,
    ) -> Result<()> {
        let tools = tools.map(serde_json::to_string).transpose()?;
        let settings = settings.map(serde_json::to_string).transpose()?;
        let tx = self.tx()?;
        let n = tx.execute(
            "UPDATE conversations SET system_prompt = ?1, tools = ?2, settings = ?3, updated_at = ?4
             WHERE id = ?5",
            params![system_prompt, tools, settings, now_ms(), id],
        )?;
        if n == 0 {
            return Err(StoreError::NoConversation(id));
        }
        tx.commit()?;
        Ok(())
    }

    fn update_conversation(
        &self,
        id: ConversationId,
        column: &'static str,
        value: &dyn rusqlite::ToSql,
    ) -> Result<()> {
        let n = self.conn.execute(
            &format!("UPDATE conversations SET {column} = ?1, updated_at = ?2 WHERE id = ?3"),
            params![value, now_ms(), id],
        )?;
        if n == 0 {
            return Err(StoreError::NoConversation(id));
        }
        Ok(())
    }

    pub fn delete_conversation(&self, id: ConversationId) -> Result<()> {
        let tx = self.tx()?;
        delete_conversation_in(&tx, id)?;
        tx.commit()?;
        Ok(())
    }

    /// Conversations, most recently active first, optionally only those with a tag.
    pub fn list_conversations(&self, tag: Option<&str>) -> Result<Vec<ConversationSummary>> {
        let mut stmt = self.conn.prepare(
            "SELECT c.id, c.title, c.updated_at, c.node_count,
                    (SELECT COUNT(*) FROM ratings r JOIN nodes n ON n.id = r.node_id
                      WHERE n.conversation_id = c.id AND r.stars IS NOT NULL),
                    (SELECT AVG(r.stars) FROM ratings r JOIN nodes n ON n.id = r.node_id
                      WHERE n.conversation_id = c.id AND r.stars IS NOT NULL),
                    (SELECT group_concat(tag, ',') FROM (SELECT DISTINCT t.tag FROM tags t
                      JOIN nodes n ON n.id = t.node_id WHERE n.conversation_id = c.id ORDER BY t.tag))
             FROM conversations c
             WHERE c.pending_import IS NULL AND (?1 IS NULL OR EXISTS (SELECT 1 FROM tags t JOIN nodes n ON n.id = t.node_id
                                         WHERE n.conversation_id = c.id AND t.tag = ?1))
             ORDER BY c.updated_at DESC, c.id DESC",
        )?;
        let rows = stmt.query_map([tag], |r| {
            let tags: Option<String> = r.get(6)?;
            Ok(ConversationSummary {
                id: r.get(0)?,
                title: r.get(1)?,
                updated_at: r.get(2)?,
                messages: r.get(3)?,
                rated: r.get(4)?,
                avg_stars: r.get(5)?,
                tags: tags
                    .map(|t| t.split(',').map(str::to_string).collect())
                    .unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---------------------------------------------------------------- nodes

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
                    (SELECT MAX(stars) FROM ratings r WHERE r.node_id = a.id) AS best
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
                     AND s.parent_id IS nodes.parent_id)
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
        let subtree: Vec<NodeId> = {
            let mut stmt = tx.prepare(
                "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL
                   SELECT n.id FROM nodes n JOIN sub ON n.parent_id = sub.id)
                 SELECT id FROM sub",
            )?;
            let ids = stmt.query_map([id], |r| r.get(0))?;
            ids.collect::<rusqlite::Result<_>>()?
        };
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
        let replacement: Option<NodeId> = tx
            .query_row(
                "SELECT id FROM nodes WHERE conversation_id = ?1 AND parent_id IS ?2
                 ORDER BY abs(id - ?3) LIMIT 1",
                params![node.conversation_id, node.parent_id, id],
                |r| r.get(0),
            )
            .optional()?;
        match node.parent_id {
            Some(p) => {
                tx.execute(
                    "UPDATE nodes SET active_child_id = ?1 WHERE id = ?2 AND active_child_id = ?3",
                    params![replacement, p, id],
                )?;
            }
            None => {
                tx.execute(
                    "UPDATE conversations SET active_root_id = ?1 WHERE id = ?2 AND active_root_id = ?3",
                    params![replacement, node.conversation_id, id],
                )?;
            }
        }
        tx.execute(
            "UPDATE conversations SET updated_at = ?1 WHERE id = ?2",
            params![now_ms(), node.conversation_id],
        )?;
        tx.commit()?;
        Ok(())
    }

    // ---------------------------------------------------------------- ratings and tags

    /// Sets (or with `None` clears) a rater's stars on a node.
    pub fn rate(&self, node: NodeId, rater: &str, stars: Option<u8>) -> Result<()> {
        if let Some(s) = stars {
            if !(1..=5).contains(&s) {
                return Err(StoreError::Invalid(format!(
                    "rating must be 1-5 stars (0 clears), got {s}"
                )));
            }
        }
        let tx = self.tx()?;
        ensure_node(&tx, node)?;
        tx.execute(
            "INSERT INTO ratings (node_id, rater, stars, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (node_id, rater) DO UPDATE SET stars = excluded.stars, updated_at = excluded.updated_at",
            params![node, rater, stars, now_ms()],
        )?;
        prune_rating(&tx, node, rater)?;
        touch_conversation_of(&tx, node)?;
        tx.commit()?;
        Ok(())
    }

    /// Sets (or with an empty text clears) a rater's critique of a node.
    pub fn critique(&self, node: NodeId, rater: &str, text: &str) -> Result<()> {
        let text = (!text.trim().is_empty()).then_some(text);
        let tx = self.tx()?;
        ensure_node(&tx, node)?;
        tx.execute(
            "INSERT INTO ratings (node_id, rater, critique, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (node_id, rater) DO UPDATE SET critique = excluded.critique, updated_at = excluded.updated_at",
            params![node, rater, text, now_ms()],
        )?;
        prune_rating(&tx, node, rater)?;
        touch_conversation_of(&tx, node)?;
        tx.commit()?;
        Ok(())
    }

    pub fn ratings(&self, node: NodeId) -> Result<Vec<Rating>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT node_id, rater, stars, critique FROM ratings WHERE node_id = ?1 ORDER BY rater",
        )?;
        let rows = stmt.query_map([node], |r| {
            Ok(Rating {
                node_id: r.get(0)?,
                rater: r.get(1)?,
                stars: r.get(2)?,
                critique: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One rater's rating of a node, if any.
    pub fn rating(&self, node: NodeId, rater: &str) -> Result<Option<Rating>> {
        Ok(self.ratings(node)?.into_iter().find(|r| r.rater == rater))
    }

    pub fn add_tag(&self, node: NodeId, rater: &str, tag: &str) -> Result<()> {
        let tag = tag.trim();
        if tag.is_empty() || tag.contains(',') || tag.contains(char::is_whitespace) {
            return Err(StoreError::Invalid(format!(
                "tag '{tag}' must be one word without commas"
            )));
        }
        let tx = self.tx()?;
        ensure_node(&tx, node)?;
        tx.execute(
            "INSERT OR IGNORE INTO tags (node_id, rater, tag, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![node, rater, tag, now_ms()],
        )?;
        touch_conversation_of(&tx, node)?;
        tx.commit()?;
        Ok(())
    }

    pub fn remove_tag(&self, node: NodeId, rater: &str, tag: &str) -> Result<()> {
        self.conn.execute(
            "DELETE FROM tags WHERE node_id = ?1 AND rater = ?2 AND tag = ?3",
            params![node, rater, tag],
        )?;
        Ok(())
    }

    /// Tags on a node from every rater, deduplicated and sorted.
    pub fn tags(&self, node: NodeId) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT tag FROM tags WHERE node_id = ?1 ORDER BY tag")?;
        let rows = stmt.query_map([node], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---------------------------------------------------------------- search and counts

    /// Full-text search over message text (FTS5 syntax; plain words are matched as
    /// prefixes), best matches first.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        let fts = fts_query(query);
        if fts.is_empty() {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare_cached(concat!(
            "SELECT n.conversation_id, n.id, n.role,
                    snippet(nodes_fts, 0, '[', ']', '…', 12)
                 FROM nodes_fts JOIN nodes n ON n.id = nodes_fts.rowid
                 WHERE nodes_fts MATCH ?1 AND n.conversation_id NOT IN ",
            hidden_conversations!(),
            " ORDER BY bm25(nodes_fts) LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![fts, limit as i64], |r| {
            Ok(SearchHit {
                conversation_id: r.get(0)?,
                node_id: r.get(1)?,
                role: parse_enum(2, r.get(2)?)?,
                snippet: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn counts(&self) -> Result<Counts> {
        let count = |table: &str| -> Result<i64> {
            Ok(self
                .conn
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?)
        };
        Ok(Counts {
            conversations: count("conversations")?,
            nodes: count("nodes")?,
            ratings: count("ratings")?,
            tags: count("tags")?,
            jobs: count("jobs")?,
            adapters: count("adapters")?,
        })
    }

    /// Until the guard is dropped, this connection's reads of `conversations` and `nodes`
    /// (and with `judgements`, of `ratings` and `tags`) leave out what an unfinished import
    /// holds: temporary views of those names shadow the tables (they live in this
    /// connection's temp schema; the database file is not written). For read-only work
    /// (export, stats): writes through the views would fail.
    pub fn visible_only(&self, judgements: bool) -> Result<VisibleOnly<'_>> {
        // `hidden_conversations!()` with the table named in `main`: unqualified, it would
        // be the temporary view being made.
        let hidden_convs = "(SELECT id FROM main.conversations WHERE pending_import IS NOT NULL)";
        let mut sql = format!(
            "CREATE TEMP VIEW IF NOT EXISTS conversations AS
               SELECT * FROM main.conversations WHERE pending_import IS NULL;
             CREATE TEMP VIEW IF NOT EXISTS nodes AS
               SELECT * FROM main.nodes WHERE conversation_id NOT IN {hidden_convs};"
        );
        let hidden_nodes =
            format!("SELECT id FROM main.nodes WHERE conversation_id IN {hidden_convs}");
        if judgements {
            sql.push_str(&format!(
                "CREATE TEMP VIEW IF NOT EXISTS ratings AS
                   SELECT * FROM main.ratings WHERE node_id NOT IN ({hidden_nodes});
                 CREATE TEMP VIEW IF NOT EXISTS tags AS
                   SELECT * FROM main.tags WHERE node_id NOT IN ({hidden_nodes});"
            ));
        }
        self.conn.execute_batch(&sql)?;
        Ok(VisibleOnly { store: self })
    }

    /// The raw connection, for read-only queries of modules that own their SQL
    /// (exporters, stats).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }
}

/// Turns user input into an FTS5 query: each word quoted and prefix-matched, so
/// punctuation in what people type never becomes FTS syntax errors.
fn fts_query(input: &str) -> String {
    input
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{w}\"*"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn ensure_node(tx: &Connection, id: NodeId) -> Result<()> {
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

fn prune_rating(tx: &Connection, node: NodeId, rater: &str) -> Result<()> {
    tx.execute(
        "DELETE FROM ratings WHERE node_id = ?1 AND rater = ?2 AND stars IS NULL AND critique IS NULL",
        params![node, rater],
    )?;
    Ok(())
}

fn touch_conversation_of(tx: &Connection, node: NodeId) -> Result<()> {
    tx.execute(
        "UPDATE conversations SET updated_at = ?1
         WHERE id = (SELECT conversation_id FROM nodes WHERE id = ?2)",
        params![now_ms(), node],
    )?;
    Ok(())
}

/// Whether `pid` is another running Arbor process (this one opening the database can
/// not be streaming into it yet). Where `/proc` is missing, `kill -0` decides.
fn writer_alive(pid: u32) -> bool {
    pid != std::process::id() && process_alive(pid, Some("arbor"))
}

/// Whether process `pid` runs (a zombie does not), and when `comm` is given, whether its
/// name starts with it (a pid reused by something else is not ours). Where `/proc` is
/// missing, `kill -0` decides.
pub fn process_alive(pid: u32, comm: Option<&str>) -> bool {
    let proc_dir = Path::new("/proc");
    if proc_dir.is_dir() {
        // `/proc/PID/stat` is "PID (comm) STATE …"; a killed process not yet reaped is
        // a zombie (Z) and writes nothing any more.
        return std::fs::read_to_string(proc_dir.join(pid.to_string()).join("stat"))
            .ok()
            .and_then(|stat| {
                let (head, rest) = stat.rsplit_once(')')?;
                let state = rest.trim_start().chars().next()?;
                let named = head.split_once('(')?.1;
                Some(comm.is_none_or(|c| named.starts_with(c)) && !matches!(state, 'Z' | 'X' | 'x'))
            })
            .unwrap_or(false);
    }
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
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

/// Deletes a conversation and its messages inside the caller's transaction.
fn delete_conversation_in(tx: &Connection, id: ConversationId) -> Result<()> {
    // Detach before deleting so ON DELETE CASCADE never recurses down a long chain.
    tx.execute(
        "UPDATE nodes SET parent_id = NULL WHERE conversation_id = ?1",
        [id],
    )?;
    tx.execute("DELETE FROM nodes WHERE conversation_id = ?1", [id])?;
    let n = tx.execute("DELETE FROM conversations WHERE id = ?1", [id])?;
    if n == 0 {
        return Err(StoreError::NoConversation(id));
    }
    Ok(())
}

/// Points every ancestor of `id` (and the conversation's root pointer) along the path to `id`.
fn set_active_in(tx: &Connection, id: NodeId) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_query_quotes_words() {
        assert_eq!(
            fts_query("SELECT * FROM \"x\""),
            "\"SELECT\"* \"FROM\"* \"x\"*"
        );
        assert_eq!(fts_query("  ()  "), "");
    }
}
