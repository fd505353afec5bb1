//! `arbor import`: datasets users already have, as trees in the database.
//!
//! A file is streamed: one line in memory at a time (a JSON array file, LLaMA-Factory's
//! `.json`, is read whole), so memory does not grow with the file, only with the index of
//! what was written (a 128-bit hash per message, to merge shared beginnings). Every bad
//! record is reported as `file:line: field: message`; without `--skip-bad` one bad record
//! means nothing is imported. Records that share a beginning (same system prompt, tools and
//! first messages) share nodes, so flat exports of a tree come back as the tree, and
//! preference pairs as rated siblings. The writes go in short transactions under hidden
//! conversations that appear all at once at the end ([`crate::store::Importer`]).

use super::formats::{detect, parse};
use super::{Format, Item, Msg, Problem, ProblemKind, Record};
use crate::dataset::Result;
use crate::domain::*;
use crate::error::Context as _;
use crate::store::{ImportNode, Importer, Store};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

/// Records of a file with their line numbers, or the problem of each bad line.
pub struct Parsed {
    pub format: Format,
    pub detected: bool,
    pub records: Vec<(PathBuf, usize, Record)>,
    pub problems: Vec<Problem>,
}

/// The path that means standard input.
pub fn is_stdin(path: &Path) -> bool {
    path == Path::new("-")
}

/// The files behind a path: the path itself (`-`: standard input), or for a directory
/// (mlx-lm data) its `train.jsonl`, `valid.jsonl` and `test.jsonl`.
pub fn files_of(path: &Path) -> Result<Vec<PathBuf>> {
    if is_stdin(path) {
        Ok(vec![path.to_path_buf()])
    } else if path.is_dir() {
        let files: Vec<PathBuf> = ["train.jsonl", "valid.jsonl", "test.jsonl"]
            .iter()
            .map(|f| path.join(f))
            .filter(|f| f.exists())
            .collect();
        if files.is_empty() {
            crate::fail!(
                "{}: a directory without train.jsonl, valid.jsonl or test.jsonl",
                path.display()
            );
        }
        Ok(files)
    } else if path.exists() {
        Ok(vec![path.to_path_buf()])
    } else {
        crate::fail!("{}: no such file", path.display())
    }
}

/// The JSON values of one file (or standard input), one at a time: JSON Lines, or one
/// JSON array (LLaMA-Factory's `.json`), each with its line number (for an array: its
/// 1-based position). A UTF-8 byte order mark at the start is skipped; a line that is not
/// UTF-8 or not JSON is a problem of that line.
pub struct JsonValues {
    file: PathBuf,
    reader: Box<dyn BufRead + Send>,
    line: usize,
    buf: Vec<u8>,
    started: bool,
    array: Option<std::iter::Enumerate<std::vec::IntoIter<Value>>>,
}

impl JsonValues {
    pub fn open(file: &Path) -> Result<Self> {
        let reader: Box<dyn BufRead + Send> = if is_stdin(file) {
            Box::new(std::io::BufReader::with_capacity(1 << 16, std::io::stdin()))
        } else {
            let f =
                std::fs::File::open(file).with_context(|| format!("reading {}", file.display()))?;
            Box::new(std::io::BufReader::with_capacity(1 << 16, f))
        };
        Ok(Self {
            file: file.to_path_buf(),
            reader,
            line: 0,
            buf: Vec::new(),
            started: false,
            array: None,
        })
    }

    fn problem(&self, message: String) -> Problem {
        Problem {
            file: self.file.clone(),
            line: self.line,
            field: String::new(),
            kind: ProblemKind::Json,
            message,
        }
    }

