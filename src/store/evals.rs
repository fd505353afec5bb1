//! Eval sets: named lists of cases (a user turn and its reference answer), held out of
//! training.

use super::{now_ms, Result, Store, StoreError};
use crate::domain::*;
use rusqlite::{params, OptionalExtension};
use std::collections::HashSet;

/// One eval set with its counts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvalSet {
    pub id: i64,
    pub name: String,
    pub source: String,
    pub created_at: i64,
    pub cases: i64,
    pub conversations: i64,
    pub with_reference: i64,
}

/// A case to add: the user turn, its conversation, the reference answer and the tags.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NewCase {
    pub conversation_id: ConversationId,
    pub user_node_id: NodeId,
    pub reference_node_id: Option<NodeId>,
    pub tags: Vec<String>,
}

/// A stored case, with the texts `eval show` prints.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvalCase {
    pub id: i64,
    pub conversation_id: ConversationId,
    pub user_node_id: NodeId,
    pub user: String,
    pub reference_node_id: Option<NodeId>,
    pub reference: Option<String>,
    pub tags: Vec<String>,
}

/// A case whose turn is not in the trash (nor in an unfinished import), for `eval_cases c`.
macro_rules! live_case {
    () => {
        concat!(
            "(SELECT conversation_id FROM nodes WHERE id = c.user_node_id) NOT IN ",
            hidden_conversations!()
        )
    };
}

/// A set's columns and counts; cases whose turn is in the trash do not count.
const SET_COLS: &str = concat!(
    "s.id, s.name, s.source, s.created_at,
    (SELECT count(*) FROM eval_cases c WHERE c.set_id = s.id AND ",
    live_case!(),
    "),
    (SELECT count(DISTINCT conversation_id) FROM eval_cases c WHERE c.set_id = s.id AND ",
    live_case!(),
    "),
    (SELECT count(*) FROM eval_cases c WHERE c.set_id = s.id AND c.reference_node_id IS NOT NULL AND ",
    live_case!(),
    ")"
);

fn set_from_row(r: &rusqlite::Row) -> rusqlite::Result<EvalSet> {
    Ok(EvalSet {
        id: r.get(0)?,
        name: r.get(1)?,
        source: r.get(2)?,
        created_at: r.get(3)?,
        cases: r.get(4)?,
        conversations: r.get(5)?,
        with_reference: r.get(6)?,
    })
}

/// Checks an eval set's name: letters, digits, `-`, `_`, `.`; 1-64 characters.
pub fn check_eval_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "eval set name '{name}': use 1-64 letters, digits, '-', '_' or '.'"
        )))
    }
}

/// One eval run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvalRun {
    pub id: i64,
    pub set_id: i64,
    pub set_name: String,
    pub candidates: Vec<String>,
    pub status: String,
    pub error: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

/// One answer of a run: which case, which candidate, which node.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct EvalAnswer {
    pub case_id: i64,
    pub candidate: usize,
    pub node_id: NodeId,
}

/// A blind pairwise decision (`a` < `b` are candidate indices; `winner` one of them, or
/// `None` for a tie).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Decision {
    pub case_id: i64,
    pub a: usize,
    pub b: usize,
    pub winner: Option<usize>,
    pub rater: String,
}

