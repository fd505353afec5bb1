//! Keys as data: one table maps (context, key) to a command and its description. The
//! user's `keymap.toml` is merged over it; the help overlay is generated from the merged
//! table, never kept by hand.

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
    Tree,
    Compare,
    Jobs,
    Evals,
    Review,
    Queue,
    Models,
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
    AddToEval,
    Evals,
    BetterLeft,
    BetterRight,
    Tie,
    Skip,
    Undo,
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
    Tree,
    CompareK,
    Keep,
    Search,
    Rename,
    FilterTag,
    ClearFilter,
    Jobs,
    CancelJob,
    ResumeJob,
    NewJob,
    UseAdapter,
    DetachAdapter,
    MoreScale,
    LessScale,
    CompareBase,
    Trash,
    ReviewQueue,
    ReviewBack,
    AcceptJudge,
    EditExternal,
    ClearText,
    Increase,
    Decrease,
    ClearValue,
    Yank,
    YankPath,
    Models,
}

#[derive(Debug, Clone)]
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
        "move the conversation to the trash (asks; u undoes)"
    ),
    b!(
        List,
        "V",
        Cmd::ReviewQueue,
        "review queue: unrated answers, then judge disagreements"
    ),
    b!(
        List,
        "D",
        Cmd::Trash,
        "show the trash (Enter restores; D or Esc goes back)"
    ),
    b!(
        List,
        "u",
        Cmd::Undo,
        "undo this session's last change (a delete comes back)"
    ),
    b!(
        List,
        "x",
        Cmd::Export,
        "export a dataset (live counts and a preview)"
    ),
    b!(
        List,
        "/",
        Cmd::Search,
        "search every message (full text); Enter keeps the filter"
    ),
    b!(
        List,
        "f",
        Cmd::FilterTag,
        "show only conversations with a tag"
    ),
    b!(
        List,
        "esc",
        Cmd::ClearFilter,
        "clear the search or tag filter"
    ),
    b!(List, "r", Cmd::Rename, "rename the conversation"),
    b!(
        List,
        "J",
        Cmd::Jobs,
        "training jobs: progress, loss chart, log, adapters"
    ),
    b!(
        List,
        "E",
        Cmd::Evals,
        "eval runs: metric rates, win rates, the blind review"
    ),
    b!(
        List,
        "M",
        Cmd::Models,
        "chat model: pick one of the models on this machine"
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
        "v",
        Cmd::AddToEval,
        "add the selected turn to an eval set (held out of training)"
    ),
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
        "move the branch to the trash (asks; u undoes)"
    ),
    b!(
        Chat,
        "T",
        Cmd::Tree,
        "the whole conversation as a tree (pick any message's path)"
    ),
    b!(
        Chat,
        "R",
        Cmd::CompareK,
        "regenerate ×3 side by side (Compare) and keep the best"
    ),
    b!(
        Chat,
        "B",
        Cmd::CompareBase,
        "base vs tuned: answer this turn with and without the adapter, side by side"
    ),
    b!(
        Chat,
        "J",
        Cmd::Jobs,
        "training jobs: progress, loss chart, log, adapters"
    ),
    b!(
        Chat,
        "y",
        Cmd::Yank,
        "copy the selected message to the clipboard (OSC 52)"
    ),
    b!(
        Chat,
        "Y",
        Cmd::YankPath,
        "copy the conversation (active path) as Markdown"
    ),
    b!(
        Chat,
        "E",
        Cmd::EditExternal,
        "edit the message in $VISUAL/$EDITOR (saved as a sibling, as e)"
    ),
    b!(
        Chat,
        "a",
        Cmd::AcceptJudge,
        "take the judge's score (⚖) as your rating"
    ),
    b!(
        Chat,
        "u",
        Cmd::Undo,
        "undo the last change (delete, rating, tag, edit…)"
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
    b!(
        Chat,
        "M",
        Cmd::Models,
        "chat model: pick one of the models on this machine"
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
    b!(Edit, "ctrl-l", Cmd::ClearText, "clear the text"),
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
    b!(Models, "j", Cmd::Down, "next model"),
    b!(Models, "down", Cmd::Down, "next model"),
    b!(Models, "k", Cmd::Up, "previous model"),
    b!(Models, "up", Cmd::Up, "previous model"),
    b!(
        Models,
        "enter",
        Cmd::Open,
        "chat with it (the engine reloads; an adapter is detached)"
    ),
    b!(Models, "esc", Cmd::Back, "close"),
    b!(Tree, "j", Cmd::Down, "next message"),
    b!(Tree, "down", Cmd::Down, "next message"),
    b!(Tree, "k", Cmd::Up, "previous message"),
    b!(Tree, "up", Cmd::Up, "previous message"),
    b!(
        Tree,
        "enter",
        Cmd::Open,
        "make the path to this message the active one"
    ),
    b!(Tree, "esc", Cmd::Back, "close the tree"),
    b!(Tree, "T", Cmd::Back, "close the tree"),
    b!(Tree, "?", Cmd::Help, "this help"),
    b!(Compare, "l", Cmd::NextSibling, "next candidate"),
    b!(Compare, "right", Cmd::NextSibling, "next candidate"),
    b!(Compare, "h", Cmd::PrevSibling, "previous candidate"),
    b!(Compare, "left", Cmd::PrevSibling, "previous candidate"),
    b!(
        Compare,
        "1",
        Cmd::Rate(1),
        "rate the chosen candidate 1 star"
    ),
    b!(Compare, "2", Cmd::Rate(2), "rate 2 stars"),
    b!(Compare, "3", Cmd::Rate(3), "rate 3 stars"),
    b!(Compare, "4", Cmd::Rate(4), "rate 4 stars"),
    b!(Compare, "5", Cmd::Rate(5), "rate 5 stars"),
    b!(Compare, "0", Cmd::Rate(0), "clear the rating"),
    b!(
        Compare,
        "enter",
        Cmd::Keep,
        "keep the chosen candidate as the active branch"
    ),
    b!(
        Compare,
        "ctrl-c",
        Cmd::Cancel,
        "stop the candidates being generated"
    ),
    b!(
        Compare,
        "esc",
        Cmd::Back,
        "close (stops generating; the candidates stay as siblings)"
    ),
    b!(Compare, "?", Cmd::Help, "this help"),
    b!(Settings, "tab", Cmd::NextTab, "next tab"),
    b!(Settings, "backtab", Cmd::PrevTab, "previous tab"),
    b!(
        Settings,
        "ctrl-s",
        Cmd::Save,
        "check and save every tab (nothing is saved if a tab is invalid)"
    ),
    b!(Settings, "esc", Cmd::Discard, "close without saving"),
    b!(Settings, "down", Cmd::Down, "options form: next field"),
    b!(Settings, "up", Cmd::Up, "options form: previous field"),
    b!(
        Settings,
        "right",
        Cmd::Increase,
        "options form: raise the number, or the next choice"
    ),
    b!(
        Settings,
        "+",
        Cmd::Increase,
        "options form: raise the number"
    ),
    b!(
        Settings,
        "=",
        Cmd::Increase,
        "options form: raise the number"
    ),
    b!(
        Settings,
        "left",
        Cmd::Decrease,
        "options form: lower the number, or the previous choice"
    ),
    b!(
        Settings,
        "-",
        Cmd::Decrease,
        "options form: lower the number"
    ),
    b!(
        Settings,
        "delete",
        Cmd::ClearValue,
        "options form: not set here (the config's value applies)"
    ),
    b!(Export, "?", Cmd::Help, "this help"),
    b!(Jobs, "j", Cmd::Down, "next job"),
    b!(Jobs, "down", Cmd::Down, "next job"),
    b!(Jobs, "k", Cmd::Up, "previous job"),
    b!(Jobs, "up", Cmd::Up, "previous job"),
    b!(
        Jobs,
        "n",
        Cmd::NewJob,
        "train a LoRA on answers rated 4+ (peft recipe, this model)"
    ),
    b!(
        Jobs,
        "c",
        Cmd::CancelJob,
        "cancel the job (SIGTERM, then SIGKILL)"
    ),
    b!(
        Jobs,
        "r",
        Cmd::ResumeJob,
        "run a failed, cancelled or lost job again"
    ),
    b!(
        Jobs,
        "a",
        Cmd::UseAdapter,
        "chat with the job's adapter (reloads the model)"
    ),
    b!(Jobs, "A", Cmd::DetachAdapter, "back to the base model"),
    b!(
        Jobs,
        "+",
        Cmd::MoreScale,
        "adapter scale +0.25 (reloads with the attached adapter)"
    ),
    b!(Jobs, "-", Cmd::LessScale, "adapter scale -0.25"),
    b!(Jobs, "esc", Cmd::Back, "close"),
    b!(Jobs, "J", Cmd::Back, "close"),
    b!(Jobs, "?", Cmd::Help, "this help"),
    b!(Evals, "j", Cmd::Down, "next run"),
    b!(Evals, "down", Cmd::Down, "next run"),
    b!(Evals, "k", Cmd::Up, "previous run"),
    b!(Evals, "up", Cmd::Up, "previous run"),
    b!(
        Evals,
        "enter",
        Cmd::Open,
        "blind review of the selected run"
    ),
    b!(Evals, "esc", Cmd::Back, "close"),
    b!(Evals, "E", Cmd::Back, "close"),
    b!(Evals, "?", Cmd::Help, "this help"),
    b!(Queue, "1", Cmd::Rate(1), "rate 1 star and go on"),
    b!(Queue, "2", Cmd::Rate(2), "rate 2 stars and go on"),
    b!(Queue, "3", Cmd::Rate(3), "rate 3 stars and go on"),
    b!(Queue, "4", Cmd::Rate(4), "rate 4 stars and go on"),
    b!(Queue, "5", Cmd::Rate(5), "rate 5 stars and go on"),
    b!(Queue, "0", Cmd::Rate(0), "clear your rating and go on"),
    b!(
        Queue,
        "a",
        Cmd::AcceptJudge,
        "take the judge's score as yours and go on"
    ),
    b!(Queue, "n", Cmd::Skip, "next (skip this one)"),
    b!(Queue, "b", Cmd::ReviewBack, "back to the previous answer"),
    b!(
        Queue,
        "e",
        Cmd::Edit,
        "edit it (opens the conversation at it)"
    ),
    b!(
        Queue,
        "m",
        Cmd::MarkClarification,
        "mark / unmark as a clarifying question"
    ),
    b!(Queue, "c", Cmd::Critique, "write a critique"),
    b!(Queue, "t", Cmd::Tag, "tag it"),
    b!(
        Queue,
        "o",
        Cmd::Open,
        "open the conversation at this answer"
    ),
    b!(Queue, "q", Cmd::Back, "leave the queue"),
    b!(Queue, "esc", Cmd::Back, "leave the queue"),
    b!(Queue, "?", Cmd::Help, "this help"),
    b!(Review, "h", Cmd::BetterLeft, "the left answer is better"),
    b!(Review, "left", Cmd::BetterLeft, "the left answer is better"),
    b!(Review, "l", Cmd::BetterRight, "the right answer is better"),
    b!(
        Review,
        "right",
        Cmd::BetterRight,
        "the right answer is better"
    ),
    b!(Review, "=", Cmd::Tie, "a tie"),
    b!(Review, "s", Cmd::Skip, "skip this pair for now"),
    b!(Review, "u", Cmd::Undo, "undo the last decision"),
    b!(
        Review,
        "q",
        Cmd::Back,
        "leave the review (progress is kept)"
    ),
    b!(
        Review,
        "esc",
        Cmd::Back,
        "leave the review (progress is kept)"
    ),
];

/// The keys in effect: the defaults with the user's `keymap.toml` merged over them.
#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: Vec<(Context, String, Cmd, &'static str)>,
}

