//! OpenAssistant message trees (`oasst`): reading, ranks as preferences.

use super::*;
use crate::dataset::{FieldError, FileRating, Item, Msg, Record};
use crate::domain::{Origin, Role};
use serde_json::Value;

/// OpenAssistant message trees (oasst2 `*.trees.jsonl`): `prompt` is the root message,
/// `replies` its children, `rank` their order (0 best). Arbor's own extension fields
/// (`arbor`) carry ratings per rater, tags, tool calls and the system prompt.
pub(super) fn parse_oasst(v: &Value) -> Result<Record, FieldError> {
    let prompt = v
        .get("prompt")
        .ok_or_else(|| FieldError::field("prompt", "missing"))?;
    let ext = v.get("arbor");
    let system = ext
        .and_then(|e| e.get("system"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let tools = match ext {
        Some(e) => tools_field(e, "tools")?,
        None => None,
    };
    let root = oasst_item(prompt, "prompt")?;
    Ok(Record {
        system,
        tools,
        roots: vec![root],
    })
}

pub(super) fn oasst_item(m: &Value, field: &str) -> Result<Item, FieldError> {
    let text = m
        .get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| FieldError::field(format!("{field}.text"), "missing"))?;
    let ext = m.get("arbor");
    let role_name = ext
        .and_then(|e| e.get("role"))
        .or_else(|| m.get("role"))
        .and_then(Value::as_str)
        .ok_or_else(|| FieldError::field(format!("{field}.role"), "missing"))?;
    let role = match role_name {
        "prompter" => Role::User,
        other => parse_role(other, &format!("{field}.role"))?,
    };
    let mut msg = Msg::new(role, text);
    msg.negative = m.get("review_result").and_then(Value::as_bool) == Some(false);
    msg.key = m
        .get("message_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    msg.model = m
        .get("model_name")
        .and_then(Value::as_str)
        .map(str::to_string);
    msg.created_at = m
        .get("created_date")
        .and_then(Value::as_str)
        .and_then(|d| crate::dataset::parse_date(d, false).ok());
    if let Some(e) = ext {
        msg.tool_calls = parse_tool_calls(e, &format!("{field}.arbor"), ArgsForm::Either)?;
        msg.tool_call_id = e
            .get("tool_call_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        msg.origin = e
            .get("origin")
            .and_then(Value::as_str)
            .and_then(|o| o.parse::<Origin>().ok());
        msg.edited_from_key = e
            .get("edited_from")
            .and_then(Value::as_str)
            .map(str::to_string);
        for r in e
            .get("ratings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let stars = r.get("stars").and_then(Value::as_u64).map(|s| s as u8);
            if stars.is_some_and(|s| !(1..=5).contains(&s)) {
                return Err(FieldError::field(
                    format!("{field}.arbor.ratings"),
                    "stars must be 1-5",
                ));
            }
            msg.ratings.push(FileRating {
                rater: r.get("rater").and_then(Value::as_str).map(str::to_string),
                stars,
                critique: r
                    .get("critique")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            });
        }
        for t in e
            .get("tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(tag) = t.get("tag").and_then(Value::as_str) {
                let rater = t.get("rater").and_then(Value::as_str).map(str::to_string);
                msg.tags.push((rater, tag.to_string()));
            }
        }
    } else if let Some(labels) = m.get("labels").filter(|l| l.is_object()) {
        // oasst2: {"name": [...], "value": [...], "count": [...]}; kept as tags name=value.
        let names = labels["name"].as_array().cloned().unwrap_or_default();
        let values = labels["value"].as_array().cloned().unwrap_or_default();
        for (n, v) in names.iter().zip(values.iter()) {
            if let (Some(n), Some(v)) = (n.as_str(), v.as_f64()) {
                msg.tags.push((None, format!("{n}={v:.2}")));
            }
        }
    }
    let mut replies: Vec<(Option<i64>, usize, &Value)> = m
        .get("replies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, r)| (r.get("rank").and_then(Value::as_i64), i, r))
        .collect();
    // Rank 0 first; unranked after the ranked, in file order.
    replies.sort_by_key(|(rank, i, _)| (rank.is_none(), rank.unwrap_or(0), *i));
    let mut children = Vec::new();
    for (rank, i, r) in replies {
        let mut child = oasst_item(r, &format!("{field}.replies[{i}]"))?;
        // A rank is a human preference in OpenAssistant's data; in Arbor's own export only
        // where it says so (elsewhere it was derived from stars, which import restores).
        let ext = r.get("arbor");
        let preference = match ext {
            None => true,
            Some(e) => e.get("rank_is_preference").and_then(Value::as_bool) == Some(true),
        };
        if preference {
            child.msg.rank = rank;
        }
        children.push(child);
    }
    Ok(Item { msg, children })
}
