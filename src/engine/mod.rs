//! Inference: a worker thread owns the model; requests go in over a channel, events
//! come out through a sink. The worker never touches UI state or the store.

pub mod http;
pub mod llama;
pub mod sandbox;
pub mod template;

use crate::domain::{ChatMessage, GenerationFacts, Sampling};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
pub use template::ChatTemplate;

pub type RequestId = u64;

/// What the engine fails with.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The chat template failed or crossed its bounds: bad input.
    #[error(transparent)]
    Template(#[from] template::TemplateError),
    /// Loading, decoding, the server: a failure while working.
    #[error("{0}")]
    Failed(String),
}

impl EngineError {
    /// Bad input (the template), as opposed to a failure while working.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, EngineError::Template(_))
    }
}

impl From<String> for EngineError {
    fn from(m: String) -> Self {
        EngineError::Failed(m)
    }
}

impl From<&str> for EngineError {
    fn from(m: &str) -> Self {
        EngineError::Failed(m.to_string())
    }
}

/// A request's own stop switch. Clones share it: give every request of a group (the
/// k candidates of Compare, base vs tuned) a clone of one handle and `cancel` stops them
/// all, whether they are streaming or still queued.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What to do when a prompt does not fit the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Refuse with an error naming the sizes.
    #[default]
    Error,
    /// Drop the oldest turns (never the system prompt) until it fits.
    DropOldest,
}

#[derive(Debug, Clone)]
pub struct GenRequest {
    pub id: RequestId,
    pub messages: Vec<ChatMessage>,
    pub tools: Option<serde_json::Value>,
    pub sampling: Sampling,
    /// Number of alternative answers sampled in parallel from one prompt decode.
    pub k: u32,
    pub overflow: OverflowPolicy,
    /// Whether the model must call a tool (only with `tools`).
    pub tool_choice: crate::domain::ToolChoice,
    /// Constrain tool calls to the tools' JSON schemas with a grammar (llama.cpp only).
    pub constrain_tools: bool,
    /// With a LoRA adapter loaded: apply it (the default) or answer as the base model.
    pub use_adapter: bool,
    /// Checked after every token; a request cancelled before it starts ends at once.
    pub cancel: Cancel,
    /// The whole answer is JSON following this schema (a grammar in llama.cpp, the
    /// `response_format` of an OpenAI-compatible server); tools are then not constrained.
    pub json_schema: Option<serde_json::Value>,
    /// A conversation turn: after it, the KV state is saved to disk (when the engine has a
    /// cache directory) so a later process continues without re-reading the history, and
    /// before it a saved state may be loaded. Eval runs and the judge leave it off.
    pub persist: bool,
}

