//! The one SQLite file: conversation trees, ratings, tags, jobs and adapters.
//!
//! Every write is a transaction (`BEGIN IMMEDIATE`, so two processes writing the same
//! file wait for each other through the busy timeout instead of failing). The store
//! knows domain types only; it never imports the UI or the engine.

use crate::domain::*;
use rusqlite::{Connection, Row, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod bulk;
mod import;
pub use nodes::{Example, Judged, PathEntry};
pub use ratings::Counts;
mod jobs;
mod raw;
pub use bulk::{Judgements, Stars, TreeBlock, TreeFields, TREE_BLOCK};
pub use evals::{check_eval_name, Decision, EvalAnswer, EvalCase, EvalRun, EvalSet, NewCase};
pub use import::{ImportNode, Importer, IMPORT_BURST};
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
    include_str!("migrations/0009_trash.sql"),
    include_str!("migrations/0010_global_ids.sql"),
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
    #[error("conversation {0} is in the trash (arbor trash restore {0} brings it back)")]
    Trashed(ConversationId),
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
    /// Set when opening migrated the file: the schema it had and where its copy is.
    migrated: Option<(i64, PathBuf)>,
}

/// Raters whose name starts with this are LLM judges (`arbor judge`): their ratings never
/// count as a person's — export, training, few-shot, the list's stars, stats — unless a
/// command names the judge (`--rater judge:NAME`).
pub const JUDGE_PREFIX: &str = "judge:";

/// SQL that is true when the rater column `$col` names a person, not an LLM judge
/// ([`JUDGE_PREFIX`]): the one test every reader that counts people's ratings uses.
#[macro_export]
macro_rules! person {
    ($col:literal) => {
        concat!($col, " NOT LIKE 'judge:%'")
    };
}

/// Whether a rater is an LLM judge.
pub fn is_judge(rater: &str) -> bool {
    rater.starts_with(JUDGE_PREFIX)
}

/// How many copies made before migrations are kept beside a database.
pub const MIGRATION_BACKUPS: usize = 3;

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

/// The conversations an unfinished import holds and those in the trash (hidden from
/// every reader), as a subquery: `… NOT IN hidden_conversations!()`.
macro_rules! hidden_conversations {
    () => {
        "(SELECT id FROM conversations WHERE pending_import IS NOT NULL
           UNION ALL SELECT id FROM conversations WHERE trashed_at IS NOT NULL)"
    };
}

// After the macro: these use `hidden_conversations!`.
mod conversations;
mod evals;
mod merge;
mod nodes;
mod ratings;
mod trash;
use conversations::*;
pub use merge::{MergeConflict, MergeReport, GLOBAL_IDS_VERSION};
use nodes::*;
pub use trash::{TrashEntry, TrashKind};

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
        let mut store = Self::connect(path)?;
        store.migrated = store.migrate_keeping_a_copy()?;
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
        let store = Self {
            conn,
            path,
            migrated: None,
        };
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
            migrated: None,
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

    /// Migrates an existing database after copying it beside itself
    /// (`NAME.vN-SECONDS.bak`, the last [`MIGRATION_BACKUPS`] kept): the schema it had and
    /// the copy, or `None` when nothing was due (or the file is new).
    fn migrate_keeping_a_copy(&self) -> Result<Option<(i64, PathBuf)>> {
        let found = self.schema_version()?;
        if found == SCHEMA_VERSION {
            return Ok(None);
        }
        if found == 0 || found > SCHEMA_VERSION {
            // A new file, or one from a newer Arbor (refused, never modified).
            self.migrate()?;
            return Ok(None);
        }
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "arbor.db".into());
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let copy = self
            .path
            .with_file_name(format!("{name}.v{found}-{secs}.bak"));
        self.backup_to(&copy)?;
        self.migrate()?;
        prune_backups(&self.path, &name);
        Ok(Some((found, copy)))
    }

    /// The schema the file had when this open migrated it, and where its copy is.
    pub fn migrated_from(&self) -> Option<&(i64, PathBuf)> {
        self.migrated.as_ref()
    }

    /// A consistent copy of the database at `to` through SQLite's online backup API, all
    /// pages in one step under one read transaction, so it is the database as of one
    /// moment even while the studio, an import or a job writes. Written to `TO.part` and
    /// renamed; a failure removes the part.
    pub fn backup_to(&self, to: &Path) -> Result<()> {
        let part = to.with_file_name(format!(
            "{}.part",
            to.file_name()
                .map_or("backup".into(), |n| n.to_string_lossy())
        ));
        let copy = || -> Result<()> {
            let mut dst = Connection::open(&part)?;
            {
                use rusqlite::backup::{Backup, StepResult};
                let b = Backup::new(&self.conn, &mut dst)?;
                // Every page in one step (-1): one read transaction, one moment.
                let started = std::time::Instant::now();
                loop {
                    match b.step(-1)? {
                        StepResult::Done => break,
                        StepResult::More | StepResult::Busy | StepResult::Locked => {
                            if started.elapsed() > Duration::from_secs(60) {
                                return Err(StoreError::Invalid(format!(
                                    "{}: the database stayed locked for a minute; nothing copied",
                                    self.path.display()
                                )));
                            }
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        _ => continue,
                    }
                }
            }
            dst.close().map_err(|(_, e)| e)?;
            std::fs::rename(&part, to)
                .map_err(|e| StoreError::Invalid(format!("{}: {e}", to.display())))
        };
        copy().inspect_err(|_| {
            let _ = std::fs::remove_file(&part);
        })
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
                if version == GLOBAL_IDS_VERSION {
                    merge::fill_gids(&tx)?;
                }
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
                if pid != std::process::id() as i64 && !crate::os::process_alive(pid as u32, None) {
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

    /// Until the guard is dropped, this connection's reads of `conversations` and `nodes`
    /// (and with `judgements`, of `ratings` and `tags`) leave out what an unfinished import
    /// holds: temporary views of those names shadow the tables (they live in this
    /// connection's temp schema; the database file is not written). For read-only work
    /// (export, stats): writes through the views would fail.
    pub fn visible_only(&self, judgements: bool) -> Result<VisibleOnly<'_>> {
        // `hidden_conversations!()` with the table named in `main`: unqualified, it would
        // be the temporary view being made.
        let hidden_convs = "(SELECT id FROM main.conversations WHERE pending_import IS NOT NULL
                               UNION ALL SELECT id FROM main.conversations WHERE trashed_at IS NOT NULL)";
        let mut sql = format!(
            "CREATE TEMP VIEW IF NOT EXISTS conversations AS
               SELECT * FROM main.conversations WHERE pending_import IS NULL AND trashed_at IS NULL;
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

/// Whether `pid` is another running Arbor process (this one opening the database can
/// not be streaming into it yet).
fn writer_alive(pid: u32) -> bool {
    pid != std::process::id() && crate::os::process_alive(pid, Some("arbor"))
}

/// Removes all but the newest [`MIGRATION_BACKUPS`] copies made before migrations of the
/// database `name` in `db`'s directory.
fn prune_backups(db: &Path, name: &str) {
    let dir = match db.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let prefix = format!("{name}.v");
    let mut copies: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(&prefix) && n.ends_with(".bak")
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    copies.sort();
    let extra = copies.len().saturating_sub(MIGRATION_BACKUPS);
    for (_, p) in copies.into_iter().take(extra) {
        let _ = std::fs::remove_file(p);
    }
}