    /// Skips the byte order mark and leading white space (counting lines), and reads a
    /// JSON array file whole.
    fn start(&mut self) -> Result<()> {
        self.started = true;
        let ctx = |f: &Path| format!("reading {}", f.display());
        let mut first = true;
        loop {
            let buf = self.reader.fill_buf().with_context(|| ctx(&self.file))?;
            if buf.is_empty() {
                return Ok(());
            }
            let mut skip = 0;
            if first && buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
                skip = 3;
            }
            first = false;
            let mut newlines = 0;
            while skip < buf.len() && buf[skip].is_ascii_whitespace() {
                if buf[skip] == b'\n' {
                    newlines += 1;
                }
                skip += 1;
            }
            let at_value = skip < buf.len();
            let is_array = at_value && buf[skip] == b'[';
            self.reader.consume(skip);
            self.line += newlines;
            if is_array {
                let mut bytes = Vec::new();
                self.reader
                    .read_to_end(&mut bytes)
                    .with_context(|| ctx(&self.file))?;
                let start_line = self.line + 1;
                let all: Value = serde_json::from_slice(&bytes).map_err(|e| {
                    crate::dataset::DatasetError::Msg(format!(
                        "{}:{}: not valid JSON: {e}",
                        self.file.display(),
                        start_line + e.line() - 1
                    ))
                })?;
                let items = match all {
                    Value::Array(a) => a,
                    _ => Vec::new(),
                };
                self.array = Some(items.into_iter().enumerate());
            }
            if at_value {
                return Ok(());
            }
        }
    }

    /// The next value and its line; `None` at the end of the file.
    pub fn next_value(&mut self) -> Result<Option<(usize, Result<Value, Problem>)>> {
        if !self.started {
            self.start()?;
        }
        if let Some(it) = &mut self.array {
            return Ok(it.next().map(|(i, v)| (i + 1, Ok(v))));
        }
        loop {
            self.buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .with_context(|| format!("reading {}", self.file.display()))?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            let text = match std::str::from_utf8(&self.buf) {
                Ok(t) => t,
                Err(e) => {
                    let p = self.problem(format!(
                        "not valid UTF-8 (byte {} of the line); save the file as UTF-8",
                        e.valid_up_to() + 1
                    ));
                    return Ok(Some((self.line, Err(p))));
                }
            };
            if text.trim().is_empty() {
                continue;
            }
            let v = serde_json::from_str::<Value>(text)
                .map_err(|e| self.problem(format!("not valid JSON: {e}")));
            return Ok(Some((self.line, v)));
        }
    }
}

/// One line of a file: where it is, and its value or what is wrong with it.
pub type Line<T> = (PathBuf, usize, Result<T, Problem>);

/// The records of a file (or an mlx-lm directory, or standard input), one at a time, in
/// `format` or the format detected from the first record that is a JSON value.
pub struct Records {
    sources: VecDeque<JsonValues>,
    /// Values read ahead to detect the format.
    ahead: VecDeque<Line<Value>>,
    pub format: Format,
    pub detected: bool,
}

impl Records {
    pub fn open(path: &Path, format: Option<Format>) -> Result<Self> {
        let mut sources = VecDeque::new();
        for f in files_of(path)? {
            sources.push_back(JsonValues::open(&f)?);
        }
        let mut r = Self {
            sources,
            ahead: VecDeque::new(),
            format: format.unwrap_or(Format::Openai),
            detected: false,
        };
        if format.is_none() {
            r.detect(path)?;
        }
        Ok(r)
    }

    fn next_value(&mut self) -> Result<Option<Line<Value>>> {
        if let Some(v) = self.ahead.pop_front() {
            return Ok(Some(v));
        }
        while let Some(src) = self.sources.front_mut() {
            match src.next_value()? {
                Some((line, v)) => return Ok(Some((src.file.clone(), line, v))),
                None => {
                    self.sources.pop_front();
                }
            }
        }
        Ok(None)
    }

