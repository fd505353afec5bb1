//! What the studio's pure update asks the runtime to do (`Effect`), and what an
//! overlay's key handler asks of the overlay stack (`Next`).

use crate::domain::*;

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
    /// Put trash entry `id` back (a conversation, or a branch into its conversation).
    Restore(ConversationId),
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
    /// Find the models on this machine for the picker (`M`).
    LoadModels,
    /// Reload the engine with this model file.
    SwitchModel(std::path::PathBuf),
    Cancel,
    /// Build the review queue over every answer and open it (`V`).
    LoadQueue,
    /// Read the queue's current answer and its context.
    LoadQueueItem(NodeId),
    /// Take back the last change made in this session (`u`).
    Undo,
    /// Open this message in `$VISUAL`/`$EDITOR` (the event loop suspends the terminal).
    EditExternally(NodeId),
    Quit,
    /// Put `text` on the clipboard (OSC 52: works in tmux and over SSH); `what` names it
    /// in the status line.
    Copy {
        text: String,
        what: String,
    },
}

impl Effect {
    /// Whether the open conversation is read again once this effect is done: the effects
    /// that change what the chat shows without loading it themselves (a rating, a tag, a
    /// critique, another sibling, a deleted branch). Every other effect that changes the
    /// conversation loads it as part of its work (`Open`, `Send`, `SaveEdit`, …).
    pub fn reloads_conversation(&self) -> bool {
        matches!(
            self,
            Effect::Rate(..)
                | Effect::Critique(..)
                | Effect::Tag(..)
                | Effect::Untag(..)
                | Effect::ActivateSibling { .. }
                | Effect::DeleteBranch(_)
        )
    }
}

/// After an overlay handled a key: it stays, it closes, or help opens over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Stay,
    Close,
    Help,
}

/// An overlay's answer to a key.
pub type Reply = (Next, Vec<Effect>);

/// Stay open, asking for these effects.
pub fn stay(effects: Vec<Effect>) -> Reply {
    (Next::Stay, effects)
}

/// Close, asking for these effects.
pub fn close(effects: Vec<Effect>) -> Reply {
    (Next::Close, effects)
}
