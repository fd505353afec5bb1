//! Alpaca (`instruction`/`input`/`output`), both directions.

use super::*;
use crate::dataset::{FieldError, Msg, Record};
use crate::domain::{Node, Role};
use serde_json::{json, Map, Value};

/// LLaMA-Factory's Alpaca record (instruction/input/output/system/history), or why not.
pub fn alpaca_record(system: &str, path: &[&Node]) -> Result<Value, &'static str> {
    let msgs: Vec<&&Node> = path.iter().filter(|n| n.role != Role::System).collect();
    if msgs
        .iter()
        .any(|n| n.role == Role::Tool || !n.tool_calls.is_empty())
    {
        return Err("tool calls (Alpaca has no field for them)");
    }
    if !msgs.len().is_multiple_of(2)
        || msgs
            .iter()
            .enumerate()
            .any(|(i, n)| (i % 2 == 0) != (n.role == Role::User))
    {
        return Err("role order breaks Alpaca's instruction/output pairs");
    }
    let pairs: Vec<(&str, &str)> = msgs
        .chunks(2)
        .map(|p| (p[0].content.as_str(), p[1].content.as_str()))
        .collect();
    let (last, history) = pairs.split_last().ok_or("no instruction/output pair")?;
    let mut rec = Map::new();
    rec.insert("instruction".into(), last.0.into());
    rec.insert("input".into(), "".into());
    rec.insert("output".into(), last.1.into());
    if !system.is_empty() {
        rec.insert("system".into(), system.into());
    }
    rec.insert(
        "history".into(),
        Value::Array(history.iter().map(|(q, a)| json!([q, a])).collect()),
    );
    Ok(Value::Object(rec))
}

pub(super) fn parse_alpaca(v: &Value) -> Result<Record, FieldError> {
    let instruction = str_field(v, "instruction")?;
    let input = opt_str(v, "input")?.unwrap_or_default();
    let output = str_field(v, "output")?;
    let system = opt_str(v, "system")?.unwrap_or_default().to_string();
    let mut msgs = Vec::new();
    if let Some(h) = v.get("history").filter(|h| !h.is_null()) {
        let h = h.as_array().ok_or_else(|| {
            FieldError::field(
                "history",
                "expected an array of [instruction, output] pairs",
            )
        })?;
        for (i, pair) in h.iter().enumerate() {
            let (Some(q), Some(a)) = (
                pair.get(0).and_then(Value::as_str),
                pair.get(1).and_then(Value::as_str),
            ) else {
                return Err(FieldError::field(
                    format!("history[{i}]"),
                    "expected [instruction, output] strings",
                ));
            };
            msgs.push(Msg::new(Role::User, q));
            msgs.push(Msg::new(Role::Assistant, a));
        }
    }
    let prompt = if input.is_empty() {
        instruction.to_string()
    } else {
        format!("{instruction}\n{input}")
    };
    msgs.push(Msg::new(Role::User, prompt));
    msgs.push(Msg::new(Role::Assistant, output));
    record(system, None, msgs)
}
