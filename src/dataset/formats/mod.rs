//! The file formats, both ways: messages of the store as each format writes them, and
//! each format's records parsed back into [`Record`]s (for import and validate).

mod alpaca;
mod json_writer;
mod oasst;
mod openai;
mod sharegpt;
mod text;
mod tool_log;
mod trl;

use super::{FieldError, Format, Item, Msg, ProblemKind, Record};
use crate::domain::{Role, ToolCall};
pub use alpaca::*;
pub use json_writer::*;
use oasst::*;
pub use openai::*;
use serde_json::{json, Value};
pub use sharegpt::*;
pub use text::*;
use tool_log::*;
pub use trl::*;

/// How a format writes tool-call arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgsForm {
    /// A JSON string (OpenAI, mlx-lm).
    String,
    /// Either (TRL, or a file whose format was guessed).
    Either,
}

/// Guesses a record's format from its keys.
pub fn detect(v: &Value) -> Option<Format> {
    let o = v.as_object()?;
    let has = |k: &str| o.contains_key(k);
    Some(
        if has("message_tree_id") || (has("prompt") && o["prompt"].get("replies").is_some()) {
            Format::Oasst
        } else if has("input") && has("preferred_output") {
            Format::OpenaiDpo
        } else if has("chosen") && has("rejected") {
            Format::TrlPreference
        } else if has("user_query") && (has("model_response") || has("tool_name")) {
            Format::ToolCallsLog
        } else if has("prompt") && has("completion") && has("label") {
            Format::Kto
        } else if has("prompt") && has("completion") {
            Format::TrlPromptCompletion
        } else if has("conversations") {
            Format::Sharegpt
        } else if has("instruction") && has("output") {
            Format::Alpaca
        } else if has("messages") {
            // TRL writes arguments as objects, OpenAI as strings; both read the same.
            let args_are_objects = o["messages"].as_array().is_some_and(|ms| {
                ms.iter().any(|m| {
                    m.get("tool_calls")
                        .and_then(Value::as_array)
                        .is_some_and(|cs| cs.iter().any(|c| c["function"]["arguments"].is_object()))
                })
            });
            if args_are_objects {
                Format::Trl
            } else {
                Format::Openai
            }
        } else if has("text") {
            Format::Text
        } else {
            return None;
        },
    )
}

/// Parses one record of `format`.
pub fn parse(format: Format, v: &Value) -> Result<Record, FieldError> {
    if !v.is_object() {
        return Err(FieldError::field("", "expected a JSON object"));
    }
    match format {
        Format::Openai | Format::Mlx => parse_messages_record(v, ArgsForm::String),
        Format::Trl => parse_messages_record(v, ArgsForm::Either),
        Format::Sharegpt => parse_sharegpt(v),
        Format::Alpaca => parse_alpaca(v),
        Format::Oasst => parse_oasst(v),
        Format::TrlPreference | Format::OpenaiDpo => parse_preference(v),
        Format::TrlPromptCompletion => parse_prompt_completion(v, false),
        Format::Kto => parse_prompt_completion(v, true),
        Format::ToolCallsLog => parse_tool_log(v),
        Format::Text => parse_text(v),
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> Result<&'a str, FieldError> {
    match v.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(FieldError::field(
            key,
            format!("expected a string, got {}", kind_of(other)),
        )),
        None => Err(FieldError::field(key, "missing")),
    }
}

fn opt_str<'a>(v: &'a Value, key: &str) -> Result<Option<&'a str>, FieldError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(FieldError::field(
            key,
            format!("expected a string, got {}", kind_of(other)),
        )),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Tools given as an array or as a JSON string holding one (LLaMA-Factory).
fn tools_field(v: &Value, key: &str) -> Result<Option<Value>, FieldError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) if a.is_empty() => Ok(None),
        Some(t @ Value::Array(_)) => Ok(Some(t.clone())),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(a)) if a.is_empty() => Ok(None),
            Ok(t @ Value::Array(_)) => Ok(Some(t)),
            Ok(_) => Err(FieldError::field(key, "expected a JSON array of tools")),
            Err(e) => Err(FieldError::new(
                ProblemKind::Json,
                key,
                format!("not valid JSON: {e}"),
            )),
        },
        Some(other) => Err(FieldError::field(
            key,
            format!("expected an array of tools, got {}", kind_of(other)),
        )),
    }
}

fn parse_role(s: &str, field: &str) -> Result<Role, FieldError> {
    match s {
        "system" | "developer" => Ok(Role::System),
        "user" => Ok(Role::User),
        "assistant" => Ok(Role::Assistant),
        "tool" => Ok(Role::Tool),
        other => Err(FieldError::new(
            ProblemKind::UnknownRole,
            field,
            format!("unknown role '{other}' (expected system, user, assistant or tool)"),
        )),
    }
}