    fn detect(&mut self, path: &Path) -> Result<()> {
        let mut read = VecDeque::new();
        let found = loop {
            match self.next_value()? {
                None => break None,
                Some((f, l, Ok(v))) => {
                    let d = detect(&v).ok_or_else(|| {
                        let keys: Vec<String> = v
                            .as_object()
                            .map(|o| o.keys().cloned().collect())
                            .unwrap_or_default();
                        crate::dataset::DatasetError::Msg(format!(
                            "{}:{l}: cannot tell the format from this record (keys: {}); pass --format",
                            f.display(),
                            keys.join(", ")
                        ))
                    });
                    read.push_back((f, l, Ok(v)));
                    break Some(d?);
                }
                Some(bad) => read.push_back(bad),
            }
        };
        match found {
            Some(f) => {
                self.format = f;
                self.detected = true;
                self.ahead = read;
                Ok(())
            }
            None if read.is_empty() => crate::fail!("{}: no records", path.display()),
            None => crate::fail!(
                "{}: no line is valid JSON; text data must be JSON Lines with a \"text\" field",
                path.display()
            ),
        }
    }

    /// The next record, or the problem of its line; `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<Line<Record>>> {
        Ok(self.next_value()?.map(|(file, line, v)| {
            let r = v.and_then(|v| parse(self.format, &v).map_err(|e| e.at(&file, line)));
            (file, line, r)
        }))
    }
}

/// Reads and parses every record of `path` as `format` (`None`: detected from the first
/// record that is a JSON object).
pub fn read(path: &Path, format: Option<Format>) -> Result<Parsed> {
    let mut records = Records::open(path, format)?;
    let mut parsed = Parsed {
        format: records.format,
        detected: records.detected,
        records: Vec::new(),
        problems: Vec::new(),
    };
    while let Some((file, line, r)) = records.next_record()? {
        match r {
            Ok(r) => parsed.records.push((file, line, r)),
            Err(p) => parsed.problems.push(p),
        }
    }
    Ok(parsed)
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub format: Option<Format>,
    pub skip_bad: bool,
    /// Who the file's ratings are attributed to when it does not name a rater.
    pub rater: String,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportReport {
    pub format: String,
    pub detected: bool,
    pub records: usize,
    pub conversations: usize,
    pub messages: usize,
    /// Messages that were already there from an earlier record of the same file.
    pub shared: usize,
    pub ratings: usize,
    pub tags: usize,
    /// Preferences between answers (OASST ranks).
    pub preferences: usize,
    /// The conversations this import made.
    #[serde(skip)]
    pub created: Vec<ConversationId>,
    pub skipped: usize,
}

/// Bad input: the problems (the first [`KEPT_PROBLEMS`]), how many records were bad, and
/// that nothing was imported.
#[derive(Debug)]
pub struct BadInput {
    pub problems: Vec<Problem>,
    pub bad: usize,
    /// `--skip-bad` was given, but no record was good.
    pub all_bad: bool,
}

/// Problems kept to report (the rest are counted).
pub const KEPT_PROBLEMS: usize = 1000;

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for p in self.problems.iter().take(20) {
            writeln!(f, "{p}")?;
        }
        if self.bad > 20 {
            writeln!(f, "... and {} more", self.bad - 20)?;
        }
        if self.all_bad {
            write!(
                f,
                "every record ({}) is bad; nothing was imported",
                self.bad
            )
        } else {
            write!(
                f,
                "{} bad record(s); nothing was imported (use --skip-bad to import the rest)",
                self.bad
            )
        }
    }
}
impl std::error::Error for BadInput {}

/// The structural rules `validate` holds examples to, for a record about to be imported:
/// a conversation starts with a user message, a system message only at the start, tool
/// results answer calls. (An import may end on any turn.)
fn check_structure(rec: &Record, file: &Path, line: usize) -> Result<(), Problem> {
    for path in rec.paths() {
        let mut out = Vec::new();
        super::validate::check_order(&path, false, &mut out);
        if let Some((kind, field, message)) = out.into_iter().next() {
            return Err(Problem {
                file: file.to_path_buf(),
                line,
                field,
                kind,
                message,
            });
        }
    }
    Ok(())
}

