//! The file formats, both ways: messages of the store as each format writes them, and
//! each format's records parsed back into [`Record`]s (for import and validate).

use super::{FieldError, FileRating, Format, Item, Msg, ProblemKind, Record};
use crate::domain::{Node, Origin, Role, ToolCall};
use serde_json::{json, Map, Value};

// ------------------------------------------------------------------ writing

/// Tool calls as OpenAI (and mlx-lm) want them: `arguments` a JSON string.
pub fn openai_tool_calls(calls: &[ToolCall]) -> Value {
    Value::Array(
        calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                json!({
                    "id": call_id(c, i),
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments.to_string()},
                })
            })
            .collect(),
    )
}

fn call_id(c: &ToolCall, i: usize) -> String {
    if c.id.is_empty() {
        format!("call_{i}")
    } else {
        c.id.clone()
    }
}

/// One message in OpenAI's chat fine-tuning shape, borrowing the node: what
/// [`push_oa_message`] writes, as a serde type (for [`openai_message`]).
#[derive(serde::Serialize)]
struct OaMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<OaCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weight: Option<u8>,
}

#[derive(serde::Serialize)]
struct OaCall<'a> {
    id: std::borrow::Cow<'a, str>,
    #[serde(rename = "type")]
    kind: &'static str,
    function: OaFunction<'a>,
}

#[derive(serde::Serialize)]
struct OaFunction<'a> {
    name: &'a str,
    /// JSON text of the arguments object (never an object, never encoded twice).
    arguments: String,
}

/// An assistant message that only calls tools: `content: null` for OpenAI (with
/// `null_content`) rather than `""` (what HF templates, so mlx-lm, need).
fn content_of(n: &Node, null_content: bool) -> Option<&str> {
    let calls_only = n.role == Role::Assistant && !n.tool_calls.is_empty() && n.content.is_empty();
    (!(calls_only && null_content)).then_some(n.content.as_str())
}

/// `weight` only on assistant messages; `null_content`: see [`content_of`].
fn oa_message(n: &Node, weight: Option<u8>, null_content: bool) -> OaMessage<'_> {
    OaMessage {
        role: n.role.as_str(),
        content: content_of(n, null_content),
        tool_calls: if n.role == Role::Assistant {
            n.tool_calls
                .iter()
                .enumerate()
                .map(|(i, c)| OaCall {
                    id: if c.id.is_empty() {
                        format!("call_{i}").into()
                    } else {
                        c.id.as_str().into()
                    },
                    kind: "function",
                    function: OaFunction {
                        name: &c.name,
                        arguments: c.arguments.to_string(),
                    },
                })
                .collect()
        } else {
            Vec::new()
        },
        tool_call_id: (n.role == Role::Tool)
            .then_some(n.tool_call_id.as_deref())
            .flatten(),
        weight: (n.role == Role::Assistant).then_some(weight).flatten(),
    }
}

