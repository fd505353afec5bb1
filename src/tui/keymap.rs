//! Keys as data: one table maps (context, key) to a command and its description.
//! The help overlay is generated from this table, never kept by hand.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    List,
    Chat,
    Compose,
    Edit,
    Export,
    Settings,
    Presets,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    Quit,
    Help,
    Up,
    Down,
    Open,
    NewConversation,
    Delete,
    Back,
    Compose,
    Rate(u8),
    Edit,
    Regenerate,
    PrevSibling,
    NextSibling,
    Critique,
    Tag,
    Send,
    Newline,
    LeaveComposer,
    Cancel,
    Save,
    Discard,
    Export,
    NextFormat,
    PrevFormat,
    MoreStars,
    FewerStars,
    Write,
    Settings,
    MarkClarification,
    NextTab,
    PrevTab,
    Presets,
}

pub struct Binding {
    pub context: Context,
    pub key: &'static str,
    pub cmd: Cmd,
    pub help: &'static str,
}

macro_rules! b {
    ($c:ident, $k:literal, $cmd:expr, $h:literal) => {
        Binding {
            context: Context::$c,
            key: $k,
            cmd: $cmd,
            help: $h,
        }
    };
}

pub const BINDINGS: &[Binding] = &[
    b!(List, "j", Cmd::Down, "next conversation"),
    b!(List, "down", Cmd::Down, "next conversation"),
    b!(List, "k", Cmd::Up, "previous conversation"),
    b!(List, "up", Cmd::Up, "previous conversation"),
    b!(List, "enter", Cmd::Open, "open the conversation"),
    b!(List, "n", Cmd::NewConversation, "new conversation"),
    b!(
        List,
        "p",
        Cmd::Presets,
        "new conversation from a preset (system prompt, tools)"
    ),
    b!(
        List,
        "d",
        Cmd::Delete,
        "delete the conversation (asks first)"
    ),
    b!(
        List,
        "x",
        Cmd::Export,
        "export a dataset (live counts and a preview)"
    ),
    b!(List, "?", Cmd::Help, "this help"),
    b!(List, "q", Cmd::Quit, "quit"),
    b!(Chat, "k", Cmd::Up, "select the previous message"),
    b!(Chat, "up", Cmd::Up, "select the previous message"),
    b!(Chat, "j", Cmd::Down, "select the next message"),
    b!(Chat, "down", Cmd::Down, "select the next message"),
    b!(Chat, "1", Cmd::Rate(1), "rate the selected answer 1 star"),
    b!(Chat, "2", Cmd::Rate(2), "rate 2 stars"),
    b!(Chat, "3", Cmd::Rate(3), "rate 3 stars"),
    b!(Chat, "4", Cmd::Rate(4), "rate 4 stars"),
    b!(Chat, "5", Cmd::Rate(5), "rate 5 stars"),
    b!(Chat, "0", Cmd::Rate(0), "clear the rating"),
    b!(
        Chat,
        "e",
        Cmd::Edit,
        "edit the selected message (the original is kept)"
    ),
    b!(
        Chat,
        "r",
        Cmd::Regenerate,
        "regenerate the selected answer as a new sibling"
    ),
    b!(Chat, "h", Cmd::PrevSibling, "previous sibling"),
    b!(Chat, "left", Cmd::PrevSibling, "previous sibling"),
    b!(Chat, "l", Cmd::NextSibling, "next sibling"),
    b!(Chat, "right", Cmd::NextSibling, "next sibling"),
    b!(
        Chat,
        "c",
        Cmd::Critique,
        "write a critique of the selected message"
    ),
    b!(Chat, "t", Cmd::Tag, "tag the selected message"),
    b!(
        Chat,
        "m",
        Cmd::MarkClarification,
        "mark / unmark the selected answer as a clarifying question"
    ),
    b!(
        Chat,
        "s",
        Cmd::Settings,
        "conversation settings: system prompt, tools, sampling, few-shot"
    ),
    b!(
        Chat,
        "d",
        Cmd::Delete,
        "delete the selected branch (asks first)"
    ),
    b!(Chat, "i", Cmd::Compose, "write a message"),
    b!(Chat, "enter", Cmd::Compose, "write a message"),
    b!(
        Chat,
        "ctrl-c",
        Cmd::Cancel,
        "stop the answer being generated"
    ),
    b!(
        Chat,
        "esc",
        Cmd::Back,
        "stop generating, else back to the conversation list"
    ),
    b!(Chat, "?", Cmd::Help, "this help"),
    b!(Chat, "q", Cmd::Quit, "quit"),
    b!(Compose, "enter", Cmd::Send, "send"),
    b!(Compose, "alt-enter", Cmd::Newline, "new line"),
    b!(
        Compose,
        "ctrl-o",
        Cmd::Settings,
        "conversation settings: system prompt, tools, sampling, few-shot"
    ),
    b!(Compose, "shift-enter", Cmd::Newline, "new line"),
    b!(
        Compose,
        "ctrl-c",
        Cmd::Cancel,
        "stop the answer being generated"
    ),
    b!(
        Compose,
        "esc",
        Cmd::LeaveComposer,
        "leave the composer (stops a streaming answer)"
    ),
    b!(
        Edit,
        "ctrl-s",
        Cmd::Save,
        "save (as a new sibling; the original stays)"
    ),
    b!(Edit, "esc", Cmd::Discard, "discard"),
    b!(Export, "right", Cmd::NextFormat, "next format"),
    b!(Export, "l", Cmd::NextFormat, "next format"),
    b!(Export, "left", Cmd::PrevFormat, "previous format"),
    b!(Export, "h", Cmd::PrevFormat, "previous format"),
    b!(Export, "+", Cmd::MoreStars, "raise the minimum rating"),
    b!(Export, "=", Cmd::MoreStars, "raise the minimum rating"),
    b!(
        Export,
        "-",
        Cmd::FewerStars,
        "lower the minimum rating (none: every answer)"
    ),
    b!(
        Export,
        "enter",
        Cmd::Write,
        "write the export to the exports folder"
    ),
    b!(Export, "esc", Cmd::Back, "close"),
    b!(Presets, "j", Cmd::Down, "next preset"),
    b!(Presets, "down", Cmd::Down, "next preset"),
    b!(Presets, "k", Cmd::Up, "previous preset"),
    b!(Presets, "up", Cmd::Up, "previous preset"),
    b!(
        Presets,
        "enter",
        Cmd::Open,
        "start a new conversation from it"
    ),
    b!(Presets, "esc", Cmd::Back, "close"),
    b!(Settings, "tab", Cmd::NextTab, "next tab"),
    b!(Settings, "backtab", Cmd::PrevTab, "previous tab"),
    b!(
        Settings,
        "ctrl-s",
        Cmd::Save,
        "check and save every tab (nothing is saved if a tab is invalid)"
    ),
    b!(Settings, "esc", Cmd::Discard, "close without saving"),
    b!(Export, "?", Cmd::Help, "this help"),
];

