//! Tool calling: reading tool calls out of model text (Hermes/Qwen `<tool_call>` blocks,
//! Llama 3 JSON, plain JSON objects), the JSON schema that constrains them, putting the
//! tools into a prompt whose template has no tool support, and which calls of a path
//! still wait for their results. Nothing here does IO.

use crate::domain::ChatMessage;
use crate::domain::{Role, ToolCall};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Why a `tools` array or a call does not hold (always bad input; the message names the
/// entry and the field).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ToolsError(pub String);

impl From<String> for ToolsError {
    fn from(m: String) -> Self {
        ToolsError(m)
    }
}

impl From<&str> for ToolsError {
    fn from(m: &str) -> Self {
        ToolsError(m.to_string())
    }
}

/// The message, as text.
impl std::ops::Deref for ToolsError {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<ToolsError> for String {
    fn from(e: ToolsError) -> Self {
        e.0
    }
}

/// The tools of an OpenAI `tools` array, by name, with a validator of their parameters.
pub struct ToolSet {
    tools: HashMap<String, Option<jsonschema::Validator>>,
}

impl ToolSet {
    /// Checks a `tools` array: each entry `{type: function, function: {name, parameters}}`
    /// (or the bare function) with a valid JSON schema. The error names the field.
    pub fn new(tools: &Value) -> Result<Self, ToolsError> {
        let arr = tools
            .as_array()
            .ok_or("tools must be a JSON array of tool definitions")?;
        let mut out = HashMap::new();
        for (i, t) in arr.iter().enumerate() {
            let f = t.get("function").unwrap_or(t);
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| format!("tools[{i}].function.name: missing"))?;
            let validator = match f.get("parameters") {
                None | Some(Value::Null) => None,
                Some(schema) => Some(jsonschema::validator_for(schema).map_err(|e| {
                    format!("tools[{i}].function.parameters ({name}): not a valid JSON schema: {e}")
                })?),
            };
            out.insert(name.to_string(), validator);
        }
        Ok(Self { tools: out })
    }

    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.tools.keys().map(String::as_str).collect();
        v.sort();
        v
    }

    /// Checks one call: a known tool, arguments valid against its schema.
    pub fn check_call(&self, name: &str, args: &Value) -> Result<(), CallError> {
        match self.tools.get(name) {
            None => Err(CallError::UnknownTool(format!(
                "unknown tool '{name}' (defined: {})",
                self.names().join(", ")
            ))),
            Some(None) => Ok(()),
            Some(Some(v)) => {
                let errors: Vec<String> = v.iter_errors(args).map(|e| e.to_string()).collect();
                if errors.is_empty() {
                    Ok(())
                } else {
                    Err(CallError::BadArguments(format!(
                        "arguments of '{name}' do not match its schema: {}",
                        errors.join("; ")
                    )))
                }
            }
        }
    }
}

/// Why a call does not fit the tools.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    UnknownTool(String),
    BadArguments(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownTool(m) | Self::BadArguments(m) => f.write_str(m),
        }
    }
}

/// How a template writes tool calls, which decides what the grammar and parser expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolSyntax {
    /// `<tool_call>{"name": …, "arguments": {…}}</tool_call>` (Hermes, Qwen, SmolLM3, and
    /// Arbor's own prompt for templates without tool support).
    Hermes,
    /// A bare `{"name": …, "parameters": {…}}` object (Llama 3.1+).
    Llama3,
}

impl ToolSyntax {
    /// The syntax a template's text uses. Templates that never mention tools get the
    /// Hermes prompt from [`with_tools_in_prompt`].
    pub fn of_template(template: &str) -> Self {
        if !template.contains("<tool_call>")
            && (template.contains("<|python_tag|>") || template.contains("\"parameters\""))
        {
            Self::Llama3
        } else {
            Self::Hermes
        }
    }