impl Default for Keymap {
    fn default() -> Self {
        Self {
            bindings: BINDINGS
                .iter()
                .map(|b| (b.context, b.key.to_string(), b.cmd, b.help))
                .collect(),
        }
    }
}

const CONTEXTS: &[(Context, &str)] = &[
    (Context::List, "list"),
    (Context::Chat, "chat"),
    (Context::Compose, "compose"),
    (Context::Edit, "edit"),
    (Context::Export, "export"),
    (Context::Settings, "settings"),
    (Context::Presets, "presets"),
    (Context::Tree, "tree"),
    (Context::Compare, "compare"),
    (Context::Jobs, "jobs"),
    (Context::Evals, "evals"),
    (Context::Review, "review"),
    (Context::Queue, "queue"),
    (Context::Models, "models"),
];

/// A command's name in `keymap.toml`: `regenerate`, `rate-5`, `next-sibling`.
pub fn cmd_name(c: Cmd) -> String {
    match c {
        Cmd::Rate(0) => "clear-rating".into(),
        Cmd::Rate(n) => format!("rate-{n}"),
        Cmd::CompareK => "compare".into(),
        Cmd::CompareBase => "compare-base".into(),
        other => {
            // CamelCase → kebab-case.
            let dbg = format!("{other:?}");
            let mut out = String::new();
            for (i, ch) in dbg.chars().enumerate() {
                if ch.is_uppercase() && i > 0 {
                    out.push('-');
                }
                out.push(ch.to_ascii_lowercase());
            }
            out
        }
    }
}

