//! Datasets: export the trees as fine-tuning data, import what users already have,
//! validate files, and describe the database (`arbor stats`).
//!
//! The export semantics (see docs/datasets.md) are enforced in `export`; the file
//! formats in both directions live in `formats`.

pub mod agreement;
pub mod export;
pub mod formats;
pub mod import;
pub mod stats;
pub mod validate;

use crate::domain::Role;
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

crate::module_error! {
    /// What exporting, importing, validating and counting fail with.
    DatasetError {
        Template(crate::engine::template::TemplateError),
        Turn(crate::chat::TurnError),
        BadInput(import::BadInput),
        Utf8(std::str::Utf8Error),
        Engine(crate::engine::EngineError),
    }
}

pub type Result<T, E = DatasetError> = std::result::Result<T, E>;

/// Every dataset format Arbor reads or writes, by its `--format` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Openai,
    OpenaiDpo,
    Trl,
    TrlPromptCompletion,
    TrlPreference,
    Kto,
    Mlx,
    Sharegpt,
    Alpaca,
    Oasst,
    Text,
    ToolCallsLog,
}

impl Format {
    pub const ALL: &'static [Format] = &[
        Format::Openai,
        Format::OpenaiDpo,
        Format::Trl,
        Format::TrlPromptCompletion,
        Format::TrlPreference,
        Format::Kto,
        Format::Mlx,
        Format::Sharegpt,
        Format::Alpaca,
        Format::Oasst,
        Format::Text,
        Format::ToolCallsLog,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Openai => "openai",
            Format::OpenaiDpo => "openai-dpo",
            Format::Trl => "trl",
            Format::TrlPromptCompletion => "trl-prompt-completion",
            Format::TrlPreference => "trl-preference",
            Format::Kto => "kto",
            Format::Mlx => "mlx",
            Format::Sharegpt => "sharegpt",
            Format::Alpaca => "alpaca",
            Format::Oasst => "oasst",
            Format::Text => "text",
            Format::ToolCallsLog => "tool-calls-log",
        }
    }

    /// Formats `arbor export` writes.
    pub fn exportable(self) -> bool {
        self != Format::ToolCallsLog
    }

    /// Pairs of answers rather than single examples.
    pub fn is_preference(self) -> bool {
        matches!(self, Format::OpenaiDpo | Format::TrlPreference)
    }

    /// Formats whose output is a directory (`train.jsonl`, `valid.jsonl`, `test.jsonl`).
    pub fn is_directory(self) -> bool {
        self == Format::Mlx
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL
            .iter()
            .copied()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown format '{s}' (expected one of: {})",
                    Format::ALL
                        .iter()
                        .map(|f| f.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}

/// What kind of problem a line of a dataset file has; `arbor validate` counts by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProblemKind {
    Json,
    UnknownRole,
    RoleOrder,
    ToolName,
    ToolArguments,
    Field,
    TooLong,
}

impl ProblemKind {
    pub fn label(self) -> &'static str {
        match self {
            ProblemKind::Json => "JSON errors",
            ProblemKind::UnknownRole => "unknown roles",
            ProblemKind::RoleOrder => "role-order problems",
            ProblemKind::ToolName => "invalid tool names",
            ProblemKind::ToolArguments => "invalid tool-call arguments",
            ProblemKind::Field => "missing or malformed fields",
            ProblemKind::TooLong => "over the token limit",
        }
    }
}

/// One problem on one line of a file: `file:line: field: message`.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: usize,
    pub field: String,
    pub kind: ProblemKind,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file.display(), self.line)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// A problem before the file and line are known (parsers work on one JSON value).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub kind: ProblemKind,
    pub message: String,
}

impl FieldError {
    pub fn new(kind: ProblemKind, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            kind,
            message: message.into(),
        }
    }
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ProblemKind::Field, field, message)
    }
    pub fn at(self, file: &Path, line: usize) -> Problem {
        Problem {
            file: file.to_path_buf(),
            line,
            field: self.field,
            kind: self.kind,
            message: self.message,
        }
    }
}