/// `content` as a string, null, or a list of `{type: text, text}` parts.
fn content_field(m: &Value, field: &str) -> Result<String, FieldError> {
    match m.get("content") {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut out = String::new();
            for (i, p) in parts.iter().enumerate() {
                match p.get("text").and_then(Value::as_str) {
                    Some(t) => out.push_str(t),
                    None => {
                        return Err(FieldError::field(
                            format!("{field}.content[{i}]"),
                            "only text parts are supported",
                        ))
                    }
                }
            }
            Ok(out)
        }
        Some(other) => Err(FieldError::field(
            format!("{field}.content"),
            format!("expected a string, got {}", kind_of(other)),
        )),
    }
}

/// Tool-call arguments: an object, or a string holding one.
pub fn parse_arguments(v: &Value, field: &str, form: ArgsForm) -> Result<Value, FieldError> {
    match v {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(o @ Value::Object(_)) => Ok(o),
            Ok(other) => Err(FieldError::new(
                ProblemKind::ToolArguments,
                field,
                format!("arguments must be a JSON object, got {}", kind_of(&other)),
            )),
            Err(e) => Err(FieldError::new(
                ProblemKind::ToolArguments,
                field,
                format!("arguments are not valid JSON: {e}"),
            )),
        },
        Value::Object(_) if form == ArgsForm::String => Err(FieldError::new(
            ProblemKind::ToolArguments,
            field,
            "arguments must be a JSON string in this format (found an object)",
        )),
        o @ Value::Object(_) => Ok(o.clone()),
        Value::Null => Ok(json!({})),
        other => Err(FieldError::new(
            ProblemKind::ToolArguments,
            field,
            format!("arguments must be a JSON object, got {}", kind_of(other)),
        )),
    }
}

fn parse_tool_calls(m: &Value, field: &str, form: ArgsForm) -> Result<Vec<ToolCall>, FieldError> {
    let Some(calls) = m.get("tool_calls") else {
        return Ok(Vec::new());
    };
    let calls = match calls {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        other => {
            return Err(FieldError::field(
                format!("{field}.tool_calls"),
                format!("expected an array, got {}", kind_of(other)),
            ))
        }
    };
    let mut out = Vec::new();
    for (i, c) in calls.iter().enumerate() {
        let f = format!("{field}.tool_calls[{i}]");
        // {function: {name, arguments}} (OpenAI, TRL) or {name, arguments} (flat).
        let func = c.get("function").unwrap_or(c);
        let name = match func.get("name") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                return Err(FieldError::new(
                    ProblemKind::ToolName,
                    format!("{f}.function.name"),
                    "missing tool name",
                ))
            }
        };
        let arguments = parse_arguments(
            func.get("arguments").unwrap_or(&Value::Null),
            &format!("{f}.function.arguments"),
            form,
        )?;
        let id = c
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        out.push(ToolCall {
            id,
            name,
            arguments,
        });
    }
    Ok(out)
}

/// One OpenAI/TRL-style message.
pub fn parse_message(m: &Value, field: &str, form: ArgsForm) -> Result<Msg, FieldError> {
    if !m.is_object() {
        return Err(FieldError::field(field, "expected a message object"));
    }
    let role = parse_role(
        m.get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| FieldError::field(format!("{field}.role"), "missing"))?,
        &format!("{field}.role"),
    )?;
    let mut msg = Msg::new(role, content_field(m, field)?);
    if role == Role::Assistant {
        msg.tool_calls = parse_tool_calls(m, field, form)?;
        match m.get("weight") {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => {
                msg.weight = n.as_u64().map(|w| w as u8)
            }
            Some(_) => {
                return Err(FieldError::field(
                    format!("{field}.weight"),
                    "weight must be 0 or 1",
                ))
            }
        }
    }
    if role == Role::Tool {
        msg.tool_call_id = opt_str(m, "tool_call_id")
            .map_err(|e| FieldError::field(format!("{field}.tool_call_id"), e.message))?
            .map(str::to_string);
    }
    // Only an answer that calls tools may go without text.
    let calls_only = role == Role::Assistant && !msg.tool_calls.is_empty();
    match m.get("content") {
        None if !calls_only => {
            return Err(FieldError::field(format!("{field}.content"), "missing"))
        }
        Some(Value::Null) if !calls_only => {
            return Err(FieldError::field(
                format!("{field}.content"),
                "null (only an assistant message with tool_calls may have no content)",
            ))
        }
        _ => {}
    }
    Ok(msg)
}

fn parse_message_list(v: &Value, key: &str, form: ArgsForm) -> Result<Vec<Msg>, FieldError> {
    let arr = v
        .get(key)
        .ok_or_else(|| FieldError::field(key, "missing"))?
        .as_array()
        .ok_or_else(|| FieldError::field(key, "expected an array of messages"))?;
    arr.iter()
        .enumerate()
        .map(|(i, m)| parse_message(m, &format!("{key}[{i}]"), form))
        .collect()
}

