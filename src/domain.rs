//! Domain types shared by the store, the engine, the exporters and the UI.
//! Nothing here does IO.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

pub type ConversationId = i64;
pub type NodeId = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Written by the user in the composer.
    Typed,
    /// Produced by a model.
    Generated,
    /// A human edit of another node (see `edited_from`).
    Edited,
    /// Brought in by `arbor import`.
    Imported,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Complete,
    /// Being generated right now; a database reopened with this status left over was
    /// interrupted by a crash and is marked `Interrupted` on open.
    Streaming,
    Interrupted,
    Error,
}

macro_rules! str_enum {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
            pub const ALL: &'static [$t] = &[$(Self::$v),*];
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok(Self::$v),)*
                    other => Err(format!(
                        "unknown {} '{}' (expected one of: {})",
                        stringify!($t).to_lowercase(),
                        other,
                        [$($s),*].join(", ")
                    )),
                }
            }
        }
    };
}

str_enum!(Role { System => "system", User => "user", Assistant => "assistant", Tool => "tool" });
str_enum!(Origin { Typed => "typed", Generated => "generated", Edited => "edited", Imported => "imported" });
str_enum!(Status { Complete => "complete", Streaming => "streaming", Interrupted => "interrupted", Error => "error" });

/// A structured tool call on an assistant message. `arguments` is always a JSON
/// object here; exporters serialise it as each target format wants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: serde_json::Value,
}

/// Sampling parameters. Defaults come from config; a conversation may override them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sampling {
    pub temperature: f32,
    pub top_k: i32,
    pub top_p: f32,
    pub min_p: f32,
    pub repeat_penalty: f32,
    pub seed: u32,
    pub max_tokens: u32,
    pub stop: Vec<String>,
}

impl Sampling {
    /// Greedy decoding of at most `max_tokens` (reproducible answers in tests and
    /// benchmarks).
    pub fn greedy(max_tokens: u32) -> Self {
        Self {
            temperature: 0.0,
            max_tokens,
            ..Self::default()
        }
    }
}

impl Sampling {
    /// Every value in its range; `Err` names the first field that is not, with its range.
    /// Config, `sessions set`, `ask` flags and the studio's settings all call this.
    pub fn check(&self) -> Result<(), String> {
        self.check_field().map_err(|(_, m)| m)
    }

    /// [`Sampling::check`] with the name of the field that is out of range.
    pub fn check_field(&self) -> Result<(), (&'static str, String)> {
        let range = |name: &'static str, v: f32, lo: f32, hi: f32| {
            if v.is_finite() && v >= lo && v <= hi {
                Ok(())
            } else {
                Err((name, format!("{name} = {v} is out of range ({lo} to {hi})")))
            }
        };
        range("temperature", self.temperature, 0.0, 10.0)?;
        range("top_p", self.top_p, 0.0, 1.0)?;
        range("min_p", self.min_p, 0.0, 1.0)?;
        if !(self.repeat_penalty.is_finite()
            && self.repeat_penalty > 0.0
            && self.repeat_penalty <= 10.0)
        {
            return Err((
                "repeat_penalty",
                format!(
                    "repeat_penalty = {} is out of range (above 0, at most 10; 1 is off)",
                    self.repeat_penalty
                ),
            ));
        }
        if self.top_k < 0 {
            return Err((
                "top_k",
                format!(
                    "top_k = {} is out of range (0 is off, or a count)",
                    self.top_k
                ),
            ));
        }
        if self.max_tokens == 0 {
            return Err((
                "max_tokens",
                "max_tokens = 0 is out of range (at least 1)".into(),
            ));
        }
        Ok(())
    }
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            temperature: 0.7,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.1,
            seed: 42,
            max_tokens: 512,
            stop: Vec::new(),
        }
    }
}

