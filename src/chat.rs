//! The turn service between the store and the engine, for every caller (the studio,
//! `arbor ask`, eval runs): plan a turn (`plan_turn`: the path's messages, few-shot
//! examples, sampling, tools) and record its answers as they stream (`start_answers`,
//! `AnswerRecorder`).

use crate::config::Config;
use crate::domain::ChatMessage;
use crate::domain::ToolChoice;
use crate::domain::*;
use crate::engine::GenRequest;
use crate::store::{Result, Store};
use crate::tools;
use std::time::{Duration, Instant};

/// The messages the model sees for a path (root first): the conversation's system
/// prompt, then each node.
pub fn messages_for(conv: &Conversation, path: &[Node]) -> Vec<ChatMessage> {
    let mut out = Vec::with_capacity(path.len() + 1);
    if !conv.system_prompt.trim().is_empty() {
        out.push(ChatMessage::new(Role::System, conv.system_prompt.clone()));
    }
    for n in path {
        out.push(ChatMessage {
            role: n.role,
            content: n.content.clone(),
            tool_calls: n.tool_calls.clone(),
            tool_call_id: n.tool_call_id.clone(),
        });
    }
    out
}

/// How a conversation's next answer is generated, beyond sampling: config defaults with
/// the conversation's own settings (`tool_choice`, `tool_grammar`, `few_shot`) on top.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnOptions {
    pub tool_choice: ToolChoice,
    pub constrain_tools: bool,
    pub few_shot: usize,
}

impl TurnOptions {
    /// The tool choice for an answer after a message of role `last`: a standing
    /// `required` forces calls only in answer to the user, so a chain can end.
    pub fn choice_after(&self, last: Role) -> ToolChoice {
        match self.tool_choice {
            ToolChoice::Required if last != Role::User => ToolChoice::Auto,
            c => c,
        }
    }
}

pub fn turn_options(conv: &Conversation, config: &Config) -> TurnOptions {
    let set = conv.settings.as_ref();
    let get = |k: &str| set.and_then(|s| s.get(k)).filter(|v| !v.is_null());
    TurnOptions {
        tool_choice: get("tool_choice")
            .and_then(|v| v.as_str())
            .and_then(|v| v.parse().ok())
            .unwrap_or(config.tool_choice),
        constrain_tools: get("tool_grammar")
            .and_then(|v| v.as_bool())
            .unwrap_or(config.tool_grammar.unwrap_or(true)),
        few_shot: get("few_shot")
            .and_then(|v| v.as_u64())
            .map(|v| v as usize)
            .unwrap_or(config.few_shot),
    }
}

/// Stars an answer needs to be a few-shot example.
pub const FEW_SHOT_MIN_STARS: u8 = 4;

/// The messages for the next answer after `path` and the few-shot examples used: with
/// `few_shot > 0`, the most similar well-rated exchanges from the database (to the last
/// user message) are appended to the system prompt.
pub fn turn_messages(
    store: &Store,
    conv: &Conversation,
    path: &[Node],
    few_shot: usize,
) -> Result<(Vec<ChatMessage>, Vec<crate::store::Example>)> {
    let query = path
        .iter()
        .rev()
        .find(|n| n.role == Role::User)
        .map(|n| n.content.as_str())
        .unwrap_or("");
    let examples = if few_shot > 0 {
        store.best_examples(query, few_shot, FEW_SHOT_MIN_STARS, Some(conv.id))?
    } else {
        Vec::new()
    };
    if examples.is_empty() {
        return Ok((messages_for(conv, path), examples));
    }
    let mut system = conv.system_prompt.trim().to_string();
    if !system.is_empty() {
        system.push_str("\n\n");
    }
    system.push_str("Examples of good answers to similar requests:");
    for (i, e) in examples.iter().enumerate() {
        let answer = crate::tools::editable(&e.answer, &e.tool_calls);
        system.push_str(&format!(
            "\n\n### Example {}\nUser: {}\nAssistant: {}",
            i + 1,
            e.user.trim(),
            answer.trim()
        ));
    }
    let with = Conversation {
        system_prompt: system,
        ..conv.clone()
    };
    Ok((messages_for(&with, path), examples))
}