/// The key's name as written in the table: `j`, `enter`, `ctrl-s`, `alt-enter`.
pub fn key_name(k: &KeyEvent) -> String {
    let base = match k.code {
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Enter => "enter".into(),
        KeyCode::Esc => "esc".into(),
        KeyCode::Up => "up".into(),
        KeyCode::Down => "down".into(),
        KeyCode::Left => "left".into(),
        KeyCode::Right => "right".into(),
        KeyCode::Tab => "tab".into(),
        KeyCode::Backspace => "backspace".into(),
        KeyCode::PageUp => "pageup".into(),
        KeyCode::PageDown => "pagedown".into(),
        other => format!("{other:?}").to_lowercase(),
    };
    let mut name = String::new();
    if k.modifiers.contains(KeyModifiers::CONTROL) {
        name.push_str("ctrl-");
    }
    if k.modifiers.contains(KeyModifiers::ALT) {
        name.push_str("alt-");
    }
    if k.modifiers.contains(KeyModifiers::SHIFT) && !matches!(k.code, KeyCode::Char(_)) {
        name.push_str("shift-");
    }
    name + &base
}

pub fn lookup(context: Context, key: &KeyEvent) -> Option<Cmd> {
    let name = key_name(key);
    BINDINGS
        .iter()
        .find(|b| b.context == context && b.key == name)
        .map(|b| b.cmd)
}

/// Help lines for a context: keys that share a command are listed together.
pub fn help(context: Context) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str, Cmd)> = Vec::new();
    for b in BINDINGS.iter().filter(|b| b.context == context) {
        match out.iter_mut().find(|(_, _, c)| *c == b.cmd) {
            Some(e) => {
                e.0.push_str(" / ");
                e.0.push_str(b.key);
            }
            None => out.push((b.key.to_string(), b.help, b.cmd)),
        }
    }
    out.into_iter().map(|(k, h, _)| (k, h)).collect()
}
