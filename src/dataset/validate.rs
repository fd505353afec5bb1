//! `arbor validate`: what is wrong with a dataset file before a trainer finds out.
//!
//! Per file: JSON errors, unknown roles, role-order problems, invalid tool names,
//! tool-call arguments that are not valid JSON or do not match the tool's schema, and
//! examples over the token limit; plus tool coverage, single- vs multi-step calls and
//! token counts (with the model's own tokenizer).

use super::import::read;
use super::{Format, Msg, Problem, ProblemKind};
use crate::dataset::Result;
use crate::domain::ChatMessage;
use crate::domain::Role;
use crate::engine::llama::Tokenizer;
use crate::tools::{CallError, ToolSet};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Default)]
pub struct ValidateOptions {
    pub format: Option<Format>,
    /// Tools to check calls against when a record carries none.
    pub tools: Option<Value>,
    /// Token limit (default: the tokenizer model's context length).
    pub max_tokens: Option<usize>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FileReport {
    pub path: PathBuf,
    pub format: String,
    pub records: usize,
    pub examples: usize,
    pub errors: BTreeMap<&'static str, usize>,
    pub problems: Vec<String>,
    pub calls_per_tool: BTreeMap<String, usize>,
    pub no_tool_calls: usize,
    pub single_step: usize,
    pub multi_step: usize,
    pub tokens_total: usize,
    pub tokens_max: usize,
    pub token_limit: Option<usize>,
    pub tokenized: bool,
    pub notes: Vec<String>,
}

impl FileReport {
    pub fn error_count(&self) -> usize {
        self.errors.values().sum()
    }
    fn problem(&mut self, p: Problem) {
        *self.errors.entry(p.kind.label()).or_default() += 1;
        self.problems.push(p.to_string());
    }
    pub fn average_tokens(&self) -> Option<f64> {
        (self.tokenized && self.examples > 0)
            .then(|| self.tokens_total as f64 / self.examples as f64)
    }
}

/// Validates every file behind `path` (one file, or an mlx-lm data directory).
pub fn validate(
    path: &Path,
    opts: &ValidateOptions,
    tok: Option<&Tokenizer>,
) -> Result<Vec<FileReport>> {
    let extra_tools = match &opts.tools {
        Some(t) => Some(
            ToolSet::new(t)
                .map_err(|e| crate::dataset::DatasetError::Msg(format!("--tools: {e}")))?,
        ),
        None => None,
    };
    let limit = opts
        .max_tokens
        .or_else(|| tok.map(|t| t.context_length as usize).filter(|&n| n > 0));
    let mut reports = Vec::new();
    for file in super::import::files_of(path)? {
        let parsed = read(&file, opts.format)?;
        let mut r = FileReport {
            path: file.clone(),
            format: parsed.format.name().to_string(),
            records: parsed.records.len() + parsed.problems.len(),
            token_limit: limit,
            tokenized: tok.is_some(),
            ..Default::default()
        };
        for p in parsed.problems {
            r.problem(p);
        }
        let mut unchecked_names = false;
        for (f, line, rec) in &parsed.records {
            let own_tools = match &rec.tools {
                Some(t) => match ToolSet::new(t) {
                    Ok(ts) => Some(ts),
                    Err(e) => {
                        r.problem(Problem {
                            file: f.clone(),
                            line: *line,
                            field: "tools".into(),
                            kind: ProblemKind::Field,
                            message: e.to_string(),
                        });
                        continue;
                    }
                },
                None => None,
            };
            let tools = own_tools.as_ref().or(extra_tools.as_ref());
            for path in rec.paths() {
                r.examples += 1;
                let mut problems = Vec::new();
                check_order(&path, parsed.format != Format::Oasst, &mut problems);
                let mut steps = 0;
                for (k, m) in path.iter().enumerate() {
                    if m.tool_calls.is_empty() {
                        continue;
                    }
                    steps += 1;
                    for c in &m.tool_calls {
                        *r.calls_per_tool.entry(c.name.clone()).or_default() += 1;
                        match tools {
                            Some(_) if m.negative => {}
                            Some(ts) => {
                                if let Err(e) = ts.check_call(&c.name, &c.arguments) {
                                    let kind = match e {
                                        CallError::UnknownTool(_) => ProblemKind::ToolName,
                                        CallError::BadArguments(_) => ProblemKind::ToolArguments,
                                    };
                                    problems.push((kind, format!("message {k}"), e.to_string()));
                                }
                            }
                            None => unchecked_names = true,
                        }
                    }
                }
                match steps {
                    0 => r.no_tool_calls += 1,
                    1 => r.single_step += 1,
                    _ => r.multi_step += 1,
                }
                if let Some(tok) = tok {
                    let mut msgs: Vec<ChatMessage> = Vec::new();
                    if !rec.system.is_empty() {
                        msgs.push(ChatMessage::new(Role::System, rec.system.clone()));
                    }
                    msgs.extend(path.iter().map(|m| ChatMessage::from(*m)));
                    match tok.count(&msgs, rec.tools.as_ref()) {
                        Ok(n) => {
                            r.tokens_total += n;
                            r.tokens_max = r.tokens_max.max(n);
                            if limit.is_some_and(|l| n > l) {
                                problems.push((
                                    ProblemKind::TooLong,
                                    String::new(),
                                    format!("{n} tokens, over the limit of {}", limit.unwrap_or(0)),
                                ));
                            }
                        }
                        Err(e) => problems.push((
                            ProblemKind::Field,
                            String::new(),
                            format!("chat template: {e}"),
                        )),
                    }
                }
                for (kind, field, message) in problems {
                    r.problem(Problem {
                        file: f.clone(),
                        line: *line,
                        field,
                        kind,
                        message,
                    });
                }
            }
        }
        if unchecked_names {
            r.notes.push(
                "tool names and arguments were not checked against schemas: no tools defined (pass --tools tools.json)"
                    .into(),
            );
        }
        reports.push(r);
    }
    Ok(reports)
}

/// Role order: system only first, then user; no two users or two answers in a row;
/// tool results answer pending calls; a call gets its results; with `ends_with_answer`,
/// the example ends with an answer (a training example does; whole OASST trees and
/// imported conversations may end anywhere).
pub(crate) fn check_order(
    path: &[&Msg],
    ends_with_answer: bool,
    out: &mut Vec<(ProblemKind, String, String)>,
) {
    let mut prev: Option<&Msg> = None;
    let mut pending: HashSet<&str> = HashSet::new();
    let mut pending_count = 0usize;
    let mut push =
        |k: usize, msg: String| out.push((ProblemKind::RoleOrder, format!("message {k}"), msg));
    for (k, m) in path.iter().enumerate() {
        match (prev.map(|p| p.role), m.role) {
            (_, Role::System) => push(k, "system message after the start".into()),
            (None, Role::Assistant) | (None, Role::Tool) => push(
                k,
                format!("starts with a {} message, not a user message", m.role),
            ),
            (Some(Role::User), Role::User) => push(k, "two user messages in a row".into()),
            (Some(Role::Assistant), Role::Assistant) if pending_count == 0 => {
                push(k, "two assistant messages in a row".into())
            }
            (Some(Role::Assistant), Role::User) | (Some(Role::Assistant), Role::Assistant)
                if pending_count > 0 =>
            {
                push(
                    k,
                    "a tool call has no result before the next message".into(),
                )
            }
            (p, Role::Tool) if !matches!(p, Some(Role::Assistant) | Some(Role::Tool)) => {
                push(k, "tool result that does not follow a tool call".into())
            }
            (Some(Role::Tool), Role::User) if pending_count > 0 => push(
                k,
                "a tool call has no result before the next message".into(),
            ),
            _ => {}
        }
        match m.role {
            Role::Assistant => {
                pending = m.tool_calls.iter().map(|c| c.id.as_str()).collect();
                pending_count = m.tool_calls.len();
            }
            Role::Tool => {
                let id = m.tool_call_id.as_deref().unwrap_or_default();
                if !pending.remove(id) && m.tool_call_id.is_some() {
                    push(
                        k,
                        format!("tool result for '{id}', which no pending call has"),
                    );
                }
                pending_count = pending_count.saturating_sub(1);
            }
            _ => {}
        }
        prev = Some(m);
    }
    if ends_with_answer {
        if let Some(last) = path.last() {
            if last.role != Role::Assistant {
                out.push((
                    ProblemKind::RoleOrder,
                    format!("message {}", path.len() - 1),
                    format!(
                        "ends with a {} message; an example ends with an answer",
                        last.role
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ToolCall;
    use serde_json::json;

    #[test]
    fn role_order_problems_are_found() {
        let user = Msg::new(Role::User, "q");
        let mut call = Msg::new(Role::Assistant, "");
        call.tool_calls.push(ToolCall {
            id: "c1".into(),
            name: "f".into(),
            arguments: json!({}),
        });
        let answer = Msg::new(Role::Assistant, "a");
        let mut result = Msg::new(Role::Tool, "r");
        result.tool_call_id = Some("c1".into());
        let check = |p: &[&Msg]| {
            let mut out = Vec::new();
            check_order(p, true, &mut out);
            out
        };
        assert!(check(&[&user, &call, &result, &answer]).is_empty());
        assert_eq!(check(&[&user, &user, &answer]).len(), 1);
        assert_eq!(check(&[&answer]).len(), 1);
        assert_eq!(check(&[&user, &call, &answer]).len(), 1);
        assert_eq!(check(&[&user, &answer, &user]).len(), 1);
    }
}
