//! ShareGPT (`conversations: [{from, value}]`), both directions.

use super::*;
use crate::dataset::{FieldError, Msg, ProblemKind, Record};
use crate::domain::{Node, Role, ToolCall};
use serde_json::{json, Map, Value};

/// LLaMA-Factory's ShareGPT record, or why the path cannot be one (strict alternation:
/// human/observation on odd turns, gpt/function_call on even turns, ending with the model).
pub fn sharegpt_record(
    system: &str,
    tools: Option<&Value>,
    path: &[&Node],
) -> Result<Value, &'static str> {
    let mut turns: Vec<Value> = Vec::new();
    let mut i = 0;
    while i < path.len() {
        let n = path[i];
        let (from, value) = match n.role {
            Role::System => {
                i += 1;
                continue;
            }
            Role::User => ("human", n.content.clone()),
            Role::Assistant if n.tool_calls.is_empty() => ("gpt", n.content.clone()),
            Role::Assistant => {
                let calls: Vec<Value> = n
                    .tool_calls
                    .iter()
                    .map(|c| json!({"name": c.name, "arguments": c.arguments}))
                    .collect();
                let v = if calls.len() == 1 {
                    calls[0].to_string()
                } else {
                    Value::Array(calls).to_string()
                };
                ("function_call", v)
            }
            Role::Tool => {
                // Parallel results become one observation, in call order.
                let mut parts = vec![n.content.clone()];
                while i + 1 < path.len() && path[i + 1].role == Role::Tool {
                    i += 1;
                    parts.push(path[i].content.clone());
                }
                ("observation", parts.join("\n"))
            }
        };
        let expect_human = turns.len().is_multiple_of(2);
        let is_human = matches!(from, "human" | "observation");
        if expect_human != is_human {
            return Err("role order breaks ShareGPT's human/gpt alternation");
        }
        turns.push(json!({"from": from, "value": value}));
        i += 1;
    }
    if !turns.len().is_multiple_of(2) || turns.is_empty() {
        return Err("role order breaks ShareGPT's human/gpt alternation");
    }
    let mut rec = Map::new();
    rec.insert("conversations".into(), Value::Array(turns));
    if !system.is_empty() {
        rec.insert("system".into(), system.into());
    }
    if let Some(t) = tools {
        rec.insert("tools".into(), t.to_string().into());
    }
    Ok(Value::Object(rec))
}

pub(super) fn parse_sharegpt(v: &Value) -> Result<Record, FieldError> {
    let turns = v["conversations"]
        .as_array()
        .ok_or_else(|| FieldError::field("conversations", "expected an array"))?;
    let mut system = opt_str(v, "system")?.unwrap_or_default().to_string();
    let mut msgs = Vec::new();
    for (i, t) in turns.iter().enumerate() {
        let field = format!("conversations[{i}]");
        let from = t
            .get("from")
            .or_else(|| t.get("role"))
            .and_then(Value::as_str)
            .ok_or_else(|| FieldError::field(format!("{field}.from"), "missing"))?;
        let (key, value) = match t.get("value") {
            Some(v) => ("value", Some(v)),
            None => ("content", t.get("content")),
        };
        let value = match value {
            Some(Value::String(s)) => s.as_str(),
            None => return Err(FieldError::field(format!("{field}.value"), "missing")),
            Some(other) => {
                return Err(FieldError::field(
                    format!("{field}.{key}"),
                    format!("expected a string, got {}", kind_of(other)),
                ))
            }
        };
        match from {
            "human" | "user" => msgs.push(Msg::new(Role::User, value)),
            "gpt" | "assistant" | "model" => msgs.push(Msg::new(Role::Assistant, value)),
            "system" if msgs.is_empty() => system = value.to_string(),
            "function_call" => {
                let parsed: Value = serde_json::from_str(value).map_err(|e| {
                    FieldError::new(
                        ProblemKind::ToolArguments,
                        format!("{field}.value"),
                        format!("function_call is not valid JSON: {e}"),
                    )
                })?;
                let list = match parsed {
                    Value::Array(a) => a,
                    o => vec![o],
                };
                let mut m = Msg::new(Role::Assistant, "");
                for (j, c) in list.iter().enumerate() {
                    let name = c.get("name").and_then(Value::as_str).ok_or_else(|| {
                        FieldError::new(
                            ProblemKind::ToolName,
                            format!("{field}.value[{j}].name"),
                            "missing tool name",
                        )
                    })?;
                    let arguments = parse_arguments(
                        c.get("arguments").unwrap_or(&Value::Null),
                        &format!("{field}.value[{j}].arguments"),
                        ArgsForm::Either,
                    )?;
                    m.tool_calls.push(ToolCall {
                        id: String::new(),
                        name: name.to_string(),
                        arguments,
                    });
                }
                msgs.push(m);
            }
            "observation" | "tool" | "function" => {
                // One observation may answer several parallel calls.
                let calls = msgs
                    .last()
                    .filter(|m| m.role == Role::Assistant)
                    .map(|m| m.tool_calls.len())
                    .unwrap_or(1);
                let parts: Vec<&str> = if calls > 1 {
                    value.splitn(calls, '\n').collect()
                } else {
                    vec![value]
                };
                for p in parts {
                    msgs.push(Msg::new(Role::Tool, p));
                }
            }
            other => {
                return Err(FieldError::new(
                    ProblemKind::UnknownRole,
                    format!("{field}.from"),
                    format!(
                        "unknown role '{other}' (expected human, gpt, function_call, observation or system)"
                    ),
                ))
            }
        }
    }
    record(system, tools_field(v, "tools")?, msgs)
}
