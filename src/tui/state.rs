//! The studio's state and the pure `update(state, action) -> effects`.
//! No IO here: effects are data the runtime carries out.

use super::keymap::{Cmd, Context, Keymap};
use crate::domain::*;
use crate::engine::{EngineEvent, ModelInfo, RequestId};
use crossterm::event::{KeyEvent, KeyEventKind};
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

#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    Critique(NodeId),
    Tag(NodeId),
    /// The eval set the selected turn goes into.
    EvalSet(NodeId),
    Rename(ConversationId),
    /// Incremental full-text search of the conversation list.
    Search,
    FilterTag,
}

/// What the conversation list shows: everything, or what matches.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListFilter {
    pub search: Option<String>,
    pub tag: Option<String>,
}

/// One row of the tree view.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeRow {
    pub id: NodeId,
    /// `├─ `/`└─ `/`│  ` drawing of the row's place in the tree.
    pub graph: String,
    pub role: Role,
    pub text: String,
    pub stars: Option<u8>,
    pub tool_calls: usize,
    pub origin: Origin,
    /// On the active path.
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TreeView {
    pub rows: Vec<TreeRow>,
    pub sel: usize,
}

/// k candidates for one turn, side by side.
#[derive(Debug, Clone, PartialEq)]
pub struct Compare {
    pub parent: NodeId,
    /// The (request, sequence) each candidate streams from: one request of k
    /// sequences, or (base vs tuned) one request each.
    pub slots: Vec<(RequestId, u32)>,
    /// Column titles.
    pub labels: Vec<String>,
    pub nodes: Vec<NodeId>,
    pub texts: Vec<String>,
    pub done: Vec<bool>,
    pub stars: Vec<Option<u8>>,
    pub sel: usize,
}

impl Compare {
    pub fn generating(&self) -> bool {
        !self.slots.is_empty() && self.done.iter().any(|d| !d)
    }

    /// Which candidate a streamed event belongs to.
    pub fn slot(&self, id: RequestId, seq: u32) -> Option<usize> {
        self.slots.iter().position(|s| *s == (id, seq))
    }

    pub fn new(parent: NodeId) -> Self {
        Self {
            parent,
            slots: Vec::new(),
            labels: Vec::new(),
            nodes: Vec::new(),
            texts: Vec::new(),
            done: Vec::new(),
            stars: Vec::new(),
            sel: 0,
        }
    }
}

/// One row of the Jobs view.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub job: crate::store::Job,
    pub progress: crate::train::Progress,
    /// The adapter it made.
    pub adapter: Option<String>,
}

/// The Jobs view: every job, and the selected one's metrics and log tail.
#[derive(Debug, Clone, Default)]
pub struct JobsView {
    pub rows: Vec<JobRow>,
    pub sel: usize,
    pub metrics: Vec<crate::store::JobMetric>,
    pub log: Vec<String>,
    /// The selected job's `--eval` run, summed up in one line.
    pub eval: Option<String>,
}

impl JobsView {
    pub fn selected(&self) -> Option<&JobRow> {
        self.rows.get(self.sel)
    }
}

/// The Evals view: every eval run with its report; the selected one's charts.
#[derive(Debug, Clone, Default)]
pub struct EvalsView {
    pub runs: Vec<crate::eval::report::Report>,
    pub sel: usize,
}

/// How many candidates `R` asks for.
pub const COMPARE_K: u32 = 3;

#[derive(Debug, Clone, PartialEq)]
pub enum Confirm {
    DeleteConversation(ConversationId),
    DeleteBranch(NodeId),
}

/// Formats the Export dialog offers (`text` needs a template: `arbor export`).
pub const EXPORT_FORMATS: &[crate::dataset::Format] = {
    use crate::dataset::Format::*;
    &[
        Openai,
        Trl,
        Mlx,
        Sharegpt,
        Alpaca,
        OpenaiDpo,
        TrlPreference,
        TrlPromptCompletion,
        Kto,
        Oasst,
    ]
};

/// What the Export dialog shows: the choice, and the counts of a dry run of it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExportDialog {
    pub format: usize,
    pub min_rating: Option<u8>,
    pub preview: Option<ExportPreview>,
    /// Where the last export went, or why it failed.
    pub result: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExportPreview {
    pub examples: usize,
    pub conversations: usize,
    pub left_out: Vec<(String, usize)>,
    pub within_longer: usize,
    pub first: Option<String>,
}

impl ExportDialog {
    pub fn format(&self) -> crate::dataset::Format {
        EXPORT_FORMATS[self.format]
    }
    fn effect(&self, write: bool) -> Effect {
        Effect::Export {
            format: self.format(),
            min_rating: self.min_rating,
            write,
        }
    }
}

/// The conversation settings popup: one editor per tab, checked together on save.
#[derive(Debug, Clone)]
pub struct SettingsDialog {
    pub tab: usize,
    /// System prompt, tools (JSON array), options (JSON object).
    pub editors: [TextArea<'static>; 3],
}

pub const SETTINGS_TABS: [&str; 3] = ["system prompt", "tools", "options"];

/// What the options tab may hold.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by serde to check the options tab
struct OptionsTab {
    sampling: Option<serde_json::Map<String, serde_json::Value>>,
    tool_choice: Option<crate::domain::ToolChoice>,
    tool_grammar: Option<bool>,
    few_shot: Option<usize>,
}

impl SettingsDialog {
    pub fn new(
        system: &str,
        tools: Option<&serde_json::Value>,
        settings: Option<&serde_json::Value>,
    ) -> Self {
        let pretty = |v: Option<&serde_json::Value>| {
            v.map(|v| serde_json::to_string_pretty(v).unwrap_or_default())
                .unwrap_or_default()
        };
        let editor = |text: String, hint: &str| {
            let mut t = TextArea::from(text.lines().map(str::to_string).collect::<Vec<_>>());
            t.set_placeholder_text(hint.to_string());
            t
        };
        Self {
            tab: 0,
            editors: [
                editor(system.to_string(), "no system prompt"),
                editor(
                    pretty(tools),
                    "no tools — an OpenAI tools array: [{\"type\": \"function\", \"function\": {\"name\": …, \"parameters\": {JSON schema}}}]",
                ),
                editor(
                    pretty(settings),
                    "{\"sampling\": {\"temperature\": 0.2}, \"tool_choice\": \"auto\", \"tool_grammar\": true, \"few_shot\": 3}",
                ),
            ],
        }
    }

