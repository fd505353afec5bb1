//! What every screen of the studio stands on: the conversation list, the open
//! conversation and its path, the composer, the model's state, the status line. The
//! overlays (dialogs and views over it) live in `screens`, stacked in `State`.

use super::keymap::Keymap;
use crate::domain::*;
use crate::engine::{ModelInfo, RequestId};
use tui_textarea::TextArea;

/// A message of the open path as the chat shows it: the store's `PathEntry` (this rater's
/// stars, critique marker, tags, place among siblings).
pub type NodeView = crate::store::PathEntry;

#[derive(Debug, Clone, PartialEq)]
pub enum ModelState {
    Loading(f32),
    Ready(ModelInfo),
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    List,
    Chat,
}

/// What the conversation list shows: everything, or what matches.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListFilter {
    pub search: Option<String>,
    pub tag: Option<String>,
    /// The list shows the trash instead (Enter restores).
    pub trash: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Streaming {
    pub request: Option<RequestId>,
    pub node_id: NodeId,
    pub tokens_per_s: f64,
}

/// The studio's state under the overlays.
pub struct Base {
    /// How far the help overlay is scrolled (rows).
    pub help_scroll: usize,
    pub screen: Screen,
    pub conversations: Vec<ConversationSummary>,
    pub list_sel: usize,
    pub conv: Option<Conversation>,
    /// A new conversation not yet written (created with its first message).
    pub pending_new: Option<(String, Option<serde_json::Value>)>,
    pub path: Vec<NodeView>,
    /// Selected message on the path; `None` while composing.
    pub sel: Option<usize>,
    pub composing: bool,
    pub composer: TextArea<'static>,
    /// Presets a new conversation can start from (built-ins and the user's).
    pub presets: Vec<crate::presets::Preset>,
    pub keymap: Keymap,
    pub list_filter: ListFilter,
    /// The LoRA adapter the engine applies (name, scale), shown in the status bar.
    pub adapter: Option<(String, f32)>,
    /// The scale `a` attaches an adapter at (`--adapter-scale`; `+`/`-` in the Jobs view).
    pub adapter_scale: f32,
    /// Select this message when its conversation is next loaded (after the tree).
    pub select_after_load: Option<NodeId>,
    /// Open the editor on this message once its path is loaded (`e` in the review queue).
    pub edit_after_load: Option<NodeId>,
    /// The terminal's size (for mouse clicks).
    pub size: (u16, u16),
    pub streaming: Option<Streaming>,
    pub model: ModelState,
    pub last_tps: Option<f64>,
    pub context_used: Option<u32>,
    pub db_path: String,
    pub rater: String,
    pub message: Option<String>,
    pub quit: bool,
}

pub fn textarea(placeholder: &str) -> TextArea<'static> {
    let mut t = TextArea::default();
    t.set_placeholder_text(placeholder.to_string());
    t
}

pub fn composer() -> TextArea<'static> {
    textarea("Type a message — Enter sends, Alt-Enter new line, Esc leaves")
}

impl Base {
    pub fn new(db_path: String, rater: String) -> Self {
        Self {
            screen: Screen::List,
            conversations: Vec::new(),
            list_sel: 0,
            conv: None,
            pending_new: None,
            path: Vec::new(),
            sel: None,
            composing: false,
            composer: composer(),
            presets: Vec::new(),
            keymap: Keymap::default(),
            list_filter: ListFilter::default(),
            adapter: None,
            adapter_scale: 1.0,
            select_after_load: None,
            edit_after_load: None,
            size: (80, 24),
            streaming: None,
            model: ModelState::Loading(0.0),
            last_tps: None,
            context_used: None,
            db_path,
            rater,
            message: None,
            quit: false,
            help_scroll: 0,
        }
    }

    pub fn selected(&self) -> Option<&NodeView> {
        self.sel.and_then(|i| self.path.get(i))
    }

    /// The tool calls at the end of the open path still waiting for their result.
    pub fn pending_calls(&self) -> Vec<ToolCall> {
        crate::tools::pending(self.path.iter().map(|v| &v.node))
    }
}

/// The message a new answer to the selected turn goes under: an answer's parent, or the
/// selected (non-system) message itself.
pub fn turn_parent(s: &Base) -> Option<NodeId> {
    match s.selected() {
        Some(v) if v.node.role == Role::Assistant => v.node.parent_id,
        Some(v) if v.node.role != Role::System => Some(v.node.id),
        _ => None,
    }
}

/// The built-in tag of an assistant turn that asks a clarifying question.
pub const CLARIFICATION: &str = "clarification";

pub fn cancel(s: &Base) -> Vec<super::effect::Effect> {
    if s.streaming.is_some() {
        vec![super::effect::Effect::Cancel]
    } else {
        vec![]
    }
}

pub fn start_new(s: &mut Base, system: String, tools: Option<serde_json::Value>) {
    s.screen = Screen::Chat;
    s.conv = None;
    s.pending_new = Some((system, tools));
    s.path.clear();
    s.sel = None;
    s.composing = true;
}