/// Whether `key` is a name `key_name` can produce.
fn valid_key(key: &str) -> bool {
    let mut rest = key;
    for m in ["ctrl-", "alt-", "shift-"] {
        if let Some(r) = rest.strip_prefix(m) {
            rest = r;
        }
    }
    const NAMED: &[&str] = &[
        "enter",
        "esc",
        "up",
        "down",
        "left",
        "right",
        "tab",
        "backtab",
        "backspace",
        "pageup",
        "pagedown",
        "home",
        "end",
        "delete",
        "insert",
        "space",
    ];
    rest.chars().count() == 1
        || NAMED.contains(&rest)
        || rest
            .strip_prefix('f')
            .and_then(|n| n.parse::<u8>().ok())
            .is_some_and(|n| (1..=12).contains(&n))
}

impl Keymap {
    /// The defaults with `path` merged over them; a missing file is the defaults. In the
    /// file a table per view maps command names to a key or a list of keys, which replace
    /// that command's default keys in that view:
    ///
    /// ```toml
    /// [chat]
    /// regenerate = "g"
    /// rate-5 = ["5", "f5"]
    /// ```
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let lines = crate::config::toml_key_lines(text);
        let line_of = |section: &str, key: &str| -> usize {
            lines
                .get(&(section.to_string(), key.to_string()))
                .copied()
                .unwrap_or(0)
        };
        let table = crate::config::toml_table(text)?;
        let mut map = Self::default();
        for (section, entries) in &table {
            let section_line = line_of(section, "");
            let Some(&(ctx, _)) = CONTEXTS.iter().find(|(_, n)| n == section) else {
                return Err(format!(
                    "line {section_line}: unknown view [{section}] (known: {})",
                    CONTEXTS.iter().map(|c| c.1).collect::<Vec<_>>().join(", ")
                ));
            };
            let entries = entries.as_table().ok_or_else(|| {
                format!("line {section_line}: [{section}] must be a table of command = key")
            })?;
            for (name, keys) in entries {
                let line = line_of(section, name);
                let known: Vec<(Cmd, &'static str)> = BINDINGS
                    .iter()
                    .filter(|b| b.context == ctx)
                    .map(|b| (b.cmd, b.help))
                    .collect();
                let Some(&(cmd, help)) = known.iter().find(|(c, _)| &cmd_name(*c) == name) else {
                    let mut names: Vec<String> = known.iter().map(|(c, _)| cmd_name(*c)).collect();
                    names.dedup();
                    return Err(format!(
                        "line {line}: [{section}] unknown command '{name}' (known: {})",
                        names.join(", ")
                    ));
                };
                let keys: Vec<String> = match keys {
                    toml::Value::String(k) => vec![k.clone()],
                    toml::Value::Array(a) => a
                        .iter()
                        .map(|k| k.as_str().map(str::to_string))
                        .collect::<Option<_>>()
                        .ok_or_else(|| {
                            format!("line {line}: {section}.{name}: keys must be strings")
                        })?,
                    _ => {
                        return Err(format!(
                            "line {line}: {section}.{name}: expected a key or a list of keys"
                        ))
                    }
                };
                for k in &keys {
                    if !valid_key(k) {
                        return Err(format!(
                            "line {line}: {section}.{name}: '{k}' is not a key (a character, or enter, esc, up, tab, f1…f12, space …, with ctrl-/alt-/shift-)"
                        ));
                    }
                }
                map.bindings
                    .retain(|(c, k, b, _)| !(*c == ctx && (*b == cmd || keys.contains(k))));
                for k in keys {
                    map.bindings.push((ctx, k, cmd, help));
                }
            }
        }
        Ok(map)
    }