    /// The three tabs checked: (system, tools, options). The error names the tab and field.
    pub fn parse(
        &self,
    ) -> Result<(String, Option<serde_json::Value>, Option<serde_json::Value>), String> {
        let text = |i: usize| self.editors[i].lines().join("\n");
        let system = text(0).trim().to_string();
        let tools = match text(1).trim() {
            "" => None,
            t => {
                let v: serde_json::Value = serde_json::from_str(t)
                    .map_err(|e| format!("tools, line {}: not valid JSON: {e}", e.line()))?;
                crate::tools::check_tools(&v).map_err(|e| format!("tools: {e}"))?;
                Some(v)
            }
        };
        let options = match text(2).trim() {
            "" => None,
            t => {
                let v: serde_json::Value = serde_json::from_str(t)
                    .map_err(|e| format!("options, line {}: not valid JSON: {e}", e.line()))?;
                let o: OptionsTab =
                    serde_json::from_value(v.clone()).map_err(|e| format!("options: {e}"))?;
                if let Some(over) = &o.sampling {
                    let mut base = serde_json::to_value(Sampling::default()).expect("serialisable");
                    for (k, x) in over {
                        if base.get(k).is_none() {
                            return Err(format!("options: sampling.{k}: unknown (known: temperature, top_k, top_p, min_p, repeat_penalty, seed, max_tokens, stop)"));
                        }
                        base[k] = x.clone();
                    }
                    serde_json::from_value::<Sampling>(base)
                        .map_err(|e| format!("options: sampling: {e}"))?
                        .check()
                        .map_err(|e| format!("options: sampling.{e}"))?;
                }
                Some(v)
            }
        };
        Ok((system, tools, options))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Streaming {
    pub request: Option<RequestId>,
    pub node_id: NodeId,
    pub tokens_per_s: f64,
}

pub struct State {
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
    pub editing: Option<(NodeId, TextArea<'static>)>,
    pub prompt: Option<(Prompt, TextArea<'static>)>,
    pub confirm: Option<Confirm>,
    pub export: Option<ExportDialog>,
    pub settings: Option<SettingsDialog>,
    /// Presets a new conversation can start from (built-ins and the user's).
    pub presets: Vec<crate::presets::Preset>,
    /// The preset picker, open on this row.
    pub picker: Option<usize>,
    pub keymap: Keymap,
    pub list_filter: ListFilter,
    pub tree: Option<TreeView>,
    pub compare: Option<Compare>,
    pub jobs: Option<JobsView>,
    pub evals: Option<EvalsView>,
    /// The blind review of a run, over everything else.
    pub review: Option<super::review::ReviewState>,
    /// The LoRA adapter the engine applies (name, scale), shown in the status bar.
    pub adapter: Option<(String, f32)>,
    /// The scale `a` attaches an adapter at (`--adapter-scale`; `+`/`-` in the Jobs view).
    pub adapter_scale: f32,
    /// Select this message when its conversation is next loaded (after the tree).
    pub select_after_load: Option<NodeId>,
    /// The terminal's size (for mouse clicks).
    pub size: (u16, u16),
    pub help: bool,
    pub streaming: Option<Streaming>,
    pub model: ModelState,
    pub last_tps: Option<f64>,
    pub context_used: Option<u32>,
    pub db_path: String,
    pub rater: String,
    pub message: Option<String>,
    pub quit: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    LoadList,
    /// Read every eval run and its report (the Evals view).
    LoadEvals,
    /// Open the blind review of a run.
    OpenReview(i64),
    /// Store a blind verdict (winner `None`: a tie) or take one back.
    Decide {
        run: i64,
        case: i64,
        pair: (usize, usize),
        nodes: (NodeId, NodeId),
        winner: Option<usize>,
    },
    Undecide {
        run: i64,
        case: i64,
        pair: (usize, usize),
        nodes: (NodeId, NodeId),
    },
    /// Add the turn of this message (a user message, or an answer's) to the named eval set,
    /// making the set if there is none of that name.
    AddToEval(NodeId, String),
    Open(ConversationId),
    DeleteConversation(ConversationId),
    /// Add the user's message under `parent` (in `conv`, or a new conversation) and answer it.
    Send {
        conv: Option<ConversationId>,
        parent: Option<NodeId>,
        text: String,
    },
    /// Answer again: a new assistant sibling under `parent` (a user message).
    Regenerate {
        parent: NodeId,
    },
    /// `k` new candidates under `parent` at once, for the Compare view.
    RegenerateK {
        parent: NodeId,
        k: u32,
    },
    /// Build the tree view of a conversation.
    LoadTree(ConversationId),
    /// Make the path to `node` the active one.
    ActivateNode(NodeId),
    Rename(ConversationId, String),
    /// Save an edit as a sibling; answer it when it is a user message. `tool_calls`
    /// replaces the calls of an edited assistant message.
    SaveEdit {
        node: NodeId,
        text: String,
        answer: bool,
        tool_calls: Option<Vec<ToolCall>>,
    },
    /// The user plays the tool: `text` is the result of call `call_id` of `parent`'s
    /// path; the model answers once no call is left waiting.
    ToolResult {
        parent: NodeId,
        call_id: String,
        text: String,
    },
    /// System prompt, tools and settings of a conversation (the settings popup).
    SaveSettings {
        conv: ConversationId,
        system: String,
        tools: Option<serde_json::Value>,
        settings: Option<serde_json::Value>,
    },
    Rate(NodeId, Option<u8>),
    Critique(NodeId, String),
    Tag(NodeId, String),
    Untag(NodeId, String),
    /// Make sibling number `position` (1-based) of `node` the active path.
    ActivateSibling {
        node: NodeId,
        position: usize,
    },
    DeleteBranch(NodeId),
    /// Count (and with `write`, write) an export of the whole database.
    Export {
        format: crate::dataset::Format,
        min_rating: Option<u8>,
        write: bool,
    },
    /// Base vs tuned: answer under `parent` with and without the adapter.
    CompareAdapter {
        parent: NodeId,
    },
    /// Read the jobs (and the metrics and log of `selected`) for the Jobs view.
    LoadJobs(Option<i64>),
    /// A `peft` job on answers rated 4+ with the studio's model.
    StartJob,
    CancelJob(i64),
    ResumeJob(i64),
    /// Reload the engine with this adapter (a registered name) at this scale, or none.
    UseAdapter(Option<(String, f32)>),
    Cancel,
    Quit,
}

#[derive(Debug, Clone)]
pub enum Action {
    Key(KeyEvent),
    Engine(EngineEvent),
    ListLoaded(Vec<ConversationSummary>),
    /// A conversation and its active path; `streaming` names a node still generating.
    PathLoaded(Conversation, Vec<NodeView>),
    /// Generation of `node` started for `request`.
    Started {
        node: NodeId,
        request: RequestId,
    },
    /// Candidates started: `slots[i]` (request, sequence) streams into `nodes[i]`.
    CompareStarted {
        nodes: Vec<NodeId>,
        slots: Vec<(RequestId, u32)>,
        labels: Vec<String>,
    },
    TreeLoaded(Vec<TreeRow>),
    Error(String),
    /// A line for the status bar (what an action did).
    Notice(String),
    ExportPreviewed(ExportPreview),
    ExportWritten(String),
    /// The terminal's new size (columns, rows).
    Resize(u16, u16),
    JobsLoaded(JobsView),
    EvalsLoaded(Vec<crate::eval::report::Report>),
    ReviewLoaded(super::review::ReviewState),
    /// Once a second: what refreshes on its own (the Jobs view).
    Tick,
    /// The engine reloads with this adapter (or none).
    AdapterAttached(Option<(String, f32)>),
    Mouse(crossterm::event::MouseEvent),
}

fn textarea(placeholder: &str) -> TextArea<'static> {
    let mut t = TextArea::default();
    t.set_placeholder_text(placeholder.to_string());
    t
}

pub fn composer() -> TextArea<'static> {
    textarea("Type a message — Enter sends, Alt-Enter new line, Esc leaves")
}

impl State {
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
            editing: None,
            prompt: None,
            confirm: None,
            export: None,
            settings: None,
            presets: Vec::new(),
            picker: None,
            keymap: Keymap::default(),
            list_filter: ListFilter::default(),
            tree: None,
            compare: None,
            jobs: None,
            evals: None,
            review: None,
            adapter: None,
            adapter_scale: 1.0,
            select_after_load: None,
            size: (80, 24),
            help: false,
            streaming: None,
            model: ModelState::Loading(0.0),
            last_tps: None,
            context_used: None,
            db_path,
            rater,
            message: None,
            quit: false,
        }
    }

    pub fn selected(&self) -> Option<&NodeView> {
        self.sel.and_then(|i| self.path.get(i))
    }

    /// The tool calls at the end of the open path still waiting for their result.
    pub fn pending_calls(&self) -> Vec<ToolCall> {
        crate::tools::pending(self.path.iter().map(|v| &v.node))
    }

    pub fn key_context(&self) -> Context {
        if self.review.is_some() {
            Context::Review
        } else if self.editing.is_some() {
            Context::Edit
        } else if self.compare.is_some() {
            Context::Compare
        } else if self.jobs.is_some() {
            Context::Jobs
        } else if self.evals.is_some() {
            Context::Evals
        } else if self.tree.is_some() {
            Context::Tree
        } else if self.settings.is_some() {
            Context::Settings
        } else if self.export.is_some() {
            Context::Export
        } else if self.picker.is_some() {
            Context::Presets
        } else if self.screen == Screen::List {
            Context::List
        } else if self.composing {
            Context::Compose
        } else {
            Context::Chat
        }
    }
}

/// The pure heart of the studio.
pub fn update(s: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::Key(k) if k.kind == KeyEventKind::Release => vec![],
        Action::Key(k) => on_key(s, k),
        Action::Engine(e) => on_engine(s, e),
        Action::ListLoaded(list) => {
            s.list_sel = s.list_sel.min(list.len().saturating_sub(1));
            s.conversations = list;
            vec![]
        }
        Action::PathLoaded(conv, path) => {
            let keep_sel = s.conv.as_ref().map(|c| c.id) == Some(conv.id);
            s.conv = Some(conv);
            s.pending_new = None;
            s.screen = Screen::Chat;
            s.path = path;
            if s.path.is_empty() {
                s.sel = None;
                s.composing = true;
            } else if let Some(i) = s
                .select_after_load
                .take()
                .and_then(|id| s.path.iter().position(|v| v.node.id == id))
            {
                s.composing = false;
                s.sel = Some(i);
            } else if !keep_sel || s.sel.is_none_or(|i| i >= s.path.len()) {
                s.sel = if s.composing {
                    None
                } else {
                    Some(s.path.len() - 1)
                };
            }
            vec![]
        }
        Action::CompareStarted {
            nodes,
            slots,
            labels,
        } => {
            if let Some(c) = &mut s.compare {
                c.slots = slots;
                c.labels = labels;
                c.texts = vec![String::new(); nodes.len()];
                c.done = vec![false; nodes.len()];
                c.stars = vec![None; nodes.len()];
                c.nodes = nodes;
            }
            vec![]
        }
        Action::EvalsLoaded(runs) => {
            let v = s.evals.get_or_insert_with(EvalsView::default);
            v.sel = v.sel.min(runs.len().saturating_sub(1));
            v.runs = runs;
            vec![]
        }
        Action::ReviewLoaded(r) => {
            if r.items.is_empty() {
                s.message = Some(format!(
                    "run {}: nothing to review (it needs two candidates with finished answers)",
                    r.run
                ));
            } else {
                s.review = Some(r);
            }
            vec![]
        }
        Action::JobsLoaded(mut v) => {
            let keep = s.jobs.as_ref().and_then(|j| j.selected()).map(|r| r.job.id);
            v.sel = keep
                .and_then(|id| v.rows.iter().position(|r| r.job.id == id))
                .unwrap_or(0);
            s.jobs = Some(v);
            vec![]
        }
        Action::Tick => match &s.jobs {
            Some(j) => vec![Effect::LoadJobs(j.selected().map(|r| r.job.id))],
            None => vec![],
        },
        Action::AdapterAttached(a) => {
            s.message = Some(match &a {
                Some((name, scale)) => {
                    format!("chatting with adapter {name} ×{scale}; B compares base vs tuned")
                }
                None => "chatting with the base model".into(),
            });
            s.adapter = a;
            vec![]
        }
        Action::TreeLoaded(rows) => {
            let sel = rows.iter().rposition(|r| r.active).unwrap_or(0);
            s.tree = Some(TreeView { rows, sel });
            vec![]
        }
        Action::Started { node, request } => {
            s.streaming = Some(Streaming {
                request: Some(request),
                node_id: node,
                tokens_per_s: 0.0,
            });
            vec![]
        }
        Action::Error(m) | Action::Notice(m) => {
            s.message = Some(m);
            vec![]
        }
        Action::ExportPreviewed(p) => {
            if let Some(d) = &mut s.export {
                d.preview = Some(p);
            }
            vec![]
        }
        Action::ExportWritten(m) => {
            if let Some(d) = &mut s.export {
                d.result = Some(m);
            }
            vec![]
        }
        Action::Resize(w, h) => {
            s.size = (w, h);
            vec![]
        }
        Action::Mouse(m) => on_mouse(s, m),
    }
}