/// A rating carried by a file (rater `None`: the importing rater).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FileRating {
    pub rater: Option<String>,
    pub stars: Option<u8>,
    pub critique: Option<String>,
}

/// One message as a dataset file holds it: the message a template sees (`chat`, whose
/// fields read through: `m.role`, `m.content`) and what the file says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Msg {
    pub chat: crate::domain::ChatMessage,
    /// OpenAI's per-message `weight` (0 = context only).
    pub weight: Option<u8>,
    pub ratings: Vec<FileRating>,
    /// (rater, tag); rater `None`: the importing rater.
    pub tags: Vec<(Option<String>, String)>,
    pub model: Option<String>,
    pub origin: Option<crate::domain::Origin>,
    /// The file's own id for this message (OASST `message_id`), to resolve `edited_from`.
    pub key: Option<String>,
    pub edited_from_key: Option<String>,
    pub created_at: Option<i64>,
    /// A counter-example (a rejected answer, a KTO `false`, an OASST message that failed
    /// review): validate does not hold its tool calls to the schema.
    pub negative: bool,
    /// A human ranking among siblings (OASST `rank`, 0 best): imported as preferences.
    pub rank: Option<i64>,
}

impl Msg {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            chat: crate::domain::ChatMessage::new(role, content),
            weight: None,
            ratings: Vec::new(),
            tags: Vec::new(),
            model: None,
            origin: None,
            key: None,
            edited_from_key: None,
            created_at: None,
            negative: false,
            rank: None,
        }
    }

    pub fn rated(mut self, stars: u8) -> Self {
        self.ratings.push(FileRating {
            rater: None,
            stars: Some(stars),
            critique: None,
        });
        self
    }
}

impl std::ops::Deref for Msg {
    type Target = crate::domain::ChatMessage;
    fn deref(&self) -> &crate::domain::ChatMessage {
        &self.chat
    }
}

impl std::ops::DerefMut for Msg {
    fn deref_mut(&mut self) -> &mut crate::domain::ChatMessage {
        &mut self.chat
    }
}

impl From<&Msg> for crate::domain::ChatMessage {
    fn from(m: &Msg) -> Self {
        m.chat.clone()
    }
}

/// A message and the messages that answer it.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub msg: Msg,
    pub children: Vec<Item>,
}

impl Item {
    /// A chain: each message answers the one before.
    pub fn chain(msgs: Vec<Msg>) -> Option<Item> {
        let mut it = msgs.into_iter().rev();
        let mut node = Item {
            msg: it.next()?,
            children: Vec::new(),
        };
        for m in it {
            node = Item {
                msg: m,
                children: vec![node],
            };
        }
        Some(node)
    }

    /// Appends `alternatives` (each a chain) below the last message of this chain.
    pub fn with_alternatives(mut self, alternatives: Vec<Item>) -> Item {
        let mut cur = &mut self;
        while !cur.children.is_empty() {
            cur = cur.children.last_mut().expect("non-empty");
        }
        cur.children.extend(alternatives);
        self
    }

    /// Every root-to-leaf path below (and including) this item.
    pub fn paths(&self) -> Vec<Vec<&Msg>> {
        let mut out = Vec::new();
        let mut stack: Vec<&Msg> = Vec::new();
        fn walk<'a>(it: &'a Item, stack: &mut Vec<&'a Msg>, out: &mut Vec<Vec<&'a Msg>>) {
            stack.push(&it.msg);
            if it.children.is_empty() {
                out.push(stack.clone());
            }
            for c in &it.children {
                walk(c, stack, out);
            }
            stack.pop();
        }
        walk(self, &mut stack, &mut out);
        out
    }
}

/// One record of a dataset file: a conversation (or a tree, or a prompt with ranked
/// alternatives) with its system prompt and tools.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    pub system: String,
    pub tools: Option<Value>,
    pub roots: Vec<Item>,
}

impl Record {
    pub fn paths(&self) -> Vec<Vec<&Msg>> {
        self.roots.iter().flat_map(|r| r.paths()).collect()
    }
}

/// Which split an example belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Split {
    Train,
    Valid,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Valid, Split::Test];
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Valid => "valid",
            Split::Test => "test",
        }
    }
}

