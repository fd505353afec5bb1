//! Glue between the store and the engine used by both the CLI and the TUI runtime:
//! building the messages of a path, and persisting a streamed answer as it arrives.

use crate::domain::*;
use crate::engine::ChatMessage;
use crate::store::{Result, Store};
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

/// How often a streaming answer is written to the database at least.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// Accumulates one streamed answer and writes it to its node: at most every
/// `FLUSH_EVERY` while streaming (so a crash keeps everything up to the last flush),
/// and once at the end with the final status and generation facts.
#[derive(Debug)]
pub struct AnswerRecorder {
    pub node_id: NodeId,
    pub text: String,
    last_flush: Instant,
    dirty: bool,
}

impl AnswerRecorder {
    pub fn new(node_id: NodeId) -> Self {
        Self {
            node_id,
            text: String::new(),
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
            store.update_generation(self.node_id, &self.text, Status::Streaming, None, None)?;
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
        store.update_generation(self.node_id, &self.text, status, Some(facts), None)?;
        self.dirty = false;
        Ok(())
    }

    pub fn fail(&mut self, store: &Store, message: &str) -> Result<()> {
        store.update_generation(self.node_id, &self.text, Status::Error, None, Some(message))?;
        self.dirty = false;
        Ok(())
    }
}

/// Creates the empty assistant node(s) an answer streams into: `k` siblings under `parent`.
pub fn start_answers(
    store: &Store,
    conversation: ConversationId,
    parent: NodeId,
    k: u32,
) -> Result<Vec<AnswerRecorder>> {
    let mut out = Vec::new();
    for _ in 0..k.max(1) {
        let mut n = NewNode::assistant("", Origin::Generated);
        n.status = Status::Streaming;
        let node = store.append_child(conversation, Some(parent), &n)?;
        out.push(AnswerRecorder::new(node.id));
    }
    // The first candidate is the active continuation.
    if let Some(first) = out.first() {
        store.set_active(first.node_id)?;
    }
    Ok(out)
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