fn on_engine(s: &mut State, e: EngineEvent) -> Vec<Effect> {
    match e {
        EngineEvent::Loading { progress } => {
            s.model = ModelState::Loading(progress);
            vec![]
        }
        EngineEvent::Ready(info) => {
            s.model = ModelState::Ready(info);
            vec![]
        }
        EngineEvent::LoadFailed(m) => {
            s.message = Some(format!("model failed to load: {m}"));
            s.model = ModelState::Failed(m);
            vec![]
        }
        EngineEvent::Prompt {
            tokens,
            dropped_messages,
            ..
        } => {
            s.context_used = Some(tokens);
            if dropped_messages > 0 {
                s.message = Some(format!(
                    "{dropped_messages} old messages left out to fit the context"
                ));
            }
            vec![]
        }
        EngineEvent::Token { id, seq, text }
            if s.compare.as_ref().and_then(|c| c.slot(id, seq)).is_some() =>
        {
            let c = s.compare.as_mut().expect("compare");
            if let Some(i) = c.slot(id, seq) {
                c.texts[i].push_str(&text);
            }
            vec![]
        }
        EngineEvent::Token { seq: 0, text, .. } => {
            if let Some(st) = &s.streaming {
                let id = st.node_id;
                if let Some(v) = s.path.iter_mut().find(|v| v.node.id == id) {
                    v.node.content.push_str(&text);
                }
            }
            if let Some(used) = &mut s.context_used {
                *used += 1;
            }
            vec![]
        }
        EngineEvent::Token { .. } => vec![],
        EngineEvent::Done { id, seq, .. }
            if s.compare.as_ref().and_then(|c| c.slot(id, seq)).is_some() =>
        {
            let c = s.compare.as_mut().expect("compare");
            if let Some(i) = c.slot(id, seq) {
                c.done[i] = true;
            }
            if c.generating() {
                return vec![];
            }
            s.streaming = None;
            s.conv
                .as_ref()
                .map(|c| vec![Effect::Open(c.id)])
                .unwrap_or_default()
        }
        EngineEvent::Done { seq, facts, .. } => {
            if seq == 0 {
                s.last_tps = Some(facts.tokens_per_s);
                if let Some(st) = s.streaming.take() {
                    if let Some(v) = s.path.iter_mut().find(|v| v.node.id == st.node_id) {
                        v.node.status = if facts.stop_reason == "cancelled" {
                            Status::Interrupted
                        } else {
                            Status::Complete
                        };
                        v.node.tokens_per_s = Some(facts.tokens_per_s);
                    }
                }
                if let Some(c) = &s.conv {
                    return vec![Effect::Open(c.id)];
                }
            }
            vec![]
        }
        EngineEvent::Error { message, .. } => {
            s.streaming = None;
            if let Some(c) = &mut s.compare {
                c.done.iter_mut().for_each(|d| *d = true);
            }
            s.message = Some(message);
            s.conv
                .as_ref()
                .map(|c| vec![Effect::Open(c.id)])
                .unwrap_or_default()
        }
    }
}

/// The message a new answer to the selected turn goes under: an answer's parent, or the
/// selected (non-system) message itself.
fn turn_parent(s: &State) -> Option<NodeId> {
    match s.selected() {
        Some(v) if v.node.role == Role::Assistant => v.node.parent_id,
        Some(v) if v.node.role != Role::System => Some(v.node.id),
        _ => None,
    }
}

