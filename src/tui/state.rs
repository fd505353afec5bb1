//! The studio's state: the screens under everything (`Base`) and a stack of overlays
//! over them; the actions that come back from the runtime. The pure update is in
//! `update.rs`, drawing in `view.rs`, each screen's own part in `screens/`.

use super::keymap::Context;
use super::screens::*;
use crate::domain::*;
use crate::engine::{EngineEvent, RequestId};
use crossterm::event::KeyEvent;
use tui_textarea::TextArea;

pub use super::base::*;
pub use super::effect::Effect;
pub use super::screens::{
    Compare, Confirm, EvalsView, ExportDialog, ExportPreview, JobRow, JobsView, ModelItem, Prompt,
    SettingsDialog, TreeRow, TreeView, COMPARE_K, EXPORT_FORMATS, SETTINGS_TABS,
};

/// A view or dialog over the list or the chat. The stack's order serves keys (the top
/// one takes them) and drawing (bottom to top) alike.
#[derive(Debug, Clone)]
pub enum Overlay {
    /// The keys of the view under it; any key closes.
    Help,
    Confirm(Confirm),
    Prompt(Prompt, TextArea<'static>),
    /// The message editor on this message.
    Edit(NodeId, TextArea<'static>),
    Settings(Box<SettingsDialog>),
    Export(ExportDialog),
    /// The preset picker, on this row.
    Presets(usize),
    Tree(TreeView),
    Compare(Compare),
    Jobs(JobsView),
    Evals(EvalsView),
    /// The blind review of a run.
    Review(ReviewState),
    /// The review queue (boxed: it holds a path of messages).
    Queue(Box<queue::QueueView>),
    /// The model picker.
    Models(models::ModelsView),
}

impl Overlay {
    /// The keymap context of the overlay; `None` for the modal ones that read raw keys
    /// (help, confirm, prompts) and leave the context to what is under them.
    pub fn context(&self) -> Option<Context> {
        Some(match self {
            Overlay::Help | Overlay::Confirm(_) | Overlay::Prompt(..) => return None,
            Overlay::Edit(..) => Context::Edit,
            Overlay::Settings(_) => Context::Settings,
            Overlay::Export(_) => Context::Export,
            Overlay::Presets(_) => Context::Presets,
            Overlay::Tree(_) => Context::Tree,
            Overlay::Compare(_) => Context::Compare,
            Overlay::Jobs(_) => Context::Jobs,
            Overlay::Evals(_) => Context::Evals,
            Overlay::Review(_) => Context::Review,
            Overlay::Queue(_) => Context::Queue,
            Overlay::Models(_) => Context::Models,
        })
    }
}

pub struct State {
    pub base: Base,
    /// Bottom first; the last one is on top.
    pub overlays: Vec<Overlay>,
}

impl std::ops::Deref for State {
    type Target = Base;
    fn deref(&self) -> &Base {
        &self.base
    }
}

impl std::ops::DerefMut for State {
    fn deref_mut(&mut self) -> &mut Base {
        &mut self.base
    }
}

/// `State::find` and `find_mut` for one overlay kind.
macro_rules! overlay_access {
    ($get:ident, $get_mut:ident, $variant:ident, $ty:ty) => {
        pub fn $get(&self) -> Option<&$ty> {
            self.overlays.iter().rev().find_map(|o| match o {
                Overlay::$variant(x) => Some(x),
                _ => None,
            })
        }
        pub fn $get_mut(&mut self) -> Option<&mut $ty> {
            self.overlays.iter_mut().rev().find_map(|o| match o {
                Overlay::$variant(x) => Some(x),
                _ => None,
            })
        }
    };
}

impl State {
    pub fn new(db_path: String, rater: String) -> Self {
        Self {
            base: Base::new(db_path, rater),
            overlays: Vec::new(),
        }
    }

    /// Puts an overlay on top.
    pub fn open(&mut self, o: Overlay) {
        if matches!(o, Overlay::Help) {
            self.base.help_scroll = 0;
        }
        self.overlays.push(o);
    }

    /// Removes every overlay of the kind `is` picks.
    pub fn close_where(&mut self, is: impl Fn(&Overlay) -> bool) {
        self.overlays.retain(|o| !is(o));
    }

    /// The keymap context: the topmost overlay that has one, else the screen's.
    pub fn key_context(&self) -> Context {
        Self::context_of(&self.overlays, &self.base)
    }

    /// The keymap context under `overlays` (a part of the stack) over `base`.
    pub fn context_of(overlays: &[Overlay], base: &Base) -> Context {
        if let Some(c) = overlays.iter().rev().find_map(Overlay::context) {
            return c;
        }
        if base.screen == Screen::List {
            Context::List
        } else if base.composing {
            Context::Compose
        } else {
            Context::Chat
        }
    }

    pub fn help(&self) -> bool {
        matches!(self.overlays.last(), Some(Overlay::Help))
    }

    overlay_access!(compare, compare_mut, Compare, Compare);
    overlay_access!(tree, tree_mut, Tree, TreeView);
    overlay_access!(jobs, jobs_mut, Jobs, JobsView);
    overlay_access!(evals, evals_mut, Evals, EvalsView);
    overlay_access!(export, export_mut, Export, ExportDialog);
    overlay_access!(confirm, confirm_mut, Confirm, Confirm);
    overlay_access!(review, review_mut, Review, ReviewState);
    overlay_access!(picker, picker_mut, Presets, usize);

    pub fn queue(&self) -> Option<&queue::QueueView> {
        self.overlays.iter().rev().find_map(|o| match o {
            Overlay::Queue(q) => Some(&**q),
            _ => None,
        })
    }

    pub fn queue_mut(&mut self) -> Option<&mut queue::QueueView> {
        self.overlays.iter_mut().rev().find_map(|o| match o {
            Overlay::Queue(q) => Some(&mut **q),
            _ => None,
        })
    }

    pub fn settings(&self) -> Option<&SettingsDialog> {
        self.overlays.iter().rev().find_map(|o| match o {
            Overlay::Settings(d) => Some(&**d),
            _ => None,
        })
    }

    pub fn settings_mut(&mut self) -> Option<&mut SettingsDialog> {
        self.overlays.iter_mut().rev().find_map(|o| match o {
            Overlay::Settings(d) => Some(&mut **d),
            _ => None,
        })
    }

    /// The open editor: the message and its text.
    pub fn editing(&self) -> Option<(NodeId, &TextArea<'static>)> {
        self.overlays.iter().rev().find_map(|o| match o {
            Overlay::Edit(id, t) => Some((*id, t)),
            _ => None,
        })
    }

    pub fn editing_mut(&mut self) -> Option<(NodeId, &mut TextArea<'static>)> {
        self.overlays.iter_mut().rev().find_map(|o| match o {
            Overlay::Edit(id, t) => Some((*id, t)),
            _ => None,
        })
    }

    /// The open prompt.
    pub fn prompt(&self) -> Option<(&Prompt, &TextArea<'static>)> {
        self.overlays.iter().rev().find_map(|o| match o {
            Overlay::Prompt(p, t) => Some((p, t)),
            _ => None,
        })
    }
}

#[derive(Debug, Clone)]
pub enum Action {
    Key(KeyEvent),
    /// The user's editor closed on message `node`: its text (`Err`: why there is none).
    EditedExternally {
        node: NodeId,
        before: String,
        after: Result<String, String>,
    },
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
    ReviewLoaded(ReviewState),
    /// The review queue to open.
    QueueLoaded(Vec<crate::eval::queue::QueueItem>, Option<String>),
    /// The queue's current answer: its conversation and the path down to it.
    QueueItemLoaded(Conversation, Vec<NodeView>),
    /// Once a second: what refreshes on its own (the Jobs view).
    Tick,
    /// The engine reloads with this adapter (or none).
    AdapterAttached(Option<(String, f32)>),
    /// The models found for the picker.
    ModelsLoaded(Vec<models::ModelItem>),
    /// The engine reloads with another model.
    ModelSwitched,
    Mouse(crossterm::event::MouseEvent),
}
