//! Training jobs, their metrics and the adapters they produce.

use super::{Result, Store, StoreError};
use crate::domain::now_ms;
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Lost,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Lost => "lost",
        }
    }

    /// Queued or running: a supervisor is (or should be) looking after it.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }
}

impl std::str::FromStr for JobStatus {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            "lost" => Self::Lost,
            _ => return Err(format!("unknown job status {s:?}")),
        })
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct NewJob {
    pub recipe: String,
    pub base_model: String,
    pub data_path: String,
    pub params: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: i64,
    pub recipe: String,
    pub base_model: String,
    pub data_path: String,
    pub params: serde_json::Value,
    pub status: JobStatus,
    /// The trainer process, leader of its own process group.
    pub pid: Option<u32>,
    pub supervisor_pid: Option<u32>,
    pub exit_code: Option<i32>,
    pub dir: Option<String>,
    pub error: Option<String>,
    pub phase: Option<String>,
    pub cancel_requested: bool,
    pub log_offset: u64,
    pub examples: Option<i64>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobMetric {
    pub step: i64,
    pub total: Option<i64>,
    pub loss: Option<f64>,
    pub eval_loss: Option<f64>,
    pub lr: Option<f64>,
    pub tokens_per_s: Option<f64>,
    /// Milliseconds since the epoch.
    pub at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AdapterRow {
    pub id: i64,
    pub name: String,
    pub path: String,
    pub base_model: String,
    pub job_id: Option<i64>,
    pub scale: f64,
    pub metrics: Option<serde_json::Value>,
    pub created_at: i64,
}

const JOB_COLS: &str = "id, recipe, base_model, data_path, params, status, pid, supervisor_pid, \
     exit_code, dir, error, phase, cancel_requested, log_offset, examples, created_at, started_at, finished_at";

fn job_of(r: &Row) -> rusqlite::Result<Job> {
    let params: String = r.get(4)?;
    let status: String = r.get(5)?;
    Ok(Job {
        id: r.get(0)?,
        recipe: r.get(1)?,
        base_model: r.get(2)?,
        data_path: r.get(3)?,
        params: serde_json::from_str(&params).unwrap_or(serde_json::Value::Null),
        status: status.parse().map_err(|e: String| {
            rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, e.into())
        })?,
        pid: r.get(6)?,
        supervisor_pid: r.get(7)?,
        exit_code: r.get(8)?,
        dir: r.get(9)?,
        error: r.get(10)?,
        phase: r.get(11)?,
        cancel_requested: r.get::<_, i64>(12)? != 0,
        log_offset: r.get::<_, i64>(13)? as u64,
        examples: r.get(14)?,
        created_at: r.get(15)?,
        started_at: r.get(16)?,
        finished_at: r.get(17)?,
    })
}

const ADAPTER_COLS: &str = "id, name, path, base_model, job_id, scale, metrics, created_at";

fn adapter_of(r: &Row) -> rusqlite::Result<AdapterRow> {
    let metrics: Option<String> = r.get(6)?;
    Ok(AdapterRow {
        id: r.get(0)?,
        name: r.get(1)?,
        path: r.get(2)?,
        base_model: r.get(3)?,
        job_id: r.get(4)?,
        scale: r.get(5)?,
        metrics: metrics.and_then(|m| serde_json::from_str(&m).ok()),
        created_at: r.get(7)?,
    })
}

impl Store {
    /// A new queued job; its working directory is set once known (`set_job_dir`).
    pub fn create_job(&self, job: &NewJob) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO jobs (recipe, base_model, data_path, params, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                job.recipe,
                job.base_model,
                job.data_path,
                job.params.to_string(),
                now_ms()
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn set_job_prepared(
        &self,
        id: i64,
        dir: &str,
        data_path: &str,
        examples: i64,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE jobs SET dir = ?2, data_path = ?3, examples = ?4 WHERE id = ?1",
            params![id, dir, data_path, examples],
        )?;
        Ok(())
    }

    pub fn delete_job(&self, id: i64) -> Result<()> {
        self.conn.execute("DELETE FROM jobs WHERE id = ?1", [id])?;
        Ok(())
    }

    pub fn job(&self, id: i64) -> Result<Job> {
        self.conn
            .query_row(
                &format!("SELECT {JOB_COLS} FROM jobs WHERE id = ?1"),
                [id],
                job_of,
            )
            .optional()?
            .ok_or_else(|| StoreError::Invalid(format!("no job with id {id}")))
    }

    /// All jobs, newest first.
    pub fn jobs(&self) -> Result<Vec<Job>> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {JOB_COLS} FROM jobs ORDER BY id DESC"))?;
        let rows = st.query_map([], job_of)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A supervisor takes the job: running, its pid, cleared of an earlier run's state.
    pub fn start_job(&self, id: i64, supervisor_pid: u32) -> Result<()> {
        let tx = self.tx()?;
        tx.execute(
            "UPDATE jobs SET status = 'running', supervisor_pid = ?2, started_at = ?3,
                 pid = NULL, exit_code = NULL, error = NULL, finished_at = NULL,
                 cancel_requested = 0, log_offset = 0, phase = 'starting'
             WHERE id = ?1",
            params![id, supervisor_pid, now_ms()],
        )?;
        tx.execute("DELETE FROM job_metrics WHERE job_id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    /// A supervisor that picks up a job whose first supervisor is gone.
    pub fn reattach_job(&self, id: i64, supervisor_pid: u32) -> Result<()> {
        self.conn.execute(
            "UPDATE jobs SET supervisor_pid = ?2 WHERE id = ?1",
            params![id, supervisor_pid],
        )?;
        Ok(())
    }

    /// Puts a finished job back in the queue (`arbor jobs resume`).
    pub fn requeue_job(&self, id: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE jobs SET status = 'queued', supervisor_pid = NULL, pid = NULL, phase = NULL
             WHERE id = ?1",
            [id],
        )?;
        Ok(())
    }

    pub fn set_job_pid(&self, id: i64, pid: u32) -> Result<()> {
        self.conn
            .execute("UPDATE jobs SET pid = ?2 WHERE id = ?1", params![id, pid])?;
        Ok(())
    }

    pub fn set_job_phase(&self, id: i64, phase: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE jobs SET phase = ?2 WHERE id = ?1",
            params![id, phase],
        )?;
        Ok(())
    }

    pub fn request_cancel(&self, id: i64) -> Result<()> {
        self.conn
            .execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Progress read from the log up to `log_offset`, in one transaction: a step's line
    /// and its evaluation line fill the same row.
    pub fn add_job_progress(
        &self,
        id: i64,
        metrics: &[JobMetric],
        phase: Option<&str>,
        log_offset: u64,
    ) -> Result<()> {
        let tx = self.tx()?;
        for m in metrics {
            tx.execute(
                "INSERT INTO job_metrics (job_id, step, total, loss, eval_loss, lr, tokens_per_s, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(job_id, step) DO UPDATE SET
                     total = coalesce(excluded.total, total),
                     loss = coalesce(excluded.loss, loss),
                     eval_loss = coalesce(excluded.eval_loss, eval_loss),
                     lr = coalesce(excluded.lr, lr),
                     tokens_per_s = coalesce(excluded.tokens_per_s, tokens_per_s)",
                params![id, m.step, m.total, m.loss, m.eval_loss, m.lr, m.tokens_per_s, m.at],
            )?;
        }
        if let Some(p) = phase {
            tx.execute("UPDATE jobs SET phase = ?2 WHERE id = ?1", params![id, p])?;
        }
        tx.execute(
            "UPDATE jobs SET log_offset = ?2 WHERE id = ?1",
            params![id, log_offset as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn job_metrics(&self, id: i64) -> Result<Vec<JobMetric>> {
        let mut st = self.conn.prepare(
            "SELECT step, total, loss, eval_loss, lr, tokens_per_s, at FROM job_metrics
             WHERE job_id = ?1 ORDER BY step",
        )?;
        let rows = st.query_map([id], |r| {
            Ok(JobMetric {
                step: r.get(0)?,
                total: r.get(1)?,
                loss: r.get(2)?,
                eval_loss: r.get(3)?,
                lr: r.get(4)?,
                tokens_per_s: r.get(5)?,
                at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Ends a job once: only a queued or running job changes (a job that already ended,
    /// say cancelled by `arbor jobs cancel`, keeps its status). Returns whether it changed.
    pub fn finish_job(
        &self,
        id: i64,
        status: JobStatus,
        exit_code: Option<i32>,
        error: Option<&str>,
    ) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE jobs SET status = ?2, exit_code = ?3, error = ?4, finished_at = ?5, phase = NULL
             WHERE id = ?1 AND status IN ('queued', 'running')",
            params![id, status.as_str(), exit_code, error, now_ms()],
        )?;
        Ok(n > 0)
    }

    /// Registers an adapter; a name already taken gets `-2`, `-3`… appended.
    pub fn add_adapter(
        &self,
        name: &str,
        path: &str,
        base_model: &str,
        job_id: Option<i64>,
        metrics: Option<&serde_json::Value>,
    ) -> Result<AdapterRow> {
        let tx = self.tx()?;
        let mut unique = name.to_string();
        let mut n = 1;
        while tx
            .query_row("SELECT 1 FROM adapters WHERE name = ?1", [&unique], |_| {
                Ok(())
            })
            .optional()?
            .is_some()
        {
            n += 1;
            unique = format!("{name}-{n}");
        }
        tx.execute(
            "INSERT INTO adapters (name, path, base_model, job_id, metrics, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                unique,
                path,
                base_model,
                job_id,
                metrics.map(|m| m.to_string()),
                now_ms()
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        self.adapter(&id.to_string())
    }

    /// An adapter by name or id.
    pub fn adapter(&self, name_or_id: &str) -> Result<AdapterRow> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {ADAPTER_COLS} FROM adapters WHERE name = ?1 OR CAST(id AS TEXT) = ?1"
                ),
                [name_or_id],
                adapter_of,
            )
            .optional()?
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "no adapter named {name_or_id:?} (see `arbor models`)"
                ))
            })
    }

    pub fn adapters(&self) -> Result<Vec<AdapterRow>> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {ADAPTER_COLS} FROM adapters ORDER BY id"))?;
        let rows = st.query_map([], adapter_of)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn adapter_of_job(&self, job: i64) -> Result<Option<AdapterRow>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {ADAPTER_COLS} FROM adapters WHERE job_id = ?1 ORDER BY id DESC"),
                [job],
                adapter_of,
            )
            .optional()?)
    }
}