/// Fractions of conversations for the valid and test splits (`--split valid=0.1,test=0.05`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SplitSpec {
    pub valid: f64,
    pub test: f64,
}

impl SplitSpec {
    pub fn is_none(&self) -> bool {
        self.valid == 0.0 && self.test == 0.0
    }

    /// The split of a conversation: a hash of (seed, conversation id), so the same
    /// conversation always lands in the same split and never in two.
    pub fn of(&self, conversation: i64, seed: u64) -> Split {
        if self.is_none() {
            return Split::Train;
        }
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(seed.to_le_bytes());
        h.update(conversation.to_le_bytes());
        let d = h.finalize();
        let x = u64::from_le_bytes(d[..8].try_into().expect("8 bytes")) as f64 / u64::MAX as f64;
        if x < self.valid {
            Split::Valid
        } else if x < self.valid + self.test {
            Split::Test
        } else {
            Split::Train
        }
    }
}

impl FromStr for SplitSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut spec = SplitSpec::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("'{part}': expected NAME=FRACTION, e.g. valid=0.1"))?;
            let v: f64 = v
                .trim()
                .parse()
                .map_err(|_| format!("'{part}': '{v}' is not a number"))?;
            if !(0.0..1.0).contains(&v) {
                return Err(format!("'{part}': the fraction must be in [0, 1)"));
            }
            match k.trim() {
                "valid" | "validation" | "eval" => spec.valid = v,
                "test" => spec.test = v,
                other => {
                    return Err(format!(
                        "'{other}': unknown split (expected valid or test; train is the rest)"
                    ))
                }
            }
        }
        if spec.valid + spec.test >= 1.0 {
            return Err("valid + test must leave something to train on".into());
        }
        Ok(spec)
    }
}

/// Parses `YYYY-MM-DD` (or a whole RFC 3339 time) into unix milliseconds (UTC).
/// `end_of_day` moves a bare date to its last millisecond, for `--until`.
pub fn parse_date(s: &str, end_of_day: bool) -> Result<i64, String> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let bad = || format!("'{s}' is not a date (expected YYYY-MM-DD or RFC 3339)");
    let mut it = s.splitn(3, '-');
    let (y, m, d) = (it.next(), it.next(), it.next());
    let (Some(y), Some(m), Some(d)) = (y, m, d) else {
        return Err(bad());
    };
    let y: i32 = y.parse().map_err(|_| bad())?;
    let m: u8 = m.parse().map_err(|_| bad())?;
    let d: u8 = d.parse().map_err(|_| bad())?;
    let month = time::Month::try_from(m).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(y, month, d).map_err(|_| bad())?;
    let t = date.midnight().assume_utc();
    let ms = (t.unix_timestamp_nanos() / 1_000_000) as i64;
    Ok(if end_of_day { ms + 86_400_000 - 1 } else { ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_spec_parses_and_rejects() {
        let s: SplitSpec = "valid=0.1,test=0.05".parse().unwrap();
        assert_eq!((s.valid, s.test), (0.1, 0.05));
        assert!("valid=1.5".parse::<SplitSpec>().is_err());
        assert!("dev=0.1".parse::<SplitSpec>().is_err());
        assert!("valid=0.6,test=0.5".parse::<SplitSpec>().is_err());
    }

    #[test]
    fn split_is_deterministic_and_roughly_proportional() {
        let s = SplitSpec {
            valid: 0.2,
            test: 0.1,
        };
        let counts = (0..10_000).fold([0usize; 3], |mut acc, c| {
            let a = s.of(c, 7);
            assert_eq!(a, s.of(c, 7));
            acc[a as usize] += 1;
            acc
        });
        assert!((1700..2300).contains(&counts[1]), "{counts:?}");
        assert!((800..1200).contains(&counts[2]), "{counts:?}");
    }

    #[test]
    fn dates_parse() {
        assert_eq!(parse_date("1970-01-02", false).unwrap(), 86_400_000);
        assert_eq!(parse_date("1970-01-01", true).unwrap(), 86_399_999);
        assert!(parse_date("yesterday", false).is_err());
    }
}
