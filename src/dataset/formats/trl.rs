//! TRL: conversational messages, preference pairs (`trl-preference`, `openai-dpo`) and
//! prompt/completion records; reading them back.

use super::*;
use crate::dataset::{FieldError, FileRating, Item, Msg, Record};
use crate::domain::{Node, Role};
use serde_json::{Map, Value};

/// One message in TRL's conversational shape: tool-call `arguments` an object, tool
/// results carrying the called function's `name`.
pub fn trl_message(n: &Node, call_name: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert("role".into(), n.role.as_str().into());
    m.insert("content".into(), n.content.clone().into());
    if n.role == Role::Assistant && !n.tool_calls.is_empty() {
        m.insert("tool_calls".into(), tool_calls_json(&n.tool_calls, false));
    }
    if n.role == Role::Tool {
        if let Some(name) = call_name {
            m.insert("name".into(), name.into());
        }
        if let Some(id) = &n.tool_call_id {
            m.insert("tool_call_id".into(), id.clone().into());
        }
    }
    Value::Object(m)
}

pub(super) fn parse_preference(v: &Value) -> Result<Record, FieldError> {
    let (prompt, chosen, rejected, tools) = if v.get("input").is_some() {
        let input = &v["input"];
        let prompt = parse_message_list(input, "messages", ArgsForm::String)
            .map_err(|e| FieldError::field(format!("input.{}", e.field), e.message))?;
        (
            prompt,
            parse_message_list(v, "preferred_output", ArgsForm::String)?,
            parse_message_list(v, "non_preferred_output", ArgsForm::String)?,
            tools_field(input, "tools")?,
        )
    } else {
        let chosen = messages_or_string(v, "chosen", Role::Assistant)?;
        let rejected = messages_or_string(v, "rejected", Role::Assistant)?;
        let (prompt, chosen, rejected) = if v.get("prompt").is_some() {
            (
                messages_or_string(v, "prompt", Role::User)?,
                chosen,
                rejected,
            )
        } else {
            // Implicit prompt: the shared beginning of both conversations.
            let n = chosen
                .iter()
                .zip(&rejected)
                .take_while(|(a, b)| a == b)
                .count();
            (
                chosen[..n].to_vec(),
                chosen[n..].to_vec(),
                rejected[n..].to_vec(),
            )
        };
        (prompt, chosen, rejected, tools_field(v, "tools")?)
    };
    if chosen.is_empty() || rejected.is_empty() {
        return Err(FieldError::field(
            "chosen",
            "chosen and rejected must differ",
        ));
    }
    let (system, mut prompt) = split_system(prompt);
    link_tool_results(&mut prompt);
    let alt = |mut msgs: Vec<Msg>, stars: u8| {
        for m in &mut msgs {
            m.negative = stars < 3;
        }
        if let Some(last) = msgs.iter_mut().rev().find(|m| m.role == Role::Assistant) {
            last.ratings.push(FileRating {
                rater: None,
                stars: Some(stars),
                critique: None,
            });
        }
        Item::chain(msgs)
    };
    let alternatives: Vec<Item> = [alt(chosen, 5), alt(rejected, 1)]
        .into_iter()
        .flatten()
        .collect();
    let roots = match Item::chain(prompt) {
        Some(p) => vec![p.with_alternatives(alternatives)],
        None => alternatives,
    };
    Ok(Record {
        system,
        tools,
        roots,
    })
}

pub(super) fn parse_prompt_completion(v: &Value, kto: bool) -> Result<Record, FieldError> {
    let prompt = messages_or_string(v, "prompt", Role::User)?;
    let mut completion = messages_or_string(v, "completion", Role::Assistant)?;
    if kto {
        let label = v
            .get("label")
            .and_then(Value::as_bool)
            .ok_or_else(|| FieldError::field("label", "expected true or false"))?;
        if let Some(last) = completion
            .iter_mut()
            .rev()
            .find(|m| m.role == Role::Assistant)
        {
            *last = last.clone().rated(if label { 5 } else { 1 });
            last.negative = !label;
        }
    }
    let (system, mut msgs) = split_system(prompt);
    msgs.extend(completion);
    record(system, tools_field(v, "tools")?, msgs)
}