/// What the engine reports about one finished generation; stored on the node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerationFacts {
    pub model: String,
    pub adapter: Option<String>,
    pub adapter_scale: Option<f32>,
    pub sampling: Option<Sampling>,
    pub prompt_tokens: u32,
    pub reused_tokens: u32,
    /// Whether the reused tokens' KV state was read from disk (a new process continuing
    /// a conversation) rather than found in memory.
    #[serde(default)]
    pub reused_from_disk: bool,
    pub generated_tokens: u32,
    pub ttft_ms: f64,
    pub tokens_per_s: f64,
    pub stop_reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub title: String,
    pub system_prompt: String,
    /// OpenAI `tools` array, if the conversation defines tools.
    pub tools: Option<serde_json::Value>,
    pub settings: Option<serde_json::Value>,
    pub active_root_id: Option<NodeId>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub id: NodeId,
    pub conversation_id: ConversationId,
    pub parent_id: Option<NodeId>,
    pub role: Role,
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub tool_call_id: Option<String>,
    pub origin: Origin,
    pub edited_from: Option<NodeId>,
    pub active_child_id: Option<NodeId>,
    pub status: Status,
    pub model: Option<String>,
    pub adapter: Option<String>,
    pub adapter_scale: Option<f64>,
    pub sampling: Option<serde_json::Value>,
    pub prompt_tokens: Option<i64>,
    pub reused_tokens: Option<i64>,
    pub generated_tokens: Option<i64>,
    pub ttft_ms: Option<f64>,
    pub tokens_per_s: Option<f64>,
    pub stop_reason: Option<String>,
    pub error: Option<String>,
    pub created_at: i64,
    /// The rated answers put into the prompt as few-shot examples for this answer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub few_shot: Vec<NodeId>,
}

impl Node {
    /// A complete, typed message of `conversation` with no id, parent or generation facts
    /// yet; fill in the rest with struct update syntax.
    pub fn new(conversation_id: ConversationId, role: Role, content: impl Into<String>) -> Self {
        Self {
            id: 0,
            conversation_id,
            parent_id: None,
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            origin: Origin::Typed,
            edited_from: None,
            active_child_id: None,
            status: Status::Complete,
            model: None,
            adapter: None,
            adapter_scale: None,
            sampling: None,
            prompt_tokens: None,
            reused_tokens: None,
            generated_tokens: None,
            ttft_ms: None,
            tokens_per_s: None,
            stop_reason: None,
            error: None,
            created_at: 0,
            few_shot: Vec::new(),
        }
    }
}

/// A message to add to a tree.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNode {
    pub role: Role,
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub tool_call_id: Option<String>,
    pub origin: Origin,
    pub status: Status,
    /// For a generated answer: the rated answers its prompt carried as examples.
    pub few_shot: Vec<NodeId>,
}

impl NewNode {
    pub fn new(role: Role, content: impl Into<String>, origin: Origin) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            origin,
            status: Status::Complete,
            few_shot: Vec::new(),
        }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content, Origin::Typed)
    }
    pub fn assistant(content: impl Into<String>, origin: Origin) -> Self {
        Self::new(Role::Assistant, content, origin)
    }
}

/// One rater's judgement of a node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rating {
    pub node_id: NodeId,
    pub rater: String,
    pub stars: Option<u8>,
    pub critique: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationSummary {
    pub id: ConversationId,
    pub title: String,
    pub updated_at: i64,
    pub messages: i64,
    pub rated: i64,
    pub avg_stars: Option<f64>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    pub conversation_id: ConversationId,
    pub node_id: NodeId,
    pub role: Role,
    pub snippet: String,
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM` (UTC), as lists show times.
pub fn minute_of(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]"
            ))
            .ok()
        })
        .unwrap_or_default()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Whether and how the model must call a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolChoice {
    /// The model decides; once it starts a call, the grammar (when on) keeps it valid.
    #[default]
    Auto,
    /// The answer must be a tool call. As a conversation's setting it applies to answers
    /// to user messages only (after tool results the model answers freely, or the chain
    /// would never end); `ask --tool-choice required` forces this one answer.
    Required,
    /// Tools stay in the prompt but no call is constrained.
    None,
}

impl std::str::FromStr for ToolChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "required" => Ok(Self::Required),
            "none" => Ok(Self::None),
            o => Err(format!(
                "unknown tool choice '{o}' (expected auto, required or none)"
            )),
        }
    }
}

/// One message as templates see it (Hugging Face's dict shape).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// `json.dumps(v, ensure_ascii=False)` formatting: `", "` and `": "` separators.
pub fn python_json(v: &serde_json::Value) -> String {
    let mut out = String::new();
    write_py(v, &mut out);
    out
}

fn write_py(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value as J;
    match v {
        J::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_py(x, out);
            }
            out.push(']');
        }
        J::Object(o) => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push_str(": ");
                write_py(x, out);
            }
            out.push('}');
        }
        other => out.push_str(&serde_json::to_string(other).unwrap_or_default()),
    }
}