    pub fn lookup(&self, context: Context, key: &KeyEvent) -> Option<Cmd> {
        let name = key_name(key);
        self.bindings
            .iter()
            .find(|b| b.0 == context && b.1 == name)
            .map(|b| b.2)
    }

    /// Help lines for a context: keys that share a command are listed together.
    pub fn help(&self, context: Context) -> Vec<(String, &'static str)> {
        let mut out: Vec<(String, &'static str, Cmd)> = Vec::new();
        for (_, key, cmd, help) in self.bindings.iter().filter(|b| b.0 == context) {
            match out.iter_mut().find(|(_, _, c)| c == cmd) {
                Some(e) => {
                    e.0.push_str(" / ");
                    e.0.push_str(key);
                }
                None => out.push((key.clone(), help, *cmd)),
            }
        }
        out.into_iter().map(|(k, h, _)| (k, h)).collect()
    }
}

/// The key's name as written in the table: `j`, `enter`, `ctrl-s`, `alt-enter`.
pub fn key_name(k: &KeyEvent) -> String {
    let base = match k.code {
        KeyCode::Char(' ') => "space".into(),
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
        KeyCode::Home => "home".into(),
        KeyCode::End => "end".into(),
        KeyCode::Delete => "delete".into(),
        KeyCode::F(n) => format!("f{n}"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyModifiers};

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn a_keymap_file_replaces_a_commands_keys_in_one_view() {
        let m = Keymap::parse("[chat]\nregenerate = \"g\"\nrate-5 = [\"5\", \"f5\"]\n").unwrap();
        assert_eq!(m.lookup(Context::Chat, &key('g')), Some(Cmd::Regenerate));
        assert_eq!(m.lookup(Context::Chat, &key('r')), None);
        let f5 = KeyEvent::new(KeyCode::F(5), KeyModifiers::NONE);
        assert_eq!(m.lookup(Context::Chat, &f5), Some(Cmd::Rate(5)));
        // Other views keep their keys; the help shows the new ones.
        assert_eq!(m.lookup(Context::List, &key('r')), Some(Cmd::Rename));
        let help = m.help(Context::Chat);
        assert!(help
            .iter()
            .any(|(k, h)| k == "g" && h.contains("regenerate")));
        assert!(!help.iter().any(|(k, _)| k == "r"));
    }

    #[test]
    fn keymap_errors_name_the_line_and_field() {
        let e = Keymap::parse("[chat]\nregen = \"g\"\n").unwrap_err();
        assert!(
            e.starts_with("line 2: [chat] unknown command 'regen'"),
            "{e}"
        );
        assert!(e.contains("regenerate"), "{e}");
        let e = Keymap::parse("[chats]\nx = \"g\"\n").unwrap_err();
        assert!(e.starts_with("line 1: unknown view [chats]"), "{e}");
        let e = Keymap::parse("[chat]\n\nregenerate = \"hyper-g\"\n").unwrap_err();
        assert!(
            e.starts_with("line 3: chat.regenerate: 'hyper-g' is not a key"),
            "{e}"
        );
        let e = Keymap::parse("[chat]\nregenerate = \n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        // The key's own line, not an earlier line that starts with its name.
        let e =
            Keymap::parse("[chat]\n# regenerate = \"g\"\nregenerate = \"hyper-g\"\n").unwrap_err();
        assert!(e.starts_with("line 3: chat.regenerate"), "{e}");
        let e = Keymap::parse("[list]\nquit = \"q\"\n[chat]\n\"regenerate\" = [\"g\", 5]\n")
            .unwrap_err();
        assert!(
            e.starts_with("line 4: chat.regenerate: keys must be strings"),
            "{e}"
        );
    }

    #[test]
    fn every_default_binding_has_a_name_and_a_parseable_key() {
        for b in BINDINGS {
            assert!(valid_key(b.key), "{}", b.key);
            assert!(!cmd_name(b.cmd).is_empty());
        }
    }
}