/// Gives every tool call an id and links tool results without one to the calls they
/// answer, in order.
pub fn link_tool_results(msgs: &mut [Msg]) {
    let mut pending: std::collections::VecDeque<String> = Default::default();
    let mut n = 0;
    for m in msgs.iter_mut() {
        match m.role {
            Role::Assistant => {
                pending.clear();
                for c in &mut m.tool_calls {
                    if c.id.is_empty() {
                        n += 1;
                        c.id = format!("call_{n}");
                    }
                    pending.push_back(c.id.clone());
                }
            }
            Role::Tool => {
                let next = pending.pop_front();
                if m.tool_call_id.is_none() {
                    m.tool_call_id = next;
                }
            }
            _ => {}
        }
    }
}

/// A leading system message becomes the record's system prompt.
fn split_system(mut msgs: Vec<Msg>) -> (String, Vec<Msg>) {
    if msgs.first().is_some_and(|m| m.role == Role::System) {
        let s = msgs.remove(0);
        (s.chat.content, msgs)
    } else {
        (String::new(), msgs)
    }
}

fn record(system: String, tools: Option<Value>, mut msgs: Vec<Msg>) -> Result<Record, FieldError> {
    link_tool_results(&mut msgs);
    let root = Item::chain(msgs).ok_or_else(|| FieldError::field("messages", "no messages"))?;
    Ok(Record {
        system,
        tools,
        roots: vec![root],
    })
}

fn parse_messages_record(v: &Value, form: ArgsForm) -> Result<Record, FieldError> {
    let msgs = parse_message_list(v, "messages", form)?;
    let (system, msgs) = split_system(msgs);
    record(system, tools_field(v, "tools")?, msgs)
}