fn on_key(s: &mut State, k: KeyEvent) -> Vec<Effect> {
    s.message = None;
    if s.help {
        s.help = false;
        return vec![];
    }
    if let Some(c) = s.confirm.take() {
        let yes = matches!(k.code, crossterm::event::KeyCode::Char('y' | 'Y'));
        return match (yes, c) {
            (true, Confirm::DeleteConversation(id)) => {
                vec![Effect::DeleteConversation(id), Effect::LoadList]
            }
            (true, Confirm::DeleteBranch(id)) => {
                s.sel = s.sel.map(|i| i.saturating_sub(1));
                vec![Effect::DeleteBranch(id)]
            }
            (false, _) => vec![],
        };
    }
    if let Some((p, mut t)) = s.prompt.take() {
        use crossterm::event::KeyCode;
        return match k.code {
            KeyCode::Enter => {
                let text = t.lines().join(" ");
                match p {
                    Prompt::Critique(id) => vec![Effect::Critique(id, text)],
                    Prompt::Tag(id) => text
                        .split([',', ' '])
                        .filter(|x| !x.is_empty())
                        .map(|x| Effect::Tag(id, x.to_string()))
                        .collect(),
                    Prompt::EvalSet(id) if !text.trim().is_empty() => {
                        vec![Effect::AddToEval(id, text.trim().to_string())]
                    }
                    Prompt::EvalSet(_) => vec![],
                    Prompt::Rename(id) if !text.trim().is_empty() => {
                        vec![
                            Effect::Rename(id, text.trim().to_string()),
                            Effect::LoadList,
                        ]
                    }
                    Prompt::Rename(_) => vec![],
                    // The search already filters as it is typed; Enter keeps it.
                    Prompt::Search => vec![],
                    Prompt::FilterTag => {
                        let tag = text.trim().to_string();
                        s.list_filter.tag = (!tag.is_empty()).then_some(tag);
                        s.list_sel = 0;
                        vec![Effect::LoadList]
                    }
                }
            }
            KeyCode::Esc => {
                if p == Prompt::Search {
                    s.list_filter.search = None;
                    return vec![Effect::LoadList];
                }
                vec![]
            }
            _ => {
                t.input(k);
                let live = p == Prompt::Search;
                if live {
                    let q = t.lines().join(" ");
                    s.list_filter.search = (!q.trim().is_empty()).then_some(q);
                    s.list_sel = 0;
                }
                s.prompt = Some((p, t));
                if live {
                    vec![Effect::LoadList]
                } else {
                    vec![]
                }
            }
        };
    }
    let ctx = s.key_context();
    let cmd = s.keymap.lookup(ctx, &k);
    match ctx {
        Context::Export => {
            let d = s.export.as_mut().expect("export dialog");
            let n = EXPORT_FORMATS.len();
            match cmd {
                Some(Cmd::NextFormat) => d.format = (d.format + 1) % n,
                Some(Cmd::PrevFormat) => d.format = (d.format + n - 1) % n,
                Some(Cmd::MoreStars) => {
                    d.min_rating = Some(d.min_rating.map_or(1, |r| (r + 1).min(5)))
                }
                Some(Cmd::FewerStars) => {
                    d.min_rating = d.min_rating.and_then(|r| (r > 1).then(|| r - 1))
                }
                Some(Cmd::Write) => {
                    d.result = Some("writing…".into());
                    return vec![d.effect(true)];
                }
                Some(Cmd::Help) => {
                    s.help = true;
                    return vec![];
                }
                Some(Cmd::Back) => {
                    s.export = None;
                    return vec![];
                }
                _ => return vec![],
            }
            d.result = None;
            vec![d.effect(false)]
        }
        Context::Settings => {
            let d = s.settings.as_mut().expect("settings dialog");
            match cmd {
                Some(Cmd::NextTab) => d.tab = (d.tab + 1) % SETTINGS_TABS.len(),
                Some(Cmd::PrevTab) => {
                    d.tab = (d.tab + SETTINGS_TABS.len() - 1) % SETTINGS_TABS.len()
                }
                Some(Cmd::Discard) => s.settings = None,
                Some(Cmd::Save) => match d.parse() {
                    Err(e) => s.message = Some(format!("not saved — {e}")),
                    Ok((system, tools, settings)) => {
                        s.settings = None;
                        match &s.conv {
                            Some(c) => {
                                return vec![Effect::SaveSettings {
                                    conv: c.id,
                                    system,
                                    tools,
                                    settings,
                                }]
                            }
                            None => {
                                // Not written yet: kept for the first message.
                                s.pending_new = Some((system, tools));
                                if settings.is_some() {
                                    s.message = Some(
                                        "options apply once the conversation exists: send a message, then s again".into(),
                                    );
                                }
                            }
                        }
                    }
                },
                _ => {
                    let tab = d.tab;
                    d.editors[tab].input(k);
                }
            }
            vec![]
        }
        Context::Edit => match cmd {
            Some(Cmd::Save) => {
                let (node, t) = s.editing.take().expect("editing");
                let text = t.lines().join("\n");
                let Some(v) = s.path.iter().find(|v| v.node.id == node) else {
                    return vec![];
                };
                let answer = v.node.role == Role::User;
                if answer && s.streaming.is_some() {
                    s.message = Some("an answer is still being generated (Ctrl-C stops it)".into());
                    s.editing = Some((node, t));
                    return vec![];
                }
                let tools = s.conv.as_ref().and_then(|c| c.tools.as_ref());
                if v.node.role == Role::Assistant
                    && (tools.is_some() || !v.node.tool_calls.is_empty())
                {
                    // Calls are edited as `<tool_call>` blocks and checked against the schema.
                    return match crate::tools::from_edit(&text, tools, &v.node.tool_calls) {
                        Ok((text, calls)) => vec![Effect::SaveEdit {
                            node,
                            text,
                            answer,
                            tool_calls: Some(calls),
                        }],
                        Err(e) => {
                            s.message = Some(format!("not saved — {e}"));
                            s.editing = Some((node, t));
                            vec![]
                        }
                    };
                }
                vec![Effect::SaveEdit {
                    node,
                    text,
                    answer,
                    tool_calls: None,
                }]
            }
            Some(Cmd::Discard) => {
                s.editing = None;
                vec![]
            }
            _ => {
                if let Some((_, t)) = &mut s.editing {
                    t.input(k);
                }
                vec![]
            }
        },
        Context::Review => {
            use super::review::{Act, Effect as R};
            let r = s.review.as_mut().expect("review");
            let act = match cmd {
                Some(Cmd::BetterLeft) => Act::Left,
                Some(Cmd::BetterRight) => Act::Right,
                Some(Cmd::Tie) => Act::Tie,
                Some(Cmd::Skip) => Act::Skip,
                Some(Cmd::Undo) => Act::Undo,
                Some(Cmd::Back) => Act::Quit,
                _ => return vec![],
            };
            let run = r.run;
            let mut out = Vec::new();
            for e in r.act(act) {
                match e {
                    R::Quit => {
                        s.review = None;
                        out.push(Effect::LoadEvals);
                        break;
                    }
                    R::Decide { item, winner } => {
                        let it = &r.items[item];
                        out.push(Effect::Decide {
                            run,
                            case: it.case_id,
                            pair: (it.a, it.b),
                            nodes: it.nodes,
                            winner,
                        });
                    }
                    R::Undo { item } => {
                        let it = &r.items[item];
                        out.push(Effect::Undecide {
                            run,
                            case: it.case_id,
                            pair: (it.a, it.b),
                            nodes: it.nodes,
                        });
                    }
                }
            }
            out
        }
        Context::Evals => {
            let v = s.evals.as_mut().expect("evals");
            match cmd {
                Some(Cmd::Down) => v.sel = (v.sel + 1).min(v.runs.len().saturating_sub(1)),
                Some(Cmd::Up) => v.sel = v.sel.saturating_sub(1),
                Some(Cmd::Open) => {
                    if let Some(r) = v.runs.get(v.sel) {
                        return vec![Effect::OpenReview(r.run)];
                    }
                }
                Some(Cmd::Back) => s.evals = None,
                Some(Cmd::Help) => s.help = true,
                _ => {}
            }
            vec![]
        }
        Context::Jobs => {
            let j = s.jobs.as_mut().expect("jobs");
            let sel = j.selected().map(|r| r.job.id);
            match cmd {
                Some(Cmd::Down) => {
                    j.sel = (j.sel + 1).min(j.rows.len().saturating_sub(1));
                    return vec![Effect::LoadJobs(j.selected().map(|r| r.job.id))];
                }
                Some(Cmd::Up) => {
                    j.sel = j.sel.saturating_sub(1);
                    return vec![Effect::LoadJobs(j.selected().map(|r| r.job.id))];
                }
                Some(Cmd::NewJob) => return vec![Effect::StartJob, Effect::LoadJobs(None)],
                Some(Cmd::CancelJob) => match j.selected() {
                    Some(r) if r.job.status.is_live() => {
                        s.message = Some(format!("cancelling job {}…", r.job.id));
                        return vec![Effect::CancelJob(r.job.id)];
                    }
                    Some(r) => s.message = Some(format!("job {} is not running", r.job.id)),
                    None => {}
                },
                Some(Cmd::ResumeJob) => {
                    if let Some(id) = sel {
                        return vec![Effect::ResumeJob(id), Effect::LoadJobs(Some(id))];
                    }
                }
                Some(Cmd::UseAdapter) => match j.selected() {
                    Some(JobRow {
                        adapter: Some(a), ..
                    }) => {
                        let scale = s.adapter_scale;
                        return vec![Effect::UseAdapter(Some((a.clone(), scale)))];
                    }
                    Some(r) => {
                        s.message = Some(format!(
                            "job {} has no adapter (it {})",
                            r.job.id, r.job.status
                        ))
                    }
                    None => {}
                },
                Some(Cmd::DetachAdapter) => return vec![Effect::UseAdapter(None)],
                Some(c @ (Cmd::MoreScale | Cmd::LessScale)) => {
                    let step = if c == Cmd::MoreScale { 0.25 } else { -0.25 };
                    s.adapter_scale = (s.adapter_scale + step).clamp(0.0, 4.0);
                    return match s.adapter.clone() {
                        Some((name, _)) => vec![Effect::UseAdapter(Some((name, s.adapter_scale)))],
                        None => {
                            s.message =
                                Some(format!("adapter scale {} (a attaches)", s.adapter_scale));
                            vec![]
                        }
                    };
                }
                Some(Cmd::Back) => s.jobs = None,
                Some(Cmd::Help) => s.help = true,
                _ => {}
            }
            vec![]
        }
        Context::Tree => {
            let t = s.tree.as_mut().expect("tree");
            match cmd {
                Some(Cmd::Down) => t.sel = (t.sel + 1).min(t.rows.len().saturating_sub(1)),
                Some(Cmd::Up) => t.sel = t.sel.saturating_sub(1),
                Some(Cmd::Open) => {
                    let Some(row) = t.rows.get(t.sel) else {
                        return vec![];
                    };
                    let id = row.id;
                    if s.streaming.is_some() {
                        s.message =
                            Some("an answer is still being generated (Ctrl-C stops it)".into());
                        return vec![];
                    }
                    s.tree = None;
                    s.composing = false;
                    s.select_after_load = Some(id);
                    return vec![Effect::ActivateNode(id)];
                }
                Some(Cmd::Back) => s.tree = None,
                Some(Cmd::Help) => s.help = true,
                _ => {}
            }
            vec![]
        }
        Context::Compare => {
            let c = s.compare.as_mut().expect("compare");
            let n = c.nodes.len().max(1);
            match cmd {
                Some(Cmd::NextSibling) => c.sel = (c.sel + 1) % n,
                Some(Cmd::PrevSibling) => c.sel = (c.sel + n - 1) % n,
                Some(Cmd::Rate(r)) => {
                    if let Some(&node) = c.nodes.get(c.sel) {
                        let stars = (r > 0).then_some(r);
                        c.stars[c.sel] = stars;
                        return vec![Effect::Rate(node, stars)];
                    }
                }
                Some(Cmd::Keep) => {
                    if c.generating() {
                        s.message = Some("still generating (Ctrl-C stops it)".into());
                        return vec![];
                    }
                    if let Some(&node) = c.nodes.get(c.sel) {
                        s.compare = None;
                        s.composing = false;
                        s.select_after_load = Some(node);
                        return vec![Effect::ActivateNode(node)];
                    }
                }
                Some(Cmd::Cancel) if c.generating() => return vec![Effect::Cancel],
                Some(Cmd::Back) => {
                    if c.generating() {
                        return vec![Effect::Cancel];
                    }
                    s.compare = None;
                }
                Some(Cmd::Help) => s.help = true,
                _ => {}
            }
            vec![]
        }
        Context::Presets => {
            let n = s.presets.len();
            let i = s.picker.unwrap_or(0);
            match cmd {
                Some(Cmd::Down) => s.picker = Some((i + 1).min(n.saturating_sub(1))),
                Some(Cmd::Up) => s.picker = Some(i.saturating_sub(1)),
                Some(Cmd::Open) => {
                    s.picker = None;
                    if let Some(p) = s.presets.get(i).cloned() {
                        start_new(s, p.system, p.tools);
                        s.message = Some(format!("new conversation from preset {}", p.name));
                    }
                }
                Some(Cmd::Back) => s.picker = None,
                _ => {}
            }
            vec![]
        }
        Context::List => match cmd {
            Some(Cmd::Quit) => {
                s.quit = true;
                vec![Effect::Quit]
            }
            Some(Cmd::Search) => {
                let mut t = textarea("search every message; Enter keeps the filter, Esc clears");
                if let Some(q) = &s.list_filter.search {
                    t.insert_str(q);
                }
                s.prompt = Some((Prompt::Search, t));
                vec![]
            }
            Some(Cmd::FilterTag) => {
                s.prompt = Some((
                    Prompt::FilterTag,
                    textarea("tag, e.g. clarification (empty: every conversation)"),
                ));
                vec![]
            }
            Some(Cmd::ClearFilter) => {
                if s.list_filter == ListFilter::default() {
                    return vec![];
                }
                s.list_filter = ListFilter::default();
                vec![Effect::LoadList]
            }
            Some(Cmd::Rename) => {
                if let Some(c) = s.conversations.get(s.list_sel) {
                    let mut t = textarea("new title, Enter saves");
                    t.insert_str(&c.title);
                    s.prompt = Some((Prompt::Rename(c.id), t));
                }
                vec![]
            }
            Some(Cmd::Presets) => {
                if s.presets.is_empty() {
                    s.message = Some("no presets found".into());
                } else {
                    s.picker = Some(0);
                }
                vec![]
            }
            Some(Cmd::Help) => {
                s.help = true;
                vec![]
            }
            Some(Cmd::Down) => {
                s.list_sel = (s.list_sel + 1).min(s.conversations.len().saturating_sub(1));
                vec![]
            }
            Some(Cmd::Up) => {
                s.list_sel = s.list_sel.saturating_sub(1);
                vec![]
            }
            Some(Cmd::Open) => match s.conversations.get(s.list_sel) {
                Some(c) => {
                    s.composing = false;
                    vec![Effect::Open(c.id)]
                }
                None => vec![],
            },
            Some(Cmd::NewConversation) => {
                start_new(s, String::new(), None);
                vec![]
            }
            Some(Cmd::Jobs) => {
                s.jobs = Some(JobsView::default());
                vec![Effect::LoadJobs(None)]
            }
            Some(Cmd::Evals) => {
                s.evals = Some(EvalsView::default());
                vec![Effect::LoadEvals]
            }
            Some(Cmd::Export) => {
                let d = ExportDialog {
                    min_rating: Some(4),
                    ..Default::default()
                };
                let e = d.effect(false);
                s.export = Some(d);
                vec![e]
            }
            Some(Cmd::Delete) => {
                if let Some(c) = s.conversations.get(s.list_sel) {
                    s.confirm = Some(Confirm::DeleteConversation(c.id));
                }
                vec![]
            }
            _ => vec![],
        },
        Context::Compose => match cmd {
            Some(Cmd::Send) => {
                let text = s.composer.lines().join("\n");
                if text.trim().is_empty() {
                    return vec![];
                }
                if s.streaming.is_some() {
                    s.message = Some("an answer is still being generated (Ctrl-C stops it)".into());
                    return vec![];
                }
                if let ModelState::Failed(m) = &s.model {
                    s.message = Some(format!("no model: {m}"));
                    return vec![];
                }
                s.composer = composer();
                if let (Some(call), Some(last)) = (s.pending_calls().first(), s.path.last()) {
                    return vec![Effect::ToolResult {
                        parent: last.node.id,
                        call_id: call.id.clone(),
                        text,
                    }];
                }
                vec![Effect::Send {
                    conv: s.conv.as_ref().map(|c| c.id),
                    parent: s.path.last().map(|v| v.node.id),
                    text,
                }]
            }
            Some(Cmd::Newline) => {
                s.composer.insert_newline();
                vec![]
            }
            Some(Cmd::Settings) => {
                open_settings(s);
                vec![]
            }
            Some(Cmd::Cancel) => cancel(s),
            Some(Cmd::LeaveComposer) => {
                if s.streaming.is_some() {
                    return cancel(s);
                }
                s.composing = false;
                s.sel = s.path.len().checked_sub(1);
                if s.path.is_empty() {
                    s.screen = Screen::List;
                    return vec![Effect::LoadList];
                }
                vec![]
            }
            _ => {
                s.composer.input(k);
                vec![]
            }
        },
        Context::Chat => match cmd {
            Some(Cmd::Quit) => {
                s.quit = true;
                vec![Effect::Cancel, Effect::Quit]
            }
            Some(Cmd::Help) => {
                s.help = true;
                vec![]
            }
            Some(Cmd::Up) => {
                s.sel = Some(
                    s.sel
                        .map_or(s.path.len().saturating_sub(1), |i| i.saturating_sub(1)),
                );
                vec![]
            }
            Some(Cmd::Down) => {
                s.sel = Some(
                    s.sel
                        .map_or(0, |i| (i + 1).min(s.path.len().saturating_sub(1))),
                );
                vec![]
            }
            Some(Cmd::Compose) => {
                s.composing = true;
                s.sel = None;
                vec![]
            }
            Some(Cmd::Cancel) => cancel(s),
            Some(Cmd::Back) => {
                if s.streaming.is_some() {
                    return cancel(s);
                }
                s.screen = Screen::List;
                s.conv = None;
                s.path.clear();
                vec![Effect::LoadList]
            }
            Some(Cmd::Rate(n)) => match s.selected() {
                Some(v) if v.node.role == Role::Assistant => {
                    vec![Effect::Rate(v.node.id, (n > 0).then_some(n))]
                }
                Some(_) => {
                    s.message = Some("only assistant messages are rated".into());
                    vec![]
                }
                None => vec![],
            },
            Some(Cmd::Edit) => {
                if let Some(v) = s.selected() {
                    if s.streaming
                        .as_ref()
                        .is_some_and(|st| st.node_id == v.node.id)
                    {
                        return vec![];
                    }
                    let text = crate::tools::editable(&v.node.content, &v.node.tool_calls);
                    let mut t = TextArea::from(text.lines().map(str::to_string));
                    t.set_placeholder_text("Ctrl-S saves as a new sibling, Esc discards");
                    s.editing = Some((v.node.id, t));
                }
                vec![]
            }
            Some(Cmd::Regenerate) => {
                if s.streaming.is_some() {
                    s.message = Some("an answer is still being generated (Ctrl-C stops it)".into());
                    return vec![];
                }
                match s.selected() {
                    Some(v) if v.node.role == Role::Assistant => match v.node.parent_id {
                        Some(parent) => vec![Effect::Regenerate { parent }],
                        None => vec![],
                    },
                    Some(v) if v.node.role == Role::User => {
                        vec![Effect::Regenerate { parent: v.node.id }]
                    }
                    _ => vec![],
                }
            }
            Some(c @ (Cmd::PrevSibling | Cmd::NextSibling)) => {
                if s.streaming.is_some() {
                    return vec![];
                }
                let Some(v) = s.selected() else { return vec![] };
                let (pos, n) = v.sibling;
                let target = if c == Cmd::PrevSibling {
                    pos.checked_sub(1)
                } else {
                    Some(pos + 1)
                };
                match target {
                    Some(t) if t >= 1 && t <= n => vec![Effect::ActivateSibling {
                        node: v.node.id,
                        position: t,
                    }],
                    _ => vec![],
                }
            }
            Some(Cmd::Critique) => {
                if let Some(v) = s.selected() {
                    s.prompt = Some((
                        Prompt::Critique(v.node.id),
                        textarea("critique, Enter saves"),
                    ));
                }
                vec![]
            }
            Some(Cmd::Tag) => {
                if let Some(v) = s.selected() {
                    s.prompt = Some((
                        Prompt::Tag(v.node.id),
                        textarea("tags, e.g. clarification tool-call"),
                    ));
                }
                vec![]
            }
            Some(Cmd::AddToEval) => {
                if let Some(v) = s.selected() {
                    s.prompt = Some((
                        Prompt::EvalSet(v.node.id),
                        textarea("eval set: an existing name or a new one — Enter adds this turn"),
                    ));
                }
                vec![]
            }
            Some(Cmd::Tree) => match &s.conv {
                Some(c) => vec![Effect::LoadTree(c.id)],
                None => vec![],
            },
            Some(Cmd::Jobs) => {
                s.jobs = Some(JobsView::default());
                vec![Effect::LoadJobs(None)]
            }
            Some(Cmd::CompareBase) => {
                if s.streaming.is_some() {
                    s.message = Some("an answer is still being generated (Ctrl-C stops it)".into());
                    return vec![];
                }
                if s.adapter.is_none() {
                    s.message = Some(
                        "no adapter attached: open the Jobs view (J), pick a job, press a".into(),
                    );
                    return vec![];
                }
                match turn_parent(s) {
                    Some(parent) => {
                        s.compare = Some(Compare::new(parent));
                        vec![Effect::CompareAdapter { parent }]
                    }
                    None => vec![],
                }
            }
            Some(Cmd::CompareK) => {
                if s.streaming.is_some() {
                    s.message = Some("an answer is still being generated (Ctrl-C stops it)".into());
                    return vec![];
                }
                match turn_parent(s) {
                    Some(parent) => {
                        s.compare = Some(Compare::new(parent));
                        vec![Effect::RegenerateK {
                            parent,
                            k: COMPARE_K,
                        }]
                    }
                    None => vec![],
                }
            }
            Some(Cmd::MarkClarification) => match s.selected() {
                Some(v) if v.node.role == Role::Assistant => {
                    let tag = CLARIFICATION.to_string();
                    if v.tags.iter().any(|t| t == CLARIFICATION) {
                        vec![Effect::Untag(v.node.id, tag)]
                    } else {
                        vec![Effect::Tag(v.node.id, tag)]
                    }
                }
                Some(_) => {
                    s.message =
                        Some("only an assistant message can be a clarifying question".into());
                    vec![]
                }
                None => vec![],
            },
            Some(Cmd::Settings) => {
                open_settings(s);
                vec![]
            }
            Some(Cmd::Delete) => {
                if let Some(v) = s.selected() {
                    if s.streaming.is_none() {
                        s.confirm = Some(Confirm::DeleteBranch(v.node.id));
                    }
                }
                vec![]
            }
            _ => vec![],
        },
    }
}