impl GenRequest {
    /// One answer, no tools, overflow an error; set the rest with struct update syntax.
    pub fn new(id: RequestId, messages: Vec<ChatMessage>, sampling: Sampling) -> Self {
        Self {
            id,
            messages,
            tools: None,
            sampling,
            k: 1,
            overflow: OverflowPolicy::Error,
            tool_choice: crate::domain::ToolChoice::Auto,
            constrain_tools: true,
            use_adapter: true,
            cancel: Cancel::default(),
            json_schema: None,
            persist: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub path: String,
    pub architecture: String,
    pub context: u32,
    pub template: String,
    pub threads: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    Loading {
        progress: f32,
    },
    Ready(ModelInfo),
    LoadFailed(String),
    /// The exact prompt that will be decoded (after template and overflow policy).
    Prompt {
        id: RequestId,
        text: String,
        tokens: u32,
        dropped_messages: u32,
    },
    Token {
        id: RequestId,
        seq: u32,
        text: String,
    },
    Done {
        id: RequestId,
        seq: u32,
        facts: GenerationFacts,
    },
    Error {
        id: RequestId,
        message: String,
        /// The request itself was bad (its chat template failed or crossed its bounds),
        /// as opposed to a failure while working.
        bad_input: bool,
    },
}

impl EngineEvent {
    /// The `Error` event of request `id` failing with `e`.
    pub fn error(id: RequestId, e: &EngineError) -> Self {
        EngineEvent::Error {
            id,
            message: e.to_string(),
            bad_input: e.is_bad_input(),
        }
    }
}

pub type Sink = Arc<dyn Fn(EngineEvent) + Send + Sync>;

/// A backend generates for one request at a time on the worker thread.
pub trait Backend: Send {
    fn info(&self) -> ModelInfo;
    /// Renders and tokenizes the prompt only (`arbor ask --show-prompt`).
    fn render(&mut self, req: &GenRequest) -> Result<(String, u32), EngineError>;
    /// Streams the answer(s) through `sink`, checking `req.cancel` after every token,
    /// and ends every sequence with `Done` (or the request with `Error`).
    fn generate(&mut self, req: &GenRequest, sink: &Sink);
    /// Several independent requests (one answer each, distinct prompts), each ending with
    /// `Done` or `Error` under its own id and stopping on its own `cancel`. A backend that
    /// cannot decode them together answers them one after another (the default).
    fn generate_batch(&mut self, reqs: &[GenRequest], sink: &Sink) {
        for r in reqs {
            self.generate(r, sink);
        }
    }
}

enum Command {
    Generate(GenRequest),
    GenerateBatch(Vec<GenRequest>),
    Render(GenRequest),
}

/// The handle the app holds. Dropping it stops the worker.
pub struct Engine {
    tx: mpsc::Sender<Command>,
    next_id: std::sync::atomic::AtomicU64,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl Engine {
    /// Starts the worker: `load` runs on the worker thread (the app stays usable while
    /// the model loads) and reports `Ready` or `LoadFailed`.
    pub fn spawn<F>(load: F, sink: Sink) -> Self
    where
        F: FnOnce(&Sink) -> Result<Box<dyn Backend>, EngineError> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Command>();
        let worker = std::thread::Builder::new()
            .name("arbor-engine".into())
            .spawn(move || {
                let mut backend = match load(&sink) {
                    Ok(b) => {
                        sink(EngineEvent::Ready(b.info()));
                        b
                    }
                    Err(e) => {
                        sink(EngineEvent::LoadFailed(e.to_string()));
                        // Answer every later request with the load error.
                        for cmd in rx {
                            let reqs = match cmd {
                                Command::Generate(r) | Command::Render(r) => vec![r],
                                Command::GenerateBatch(rs) => rs,
                            };
                            for r in reqs {
                                sink(EngineEvent::Error {
                                    id: r.id,
                                    message: format!("model not loaded: {e}"),
                                    bad_input: false,
                                });
                            }
                        }
                        return;
                    }
                };
                for cmd in rx {
                    match cmd {
                        // Cancelled while queued: ends at once, nothing decoded.
                        Command::Generate(req) if req.cancel.is_cancelled() => {
                            for seq in 0..req.k.max(1) {
                                sink(EngineEvent::Done {
                                    id: req.id,
                                    seq,
                                    facts: GenerationFacts {
                                        stop_reason: "cancelled".into(),
                                        ..Default::default()
                                    },
                                });
                            }
                        }
                        Command::Generate(req) => backend.generate(&req, &sink),
                        Command::GenerateBatch(reqs) => backend.generate_batch(&reqs, &sink),
                        Command::Render(req) => match backend.render(&req) {
                            Ok((text, tokens)) => sink(EngineEvent::Prompt {
                                id: req.id,
                                text,
                                tokens,
                                dropped_messages: 0,
                            }),
                            Err(e) => sink(EngineEvent::error(req.id, &e)),
                        },
                    }
                }
            })
            .expect("spawn engine thread");
        Self {
            tx,
            next_id: 1.into(),
            worker: Some(worker),
        }
    }

    /// Stops the worker once what was sent has finished (a conversation's KV state
    /// written to disk included), and waits for it.
    pub fn shutdown(&mut self) {
        // Dropping the only sender ends the worker's loop once the queue is empty.
        self.tx = mpsc::channel().0;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }

    pub fn next_id(&self) -> RequestId {
        self.next_id.fetch_add(1, Ordering::SeqCst)
    }

    pub fn generate(&self, req: GenRequest) {
        let _ = self.tx.send(Command::Generate(req));
    }

    /// Several independent one-answer requests decoded together where the backend can.
    pub fn generate_batch(&self, reqs: Vec<GenRequest>) {
        let _ = self.tx.send(Command::GenerateBatch(reqs));
    }

    pub fn render(&self, req: GenRequest) {
        let _ = self.tx.send(Command::Render(req));
    }
}

/// Holds back the bytes of a token that end inside a multi-byte UTF-8 character
/// until the character is complete.
#[derive(Debug, Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        match std::str::from_utf8(&self.pending) {
            Ok(s) => {
                let out = s.to_string();
                self.pending.clear();
                out
            }
            Err(e) if e.error_len().is_none() => {
                // Incomplete character at the end: emit what is valid, keep the rest.
                let valid = e.valid_up_to();
                let out = String::from_utf8_lossy(&self.pending[..valid]).into_owned();
                self.pending.drain(..valid);
                out
            }
            Err(_) => {
                let out = String::from_utf8_lossy(&self.pending).into_owned();
                self.pending.clear();
                out
            }
        }
    }

    /// Whatever is left at the end of the stream (invalid bytes become U+FFFD).
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

/// Finds stop strings in streamed text: releases text that cannot be the start of a
/// stop string, and reports when one is complete.
#[derive(Debug, Default)]
pub struct StopScan {
    stops: Vec<String>,
    held: String,
}

impl StopScan {
    pub fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    /// Returns (text safe to emit, whether a stop string was hit).
    pub fn push(&mut self, text: &str) -> (String, bool) {
        self.held.push_str(text);
        if let Some(pos) = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            let out = self.held[..pos].to_string();
            self.held.clear();
            return (out, true);
        }
        // Keep the longest suffix that is a prefix of some stop string.
        let mut keep = 0;
        for s in &self.stops {
            for (i, _) in s.char_indices().skip(1) {
                if self.held.ends_with(&s[..i]) {
                    keep = keep.max(i);
                }
            }
        }
        let cut = self.held.len() - keep;
        let out = self.held[..cut].to_string();
        self.held.drain(..cut);
        (out, false)
    }

    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_stream_holds_split_characters() {
        let bytes = "日本🌳".as_bytes();
        let mut s = Utf8Stream::default();
        let mut out = String::new();
        for b in bytes {
            out.push_str(&s.push(&[*b]));
        }
        out.push_str(&s.finish());
        assert_eq!(out, "日本🌳");
        let mut s = Utf8Stream::default();
        assert_eq!(s.push(&bytes[..2]), "");
        assert_eq!(s.push(&bytes[2..4]), "日");
    }

    #[test]
    fn stop_scan_cuts_at_stop_string_across_chunks() {
        let mut s = StopScan::new(&["</s>".to_string()]);
        assert_eq!(s.push("hello <"), ("hello ".to_string(), false));
        assert_eq!(s.push("/s> tail"), ("".to_string(), true));
        let mut s = StopScan::new(&["END".to_string()]);
        assert_eq!(s.push("E"), ("".to_string(), false));
        assert_eq!(s.push("x"), ("Ex".to_string(), false));
    }
}
