//! `arbor import`: datasets users already have, as trees in the database.
//!
//! A file is read whole and parsed first; every bad record is reported as
//! `file:line: field: message`. Without `--skip-bad` one bad record means nothing is
//! imported; the import itself is one transaction. Records that share a beginning
//! (same system prompt, tools and first messages) share nodes, so flat exports of a
//! tree come back as the tree, and preference pairs as rated siblings.

use super::formats::{detect, parse};
use super::{Format, Item, Msg, Problem, ProblemKind, Record};
use crate::domain::*;
use crate::store::{ImportNode, ImportTx, Store};
use anyhow::{Context, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Records of a file with their line numbers, or the problem of each bad line.
pub struct Parsed {
    pub format: Format,
    pub detected: bool,
    pub records: Vec<(PathBuf, usize, Record)>,
    pub problems: Vec<Problem>,
}

/// The files behind a path: the path itself, or for a directory (mlx-lm data) its
/// `train.jsonl`, `valid.jsonl` and `test.jsonl`.
pub fn files_of(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_dir() {
        let files: Vec<PathBuf> = ["train.jsonl", "valid.jsonl", "test.jsonl"]
            .iter()
            .map(|f| path.join(f))
            .filter(|f| f.exists())
            .collect();
        if files.is_empty() {
            anyhow::bail!(
                "{}: a directory without train.jsonl, valid.jsonl or test.jsonl",
                path.display()
            );
        }
        Ok(files)
    } else if path.exists() {
        Ok(vec![path.to_path_buf()])
    } else {
        anyhow::bail!("{}: no such file", path.display())
    }
}

/// The JSON values of a file: JSON Lines, or one JSON array (LLaMA-Factory's `.json`),
/// each with its line number (for an array: its 1-based position).
pub fn json_values(file: &Path) -> Result<Vec<(usize, Result<Value, Problem>)>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let all: Value = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}:{}: not valid JSON: {e}", file.display(), e.line()))?;
        return Ok(all
            .as_array()
            .map(|a| {
                a.iter()
                    .cloned()
                    .enumerate()
                    .map(|(i, v)| (i + 1, Ok(v)))
                    .collect()
            })
            .unwrap_or_default());
    }
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let line = i + 1;
            (
                line,
                serde_json::from_str::<Value>(l).map_err(|e| Problem {
                    file: file.to_path_buf(),
                    line,
                    field: String::new(),
                    kind: ProblemKind::Json,
                    message: format!("not valid JSON: {e}"),
                }),
            )
        })
        .collect())
}

/// Reads and parses every record of `path` as `format` (`None`: detected from the first
/// record that is a JSON object).
pub fn read(path: &Path, format: Option<Format>) -> Result<Parsed> {
    let files = files_of(path)?;
    let mut values = Vec::new();
    for f in &files {
        for (line, v) in json_values(f)? {
            values.push((f.clone(), line, v));
        }
    }
    let (format, detected) = match format {
        Some(f) => (f, false),
        None => {
            let first = values
                .iter()
                .find_map(|(f, l, v)| v.as_ref().ok().map(|v| (f, l, v)));
            match first {
                Some((f, l, v)) => match detect(v) {
                    Some(fmt) => (fmt, true),
                    None => {
                        let keys: Vec<String> = v
                            .as_object()
                            .map(|o| o.keys().cloned().collect())
                            .unwrap_or_default();
                        anyhow::bail!(
                            "{}:{l}: cannot tell the format from this record (keys: {}); pass --format",
                            f.display(),
                            keys.join(", ")
                        )
                    }
                },
                None if values.is_empty() => anyhow::bail!("{}: no records", path.display()),
                None => anyhow::bail!(
                    "{}: no line is valid JSON; text data must be JSON Lines with a \"text\" field",
                    path.display()
                ),
            }
        }
    };
    let mut parsed = Parsed {
        format,
        detected,
        records: Vec::new(),
        problems: Vec::new(),
    };
    for (file, line, v) in values {
        match v {
            Err(p) => parsed.problems.push(p),
            Ok(v) => match parse(format, &v) {
                Ok(r) => parsed.records.push((file, line, r)),
                Err(e) => parsed.problems.push(e.at(&file, line)),
            },
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
    pub skipped: usize,
}

/// Bad input: the problems, and that nothing was imported.
#[derive(Debug)]
pub struct BadInput(pub Vec<Problem>);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for p in self.0.iter().take(20) {
            writeln!(f, "{p}")?;
        }
        if self.0.len() > 20 {
            writeln!(f, "... and {} more", self.0.len() - 20)?;
        }
        write!(
            f,
            "{} bad record(s); nothing was imported (use --skip-bad to import the rest)",
            self.0.len()
        )
    }
}
impl std::error::Error for BadInput {}