    fn arguments_key(self) -> &'static str {
        match self {
            Self::Hermes => "arguments",
            Self::Llama3 => "parameters",
        }
    }

    /// The text that starts a call (the lazy grammar's trigger).
    pub fn trigger(self) -> &'static str {
        match self {
            Self::Hermes => "<tool_call>",
            Self::Llama3 => "{\"name\"",
        }
    }
}

/// Whether a chat template renders the `tools` it is given.
pub fn template_handles_tools(template: &str) -> bool {
    template.contains("tools")
}

/// The JSON schema of one call in `syntax`: one of the tools, by name, with arguments
/// that follow that tool's parameters schema.
pub fn call_schema(tools: &Value, syntax: ToolSyntax) -> Result<Value, ToolsError> {
    ToolSet::new(tools)?; // names present, schemas valid
    let key = syntax.arguments_key();
    let alternatives: Vec<Value> = tools
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let f = t.get("function").unwrap_or(t);
            let params = match f.get("parameters") {
                Some(p) if !p.is_null() => p.clone(),
                _ => json!({"type": "object"}),
            };
            json!({
                "type": "object",
                "properties": { "name": {"const": f["name"]}, key: params },
                "required": ["name", key],
                "additionalProperties": false,
            })
        })
        .collect();
    if alternatives.is_empty() {
        return Err("the tools array is empty".into());
    }
    Ok(if alternatives.len() == 1 {
        alternatives.into_iter().next().expect("one")
    } else {
        json!({ "anyOf": alternatives })
    })
}

/// Longest string argument the grammar lets a model write when the schema sets no
/// `maxLength`: half the answer's token budget (a token is at least a character), 32 to
/// 400 characters, so a small model that never closes its string still ends in a valid
/// call before `max_tokens` cuts it.
pub fn grammar_max_string(max_tokens: u32) -> u64 {
    u64::from(max_tokens / 2).clamp(32, 400)
}

/// Sets `maxLength` on every plain string schema inside `schema` that has none.
pub fn cap_strings(schema: &mut Value, max: u64) {
    match schema {
        Value::Object(o) => {
            let plain_string = o.get("type").and_then(Value::as_str) == Some("string")
                && !["maxLength", "enum", "const", "pattern", "format"]
                    .iter()
                    .any(|k| o.contains_key(*k));
            if plain_string {
                o.insert("maxLength".into(), max.into());
            }
            for v in o.values_mut() {
                cap_strings(v, max);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|v| cap_strings(v, max)),
        _ => {}
    }
}

/// Checks a `tools` array as the settings popup and `--tools` take it. The error names
/// the field.
pub fn check_tools(tools: &Value) -> Result<(), ToolsError> {
    let arr = tools
        .as_array()
        .ok_or("tools must be a JSON array of tool definitions")?;
    for (i, t) in arr.iter().enumerate() {
        if let Some(ty) = t.get("type") {
            if ty != "function" {
                return Err(format!("tools[{i}].type: expected \"function\", found {ty}").into());
            }
        }
        let f = t.get("function").unwrap_or(t);
        if let Some(p) = f.get("parameters") {
            if !p.is_null() && p.get("type").and_then(Value::as_str) != Some("object") {
                return Err(format!(
                    "tools[{i}].function.parameters: must be a JSON schema with \"type\": \"object\""
                )
                .into());
            }
        }
    }
    ToolSet::new(tools).map(|_| ())
}

/// What was read out of a model's text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    /// The text outside the calls (trimmed); unreadable call blocks stay in it verbatim.
    pub content: String,
    pub calls: Vec<ToolCall>,
    /// Why a block that looked like a call could not be read.
    pub errors: Vec<String>,
}

