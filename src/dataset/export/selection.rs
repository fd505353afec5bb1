//! Which examples a tree gives: the tree's index (children, paths, the system prompt),
//! and the export's filters on an answer and its path (ratings, raters, tags, dates,
//! models, length, held-out eval conversations).

use super::*;
use crate::domain::ChatMessage;
use crate::domain::*;
use crate::engine::llama::Tokenizer;
use crate::store::{Judgements, Stars};
use anyhow::Result;
use std::collections::HashSet;

/// The tree of one conversation, indexed. Nodes come ordered by id.
pub(super) struct Tree<'a> {
    pub(super) conv: &'a Conversation,
    pub(super) nodes: &'a [Node],
    /// Each node's parent, as an index into `nodes`.
    pub(super) parents: Vec<Option<usize>>,
    pub(super) kids: std::cell::OnceCell<Vec<Vec<usize>>>,
}

impl<'a> Tree<'a> {
    pub(super) fn new(conv: &'a Conversation, nodes: &'a [Node]) -> Self {
        let mut t = Self {
            conv,
            nodes,
            parents: Vec::new(),
            kids: std::cell::OnceCell::new(),
        };
        t.parents = nodes
            .iter()
            .map(|n| n.parent_id.and_then(|p| t.index_of(p)))
            .collect();
        t
    }

    /// Where the node with this id is (nodes are sorted by id).
    pub(super) fn index_of(&self, id: NodeId) -> Option<usize> {
        self.nodes.binary_search_by_key(&id, |n| n.id).ok()
    }

    /// Each node's children, in id order.
    pub(super) fn kids(&self) -> &[Vec<usize>] {
        self.kids.get_or_init(|| {
            let mut kids = vec![Vec::new(); self.nodes.len()];
            for (i, p) in self.parents.iter().enumerate() {
                if let Some(p) = p {
                    kids[*p].push(i);
                }
            }
            kids
        })
    }

    pub(super) fn parent(&self, i: usize) -> Option<usize> {
        self.parents[i]
    }

    /// Root first, ending with `i`.
    pub(super) fn path(&self, i: usize) -> Vec<usize> {
        let mut p = vec![i];
        let mut cur = i;
        while let Some(par) = self.parent(cur) {
            p.push(par);
            cur = par;
        }
        p.reverse();
        p
    }

    /// The name of the call a tool result answers.
    pub(super) fn call_name(&self, i: usize) -> Option<&str> {
        let id = self.nodes[i].tool_call_id.as_deref()?;
        let mut cur = self.parent(i);
        while let Some(p) = cur {
            if let Some(c) = self.nodes[p].tool_calls.iter().find(|c| c.id == id) {
                return Some(&c.name);
            }
            cur = self.parent(p);
        }
        None
    }

    pub(super) fn system(&self) -> Option<Node> {
        (!self.conv.system_prompt.is_empty()).then(|| Node {
            created_at: self.conv.created_at,
            ..Node::new(self.conv.id, Role::System, self.conv.system_prompt.clone())
        })
    }

    /// The example's messages as templates see them (system prompt first).
    pub(super) fn chat(&self, path: &[usize]) -> Vec<ChatMessage> {
        let mut out = Vec::new();
        if !self.conv.system_prompt.is_empty() {
            out.push(ChatMessage::new(
                Role::System,
                self.conv.system_prompt.clone(),
            ));
        }
        out.extend(path.iter().map(|&i| {
            let n = &self.nodes[i];
            ChatMessage {
                role: n.role,
                content: n.content.clone(),
                tool_calls: n.tool_calls.clone(),
                tool_call_id: n.tool_call_id.clone(),
            }
        }));
        out
    }
}

/// The export engine: filters, semantics and formats; output goes to a sink.
pub(super) struct Exporter<'a> {
    pub(super) opts: &'a ExportOptions,
    pub(super) j: &'a Judgements,
    /// Stars that count per node (the rater's, or the lowest).
    pub(super) stars: &'a Stars,
    pub(super) tok: Option<&'a Tokenizer>,
    pub(super) seen: HashSet<u64>,
    pub(super) report: Report,
    /// The line being written.
    pub(super) line: Vec<u8>,
}

impl<'a> Exporter<'a> {
    pub(super) fn new(
        opts: &'a ExportOptions,
        j: &'a Judgements,
        stars: &'a Stars,
        tok: Option<&'a Tokenizer>,
    ) -> Self {
        Self {
            opts,
            j,
            stars,
            tok,
            seen: HashSet::new(),
            line: Vec::new(),
            report: Report {
                format: opts.format.name().to_string(),
                ..Report::default()
            },
        }
    }

    pub(super) fn rater(&self) -> Option<&str> {
        self.opts.rater.as_deref()
    }

    pub(super) fn stars(&self, n: &Node) -> Option<u8> {
        self.stars.get(n.id)
    }

    /// Whether an answer may be trained on; `Err` says why not.
    pub(super) fn eligible(&self, n: &Node) -> Result<(), &'static str> {
        self.eligible_except_rating(n)?;
        match (self.opts.min_rating, self.stars(n)) {
            (Some(_), None) => Err("unrated (with --min-rating)"),
            (Some(t), Some(s)) if s < t => Err("rated below --min-rating"),
            (None, Some(s)) if s <= LOW_STARS && !self.opts.include_low => Err(LOW_REASON),
            _ => Ok(()),
        }
    }

    /// Whether the chosen answer of a pair, rated `stars`, may be trained towards.
    pub(super) fn chosen_rating_ok(&self, stars: u8) -> Result<(), &'static str> {
        match self.opts.min_rating {
            Some(m) if stars < m => Err("pair: chosen below --min-rating"),
            None if stars <= LOW_STARS && !self.opts.include_low => {
                Err("pair: chosen rated 2 stars or lower (--include-low-rated)")
            }
            _ => Ok(()),
        }
    }

    pub(super) fn eligible_except_rating(&self, n: &Node) -> Result<(), &'static str> {
        if n.role != Role::Assistant {
            return Err("not an answer");
        }
        if n.status != Status::Complete {
            return Err("interrupted or failed answer");
        }
        if !self.opts.model_matches(n) {
            return Err("not generated by --model");
        }
        if !self.opts.in_dates(n) {
            return Err("outside --since/--until");
        }
        Ok(())
    }

    pub(super) fn path_tags_ok(&self, t: &Tree, path: &[usize]) -> Result<(), &'static str> {
        let has = |tag: &str| {
            path.iter()
                .any(|&i| self.j.has_tag(t.nodes[i].id, tag, self.rater()))
        };
        if !self.opts.tags.iter().all(|tag| has(tag)) {
            return Err("without the --tag");
        }
        if self.opts.no_tags.iter().any(|tag| has(tag)) {
            return Err("with a --no-tag");
        }
        Ok(())
    }

    /// Whether the example `path` is over `--max-tokens` (its messages are only built
    /// when there is a limit).
    pub(super) fn too_long(&self, t: &Tree, path: &[usize]) -> Result<bool> {
        match (self.opts.max_tokens, self.tok) {
            (Some(max), Some(tok)) => {
                let n = tok
                    .count(&t.chat(path), t.conv.tools.as_ref())
                    .map_err(anyhow::Error::msg)?;
                Ok(n > max)
            }
            _ => Ok(false),
        }
    }
}