/// Imports `path` into the store in one transaction.
pub fn import(
    store: &Store,
    path: &Path,
    opts: &ImportOptions,
) -> Result<(ImportReport, Vec<Problem>)> {
    let parsed = read(path, opts.format)?;
    if !parsed.problems.is_empty() && !opts.skip_bad {
        return Err(BadInput(parsed.problems).into());
    }
    let mut report = ImportReport {
        format: parsed.format.name().to_string(),
        detected: parsed.detected,
        skipped: parsed.problems.len(),
        ..Default::default()
    };
    let tx = store.import_tx()?;
    let mut m = Merger {
        tx: &tx,
        rater: &opts.rater,
        convs: HashMap::new(),
        nodes: HashMap::new(),
        keys: HashMap::new(),
        edits: Vec::new(),
        report: &mut report,
        now: now_ms(),
    };
    for (file, line, rec) in &parsed.records {
        m.record(rec)
            .map_err(|e| anyhow::anyhow!("{}:{line}: {e}", file.display()))?;
    }
    m.finish()?;
    report.records = parsed.records.len();
    tx.commit()?;
    Ok((report, parsed.problems))
}

struct Merger<'a, 't> {
    tx: &'a ImportTx<'t>,
    rater: &'a str,
    /// (system, tools, first message) → conversation.
    convs: HashMap<(String, String, String), ConversationId>,
    /// (conversation, parent, message signature) → node.
    nodes: HashMap<(ConversationId, Option<NodeId>, String), NodeId>,
    keys: HashMap<String, NodeId>,
    edits: Vec<(NodeId, String)>,
    report: &'a mut ImportReport,
    now: i64,
}

fn signature(m: &Msg) -> String {
    serde_json::json!([m.role.as_str(), m.content, m.tool_calls, m.tool_call_id]).to_string()
}

impl Merger<'_, '_> {
    fn record(&mut self, rec: &Record) -> Result<()> {
        let tools = rec
            .tools
            .as_ref()
            .map(|t| t.to_string())
            .unwrap_or_default();
        for root in &rec.roots {
            let key = (rec.system.clone(), tools.clone(), signature(&root.msg));
            let conv = match self.convs.get(&key) {
                Some(&c) => c,
                None => {
                    let title = crate::chat::title_from(&root.msg.content);
                    let c = self.tx.create_conversation(
                        &title,
                        &rec.system,
                        rec.tools.as_ref(),
                        root.msg.created_at.unwrap_or(self.now),
                    )?;
                    self.report.conversations += 1;
                    self.convs.insert(key, c);
                    c
                }
            };
            let leaf = self.item(conv, None, root)?;
            self.tx.set_active(leaf)?;
        }
        Ok(())
    }

    /// Inserts (or finds) `it` and its subtree; returns the leaf along first children.
    fn item(&mut self, conv: ConversationId, parent: Option<NodeId>, it: &Item) -> Result<NodeId> {
        let m = &it.msg;
        let key = (conv, parent, signature(m));
        let id = match self.nodes.get(&key) {
            Some(&id) => {
                self.report.shared += 1;
                id
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
                let id = self.tx.insert_node(
                    conv,
                    parent,
                    &ImportNode {
                        node,
                        model: m.model.clone(),
                        edited_from: None,
                        created_at: m.created_at.unwrap_or(self.now),
                    },
                )?;
                self.report.messages += 1;
                self.nodes.insert(key, id);
                id
            }
        };
        if let Some(k) = &m.key {
            self.keys.insert(k.clone(), id);
        }
        if let Some(k) = &m.edited_from_key {
            self.edits.push((id, k.clone()));
        }
        for r in &m.ratings {
            let rater = r.rater.as_deref().unwrap_or(self.rater);
            self.tx.rate(id, rater, r.stars, r.critique.as_deref())?;
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
                self.tx.tag(id, rater, &tag)?;
                self.report.tags += 1;
            }
        }
        let mut leaf = id;
        for (i, c) in it.children.iter().enumerate() {
            let l = self.item(conv, Some(id), c)?;
            if i == 0 {
                leaf = l;
            }
        }
        Ok(leaf)
    }

    fn finish(&mut self) -> Result<()> {
        for (node, key) in std::mem::take(&mut self.edits) {
            if let Some(&from) = self.keys.get(&key) {
                self.tx.set_edited_from(node, from)?;
            }
        }
        Ok(())
    }
}