/// A list of messages or a bare string (a user prompt or an assistant answer).
fn messages_or_string(v: &Value, key: &str, string_role: Role) -> Result<Vec<Msg>, FieldError> {
    match v.get(key) {
        Some(Value::String(s)) => Ok(vec![Msg::new(string_role, s.clone())]),
        Some(Value::Array(_)) => parse_message_list(v, key, ArgsForm::Either),
        Some(other) => Err(FieldError::field(
            key,
            format!("expected messages or a string, got {}", kind_of(other)),
        )),
        None => Err(FieldError::field(key, "missing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Node;

    #[test]
    fn hand_written_strings_and_messages_are_serdes_bytes() {
        // Every byte that escapes, next to clean runs of every length around the 8-byte
        // steps, and text that is not ASCII.
        let mut texts: Vec<String> = (0u8..0x80).map(|b| (b as char).to_string()).collect();
        for n in 0..20 {
            texts.push(format!(
                "{}\"{}\\{}\n",
                "a".repeat(n),
                "b".repeat(n % 9),
                "é".repeat(n % 5)
            ));
            texts.push(format!(
                "{}\u{1}\u{1f}\u{7f}ü→😀{}",
                "x".repeat(n),
                "\t".repeat(n % 3)
            ));
        }
        texts.push(String::new());
        for t in &texts {
            let mut out = Vec::new();
            push_json_str(&mut out, t);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(t).unwrap(),
                "{t:?}"
            );
        }
        let call = |id: &str| ToolCall {
            id: id.into(),
            name: "run_sql".into(),
            arguments: json!({"query": "SELECT \"a\"\n", "n": 3}),
        };
        let mut nodes = Vec::new();
        for (i, t) in texts.iter().enumerate().step_by(7) {
            let role = [Role::User, Role::Assistant, Role::Tool, Role::System][i % 4];
            let mut n = Node::new(1, role, t.clone());
            if i % 3 == 0 {
                n.tool_calls = vec![call("c1"), call("")];
                n.tool_call_id = Some(format!("c\"{i}"));
            }
            nodes.push(n);
        }
        let mut calls_only = Node::new(1, Role::Assistant, "");
        calls_only.tool_calls = vec![call("x")];
        nodes.push(calls_only);
        for n in &nodes {
            for weight in [None, Some(0), Some(1)] {
                for null_content in [true, false] {
                    let mut out = Vec::new();
                    push_oa_message(&mut out, n, weight, null_content);
                    let serde =
                        serde_json::to_string(&oa_message(n, weight, null_content)).unwrap();
                    assert_eq!(String::from_utf8(out).unwrap(), serde, "{n:?}");
                }
            }
        }
        let mut out = Vec::new();
        push_oa_system(&mut out, "be \"brief\"");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&json!({"role": "system", "content": "be \"brief\""})).unwrap()
        );
    }

    #[test]
    fn detects_formats_from_keys() {
        let cases = [
            (json!({"messages": []}), Format::Openai),
            (
                json!({"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}]}),
                Format::Trl,
            ),
            (json!({"conversations": []}), Format::Sharegpt),
            (json!({"instruction": "", "output": ""}), Format::Alpaca),
            (
                json!({"prompt": "", "chosen": "", "rejected": ""}),
                Format::TrlPreference,
            ),
            (
                json!({"prompt": "", "completion": "", "label": true}),
                Format::Kto,
            ),
            (
                json!({"prompt": "", "completion": ""}),
                Format::TrlPromptCompletion,
            ),
            (json!({"message_tree_id": "x", "prompt": {}}), Format::Oasst),
            (
                json!({"user_query": "", "model_response": ""}),
                Format::ToolCallsLog,
            ),
            (json!({"text": ""}), Format::Text),
        ];
        for (v, f) in cases {
            assert_eq!(detect(&v), Some(f), "{v}");
        }
        assert_eq!(detect(&json!({"foo": 1})), None);
    }

    #[test]
    fn openai_string_arguments_must_be_json_objects() {
        let bad = json!({"messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}
        ]});
        let e = parse(Format::Openai, &bad).unwrap_err();
        assert_eq!(e.kind, ProblemKind::ToolArguments);
        assert_eq!(e.field, "messages[1].tool_calls[0].function.arguments");
        let obj = json!({"messages": [
            {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]}
        ]});
        assert_eq!(
            parse(Format::Openai, &obj).unwrap_err().kind,
            ProblemKind::ToolArguments
        );
        assert!(parse(Format::Trl, &obj).is_ok());
    }

    #[test]
    fn unknown_role_names_the_field() {
        let v = json!({"messages": [{"role": "narrator", "content": "x"}]});
        let e = parse(Format::Openai, &v).unwrap_err();
        assert_eq!(e.kind, ProblemKind::UnknownRole);
        assert_eq!(e.field, "messages[0].role");
    }

    #[test]
    fn text_styles_of_the_seeds_parse() {
        let (sys, msgs) = parse_text_dialogue(
            "table: 1-1000181-1\ncolumns: State, Notes\nQ: Tell me the notes for South Australia \nA: SELECT Notes FROM t",
        )
        .unwrap();
        assert_eq!(sys, "table: 1-1000181-1\ncolumns: State, Notes");
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].content, "Tell me the notes for South Australia");
        assert_eq!(msgs[1].role, Role::Assistant);

        let (sys, msgs) = parse_text_dialogue(
            "System: You are Gilfoyle.\nHuman: what is the capital of China\nAI: It's Beijing.\nHuman: how about US?\nAI: Washington.",
        )
        .unwrap();
        assert_eq!(sys, "You are Gilfoyle.");
        assert_eq!(msgs.len(), 4);
        assert_eq!(msgs[3].content, "Washington.");
        assert!(parse_text_dialogue("just prose").is_none());
    }

    #[test]
    fn tool_log_line_becomes_call_result_and_rating() {
        let v = json!({
            "timestamp": "2025-11-16T13:10:33.85769013-05:00",
            "model": "qwen2.5-coder:3b",
            "user_query": "Check current users",
            "model_response": "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"run_commands\",\"arguments\":{\"command\":\"who\"}}}]}",
            "tool_name": "run_commands",
            "arguments": "{\"command\":\"who\"}",
            "status": "success",
            "output": "cal pts/0\n",
            "rating": 5
        });
        let r = parse(Format::ToolCallsLog, &v).unwrap();
        let paths = r.paths();
        let p = &paths[0];
        assert_eq!(p.len(), 3);
        assert_eq!(p[1].tool_calls[0].name, "run_commands");
        assert_eq!(p[1].tool_calls[0].arguments, json!({"command": "who"}));
        assert_eq!(p[1].ratings[0].stars, Some(5));
        assert_eq!(p[1].model.as_deref(), Some("qwen2.5-coder:3b"));
        assert_eq!(
            p[2].tool_call_id.as_deref(),
            Some(p[1].tool_calls[0].id.as_str())
        );
    }

    #[test]
    fn preference_becomes_rated_siblings() {
        let v = json!({"prompt": [{"role": "user", "content": "q"}],
                       "chosen": [{"role": "assistant", "content": "good"}],
                       "rejected": [{"role": "assistant", "content": "bad"}]});
        let r = parse(Format::TrlPreference, &v).unwrap();
        assert_eq!(r.roots.len(), 1);
        let kids = &r.roots[0].children;
        assert_eq!(kids.len(), 2);
        assert_eq!(kids[0].msg.ratings[0].stars, Some(5));
        assert_eq!(kids[1].msg.ratings[0].stars, Some(1));
    }
}