impl Store {
    /// Records `rater`'s decision between the answers `nodes` (of candidates `a` < `b`) to
    /// a case, replacing an earlier one; a winner is also a preference (source `blind`).
    #[allow(clippy::too_many_arguments)]
    pub fn record_decision(
        &self,
        run: i64,
        case: i64,
        (a, b): (usize, usize),
        nodes: (NodeId, NodeId),
        winner: Option<usize>,
        rater: &str,
    ) -> Result<()> {
        let tx = self.tx()?;
        tx.execute(
            "INSERT OR REPLACE INTO eval_decisions (run_id, case_id, cand_a, cand_b, winner, rater, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![run, case, a as i64, b as i64, winner.map(|w| w as i64), rater, now_ms()],
        )?;
        tx.execute(
            "DELETE FROM preferences WHERE rater = ?3 AND source = 'blind'
               AND ((chosen_id = ?1 AND rejected_id = ?2) OR (chosen_id = ?2 AND rejected_id = ?1))",
            params![nodes.0, nodes.1, rater],
        )?;
        if let Some(w) = winner {
            let (chosen, rejected) = if w == a { nodes } else { (nodes.1, nodes.0) };
            tx.execute(
                "INSERT OR REPLACE INTO preferences (chosen_id, rejected_id, rater, source, created_at)
                 VALUES (?1, ?2, ?3, 'blind', ?4)",
                params![chosen, rejected, rater, now_ms()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Takes back `rater`'s decision (and its preference).
    pub fn undo_decision(
        &self,
        run: i64,
        case: i64,
        (a, b): (usize, usize),
        nodes: (NodeId, NodeId),
        rater: &str,
    ) -> Result<()> {
        let tx = self.tx()?;
        tx.execute(
            "DELETE FROM eval_decisions WHERE run_id = ?1 AND case_id = ?2 AND cand_a = ?3
               AND cand_b = ?4 AND rater = ?5",
            params![run, case, a as i64, b as i64, rater],
        )?;
        tx.execute(
            "DELETE FROM preferences WHERE rater = ?3 AND source = 'blind'
               AND ((chosen_id = ?1 AND rejected_id = ?2) OR (chosen_id = ?2 AND rejected_id = ?1))",
            params![nodes.0, nodes.1, rater],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Every decision of a run.
    pub fn decisions(&self, run: i64) -> Result<Vec<Decision>> {
        let mut stmt = self.conn.prepare(
            "SELECT case_id, cand_a, cand_b, winner, rater FROM eval_decisions WHERE run_id = ?1
              ORDER BY case_id, cand_a, cand_b, rater",
        )?;
        let rows = stmt.query_map([run], |r| {
            Ok(Decision {
                case_id: r.get(0)?,
                a: r.get::<_, i64>(1)? as usize,
                b: r.get::<_, i64>(2)? as usize,
                winner: r.get::<_, Option<i64>>(3)?.map(|w| w as usize),
                rater: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Starts a run of `set_id` with these candidate specs (for a training job's
    /// `--eval`, linked to it).
    pub fn create_eval_run(&self, set_id: i64, candidates: &[String]) -> Result<i64> {
        self.create_eval_run_for(set_id, candidates, None)
    }

    pub fn create_eval_run_for(
        &self,
        set_id: i64,
        candidates: &[String],
        job: Option<i64>,
    ) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO eval_runs (set_id, candidates, created_at, job_id) VALUES (?1, ?2, ?3, ?4)",
            params![set_id, serde_json::to_string(candidates)?, now_ms(), job],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The latest eval run a training job made (`train --eval`).
    pub fn job_eval_run(&self, job: i64) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT max(id) FROM eval_runs WHERE job_id = ?1",
                [job],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    pub fn eval_run(&self, id: i64) -> Result<EvalRun> {
        self.conn
            .query_row(
                "SELECT r.id, r.set_id, s.name, r.candidates, r.status, r.error, r.created_at,
                        r.finished_at
                   FROM eval_runs r JOIN eval_sets s ON s.id = r.set_id WHERE r.id = ?1",
                [id],
                |r| {
                    let c: String = r.get(3)?;
                    Ok(EvalRun {
                        id: r.get(0)?,
                        set_id: r.get(1)?,
                        set_name: r.get(2)?,
                        candidates: serde_json::from_str(&c).unwrap_or_default(),
                        status: r.get(4)?,
                        error: r.get(5)?,
                        created_at: r.get(6)?,
                        finished_at: r.get(7)?,
                    })
                },
            )
            .optional()?
            .ok_or(StoreError::NoEvalRun(id))
    }

    pub fn eval_runs(&self) -> Result<Vec<EvalRun>> {
        let ids: Vec<i64> = {
            let mut stmt = self.conn.prepare("SELECT id FROM eval_runs ORDER BY id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        ids.into_iter().map(|id| self.eval_run(id)).collect()
    }

    pub fn finish_eval_run(&self, id: i64, error: Option<&str>) -> Result<()> {
        self.conn.execute(
            "UPDATE eval_runs SET status = ?2, error = ?3, finished_at = ?4 WHERE id = ?1",
            params![
                id,
                if error.is_some() { "failed" } else { "done" },
                error,
                now_ms()
            ],
        )?;
        Ok(())
    }

    /// Marks a run as running again (resumed).
    pub fn resume_eval_run(&self, id: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE eval_runs SET status = 'running', error = NULL, finished_at = NULL WHERE id = ?1",
            [id],
        )?;
        Ok(())
    }

    /// The answers a run has so far.
    pub fn eval_answers(&self, run: i64) -> Result<Vec<EvalAnswer>> {
        let mut stmt = self.conn.prepare(
            "SELECT case_id, candidate, node_id FROM eval_answers WHERE run_id = ?1
              ORDER BY case_id, candidate",
        )?;
        let rows = stmt.query_map([run], |r| {
            Ok(EvalAnswer {
                case_id: r.get(0)?,
                candidate: r.get::<_, i64>(1)? as usize,
                node_id: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Creates the (streaming) answer node of a run's case and candidate under the case's
    /// user message, without making it the active path, and links it to the run.
    pub fn start_eval_answer(
        &self,
        run: i64,
        case: &EvalCase,
        candidate: usize,
        node: &NewNode,
    ) -> Result<NodeId> {
        let tx = self.tx()?;
        let id = super::insert_node(
            &tx,
            case.conversation_id,
            Some(case.user_node_id),
            node,
            None,
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO eval_answers (run_id, case_id, candidate, node_id)
             VALUES (?1, ?2, ?3, ?4)",
            params![run, case.id, candidate as i64, id],
        )?;
        tx.commit()?;
        Ok(id)
    }

    /// Makes eval set `name` with `cases`, in one transaction. A name in use, or no cases,
    /// is an error and changes nothing.
    pub fn create_eval_set(&self, name: &str, source: &str, cases: &[NewCase]) -> Result<EvalSet> {
        check_eval_name(name)?;
        if cases.is_empty() {
            return Err(StoreError::Invalid(format!(
                "eval set {name}: no cases (nothing matched)"
            )));
        }
        let tx = self.tx()?;
        let exists: Option<i64> = tx
            .query_row("SELECT id FROM eval_sets WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        if exists.is_some() {
            return Err(StoreError::Invalid(format!(
                "eval set {name} exists (arbor eval delete {name} first, or choose another name)"
            )));
        }
        tx.execute(
            "INSERT INTO eval_sets (name, source, created_at) VALUES (?1, ?2, ?3)",
            params![name, source, now_ms()],
        )?;
        let id = tx.last_insert_rowid();
        {
            let mut stmt = tx.prepare(
                "INSERT OR IGNORE INTO eval_cases
                   (set_id, conversation_id, user_node_id, reference_node_id, tags)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for c in cases {
                stmt.execute(params![
                    id,
                    c.conversation_id,
                    c.user_node_id,
                    c.reference_node_id,
                    serde_json::to_string(&c.tags)?
                ])?;
            }
        }
        tx.commit()?;
        self.eval_set(name).map(|(s, _)| s)
    }

    /// Adds the turn of `node` (a user message, or an answer: its user message) to eval set
    /// `name`, made if there is none: the reference is its best answer rated 4★+ (an
    /// unrated edit counts as 5), the tags those of the turn. Returns the set and whether
    /// it was made now.
    pub fn add_eval_case(&self, name: &str, node: NodeId) -> Result<(EvalSet, bool)> {
        check_eval_name(name)?;
        let n = self.node(node)?;
        let user = match n.role {
            Role::User => n,
            Role::Assistant => match n.parent_id.map(|p| self.node(p)).transpose()? {
                Some(p) if p.role == Role::User => p,
                _ => {
                    return Err(StoreError::Invalid(
                        "this answer does not follow a user message: select a user turn".into(),
                    ))
                }
            },
            _ => {
                return Err(StoreError::Invalid(
                    "select a user message or its answer to add its turn to an eval set".into(),
                ))
            }
        };
        let tx = self.tx()?;
        let answers: Vec<(NodeId, Option<i64>, String)> = {
            let mut stmt = tx.prepare(concat!(
                "SELECT n.id, (SELECT min(stars) FROM ratings r WHERE r.node_id = n.id AND ",
                crate::person!("r.rater"),
                "), n.origin
                   FROM nodes n
                  WHERE n.parent_id = ?1 AND n.role = 'assistant' AND n.status = 'complete'"
            ))?;
            let rows = stmt.query_map([user.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let reference = answers
            .iter()
            .filter_map(|(id, stars, origin)| {
                let edited = origin == "edited";
                let s = stars.or(edited.then_some(5))?;
                (s >= 4).then_some((s, edited, *id))
            })
            .max()
            .map(|(_, _, id)| id);
        let mut tags: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT DISTINCT tag FROM tags
                  WHERE node_id = ?1 OR node_id IN
                        (SELECT id FROM nodes WHERE parent_id = ?1 AND role = 'assistant')
                  ORDER BY tag",
            )?;
            let rows = stmt.query_map([user.id], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        tags.dedup();
        let existing: Option<i64> = tx
            .query_row("SELECT id FROM eval_sets WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        let (set_id, created) = match existing {
            Some(id) => (id, false),
            None => {
                tx.execute(
                    "INSERT INTO eval_sets (name, source, created_at) VALUES (?1, 'the studio', ?2)",
                    params![name, now_ms()],
                )?;
                (tx.last_insert_rowid(), true)
            }
        };
        tx.execute(
            "INSERT OR IGNORE INTO eval_cases
               (set_id, conversation_id, user_node_id, reference_node_id, tags)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                set_id,
                user.conversation_id,
                user.id,
                reference,
                serde_json::to_string(&tags)?
            ],
        )?;
        tx.commit()?;
        Ok((self.eval_set(name)?.0, created))
    }

    pub fn eval_sets(&self) -> Result<Vec<EvalSet>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {SET_COLS} FROM eval_sets s ORDER BY s.name"
        ))?;
        let rows = stmt.query_map([], set_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// An eval set and its cases (in conversation, then turn order).
    pub fn eval_set(&self, name: &str) -> Result<(EvalSet, Vec<EvalCase>)> {
        let set = self
            .conn
            .query_row(
                &format!("SELECT {SET_COLS} FROM eval_sets s WHERE s.name = ?1"),
                [name],
                set_from_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::NoEvalSet(name.to_string()))?;
        let mut stmt = self.conn.prepare(concat!(
            r#"SELECT c.id, c.conversation_id, c.user_node_id, u.content, c.reference_node_id,
                    r.content, c.tags
               FROM eval_cases c
               JOIN nodes u ON u.id = c.user_node_id
               LEFT JOIN nodes r ON r.id = c.reference_node_id
              WHERE c.set_id = ?1 AND u.conversation_id NOT IN "#,
            hidden_conversations!(),
            r#"
              ORDER BY c.conversation_id, c.user_node_id"#
        ))?;
        let rows = stmt.query_map([set.id], |r| {
            let tags: String = r.get(6)?;
            Ok(EvalCase {
                id: r.get(0)?,
                conversation_id: r.get(1)?,
                user_node_id: r.get(2)?,
                user: r.get(3)?,
                reference_node_id: r.get(4)?,
                reference: r.get(5)?,
                tags: serde_json::from_str(&tags).unwrap_or_default(),
            })
        })?;
        let cases = rows.collect::<rusqlite::Result<_>>()?;
        Ok((set, cases))
    }

    pub fn delete_eval_set(&self, name: &str) -> Result<()> {
        let n = self
            .conn
            .execute("DELETE FROM eval_sets WHERE name = ?1", [name])?;
        if n == 0 {
            return Err(StoreError::NoEvalSet(name.to_string()));
        }
        Ok(())
    }

    /// Every conversation some eval set holds a case of: held out of training.
    pub fn eval_conversations(&self) -> Result<HashSet<ConversationId>> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT conversation_id FROM eval_cases")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