/// Reads the tool calls out of `text`. `<tool_call>` blocks are always read; a Llama 3
/// `<|python_tag|>` or a text that is nothing but JSON call object(s) counts only when
/// the name is one of `tools` (an answer that happens to be JSON stays an answer).
pub fn parse(text: &str, tools: Option<&Value>) -> Parsed {
    let known = |name: &str| {
        tools.and_then(Value::as_array).is_some_and(|a| {
            a.iter()
                .any(|t| t.get("function").unwrap_or(t)["name"] == name)
        })
    };
    let mut out = Parsed::default();
    if text.contains("<tool_call>") {
        let mut rest = text;
        let mut content = String::new();
        while let Some(start) = rest.find("<tool_call>") {
            content.push_str(&rest[..start]);
            let after = &rest[start + "<tool_call>".len()..];
            // The block ends after its JSON value (a string inside may hold
            // `</tool_call>`), else at the first closing tag, else at the end.
            let json_end = {
                let trimmed = after.trim_start();
                let lead = after.len() - trimmed.len();
                let mut it = serde_json::Deserializer::from_str(trimmed).into_iter::<Value>();
                match it.next() {
                    Some(Ok(_)) => {
                        let end = lead + it.byte_offset();
                        after[end..]
                            .trim_start()
                            .starts_with("</tool_call>")
                            .then_some(end)
                    }
                    _ => None,
                }
            };
            let (body, next) = match json_end {
                Some(end) => {
                    let tail = after[end..].trim_start();
                    (&after[..end], &tail["</tool_call>".len()..])
                }
                None => match after.find("</tool_call>") {
                    Some(end) => (&after[..end], &after[end + "</tool_call>".len()..]),
                    None => (after, ""),
                },
            };
            if body.trim().is_empty() {
                // `<tool_call></tool_call>` named in prose: text, not a call.
                content.push_str(&rest[start..rest.len() - next.len()]);
                rest = next;
                continue;
            }
            match call_from_json_text(body) {
                Ok(c) => out.calls.push(c),
                Err(e) => {
                    out.errors.push(format!(
                        "tool call {}: {e}",
                        out.calls.len() + out.errors.len() + 1
                    ));
                    content.push_str(&rest[start..rest.len() - next.len()]);
                }
            }
            rest = next;
        }
        content.push_str(rest);
        out.content = content.trim().to_string();
    } else {
        let trimmed = text.trim();
        let (body, prefix) = match trimmed.find("<|python_tag|>") {
            Some(i) => (&trimmed[i + "<|python_tag|>".len()..], &trimmed[..i]),
            None => (strip_fence(trimmed), ""),
        };
        let calls = json_calls(body);
        match calls {
            Some(calls) if !calls.is_empty() && calls.iter().all(|c| known(&c.name)) => {
                out.calls = calls;
                out.content = prefix.trim().to_string();
            }
            _ => out.content = trimmed.to_string(),
        }
    }
    for (i, c) in out.calls.iter_mut().enumerate() {
        c.id = new_call_id(text, i);
    }
    out
}

/// ```` ```json … ``` ```` around a whole answer.
fn strip_fence(s: &str) -> &str {
    let Some(inner) = s.strip_prefix("```") else {
        return s;
    };
    let inner = inner.strip_suffix("```").unwrap_or(inner);
    match inner.find('\n') {
        Some(nl) if !inner[..nl].contains('{') => inner[nl + 1..].trim(),
        _ => inner.trim(),
    }
}

/// One or more calls written as JSON: an object, an array of objects, objects separated
/// by `;` or new lines (Llama 3 parallel calls), or `{"tool_calls": [...]}`.
fn json_calls(body: &str) -> Option<Vec<ToolCall>> {
    let body = body.trim();
    if !body.starts_with('{') && !body.starts_with('[') {
        return None;
    }
    let mut values = Vec::new();
    for v in serde_json::Deserializer::from_str(body).into_iter::<Value>() {
        match v {
            Ok(v) => values.push(v),
            Err(_) => {
                // `{…}; {…}`: split on the separators and read each.
                values.clear();
                for part in body.split(';') {
                    values.push(serde_json::from_str::<Value>(part.trim()).ok()?);
                }
                break;
            }
        }
    }
    let mut objects = Vec::new();
    for v in values {
        match v {
            Value::Array(a) => objects.extend(a),
            Value::Object(ref o) if o.get("tool_calls").is_some_and(Value::is_array) => {
                objects.extend(o["tool_calls"].as_array().cloned().unwrap_or_default())
            }
            o => objects.push(o),
        }
    }
    objects.iter().map(|o| call_from_value(o).ok()).collect()
}