/// Opens the settings popup on the open (or not yet written) conversation.
fn open_settings(s: &mut State) {
    s.settings = match (&s.conv, &s.pending_new) {
        (Some(c), _) => Some(SettingsDialog::new(
            &c.system_prompt,
            c.tools.as_ref(),
            c.settings.as_ref(),
        )),
        (None, Some((system, tools))) => Some(SettingsDialog::new(system, tools.as_ref(), None)),
        (None, None) => None,
    };
}

/// The built-in tag of an assistant turn that asks a clarifying question.
pub const CLARIFICATION: &str = "clarification";

/// Mouse: the wheel moves the selection, a click selects what is under it.
fn on_mouse(s: &mut State, m: crossterm::event::MouseEvent) -> Vec<Effect> {
    use crossterm::event::{MouseButton, MouseEventKind};
    let step: isize = match m.kind {
        MouseEventKind::ScrollDown => 1,
        MouseEventKind::ScrollUp => -1,
        MouseEventKind::Down(MouseButton::Left) => 0,
        _ => return vec![],
    };
    let moved =
        |i: usize, n: usize| (i as isize + step).clamp(0, n.saturating_sub(1) as isize) as usize;
    match s.key_context() {
        Context::List if step == 0 => {
            if let Some(i) = super::view::list_hit(s, s.size, m.row) {
                s.list_sel = i;
            }
        }
        Context::List => s.list_sel = moved(s.list_sel, s.conversations.len()),
        Context::Chat | Context::Compose if step == 0 => {
            if let Some(i) = super::view::chat_hit(s, s.size, m.column, m.row) {
                s.composing = false;
                s.sel = Some(i);
            }
        }
        Context::Chat | Context::Compose if !s.path.is_empty() => {
            s.composing = false;
            let cur = s.sel.unwrap_or(s.path.len() - 1);
            s.sel = Some(moved(cur, s.path.len()));
        }
        Context::Tree => {
            if let Some(t) = &mut s.tree {
                t.sel = moved(t.sel, t.rows.len());
            }
        }
        Context::Jobs => {
            if let Some(j) = &mut s.jobs {
                j.sel = moved(j.sel, j.rows.len());
                return vec![Effect::LoadJobs(j.selected().map(|r| r.job.id))];
            }
        }
        Context::Presets => {
            if let Some(p) = s.picker {
                s.picker = Some(moved(p, s.presets.len()));
            }
        }
        _ => {}
    }
    vec![]
}