/// Imports `path` into the store: streamed, in short transactions, all or nothing.
pub fn import(
    store: &Store,
    path: &Path,
    opts: &ImportOptions,
) -> Result<(ImportReport, Vec<Problem>)> {
    let mut records = Records::open(path, opts.format)?;
    let mut report = ImportReport {
        format: records.format.name().to_string(),
        detected: records.detected,
        ..Default::default()
    };
    let imp = store.importer()?;
    let mut m = Merger {
        imp: &imp,
        rater: &opts.rater,
        convs: HashMap::new(),
        nodes: HashMap::default(),
        keys: HashMap::new(),
        edits: Vec::new(),
        report: &mut report,
        now: now_ms(),
    };
    let mut problems = Vec::new();
    let mut bad = 0usize;
    let mut good = 0usize;
    while let Some((file, line, rec)) = records.next_record()? {
        let rec = rec.and_then(|r| {
            check_structure(&r, &file, line)?;
            Ok(r)
        });
        match rec {
            Ok(r) => {
                good += 1;
                // After a bad record (without --skip-bad) nothing will be kept: only read
                // on, to report every problem.
                if bad == 0 || opts.skip_bad {
                    m.record(&r).map_err(|e| {
                        crate::dataset::DatasetError::Msg(format!("{}:{line}: {e}", file.display()))
                    })?;
                    imp.checkpoint()?;
                }
            }
            Err(p) => {
                bad += 1;
                if problems.len() < KEPT_PROBLEMS {
                    problems.push(p);
                }
            }
        }
    }
    if bad > 0 && (!opts.skip_bad || good == 0) {
        return Err(BadInput {
            problems,
            bad,
            all_bad: opts.skip_bad,
        }
        .into());
    }
    m.finish()?;
    report.records = good;
    report.skipped = bad;
    imp.publish()?;
    Ok((report, problems))
}

/// 128 bits of SHA-256 over the parts (each length-prefixed): a key that tells messages
/// apart without keeping their text.
fn digest(parts: &[&[u8]]) -> u128 {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let d = h.finalize();
    u128::from_le_bytes(d[..16].try_into().expect("16 bytes"))
}

/// The key of a message under `parent` in `conv`: its digest with the two ids mixed in by
/// multiplication with odd constants (distinct places give distinct keys except with
/// probability 2^-128, as for the digests themselves).
fn node_key(conv: ConversationId, parent: Option<NodeId>, sig: u128) -> u128 {
    const A: u128 = 0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835;
    const B: u128 = 0xD6E8_FEB8_6659_FD93_A3B1_9F3F_4C9D_2B5F;
    sig ^ (conv as u128).wrapping_mul(A) ^ (parent.map_or(u128::MAX, |p| p as u128)).wrapping_mul(B)
}

/// Keys that are already uniform (digests) need no hashing: their low bits are the hash.
#[derive(Default, Clone, Copy)]
struct DigestHash;
impl std::hash::BuildHasher for DigestHash {
    type Hasher = DigestHasher;
    fn build_hasher(&self) -> DigestHasher {
        DigestHasher(0)
    }
}
struct DigestHasher(u64);
impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 ^= v as u64 ^ (v >> 64) as u64;
    }
}

struct Merger<'a, 't> {
    imp: &'a Importer<'t>,
    rater: &'a str,
    /// (system, tools, first message) → conversation.
    convs: HashMap<u128, ConversationId>,
    /// (conversation, parent, message) → node, keyed by [`node_key`].
    nodes: HashMap<u128, NodeId, DigestHash>,
    /// The file's own message ids (OASST `message_id`) → node.
    keys: HashMap<u128, NodeId>,
    edits: Vec<(NodeId, u128)>,
    report: &'a mut ImportReport,
    now: i64,
}

fn signature(m: &Msg) -> u128 {
    let calls = if m.tool_calls.is_empty() {
        Vec::new()
    } else {
        serde_json::to_vec(&m.tool_calls).unwrap_or_default()
    };
    let id = m.tool_call_id.as_deref().map(str::as_bytes);
    digest(&[
        m.role.as_str().as_bytes(),
        m.content.as_bytes(),
        &calls,
        id.unwrap_or(b"\x00none"),
    ])
}

