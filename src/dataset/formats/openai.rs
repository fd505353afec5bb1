//! OpenAI chat messages (`openai`, the `messages` records of `trl`/`mlx`): writing.

use crate::domain::{Node, Role, ToolCall};
use serde_json::{json, Value};

/// Tool calls as OpenAI (and mlx-lm) want them: `arguments` a JSON string.
pub fn openai_tool_calls(calls: &[ToolCall]) -> Value {
    tool_calls_json(calls, true)
}

/// Tool calls in the OpenAI shape (`id`, `type`, `function: {name, arguments}`), each
/// with an id; `arguments` a JSON string (OpenAI, mlx-lm) or the object itself (TRL).
pub(super) fn tool_calls_json(calls: &[ToolCall], arguments_as_text: bool) -> Value {
    Value::Array(
        calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let arguments = if arguments_as_text {
                    c.arguments.to_string().into()
                } else {
                    c.arguments.clone()
                };
                json!({
                    "id": call_id(c, i),
                    "type": "function",
                    "function": {"name": c.name, "arguments": arguments},
                })
            })
            .collect(),
    )
}

pub(super) fn call_id(c: &ToolCall, i: usize) -> String {
    if c.id.is_empty() {
        format!("call_{i}")
    } else {
        c.id.clone()
    }
}

/// One message in OpenAI's chat fine-tuning shape, borrowing the node: what
/// [`push_oa_message`] writes, as a serde type (for [`openai_message`]).
#[derive(serde::Serialize)]
pub(super) struct OaMessage<'a> {
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
pub(super) struct OaCall<'a> {
    id: std::borrow::Cow<'a, str>,
    #[serde(rename = "type")]
    kind: &'static str,
    function: OaFunction<'a>,
}

#[derive(serde::Serialize)]
pub(super) struct OaFunction<'a> {
    name: &'a str,
    /// JSON text of the arguments object (never an object, never encoded twice).
    arguments: String,
}

/// An assistant message that only calls tools: `content: null` for OpenAI (with
/// `null_content`) rather than `""` (what HF templates, so mlx-lm, need).
pub(super) fn content_of(n: &Node, null_content: bool) -> Option<&str> {
    let calls_only = n.role == Role::Assistant && !n.tool_calls.is_empty() && n.content.is_empty();
    (!(calls_only && null_content)).then_some(n.content.as_str())
}

/// `weight` only on assistant messages; `null_content`: see [`content_of`].
pub(super) fn oa_message(n: &Node, weight: Option<u8>, null_content: bool) -> OaMessage<'_> {
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

/// One message in OpenAI's chat fine-tuning shape, as a JSON value.
pub fn openai_message(n: &Node, weight: Option<u8>) -> Value {
    serde_json::to_value(oa_message(n, weight, true)).expect("serialisable")
}