/// How serde_json escapes each byte in a string: 0 = as it is, `u` = `\u00XX`, else the
/// letter after the backslash.
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Whether any of the 8 bytes in `w` may need escaping (a control byte, `"` or `\`);
/// never false when one does.
#[inline]
fn may_need_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_in = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    (w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0)
        || zero_in(w ^ (ONES * b'"' as u64))
        || zero_in(w ^ (ONES * b'\\' as u64))
}

/// Appends `s` as a JSON string, escaped byte for byte as serde_json escapes it (so
/// hand-written lines equal serde's), skipping clean text 8 bytes at a time.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        if let Some(chunk) = b.get(i..i + 8) {
            let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            if !may_need_escape(w) {
                i += 8;
                continue;
            }
        }
        let esc = ESCAPE[b[i] as usize];
        if esc != 0 {
            out.extend_from_slice(&b[start..i]);
            if esc == b'u' {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let c = b[i];
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(c >> 4) as usize],
                    HEX[(c & 0xf) as usize],
                ]);
            } else {
                out.extend_from_slice(&[b'\\', esc]);
            }
            start = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

/// Appends the system message of an OpenAI line.
pub fn push_oa_system(out: &mut Vec<u8>, content: &str) {
    out.extend_from_slice(br#"{"role":"system","content":"#);
    push_json_str(out, content);
    out.push(b'}');
}

/// Appends one message in OpenAI's chat fine-tuning shape: the same bytes serde writes
/// for [`openai_message`]'s fields (`role`, `content`, `tool_calls` with `arguments` a
/// JSON string, `tool_call_id`, `weight` on answers), without building anything. The
/// exporter's hot path.
pub fn push_oa_message(out: &mut Vec<u8>, n: &Node, weight: Option<u8>, null_content: bool) {
    out.extend_from_slice(br#"{"role":""#);
    out.extend_from_slice(n.role.as_str().as_bytes());
    out.extend_from_slice(br#"","content":"#);
    match content_of(n, null_content) {
        Some(c) => push_json_str(out, c),
        None => out.extend_from_slice(b"null"),
    }
    if n.role == Role::Assistant && !n.tool_calls.is_empty() {
        out.extend_from_slice(br#","tool_calls":["#);
        for (i, c) in n.tool_calls.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"id":"#);
            if c.id.is_empty() {
                push_json_str(out, &format!("call_{i}"));
            } else {
                push_json_str(out, &c.id);
            }
            out.extend_from_slice(br#","type":"function","function":{"name":"#);
            push_json_str(out, &c.name);
            out.extend_from_slice(br#","arguments":"#);
            push_json_str(out, &c.arguments.to_string());
            out.extend_from_slice(b"}}");
        }
        out.push(b']');
    }
    if n.role == Role::Tool {
        if let Some(id) = &n.tool_call_id {
            out.extend_from_slice(br#","tool_call_id":"#);
            push_json_str(out, id);
        }
    }
    if let (Role::Assistant, Some(w)) = (n.role, weight) {
        use std::io::Write;
        let _ = write!(out, r#","weight":{w}"#);
    }
    out.push(b'}');
}

/// One message in OpenAI's chat fine-tuning shape, as a JSON value.
pub fn openai_message(n: &Node, weight: Option<u8>) -> Value {
    serde_json::to_value(oa_message(n, weight, true)).expect("serialisable")
}

/// One message in TRL's conversational shape: tool-call `arguments` an object, tool
/// results carrying the called function's `name`.
pub fn trl_message(n: &Node, call_name: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert("role".into(), n.role.as_str().into());
    m.insert("content".into(), n.content.clone().into());
    if n.role == Role::Assistant && !n.tool_calls.is_empty() {
        m.insert(
            "tool_calls".into(),
            Value::Array(
                n.tool_calls
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        json!({
                            "id": call_id(c, i),
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments},
                        })
                    })
                    .collect(),
            ),
        );
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

// ------------------------------------------------------------------ reading

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
        (s.content, msgs)
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

fn parse_sharegpt(v: &Value) -> Result<Record, FieldError> {
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

fn parse_alpaca(v: &Value) -> Result<Record, FieldError> {
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

fn parse_preference(v: &Value) -> Result<Record, FieldError> {
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

fn parse_prompt_completion(v: &Value, kto: bool) -> Result<Record, FieldError> {
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

/// The tool-call log of seed 002: one JSON object per executed call, with the user's
/// query, the model's response (an assistant message as JSON text), the call, its
/// result and an optional 1-5 rating.
fn parse_tool_log(v: &Value) -> Result<Record, FieldError> {
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
    let created = opt_str(v, "timestamp")?.and_then(|t| super::parse_date(t, false).ok());
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

/// Markers of the plain-text styles users train on (seed 000): `System:/Human:/AI:`
/// (also `USER:/ASSISTANT:`) and `Q:/A:`. Text before the first marker is context
/// (e.g. a table schema) and becomes the system prompt.
pub fn parse_text_dialogue(text: &str) -> Option<(String, Vec<Msg>)> {
    const HUMAN_AI: &[(&str, Role)] = &[
        ("System:", Role::System),
        ("Human:", Role::User),
        ("AI:", Role::Assistant),
        ("USER:", Role::User),
        ("ASSISTANT:", Role::Assistant),
    ];
    const QA: &[(&str, Role)] = &[("Q:", Role::User), ("A:", Role::Assistant)];
    let starts = |markers: &[(&str, Role)]| {
        text.lines()
            .any(|l| markers[1..].iter().any(|(m, _)| l.starts_with(m)))
    };
    let markers = if starts(HUMAN_AI) {
        HUMAN_AI
    } else if starts(QA) {
        QA
    } else {
        return None;
    };
    let mut preamble = String::new();
    let mut msgs: Vec<Msg> = Vec::new();
    for line in text.split_inclusive('\n') {
        if let Some((m, role)) = markers.iter().find(|(m, _)| line.starts_with(m)) {
            let rest = line[m.len()..]
                .strip_prefix(' ')
                .unwrap_or(&line[m.len()..]);
            msgs.push(Msg::new(*role, rest));
        } else if let Some(last) = msgs.last_mut() {
            last.content.push_str(line);
        } else {
            preamble.push_str(line);
        }
    }
    for m in &mut msgs {
        m.content = m.content.trim().to_string();
    }
    let (mut system, msgs) = split_system(msgs);
    let preamble = preamble.trim();
    if !preamble.is_empty() {
        system = if system.is_empty() {
            preamble.to_string()
        } else {
            format!("{preamble}\n{system}")
        };
    }
    Some((system, msgs))
}

fn parse_text(v: &Value) -> Result<Record, FieldError> {
    let text = str_field(v, "text")?;
    let (system, msgs) = parse_text_dialogue(text).ok_or_else(|| {
        FieldError::field(
            "text",
            "no dialogue markers found (expected lines starting with Human:/AI:, USER:/ASSISTANT: or Q:/A:)",
        )
    })?;
    record(system, None, msgs)
}

/// OpenAssistant message trees (oasst2 `*.trees.jsonl`): `prompt` is the root message,
/// `replies` its children, `rank` their order (0 best). Arbor's own extension fields
/// (`arbor`) carry ratings per rater, tags, tool calls and the system prompt.
fn parse_oasst(v: &Value) -> Result<Record, FieldError> {
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

fn oasst_item(m: &Value, field: &str) -> Result<Item, FieldError> {
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
        .and_then(|d| super::parse_date(d, false).ok());
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

#[cfg(test)]
mod tests {
    use super::*;

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