impl Merger<'_, '_> {
    fn record(&mut self, rec: &Record) -> Result<()> {
        let tools = rec
            .tools
            .as_ref()
            .map(|t| t.to_string())
            .unwrap_or_default();
        for root in &rec.roots {
            let first = signature(&root.msg).to_le_bytes();
            let key = digest(&[rec.system.as_bytes(), tools.as_bytes(), &first]);
            let conv = match self.convs.get(&key) {
                Some(&c) => c,
                None => {
                    let title = crate::chat::title_from(&root.msg.content);
                    // Its root is the next message inserted.
                    let c = self.imp.create_conversation(
                        &title,
                        &rec.system,
                        rec.tools.as_ref(),
                        root.msg.created_at.unwrap_or(self.now),
                        Some(self.imp.next_node_id()?),
                    )?;
                    self.report.conversations += 1;
                    self.report.created.push(c);
                    self.convs.insert(key, c);
                    c
                }
            };
            let before = self.report.messages;
            self.item(conv, None, root)?;
            let added = self.report.messages - before;
            if added > 0 {
                self.imp.add_to_count(conv, added as i64)?;
            }
        }
        Ok(())
    }

    /// Inserts (or finds) `it` and its subtree; returns its id. The first children are
    /// the active path (a shared message is moved onto this record's path).
    fn item(&mut self, conv: ConversationId, parent: Option<NodeId>, it: &Item) -> Result<NodeId> {
        let m = &it.msg;
        let key = node_key(conv, parent, signature(m));
        let (id, shared) = match self.nodes.get(&key) {
            Some(&id) => {
                self.report.shared += 1;
                (id, true)
            }
            None => {
                // Imported, except an edit whose original came along (it keeps its link).
                let origin = match (m.origin, &m.edited_from_key) {
                    (Some(Origin::Edited), Some(_)) => Origin::Edited,
                    _ => Origin::Imported,
                };
                let mut node = NewNode::new(m.role, m.content.clone(), origin);
                node.tool_calls = m.tool_calls.clone();
                node.tool_call_id = m.tool_call_id.clone();
                let id = self.imp.insert_node(
                    conv,
                    parent,
                    &ImportNode {
                        node,
                        model: m.model.clone(),
                        edited_from: None,
                        created_at: m.created_at.unwrap_or(self.now),
                    },
                    !it.children.is_empty(),
                )?;
                self.report.messages += 1;
                self.nodes.insert(key, id);
                (id, false)
            }
        };
        if let Some(k) = &m.key {
            self.keys.insert(digest(&[k.as_bytes()]), id);
        }
        if let Some(k) = &m.edited_from_key {
            self.edits.push((id, digest(&[k.as_bytes()])));
        }
        for r in &m.ratings {
            let rater = r.rater.as_deref().unwrap_or(self.rater);
            self.imp.rate(id, rater, r.stars, r.critique.as_deref())?;
            self.report.ratings += 1;
        }
        for (rater, tag) in &m.tags {
            let rater = rater.as_deref().unwrap_or(self.rater);
            let tag: String = tag
                .split_whitespace()
                .collect::<Vec<_>>()
                .join("-")
                .replace(',', ";");
            if !tag.is_empty() {
                self.imp.tag(id, rater, &tag)?;
                self.report.tags += 1;
            }
        }
        let mut ranked: Vec<(i64, NodeId)> = Vec::new();
        for (i, c) in it.children.iter().enumerate() {
            let child = self.item(conv, Some(id), c)?;
            if i == 0 && shared {
                self.imp.set_active_child(id, child)?;
            }
            if let (Some(rank), Role::Assistant) = (c.msg.rank, c.msg.role) {
                ranked.push((rank, child));
            }
        }
        // Ranked answers: every better-ranked one is preferred to every worse-ranked one.
        for &(ra, a) in &ranked {
            for &(rb, b) in &ranked {
                if ra < rb && a != b {
                    self.imp.prefer(a, b, self.rater, "rank")?;
                    self.report.preferences += 1;
                }
            }
        }
        Ok(id)
    }

    fn finish(&mut self) -> Result<()> {
        for (node, key) in std::mem::take(&mut self.edits) {
            if let Some(&from) = self.keys.get(&key) {
                self.imp.set_edited_from(node, from)?;
            }
        }
        Ok(())
    }
}