/// What one caller sets over config and the conversation's own settings for a turn
/// (`ask`'s flags, an eval candidate's sampling).
#[derive(Debug, Clone, Default)]
pub struct TurnFlags {
    /// Sampling fields over config's and the conversation's.
    pub sampling: serde_json::Map<String, serde_json::Value>,
    pub tool_choice: Option<ToolChoice>,
    pub tool_grammar: Option<bool>,
    pub few_shot: Option<usize>,
    /// Offset the seed by the answers already under the message answered, so that each
    /// new sibling differs and stays reproducible from its facts (the studio, `ask`).
    /// Eval runs keep the seed as given.
    pub vary_seed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A sampling value out of range (the message names the field).
    #[error("sampling: {0}")]
    Sampling(String),
}

/// One planned turn: the request for the engine (id 0, one answer: set `id`, `k`,
/// `cancel` with struct update syntax) and what recording its answers needs.
#[derive(Debug, Clone)]
pub struct Turn {
    pub conv: Conversation,
    pub examples: Vec<crate::store::Example>,
    pub request: GenRequest,
}

/// Plans the answer after `path` (root first; its last message is the one answered, and
/// need not be stored yet: `ask --show-prompt`). Sampling is config, then the
/// conversation's settings, then `flags`, checked; the tool choice follows the last
/// message (a standing `required` only answers user messages).
pub fn plan_turn(
    store: &Store,
    conv: &Conversation,
    path: &[Node],
    config: &Config,
    flags: &TurnFlags,
) -> std::result::Result<Turn, TurnError> {
    let mut opts = turn_options(conv, config);
    opts.constrain_tools = flags.tool_grammar.unwrap_or(opts.constrain_tools);
    opts.few_shot = flags.few_shot.unwrap_or(opts.few_shot);
    let mut sampling = with_overrides(&sampling_for(conv, &config.sampling), &flags.sampling);
    sampling.check().map_err(TurnError::Sampling)?;
    if flags.vary_seed {
        if let Some(last) = path.last().filter(|n| n.id != 0 && conv.id != 0) {
            let siblings = store.children(conv.id, Some(last.id))?.len() as u32;
            sampling.seed = sampling.seed.wrapping_add(siblings);
        }
    }
    let last = path.last().map_or(Role::User, |n| n.role);
    let tool_choice = flags.tool_choice.unwrap_or_else(|| opts.choice_after(last));
    let (messages, examples) = turn_messages(store, conv, path, opts.few_shot)?;
    Ok(Turn {
        conv: conv.clone(),
        examples,
        request: GenRequest {
            tools: conv.tools.clone(),
            tool_choice,
            constrain_tools: opts.constrain_tools,
            persist: true,
            ..GenRequest::new(0, messages, sampling)
        },
    })
}

/// How often a streaming answer is written to the database at least.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// Accumulates one streamed answer and writes it to its node: at most every
/// `FLUSH_EVERY` while streaming (so a crash keeps everything up to the last flush),
/// and once at the end with the final status and generation facts.
#[derive(Debug)]
pub struct AnswerRecorder {
    pub node_id: NodeId,
    pub text: String,
    /// The conversation's tools: the finished text is read for tool calls against them.
    pub tools: Option<serde_json::Value>,
    /// What the finished answer held (see `tools::parse`).
    pub parsed: Option<tools::Parsed>,
    last_flush: Instant,
    dirty: bool,
}

impl AnswerRecorder {
    pub fn new(node_id: NodeId, tools: Option<serde_json::Value>) -> Self {
        Self {
            node_id,
            text: String::new(),
            tools: tools.filter(|t| t.as_array().is_some_and(|a| !a.is_empty())),
            parsed: None,
            last_flush: Instant::now(),
            dirty: false,
        }
    }