fn cancel(s: &mut State) -> Vec<Effect> {
    if s.streaming.is_some() {
        vec![Effect::Cancel]
    } else {
        vec![]
    }
}

pub fn start_new(s: &mut State, system: String, tools: Option<serde_json::Value>) {
    s.screen = Screen::Chat;
    s.conv = None;
    s.pending_new = Some((system, tools));
    s.path.clear();
    s.sel = None;
    s.composing = true;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyModifiers};

    fn key(c: KeyCode) -> Action {
        Action::Key(KeyEvent::new(c, KeyModifiers::NONE))
    }

    fn node(id: NodeId, parent: Option<NodeId>, role: Role, text: &str) -> NodeView {
        NodeView {
            sibling: (1, 2),
            ..NodeView::of(Node {
                id,
                parent_id: parent,
                ..Node::new(1, role, text)
            })
        }
    }

    fn conv() -> Conversation {
        Conversation {
            id: 1,
            title: "t".into(),
            system_prompt: String::new(),
            tools: None,
            settings: None,
            active_root_id: Some(1),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn open_chat() -> State {
        let mut s = State::new("db".into(), "me".into());
        let path = vec![
            node(1, None, Role::User, "hi"),
            node(2, Some(1), Role::Assistant, "hello"),
        ];
        update(&mut s, Action::PathLoaded(conv(), path));
        s
    }

    #[test]
    fn opening_selects_the_last_message_and_keys_rate_it() {
        let mut s = open_chat();
        assert_eq!(s.sel, Some(1));
        assert_eq!(
            update(&mut s, key(KeyCode::Char('4'))),
            vec![Effect::Rate(2, Some(4))]
        );
        assert_eq!(
            update(&mut s, key(KeyCode::Char('0'))),
            vec![Effect::Rate(2, None)]
        );
        update(&mut s, key(KeyCode::Char('k')));
        assert_eq!(s.sel, Some(0));
        assert!(update(&mut s, key(KeyCode::Char('5'))).is_empty());
        assert_eq!(
            s.message.as_deref(),
            Some("only assistant messages are rated")
        );
    }

    #[test]
    fn composing_and_sending() {
        let mut s = open_chat();
        update(&mut s, key(KeyCode::Char('i')));
        assert!(s.composing);
        for c in "more".chars() {
            update(&mut s, key(KeyCode::Char(c)));
        }
        let alt_enter = Action::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::ALT));
        update(&mut s, alt_enter);
        update(&mut s, key(KeyCode::Char('!')));
        let eff = update(&mut s, key(KeyCode::Enter));
        assert_eq!(
            eff,
            vec![Effect::Send {
                conv: Some(1),
                parent: Some(2),
                text: "more\n!".into()
            }]
        );
        assert_eq!(s.composer.lines(), [""]);
    }

    #[test]
    fn streaming_tokens_land_on_the_answer_and_escape_cancels() {
        let mut s = open_chat();
        update(
            &mut s,
            Action::Started {
                node: 2,
                request: 7,
            },
        );
        update(
            &mut s,
            Action::Engine(EngineEvent::Token {
                id: 7,
                seq: 0,
                text: " there".into(),
            }),
        );
        assert_eq!(s.path[1].node.content, "hello there");
        assert_eq!(update(&mut s, key(KeyCode::Esc)), vec![Effect::Cancel]);
        let facts = GenerationFacts {
            stop_reason: "cancelled".into(),
            tokens_per_s: 12.5,
            ..Default::default()
        };
        let eff = update(
            &mut s,
            Action::Engine(EngineEvent::Done {
                id: 7,
                seq: 0,
                facts,
            }),
        );
        assert_eq!(eff, vec![Effect::Open(1)]);
        assert!(s.streaming.is_none());
        assert_eq!(s.path[1].node.status, Status::Interrupted);
        assert_eq!(s.last_tps, Some(12.5));
    }

    #[test]
    fn regenerate_edit_and_siblings() {
        let mut s = open_chat();
        assert_eq!(
            update(&mut s, key(KeyCode::Char('r'))),
            vec![Effect::Regenerate { parent: 1 }]
        );
        assert_eq!(
            update(&mut s, key(KeyCode::Char('l'))),
            vec![Effect::ActivateSibling {
                node: 2,
                position: 2
            }]
        );
        assert!(
            update(&mut s, key(KeyCode::Char('h'))).is_empty(),
            "already the first sibling"
        );
        update(&mut s, key(KeyCode::Char('e')));
        assert!(s.editing.is_some());
        update(&mut s, key(KeyCode::Char('X')));
        let save = Action::Key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
        assert_eq!(
            update(&mut s, save),
            vec![Effect::SaveEdit {
                node: 2,
                text: "Xhello".into(),
                answer: false,
                tool_calls: None,
            }]
        );
    }

    #[test]
    fn delete_asks_first() {
        let mut s = open_chat();
        assert!(update(&mut s, key(KeyCode::Char('d'))).is_empty());
        assert_eq!(s.confirm, Some(Confirm::DeleteBranch(2)));
        assert!(update(&mut s, key(KeyCode::Char('n'))).is_empty());
        update(&mut s, key(KeyCode::Char('d')));
        assert_eq!(
            update(&mut s, key(KeyCode::Char('y'))),
            vec![Effect::DeleteBranch(2)]
        );
    }

    #[test]
    fn help_lists_every_binding_of_the_view() {
        let lines = s_keymap().help(Context::Chat);
        for b in super::super::keymap::BINDINGS
            .iter()
            .filter(|b| b.context == Context::Chat)
        {
            assert!(
                lines
                    .iter()
                    .any(|(k, _)| k.split(" / ").any(|x| x == b.key)),
                "{}",
                b.key
            );
        }
    }

    #[test]
    fn export_dialog_asks_for_counts_on_every_change() {
        use crate::dataset::Format;
        let mut s = State::new("db".into(), "me".into());
        let fx = update(&mut s, key(KeyCode::Char('x')));
        assert_eq!(
            fx,
            vec![Effect::Export {
                format: Format::Openai,
                min_rating: Some(4),
                write: false
            }]
        );
        assert_eq!(s.key_context(), Context::Export);
        let fx = update(&mut s, key(KeyCode::Right));
        assert_eq!(
            fx,
            vec![Effect::Export {
                format: Format::Trl,
                min_rating: Some(4),
                write: false
            }]
        );
        for _ in 0..4 {
            update(&mut s, key(KeyCode::Char('-')));
        }
        assert_eq!(
            s.export.as_ref().unwrap().min_rating,
            None,
            "below 1 star is no threshold"
        );
        let fx = update(&mut s, key(KeyCode::Left));
        assert_eq!(
            fx,
            vec![Effect::Export {
                format: Format::Openai,
                min_rating: None,
                write: false
            }]
        );
        let fx = update(&mut s, key(KeyCode::Enter));
        assert_eq!(
            fx,
            vec![Effect::Export {
                format: Format::Openai,
                min_rating: None,
                write: true
            }]
        );
        update(
            &mut s,
            Action::ExportWritten("wrote 3 examples to x".into()),
        );
        assert_eq!(
            s.export.as_ref().unwrap().result.as_deref(),
            Some("wrote 3 examples to x")
        );
        update(&mut s, key(KeyCode::Esc));
        assert!(s.export.is_none());
        assert_eq!(s.key_context(), Context::List);
    }

    fn s_keymap() -> Keymap {
        Keymap::default()
    }

    fn type_text(s: &mut State, text: &str) {
        for c in text.chars() {
            update(s, key(KeyCode::Char(c)));
        }
    }

    fn ctrl(c: char) -> Action {
        Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
    }

    fn tool_chat() -> State {
        let mut s = State::new("db".into(), "me".into());
        let call = |id: &str, city: &str| ToolCall {
            id: id.into(),
            name: "get_weather".into(),
            arguments: serde_json::json!({ "city": city }),
        };
        let mut asst = node(2, Some(1), Role::Assistant, "");
        asst.node.tool_calls = vec![call("a", "Paris"), call("b", "Rome")];
        let c = Conversation {
            tools: Some(
                serde_json::json!([{"type": "function", "function": {"name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]),
            ),
            ..conv()
        };
        update(
            &mut s,
            Action::PathLoaded(c, vec![node(1, None, Role::User, "weather?"), asst]),
        );
        s
    }

    #[test]
    fn after_a_tool_call_the_composer_takes_each_result_in_turn() {
        let mut s = tool_chat();
        assert_eq!(s.pending_calls().len(), 2);
        update(&mut s, key(KeyCode::Char('i')));
        type_text(&mut s, "14C");
        assert_eq!(
            update(&mut s, key(KeyCode::Enter)),
            vec![Effect::ToolResult {
                parent: 2,
                call_id: "a".into(),
                text: "14C".into()
            }]
        );
        // The runtime reloads the path with the first result: the second call is next.
        let mut path = s.path.clone();
        let mut res = node(3, Some(2), Role::Tool, "14C");
        res.node.tool_call_id = Some("a".into());
        path.push(res);
        let c = s.conv.clone().unwrap();
        update(&mut s, Action::PathLoaded(c, path));
        assert_eq!(s.pending_calls()[0].id, "b");
        type_text(&mut s, "20C");
        assert_eq!(
            update(&mut s, key(KeyCode::Enter)),
            vec![Effect::ToolResult {
                parent: 3,
                call_id: "b".into(),
                text: "20C".into()
            }]
        );
    }

    #[test]
    fn editing_a_tool_call_checks_it_against_the_schema() {
        let mut s = tool_chat();
        s.sel = Some(1);
        update(&mut s, key(KeyCode::Char('e')));
        let (_, t) = s.editing.as_ref().unwrap();
        assert!(t.lines().join("\n").contains("\"city\":\"Paris\""));
        // Break the schema: `city` renamed. Nothing is saved; the editor stays open.
        let (id, _) = s.editing.take().unwrap();
        let bad =
            crate::tools::editable("", &s.path[1].node.tool_calls[..1]).replace("city", "town");
        s.editing = Some((id, TextArea::from(bad.lines().map(str::to_string))));
        assert_eq!(update(&mut s, ctrl('s')), vec![]);
        assert!(s.editing.is_some());
        assert!(s
            .message
            .as_deref()
            .unwrap()
            .contains("do not match its schema"));
        // A valid change saves the calls as structure, ids kept.
        let good =
            crate::tools::editable("Checking.", &s.path[1].node.tool_calls).replace("Rome", "Oslo");
        s.editing = Some((id, TextArea::from(good.lines().map(str::to_string))));
        match update(&mut s, ctrl('s')).as_slice() {
            [Effect::SaveEdit {
                text,
                tool_calls: Some(calls),
                answer: false,
                ..
            }] => {
                assert_eq!(text, "Checking.");
                assert_eq!(calls[1].arguments["city"], "Oslo");
                assert_eq!(calls[1].id, "b");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn m_marks_and_unmarks_a_clarifying_question() {
        let mut s = open_chat();
        assert_eq!(
            update(&mut s, key(KeyCode::Char('m'))),
            vec![Effect::Tag(2, "clarification".into())]
        );
        s.path[1].tags = vec!["clarification".into()];
        assert_eq!(
            update(&mut s, key(KeyCode::Char('m'))),
            vec![Effect::Untag(2, "clarification".into())]
        );
        s.sel = Some(0);
        assert_eq!(update(&mut s, key(KeyCode::Char('m'))), vec![]);
        assert!(s.message.is_some());
    }

    #[test]
    fn settings_popup_saves_only_what_checks() {
        let mut s = open_chat();
        update(&mut s, key(KeyCode::Char('s')));
        assert_eq!(s.key_context(), Context::Settings);
        type_text(&mut s, "Be brief.");
        update(&mut s, key(KeyCode::Tab));
        type_text(&mut s, "[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"type\": \"nope\"}}}]");
        assert_eq!(update(&mut s, ctrl('s')), vec![]);
        let m = s.message.clone().unwrap();
        assert!(m.starts_with("not saved — tools:"), "{m}");
        assert!(s.settings.is_some());
        // Fix the tools; a bad option is refused next, naming the field.
        let d = s.settings.as_mut().unwrap();
        d.editors[1] = TextArea::from(["[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"type\": \"object\"}}}]".to_string()]);
        d.editors[2] = TextArea::from(["{\"sampling\": {\"temprature\": 0.1}}".to_string()]);
        assert_eq!(update(&mut s, ctrl('s')), vec![]);
        assert!(s.message.clone().unwrap().contains("sampling.temprature"));
        let d = s.settings.as_mut().unwrap();
        d.editors[2] =
            TextArea::from(["{\"sampling\": {\"temperature\": 0.1}, \"few_shot\": 2}".to_string()]);
        match update(&mut s, ctrl('s')).as_slice() {
            [Effect::SaveSettings {
                conv: 1,
                system,
                tools: Some(t),
                settings: Some(o),
            }] => {
                assert_eq!(system, "Be brief.");
                assert_eq!(t[0]["function"]["name"], "f");
                assert_eq!(o["few_shot"], 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(s.settings.is_none());
        // Esc closes without saving.
        update(&mut s, key(KeyCode::Char('s')));
        assert_eq!(update(&mut s, key(KeyCode::Esc)), vec![]);
        assert!(s.settings.is_none());
    }

    #[test]
    fn a_new_conversation_starts_from_a_picked_preset() {
        let mut s = State::new("db".into(), "me".into());
        let preset = |name: &str, tools| crate::presets::Preset {
            name: name.into(),
            description: String::new(),
            system: format!("system of {name}"),
            tools,
        };
        s.presets = vec![
            preset("clarifying", None),
            preset("tool-caller", Some(serde_json::json!([]))),
        ];
        update(&mut s, key(KeyCode::Char('p')));
        assert_eq!(s.key_context(), Context::Presets);
        update(&mut s, key(KeyCode::Char('j')));
        update(&mut s, key(KeyCode::Enter));
        assert_eq!(s.key_context(), Context::Compose);
        assert_eq!(
            s.pending_new,
            Some(("system of tool-caller".into(), Some(serde_json::json!([]))))
        );
        // Esc closes the picker without starting anything.
        let mut s2 = State::new("db".into(), "me".into());
        s2.presets = s.presets.clone();
        update(&mut s2, key(KeyCode::Char('p')));
        update(&mut s2, key(KeyCode::Esc));
        assert_eq!(s2.key_context(), Context::List);
        assert!(s2.pending_new.is_none());
    }

    #[test]
    fn the_tree_opens_on_the_active_path_and_enter_makes_a_path_active() {
        let mut s = open_chat();
        assert_eq!(
            update(&mut s, key(KeyCode::Char('T'))),
            vec![Effect::LoadTree(1)]
        );
        let row = |id, active| TreeRow {
            id,
            graph: String::new(),
            role: Role::Assistant,
            text: String::new(),
            stars: None,
            tool_calls: 0,
            origin: Origin::Generated,
            active,
        };
        update(
            &mut s,
            Action::TreeLoaded(vec![row(1, true), row(2, true), row(3, false)]),
        );
        assert_eq!(s.key_context(), Context::Tree);
        assert_eq!(s.tree.as_ref().unwrap().sel, 1);
        update(&mut s, key(KeyCode::Char('j')));
        assert_eq!(
            update(&mut s, key(KeyCode::Enter)),
            vec![Effect::ActivateNode(3)]
        );
        assert!(s.tree.is_none());
        // The reloaded path selects the picked message.
        let mut path = s.path.clone();
        path[1].node.id = 3;
        update(&mut s, Action::PathLoaded(conv(), path));
        assert_eq!(s.sel, Some(1));
        // Esc closes without changing anything.
        update(&mut s, key(KeyCode::Char('T')));
        update(&mut s, Action::TreeLoaded(vec![row(1, true)]));
        assert_eq!(update(&mut s, key(KeyCode::Esc)), vec![]);
        assert!(s.tree.is_none());
    }

    #[test]
    fn compare_streams_k_candidates_rates_them_and_keeps_one() {
        let mut s = open_chat();
        assert_eq!(
            update(&mut s, key(KeyCode::Char('R'))),
            vec![Effect::RegenerateK { parent: 1, k: 3 }]
        );
        update(
            &mut s,
            Action::CompareStarted {
                nodes: vec![10, 11, 12],
                slots: vec![(9, 0), (9, 1), (9, 2)],
                labels: vec![
                    "candidate 1".into(),
                    "candidate 2".into(),
                    "candidate 3".into(),
                ],
            },
        );
        update(
            &mut s,
            Action::Started {
                node: 10,
                request: 9,
            },
        );
        for seq in 0..3 {
            update(
                &mut s,
                Action::Engine(EngineEvent::Token {
                    id: 9,
                    seq,
                    text: format!("answer {seq}"),
                }),
            );
        }
        let c = s.compare.clone().unwrap();
        assert_eq!(c.texts, ["answer 0", "answer 1", "answer 2"]);
        // Not yet: still generating.
        assert_eq!(update(&mut s, key(KeyCode::Enter)), vec![]);
        let done = |seq| {
            Action::Engine(EngineEvent::Done {
                id: 9,
                seq,
                facts: Default::default(),
            })
        };
        assert_eq!(update(&mut s, done(0)), vec![]);
        assert_eq!(update(&mut s, done(2)), vec![]);
        assert_eq!(update(&mut s, done(1)), vec![Effect::Open(1)]);
        assert!(s.streaming.is_none());
        update(&mut s, key(KeyCode::Char('l')));
        assert_eq!(
            update(&mut s, key(KeyCode::Char('4'))),
            vec![Effect::Rate(11, Some(4))]
        );
        assert_eq!(s.compare.as_ref().unwrap().stars[1], Some(4));
        assert_eq!(
            update(&mut s, key(KeyCode::Enter)),
            vec![Effect::ActivateNode(11)]
        );
        assert!(s.compare.is_none());
    }

    #[test]
    fn the_list_filters_by_search_as_typed_and_by_tag() {
        let mut s = State::new("db".into(), "me".into());
        update(&mut s, key(KeyCode::Char('/')));
        assert_eq!(
            update(&mut s, key(KeyCode::Char('g'))),
            vec![Effect::LoadList]
        );
        update(&mut s, key(KeyCode::Char('o')));
        assert_eq!(s.list_filter.search.as_deref(), Some("go"));
        update(&mut s, key(KeyCode::Enter));
        assert!(s.prompt.is_none());
        assert_eq!(s.list_filter.search.as_deref(), Some("go"));
        update(&mut s, key(KeyCode::Char('f')));
        type_text(&mut s, "clarification");
        assert_eq!(update(&mut s, key(KeyCode::Enter)), vec![Effect::LoadList]);
        assert_eq!(s.list_filter.tag.as_deref(), Some("clarification"));
        // Esc in the list shows everything again.
        assert_eq!(update(&mut s, key(KeyCode::Esc)), vec![Effect::LoadList]);
        assert_eq!(s.list_filter, ListFilter::default());
        assert_eq!(update(&mut s, key(KeyCode::Esc)), vec![]);
    }

    #[test]
    fn rename_prefills_the_title() {
        let mut s = State::new("db".into(), "me".into());
        update(
            &mut s,
            Action::ListLoaded(vec![ConversationSummary {
                id: 4,
                title: "old".into(),
                updated_at: 0,
                messages: 2,
                rated: 0,
                avg_stars: None,
                tags: vec![],
            }]),
        );
        update(&mut s, key(KeyCode::Char('r')));
        type_text(&mut s, " one");
        assert_eq!(
            update(&mut s, key(KeyCode::Enter)),
            vec![Effect::Rename(4, "old one".into()), Effect::LoadList]
        );
    }

    #[test]
    fn the_mouse_wheel_moves_and_a_click_selects() {
        use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
        let mouse = |kind, column, row| {
            Action::Mouse(MouseEvent {
                kind,
                column,
                row,
                modifiers: KeyModifiers::NONE,
            })
        };
        let mut s = open_chat();
        update(&mut s, Action::Resize(80, 24));
        assert_eq!(s.sel, Some(1));
        // Rows: 0 title, 1 "you #1", 2 "hi", 3 blank, 4 "assistant #2".
        update(
            &mut s,
            mouse(MouseEventKind::Down(MouseButton::Left), 10, 2),
        );
        assert_eq!(s.sel, Some(0));
        update(&mut s, mouse(MouseEventKind::ScrollDown, 5, 5));
        assert_eq!(s.sel, Some(1));
        update(&mut s, mouse(MouseEventKind::ScrollDown, 5, 5));
        assert_eq!(s.sel, Some(1));
        update(&mut s, mouse(MouseEventKind::ScrollUp, 5, 5));
        assert_eq!(s.sel, Some(0));
        update(&mut s, mouse(MouseEventKind::ScrollDown, 5, 5));
        update(
            &mut s,
            mouse(MouseEventKind::Down(MouseButton::Left), 10, 4),
        );
        assert_eq!(s.sel, Some(1));
        // Below the last message: nothing changes.
        update(
            &mut s,
            mouse(MouseEventKind::Down(MouseButton::Left), 10, 20),
        );
        assert_eq!(s.sel, Some(1));
        // In the list a click picks the row under it.
        let mut s = State::new("db".into(), "me".into());
        let c = |id| ConversationSummary {
            id,
            title: format!("c{id}"),
            updated_at: 0,
            messages: 1,
            rated: 0,
            avg_stars: None,
            tags: vec![],
        };
        update(&mut s, Action::ListLoaded(vec![c(3), c(2), c(1)]));
        update(
            &mut s,
            mouse(MouseEventKind::Down(MouseButton::Left), 10, 3),
        );
        assert_eq!(s.list_sel, 2);
        update(&mut s, mouse(MouseEventKind::ScrollUp, 10, 3));
        assert_eq!(s.list_sel, 1);
    }

    #[test]
    fn base_vs_tuned_streams_two_requests_side_by_side() {
        let mut s = open_chat();
        let fx = update(&mut s, key(KeyCode::Char('B')));
        assert!(fx.is_empty());
        assert!(s
            .message
            .as_deref()
            .unwrap()
            .contains("no adapter attached"));
        s.adapter = Some(("job-1".into(), 1.0));
        assert_eq!(
            update(&mut s, key(KeyCode::Char('B'))),
            vec![Effect::CompareAdapter { parent: 1 }]
        );
        update(
            &mut s,
            Action::CompareStarted {
                nodes: vec![20, 21],
                slots: vec![(5, 0), (6, 0)],
                labels: vec!["tuned: job-1 ×1".into(), "base".into()],
            },
        );
        let token = |id, text: &str| {
            Action::Engine(EngineEvent::Token {
                id,
                seq: 0,
                text: text.into(),
            })
        };
        update(&mut s, token(5, "PLUM"));
        update(&mut s, token(6, "I do not know"));
        update(&mut s, token(5, "TREE"));
        let c = s.compare.clone().unwrap();
        assert_eq!(c.texts, ["PLUMTREE", "I do not know"]);
        let done = |id| {
            Action::Engine(EngineEvent::Done {
                id,
                seq: 0,
                facts: Default::default(),
            })
        };
        assert!(update(&mut s, done(5)).is_empty(), "one still generating");
        assert!(s.compare.as_ref().unwrap().generating());
        assert_eq!(update(&mut s, done(6)), vec![Effect::Open(1)]);
        update(&mut s, key(KeyCode::Char('l')));
        assert_eq!(
            update(&mut s, key(KeyCode::Char('2'))),
            vec![Effect::Rate(21, Some(2))]
        );
    }

    #[test]
    fn jobs_view_loads_refreshes_and_acts_on_the_selected_job() {
        let mut s = open_chat();
        assert_eq!(
            update(&mut s, key(KeyCode::Char('J'))),
            vec![Effect::LoadJobs(None)]
        );
        let job = |id, status: &str| JobRow {
            job: crate::store::Job {
                id,
                recipe: "peft".into(),
                base_model: "m.gguf".into(),
                data_path: String::new(),
                params: serde_json::Value::Null,
                status: status.parse().unwrap(),
                pid: None,
                supervisor_pid: None,
                exit_code: None,
                dir: None,
                error: None,
                phase: None,
                cancel_requested: false,
                log_offset: 0,
                examples: None,
                created_at: 0,
                started_at: None,
                finished_at: None,
            },
            progress: Default::default(),
            adapter: (status == "succeeded").then(|| format!("job-{id}")),
        };
        update(
            &mut s,
            Action::JobsLoaded(JobsView {
                rows: vec![job(2, "running"), job(1, "succeeded")],
                ..Default::default()
            }),
        );
        assert_eq!(s.key_context(), Context::Jobs);
        assert_eq!(
            update(&mut s, key(KeyCode::Char('c'))),
            vec![Effect::CancelJob(2)]
        );
        assert_eq!(
            update(&mut s, Action::Tick),
            vec![Effect::LoadJobs(Some(2))]
        );
        assert!(update(&mut s, key(KeyCode::Char('a'))).is_empty());
        assert!(s.message.as_deref().unwrap().contains("no adapter"));
        assert_eq!(
            update(&mut s, key(KeyCode::Char('j'))),
            vec![Effect::LoadJobs(Some(1))]
        );
        // A refresh keeps the selection on the same job.
        update(
            &mut s,
            Action::JobsLoaded(JobsView {
                rows: vec![job(3, "queued"), job(2, "running"), job(1, "succeeded")],
                ..Default::default()
            }),
        );
        assert_eq!(s.jobs.as_ref().unwrap().selected().unwrap().job.id, 1);
        assert_eq!(
            update(&mut s, key(KeyCode::Char('a'))),
            vec![Effect::UseAdapter(Some(("job-1".into(), 1.0)))]
        );
        assert_eq!(
            update(&mut s, key(KeyCode::Char('r'))),
            vec![Effect::ResumeJob(1), Effect::LoadJobs(Some(1))]
        );
        update(&mut s, key(KeyCode::Esc));
        assert!(s.jobs.is_none());
        assert_eq!(update(&mut s, Action::Tick), vec![]);
    }
}
