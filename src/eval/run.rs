//! Eval runs: every case of a set answered by every candidate, stored as sibling answers
//! of the case's turn and linked to the run, resumable.

use crate::chat;
use crate::domain::*;
use crate::engine::{EngineEvent, GenRequest};
use crate::eval::Result;
use crate::store::{EvalCase, Store};
use std::collections::{HashMap, HashSet};

/// What answers: the chat model, an adapter on it, or a server's model, with sampling
/// overrides (`SPEC@temperature=0.2,seed=3`).
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The spec as written.
    pub spec: String,
    pub target: Target,
    pub overrides: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Base,
    /// A registered adapter's name, or a GGUF LoRA file.
    Adapter(String),
    /// `server:MODEL`: the OpenAI-compatible backend.
    Server(String),
}

/// The sampling keys a spec may override.
pub const OVERRIDE_KEYS: &[&str] = &["temperature", "top_p", "top_k", "seed", "max_tokens"];

impl std::str::FromStr for Candidate {
    type Err = String;
    fn from_str(spec: &str) -> Result<Self, String> {
        let (target, over) = match spec.split_once('@') {
            Some((t, o)) => (t, Some(o)),
            None => (spec, None),
        };
        let target = match target {
            "" => {
                return Err(format!(
                    "candidate '{spec}': empty; use base, an adapter, or server:MODEL"
                ))
            }
            "base" => Target::Base,
            t => match t.strip_prefix("server:") {
                Some("") => return Err(format!("candidate '{spec}': server: needs a model name")),
                Some(m) => Target::Server(m.to_string()),
                None => Target::Adapter(t.to_string()),
            },
        };
        let mut overrides = serde_json::Map::new();
        for kv in over.into_iter().flat_map(|o| o.split(',')) {
            let Some((k, v)) = kv.split_once('=') else {
                return Err(format!(
                    "candidate '{spec}': '{kv}' is not key=value (keys: {})",
                    OVERRIDE_KEYS.join(", ")
                ));
            };
            let (k, v) = (k.trim(), v.trim());
            let value: serde_json::Value = match k {
                "temperature" | "top_p" => v
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .map(serde_json::Value::from),
                "top_k" => v.parse::<i64>().ok().map(serde_json::Value::from),
                "seed" | "max_tokens" => v.parse::<u32>().ok().map(serde_json::Value::from),
                _ => {
                    return Err(format!(
                        "candidate '{spec}': unknown override '{k}' (keys: {})",
                        OVERRIDE_KEYS.join(", ")
                    ))
                }
            }
            .ok_or_else(|| format!("candidate '{spec}': {k} = '{v}' is not a number"))?;
            overrides.insert(k.to_string(), value);
        }
        // Ranges are those of every other place sampling enters.
        crate::chat::with_overrides(&Sampling::default(), &overrides)
            .check()
            .map_err(|e| format!("candidate '{spec}': {e}"))?;
        Ok(Self {
            spec: spec.to_string(),
            target,
            overrides,
        })
    }
}

/// What every candidate of a run answers: the run, its cases, the config (sampling and
/// tool settings under each conversation's own) and how many cases decode together.
pub struct RunScope<'a> {
    pub store: &'a Store,
    pub run: i64,
    pub cases: &'a [EvalCase],
    pub config: &'a crate::config::Config,
    pub batch: usize,
}

/// Answers every case still without a finished answer for `candidate` (index `idx` of
/// the run) through `engine`, which is loaded and ready, `scope.batch` cases decoding
/// together; `answered` is called with the candidate's spec after each answer. A streaming
/// or failed answer left by an interrupted run is replaced.
pub fn answer_cases(
    scope: &RunScope,
    idx: usize,
    candidate: &Candidate,
    engine: &crate::engine::Engine,
    events: &std::sync::mpsc::Receiver<EngineEvent>,
    answered: &mut dyn FnMut(&str),
) -> Result<()> {
    let RunScope {
        store,
        run,
        cases,
        config,
        batch,
    } = *scope;
    let finished: HashSet<i64> = store
        .eval_answers(run)?
        .into_iter()
        .filter(|a| a.candidate == idx)
        .filter_map(|a| {
            let n = store.node(a.node_id).ok()?;
            if n.status == Status::Complete {
                Some(a.case_id)
            } else {
                // Left half-done by a killed run: answered again below.
                let _ = store.delete_branch(a.node_id);
                None
            }
        })
        .collect();
    let todo: Vec<&EvalCase> = cases.iter().filter(|c| !finished.contains(&c.id)).collect();
    for chunk in todo.chunks(batch.max(1)) {
        // One answer node and one request per case; the engine decodes them together.
        let mut recorders: HashMap<u64, chat::AnswerRecorder> = HashMap::new();
        let mut reqs = Vec::with_capacity(chunk.len());
        for case in chunk {
            let conv = store.conversation(case.conversation_id)?;
            let path = store.path_to_root(case.user_node_id)?;
            // Eval answers see the case as it is: no few-shot examples from the database,
            // the seed as given.
            let flags = chat::TurnFlags {
                sampling: candidate.overrides.clone(),
                few_shot: Some(0),
                ..Default::default()
            };
            let turn = chat::plan_turn(store, &conv, &path, config, &flags)?;
            let node = store.start_eval_answer(
                run,
                case,
                idx,
                &NewNode {
                    status: Status::Streaming,
                    ..NewNode::assistant("", Origin::Generated)
                },
            )?;
            let id = case.id as u64;
            recorders.insert(id, chat::AnswerRecorder::new(node, conv.tools.clone()));
            reqs.push(GenRequest {
                id,
                persist: false,
                ..turn.request
            });
        }
        if reqs.len() == 1 {
            engine.generate(reqs.pop().expect("one"));
        } else {
            engine.generate_batch(reqs);
        }
        let mut open = recorders.len();
        while open > 0 {
            let Ok(e) = events.recv() else {
                crate::fail!("the engine stopped");
            };
            match e {
                EngineEvent::Token { id, text, .. } => {
                    if let Some(r) = recorders.get_mut(&id) {
                        r.push(store, &text)?;
                    }
                }
                EngineEvent::Done { id, facts, .. } => {
                    if let Some(r) = recorders.get_mut(&id) {
                        r.finish(store, &facts)?;
                        open -= 1;
                        answered(&candidate.spec);
                    }
                }
                EngineEvent::Error { id, message, .. } => {
                    // The case's answer records the error; the run goes on.
                    if let Some(r) = recorders.get_mut(&id) {
                        r.fail(store, &message)?;
                        open -= 1;
                        answered(&candidate.spec);
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}