    pub fn push(&mut self, store: &Store, piece: &str) -> Result<()> {
        self.text.push_str(piece);
        self.dirty = true;
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush(store)?;
        }
        Ok(())
    }

    pub fn flush(&mut self, store: &Store) -> Result<()> {
        if self.dirty {
            store.update_generation(
                self.node_id,
                &self.text,
                Status::Streaming,
                None,
                None,
                None,
            )?;
            self.dirty = false;
        }
        self.last_flush = Instant::now();
        Ok(())
    }

    pub fn finish(&mut self, store: &Store, facts: &GenerationFacts) -> Result<()> {
        let status = if facts.stop_reason == "cancelled" {
            Status::Interrupted
        } else {
            Status::Complete
        };
        // With tools, the calls in the text become structure on the node, and the text
        // keeps what is around them (a block that cannot be read stays as text).
        let parsed = self
            .tools
            .as_ref()
            .map(|t| tools::parse(&self.text, Some(t)))
            .filter(|p| !p.calls.is_empty() || !p.errors.is_empty());
        let (content, calls) = match &parsed {
            Some(p) if !p.calls.is_empty() => (p.content.as_str(), Some(&p.calls[..])),
            _ => (self.text.as_str(), None),
        };
        store.update_generation(self.node_id, content, status, Some(facts), None, calls)?;
        self.parsed = parsed;
        self.dirty = false;
        Ok(())
    }

    pub fn fail(&mut self, store: &Store, message: &str) -> Result<()> {
        store.update_generation(
            self.node_id,
            &self.text,
            Status::Error,
            None,
            Some(message),
            None,
        )?;
        self.dirty = false;
        Ok(())
    }
}

/// Creates the empty assistant node(s) an answer streams into: `k` siblings under `parent`.
/// With `few_shot`, each records the examples its prompt carried.
pub fn start_answers(
    store: &Store,
    conv: &Conversation,
    parent: NodeId,
    k: u32,
    few_shot: &[crate::store::Example],
) -> Result<Vec<AnswerRecorder>> {
    let mut out = Vec::new();
    let examples: Vec<NodeId> = few_shot.iter().map(|e| e.answer_id).collect();
    for _ in 0..k.max(1) {
        let n = NewNode {
            status: Status::Streaming,
            few_shot: examples.clone(),
            ..NewNode::assistant("", Origin::Generated)
        };
        let node = store.append_child(conv.id, Some(parent), &n)?;
        out.push(AnswerRecorder::new(node.id, conv.tools.clone()));
    }
    // The first candidate is the active continuation.
    if let Some(first) = out.first() {
        store.set_active(first.node_id)?;
    }
    Ok(out)
}

/// A conversation's path as Markdown (`Y` in the studio): the title, the system prompt,
/// then each message under its role, tool calls as JSON blocks.
pub fn markdown(conv: &Conversation, path: &[&Node]) -> String {
    let title = if conv.title.is_empty() {
        "Conversation"
    } else {
        &conv.title
    };
    let mut out = format!("# {title}\n");
    if !conv.system_prompt.trim().is_empty() {
        out.push_str(&format!("\n**system**\n\n{}\n", conv.system_prompt.trim()));
    }
    for n in path {
        out.push_str(&format!("\n**{}**\n\n", n.role));
        if !n.content.trim().is_empty() {
            out.push_str(n.content.trim_end());
            out.push('\n');
        }
        for c in &n.tool_calls {
            let call = serde_json::json!({"name": c.name, "arguments": c.arguments});
            out.push_str(&format!("\n```json\n{call}\n```\n"));
        }
    }
    out
}

/// A title from the first user message: its first line, shortened.
pub fn title_from(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let mut t: String = line.chars().take(60).collect();
    if line.chars().count() > 60 {
        t.push('…');
    }
    t
}

/// The sampling a conversation uses: `base` (config) with the conversation's own
/// overrides (`settings.sampling`, set by `arbor sessions set`) on top.
pub fn sampling_for(conv: &Conversation, base: &Sampling) -> Sampling {
    match conv
        .settings
        .as_ref()
        .and_then(|s| s.get("sampling"))
        .and_then(|s| s.as_object())
    {
        Some(over) => with_overrides(base, over),
        None => base.clone(),
    }
}

/// `base` with the given fields replaced (keys of `Sampling`; bad values are ignored).
pub fn with_overrides(
    base: &Sampling,
    over: &serde_json::Map<String, serde_json::Value>,
) -> Sampling {
    let mut v = serde_json::to_value(base).expect("serialisable");
    for (k, x) in over {
        v[k] = x.clone();
    }
    serde_json::from_value(v).unwrap_or_else(|_| base.clone())
}