fn call_from_json_text(body: &str) -> Result<ToolCall, String> {
    let body = body.trim();
    let v: Value = serde_json::from_str(body).map_err(|e| format!("invalid JSON: {e}"))?;
    call_from_value(&v)
}

/// `{name, arguments|parameters}` or OpenAI's `{type, function: {name, arguments}}`;
/// arguments given as a JSON string are decoded to the object.
fn call_from_value(v: &Value) -> Result<ToolCall, String> {
    let f = v.get("function").filter(|f| f.is_object()).unwrap_or(v);
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or("no \"name\"")?;
    let args = f
        .get("arguments")
        .or_else(|| f.get("parameters"))
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let args = match args {
        Value::String(s) => serde_json::from_str::<Value>(&s)
            .map_err(|e| format!("arguments of '{name}' are not valid JSON: {e}"))?,
        a => a,
    };
    if !args.is_object() {
        return Err(format!("arguments of '{name}' are not a JSON object"));
    }
    Ok(ToolCall {
        id: v
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        name: name.to_string(),
        arguments: args,
    })
}

/// A call id unique enough within a conversation: `call_` and 12 hex digits.
fn new_call_id(text: &str, index: usize) -> String {
    use sha2::Digest;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = sha2::Sha256::new();
    h.update(text.as_bytes());
    h.update(index.to_le_bytes());
    h.update(nanos.to_le_bytes());
    let d = h.finalize();
    format!(
        "call_{}",
        d[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// `get_weather(city=Paris, unit=celsius)`: how a call reads on screen.
pub fn describe(call: &ToolCall) -> String {
    let args = match &call.arguments {
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let short: String = v.chars().take(40).collect();
                let ell = if v.chars().count() > 40 { "…" } else { "" };
                format!("{k}={short}{ell}")
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    };
    format!("{}({args})", call.name)
}

/// The calls at the end of a path still waiting for a result: those of the last
/// assistant message, minus the ones tool messages after it answer. Empty once a user
/// message follows.
pub fn pending<'a, I>(path: I) -> Vec<ToolCall>
where
    I: IntoIterator<Item = &'a crate::domain::Node>,
    I::IntoIter: DoubleEndedIterator,
{
    let mut answered = Vec::new();
    for n in path.into_iter().rev() {
        match n.role {
            Role::Tool => answered.extend(n.tool_call_id.clone()),
            Role::Assistant if !n.tool_calls.is_empty() => {
                return n
                    .tool_calls
                    .iter()
                    .filter(|c| !answered.contains(&c.id))
                    .cloned()
                    .collect();
            }
            _ => return Vec::new(),
        }
    }
    Vec::new()
}

/// The tool-call block of one call as the Hermes syntax writes it (used for templates
/// without tool support and in the editor).
pub fn hermes_block(call: &ToolCall) -> String {
    format!(
        "<tool_call>\n{}\n</tool_call>",
        json!({"name": call.name, "arguments": call.arguments})
    )
}

/// For a template that never mentions tools: the messages with the tools described in
/// the system prompt (Hermes style), past calls written as `<tool_call>` blocks and
/// results as `<tool_response>` user turns (consecutive results in one turn, so
/// templates that insist on alternating roles still render).
pub fn with_tools_in_prompt(messages: &[ChatMessage], tools: &Value) -> Vec<ChatMessage> {
    let mut block = String::from(
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n\
         You are provided with function signatures within <tools></tools> XML tags:\n<tools>",
    );
    for t in tools.as_array().into_iter().flatten() {
        block.push('\n');
        block.push_str(&crate::domain::python_json(t));
    }
    block.push_str(
        "\n</tools>\n\nFor each function call, return a json object with function name and \
         arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n\
         {\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>",
    );
    let mut out: Vec<ChatMessage> = Vec::with_capacity(messages.len() + 1);
    match messages.first() {
        Some(m) if m.role == Role::System => out.push(ChatMessage::new(
            Role::System,
            format!("{}\n\n{block}", m.content),
        )),
        _ => out.push(ChatMessage::new(Role::System, block)),
    }
    let skip = usize::from(messages.first().is_some_and(|m| m.role == Role::System));
    for m in &messages[skip..] {
        match m.role {
            Role::Assistant if !m.tool_calls.is_empty() => {
                let mut text = m.content.trim().to_string();
                for c in &m.tool_calls {
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(&hermes_block(c));
                }
                out.push(ChatMessage::new(Role::Assistant, text));
            }
            Role::Tool => {
                let piece = format!("<tool_response>\n{}\n</tool_response>", m.content);
                match out.last_mut() {
                    Some(prev)
                        if prev.role == Role::User
                            && prev.content.ends_with("</tool_response>") =>
                    {
                        prev.content.push('\n');
                        prev.content.push_str(&piece);
                    }
                    _ => out.push(ChatMessage::new(Role::User, piece)),
                }
            }
            _ => out.push(m.clone()),
        }
    }
    out
}

/// The editor's text for an assistant message: its text, then each call as a block.
pub fn editable(content: &str, calls: &[ToolCall]) -> String {
    let mut s = content.to_string();
    for c in calls {
        if !s.is_empty() {
            s.push('\n');
        }
        s.push_str(&hermes_block(c));
    }
    s
}

/// Reads an edited assistant message back: text and calls, each call checked against
/// the conversation's tools. Existing call ids are kept by position.
pub fn from_edit(
    text: &str,
    tools: Option<&Value>,
    old: &[ToolCall],
) -> Result<(String, Vec<ToolCall>), String> {
    let p = parse(text, tools);
    if let Some(e) = p.errors.first() {
        return Err(e.clone());
    }
    if !p.calls.is_empty() {
        let set = match tools {
            Some(t) => Some(ToolSet::new(t)?),
            None => None,
        };
        for c in &p.calls {
            if let Some(set) = &set {
                set.check_call(&c.name, &c.arguments)
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    let calls = p
        .calls
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            if let Some(o) = old.get(i) {
                c.id = o.id.clone();
            }
            c
        })
        .collect();
    Ok((p.content, calls))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Node;

    fn tools() -> Value {
        json!([
            {"type": "function", "function": {"name": "get_weather", "parameters": {
                "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
            {"type": "function", "function": {"name": "run_sql", "parameters": {
                "type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}
        ])
    }

    #[test]
    fn hermes_blocks_are_read_and_removed_from_the_text() {
        let p = parse(
            "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>{\"name\": \"run_sql\", \"arguments\": \"{\\\"query\\\": \\\"SELECT 1\\\"}\"}</tool_call>",
            Some(&tools()),
        );
        assert_eq!(p.content, "Let me check.");
        assert_eq!(p.calls.len(), 2);
        assert_eq!(p.calls[0].name, "get_weather");
        assert_eq!(p.calls[0].arguments, json!({"city": "Paris"}));
        // Arguments given as a JSON string become the object.
        assert_eq!(p.calls[1].arguments, json!({"query": "SELECT 1"}));
        assert!(p.calls[0].id.starts_with("call_") && p.calls[0].id != p.calls[1].id);
        assert!(p.errors.is_empty());
    }

    #[test]
    fn a_closing_tag_inside_a_string_does_not_end_the_block() {
        let text = "<tool_call>\n{\"name\": \"run_sql\", \"arguments\": {\"query\": \"])</tool_call><b x=\"}}\n</tool_call> done";
        let p = parse(text, Some(&tools()));
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.calls[0].arguments["query"], "])</tool_call><b x=");
        assert_eq!(p.content, "done");
    }

    #[test]
    fn tags_named_in_prose_are_not_calls() {
        let text = "Wrap calls in <tool_call></tool_call> tags, like this.";
        let p = parse(text, Some(&tools()));
        assert!(p.calls.is_empty() && p.errors.is_empty());
        assert_eq!(p.content, text);
        assert_eq!(grammar_max_string(512), 256);
        assert_eq!(grammar_max_string(16), 32);
        assert_eq!(grammar_max_string(4096), 400);
    }

    #[test]
    fn an_unclosed_block_at_the_end_still_counts_and_bad_json_stays_as_text() {
        let p = parse(
            "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}",
            None,
        );
        assert_eq!(p.calls.len(), 1);
        let bad = "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": }</tool_call>";
        let p = parse(bad, Some(&tools()));
        assert!(p.calls.is_empty());
        assert_eq!(p.content, bad);
        assert!(p.errors[0].contains("invalid JSON"), "{:?}", p.errors);
    }

    #[test]
    fn llama3_and_plain_json_calls_need_a_known_tool_name() {
        let p = parse(
            "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\"}}",
            Some(&tools()),
        );
        assert_eq!(p.calls[0].arguments, json!({"city": "Rome"}));
        let p = parse(
            "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"A\"}}; {\"name\": \"run_sql\", \"parameters\": {\"query\": \"q\"}}",
            Some(&tools()),
        );
        assert_eq!(p.calls.len(), 2);
        assert_eq!(p.content, "");
        let p = parse(
            "```json\n[{\"name\": \"run_sql\", \"arguments\": {\"query\": \"q\"}}]\n```",
            Some(&tools()),
        );
        assert_eq!(p.calls.len(), 1);
        // JSON that is an answer, not a call, stays an answer.
        let answer = "{\"name\": \"Alice\", \"age\": 3}";
        let p = parse(answer, Some(&tools()));
        assert!(p.calls.is_empty());
        assert_eq!(p.content, answer);
        assert!(
            parse("{\"name\": \"get_weather\", \"arguments\": {}}", None)
                .calls
                .is_empty()
        );
    }

    #[test]
    fn pending_calls_are_those_without_a_result_yet() {
        let calls = vec![
            ToolCall {
                id: "a".into(),
                name: "get_weather".into(),
                arguments: json!({"city": "Paris"}),
            },
            ToolCall {
                id: "b".into(),
                name: "get_weather".into(),
                arguments: json!({"city": "Rome"}),
            },
        ];
        let user = Node::new(1, Role::User, "weather?");
        let asst = Node {
            tool_calls: calls.clone(),
            ..Node::new(1, Role::Assistant, "")
        };
        let res_a = Node {
            tool_call_id: Some("a".into()),
            ..Node::new(1, Role::Tool, "12C")
        };
        assert_eq!(pending(&[user.clone(), asst.clone()]), calls);
        assert_eq!(
            pending(&[user.clone(), asst.clone(), res_a.clone()]),
            vec![calls[1].clone()]
        );
        let res_b = Node {
            tool_call_id: Some("b".into()),
            ..Node::new(1, Role::Tool, "20C")
        };
        assert!(pending(&[user.clone(), asst.clone(), res_a, res_b]).is_empty());
        assert!(pending(&[user]).is_empty());
        assert_eq!(describe(&calls[0]), "get_weather(city=Paris)");
    }

    #[test]
    fn tools_go_into_the_system_prompt_for_templates_without_tool_support() {
        let call = ToolCall {
            id: "a".into(),
            name: "get_weather".into(),
            arguments: json!({"city": "Paris"}),
        };
        let msgs = vec![
            ChatMessage::new(Role::System, "Be brief."),
            ChatMessage::new(Role::User, "weather in Paris and Rome?"),
            ChatMessage {
                tool_calls: vec![call.clone(), call],
                ..ChatMessage::new(Role::Assistant, "")
            },
            ChatMessage {
                tool_call_id: Some("a".into()),
                ..ChatMessage::new(Role::Tool, "12C")
            },
            ChatMessage {
                tool_call_id: Some("a".into()),
                ..ChatMessage::new(Role::Tool, "20C")
            },
        ];
        let out = with_tools_in_prompt(&msgs, &tools());
        assert_eq!(out.len(), 4, "{out:?}");
        assert!(out[0].content.starts_with("Be brief.\n\n# Tools"));
        assert!(out[0].content.contains("\"name\": \"run_sql\""));
        assert_eq!(out[2].content.matches("<tool_call>").count(), 2);
        assert_eq!(out[3].role, Role::User);
        assert_eq!(out[3].content.matches("<tool_response>").count(), 2);
    }

    #[test]
    fn the_call_schema_names_each_tool_and_its_arguments() {
        let s = call_schema(&tools(), ToolSyntax::Hermes).unwrap();
        assert_eq!(s["anyOf"][1]["properties"]["name"]["const"], "run_sql");
        assert_eq!(
            s["anyOf"][0]["properties"]["arguments"]["required"],
            json!(["city"])
        );
        let s = call_schema(&json!([tools()[0]]), ToolSyntax::Llama3).unwrap();
        assert!(s["properties"]["parameters"].is_object());
        assert!(call_schema(
            &json!([{"function": {"parameters": {}}}]),
            ToolSyntax::Hermes
        )
        .is_err());
    }

    #[test]
    fn schema_checks_required_fields_and_names() {
        let ts = ToolSet::new(&tools()).unwrap();
        assert!(ts
            .check_call("get_weather", &json!({"city": "Paris"}))
            .is_ok());
        match ts.check_call("get_weather", &json!({})).unwrap_err() {
            CallError::BadArguments(m) => assert!(m.contains("city"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            ts.check_call("nope", &json!({})).unwrap_err(),
            CallError::UnknownTool(_)
        ));
        assert!(
            ToolSet::new(&json!([{"function": {"name": "x", "parameters": {"type": 12}}}]))
                .is_err()
        );
    }

    #[test]
    fn plain_strings_get_a_length_cap_for_the_grammar() {
        let mut s = call_schema(&tools(), ToolSyntax::Hermes).unwrap();
        cap_strings(&mut s, 10);
        assert_eq!(
            s["anyOf"][0]["properties"]["arguments"]["properties"]["city"]["maxLength"],
            10
        );
        // The tool name is a const: untouched.
        assert!(s["anyOf"][0]["properties"]["name"]
            .get("maxLength")
            .is_none());
    }

    #[test]
    fn tool_definitions_are_checked_field_by_field() {
        assert!(check_tools(&tools()).is_ok());
        assert!(check_tools(&json!({"a": 1}))
            .unwrap_err()
            .contains("JSON array"));
        let e = check_tools(&json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}])).unwrap_err();
        assert!(e.contains("tools[0].function.parameters"), "{e}");
        let e = check_tools(
            &json!([{"type": "function", "function": {"parameters": {"type": "object"}}}]),
        )
        .unwrap_err();
        assert!(e.contains("tools[0].function.name"), "{e}");
        let e = check_tools(&json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "nonsense"}}}}}])).unwrap_err();
        assert!(e.contains("not a valid JSON schema"), "{e}");
    }

    #[test]
    fn edits_are_read_back_and_checked_against_the_schema() {
        let old = vec![ToolCall {
            id: "keep".into(),
            name: "get_weather".into(),
            arguments: json!({"city": "Paris"}),
        }];
        let text = editable("On it.", &old).replace("Paris", "Lyon");
        let (content, calls) = from_edit(&text, Some(&tools()), &old).unwrap();
        assert_eq!(content, "On it.");
        assert_eq!(calls[0].id, "keep");
        assert_eq!(calls[0].arguments["city"], "Lyon");
        let bad = editable("", &old).replace("\"city\"", "\"town\"");
        let e = from_edit(&bad, Some(&tools()), &old).unwrap_err();
        assert!(e.contains("do not match its schema"), "{e}");
    }
}
