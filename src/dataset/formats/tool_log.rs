//! The tool-call log of the seeds (requests, calls, 1–5 star ratings): reading.

use super::*;
use crate::dataset::{FieldError, Msg, Record};
use crate::domain::{Role, ToolCall};
use serde_json::Value;

/// The tool-call log of seed 002: one JSON object per executed call, with the user's
/// query, the model's response (an assistant message as JSON text), the call, its
/// result and an optional 1-5 rating.
pub(super) fn parse_tool_log(v: &Value) -> Result<Record, FieldError> {
    let query = str_field(v, "user_query")?;
    let mut assistant = Msg::new(Role::Assistant, "");
    if let Some(resp) = opt_str(v, "model_response")? {
        match serde_json::from_str::<Value>(resp) {
            Ok(m @ Value::Object(_)) => {
                assistant.content = content_field(&m, "model_response")?;
                assistant.tool_calls = parse_tool_calls(&m, "model_response", ArgsForm::Either)?;
            }
            _ => assistant.content = resp.to_string(),
        }
    }
    if assistant.tool_calls.is_empty() {
        if let Some(name) = opt_str(v, "tool_name")?.filter(|n| !n.is_empty()) {
            let args = parse_arguments(
                v.get("arguments").unwrap_or(&Value::Null),
                "arguments",
                ArgsForm::Either,
            )?;
            assistant.tool_calls.push(ToolCall {
                id: String::new(),
                name: name.to_string(),
                arguments: args,
            });
        }
    }
    assistant.model = opt_str(v, "model")?.map(str::to_string);
    match v.get("rating") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_u64().is_some_and(|s| (1..=5).contains(&s)) => {
            assistant = assistant.rated(n.as_u64().unwrap_or_default() as u8);
        }
        Some(other) => {
            return Err(FieldError::field(
                "rating",
                format!("expected 1-5 stars, got {other}"),
            ))
        }
    }
    let created = opt_str(v, "timestamp")?.and_then(|t| crate::dataset::parse_date(t, false).ok());
    let mut msgs = vec![Msg::new(Role::User, query)];
    let has_calls = !assistant.tool_calls.is_empty();
    msgs.push(assistant);
    if has_calls {
        let status = opt_str(v, "status")?.unwrap_or("success");
        let output = opt_str(v, "output")?.unwrap_or_default();
        let content = if status == "success" {
            output.to_string()
        } else {
            let message = opt_str(v, "message")?.unwrap_or_default();
            format!("Status: {status}\n{message}\n{output}")
                .trim_end()
                .to_string()
        };
        msgs.push(Msg::new(Role::Tool, content));
    }
    for m in &mut msgs {
        m.created_at = created;
    }
    record(String::new(), None, msgs)
}
