//! Evals: held-out eval sets of cases (a user turn with its context, and its reference
//! answer), made from the store with the export's filters or from a chat file.
//!
//! A case is every user turn that passes the filters: its context is the path up to it
//! (system prompt, tools, history), its reference the best-rated answer to it, rated at
//! least `--min-rating` (default 4; an unrated human edit counts as 5, as in preference
//! pairs). Conversations holding a case are left out of `arbor export` and `arbor train`
//! unless `--include-eval`.

pub mod judge;
pub mod metrics;
pub mod queue;
pub mod report;
pub mod run;

use crate::dataset::export::ExportOptions;
use crate::dataset::import::{self, ImportOptions};
use crate::domain::*;
use crate::store::{NewCase, Store, TreeFields};

crate::module_error! {
    /// What making, running and reporting eval sets fail with.
    EvalError {
        Dataset(crate::dataset::DatasetError),
        Turn(crate::chat::TurnError),
    }
}

pub type Result<T, E = EvalError> = std::result::Result<T, E>;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The reference threshold when `--min-rating` is not given.
pub const DEFAULT_REFERENCE_STARS: u8 = 4;

/// What `arbor eval set` selects: the export's filters (`min_rating` is the reference's
/// threshold), and a deterministic sample.
#[derive(Debug, Clone)]
pub struct SetOptions {
    pub filters: ExportOptions,
    /// Keep N cases, whole conversations in an order given by the seed.
    pub sample: Option<usize>,
    pub seed: u64,
}

/// The cases of the store that pass the filters, in conversation and turn order.
pub fn cases_from_store(store: &Store, opts: &SetOptions) -> Result<Vec<NewCase>> {
    let f = &opts.filters;
    for &c in &f.conversations {
        store.conversation(c)?;
    }
    let _visible = store.visible_only(false)?;
    let stars = store.stars(f.rater.as_deref())?;
    let j = store.judgements()?;
    let threshold = f.min_rating.unwrap_or(DEFAULT_REFERENCE_STARS);
    let fields = TreeFields {
        model: true,
        history: true,
    };
    let has_tag = |id: NodeId, tag: &str| j.has_tag(id, tag, f.rater.as_deref());
    let mut by_conv: BTreeMap<ConversationId, Vec<NewCase>> = BTreeMap::new();
    store.for_each_tree::<EvalError>(&f.conversations, fields, |conv, nodes| {
        let index: HashMap<NodeId, usize> =
            nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
        let mut kids: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            if let Some(p) = n.parent_id.and_then(|p| index.get(&p)) {
                kids[*p].push(i);
            }
        }
        for (i, u) in nodes.iter().enumerate() {
            if u.role != Role::User {
                continue;
            }
            if !f.in_dates(u) {
                continue;
            }
            let answers: Vec<&Node> = kids[i]
                .iter()
                .map(|&k| &nodes[k])
                .filter(|n| n.role == Role::Assistant && n.status == Status::Complete)
                .collect();
            if f.model.is_some() && !answers.iter().any(|n| f.model_matches(n)) {
                continue;
            }
            // The turn: the path up to the user message, and its answers.
            let mut turn: Vec<NodeId> = answers.iter().map(|n| n.id).collect();
            let mut at = Some(i);
            while let Some(k) = at {
                turn.push(nodes[k].id);
                at = nodes[k].parent_id.and_then(|p| index.get(&p).copied());
            }
            if !f.tags.iter().all(|t| turn.iter().any(|&id| has_tag(id, t))) {
                continue;
            }
            if f.no_tags
                .iter()
                .any(|t| turn.iter().any(|&id| has_tag(id, t)))
            {
                continue;
            }
            let score = |n: &Node| -> Option<u8> {
                stars
                    .get(n.id)
                    .or((n.origin == Origin::Edited).then_some(5))
            };
            let reference = answers
                .iter()
                .filter_map(|n| score(n).filter(|&s| s >= threshold).map(|s| (s, *n)))
                .max_by_key(|(s, n)| (*s, n.origin == Origin::Edited, n.id))
                .map(|(_, n)| n.id);
            let mut tags: Vec<String> = std::iter::once(u.id)
                .chain(answers.iter().map(|n| n.id))
                .flat_map(|id| j.tags_of(id).iter().map(|(_, t)| t.clone()))
                .collect();
            tags.sort();
            tags.dedup();
            by_conv.entry(conv.id).or_default().push(NewCase {
                conversation_id: conv.id,
                user_node_id: u.id,
                reference_node_id: reference,
                tags,
            });
        }
        Ok(())
    })?;
    Ok(sample(by_conv, opts.sample, opts.seed))
}

/// All cases, or `n` of them taken conversation by conversation in the order a hash of
/// (seed, conversation id) gives, so a seed always picks the same ones.
fn sample(
    by_conv: BTreeMap<ConversationId, Vec<NewCase>>,
    n: Option<usize>,
    seed: u64,
) -> Vec<NewCase> {
    let Some(n) = n else {
        return by_conv.into_values().flatten().collect();
    };
    let mut convs: Vec<(u64, ConversationId)> =
        by_conv.keys().map(|&c| (seeded_hash(seed, c), c)).collect();
    convs.sort_unstable();
    let mut picked: Vec<NewCase> = Vec::new();
    let mut by_conv = by_conv;
    for (_, c) in convs {
        if picked.len() >= n {
            break;
        }
        let cases = by_conv.remove(&c).unwrap_or_default();
        let room = n - picked.len();
        picked.extend(cases.into_iter().take(room));
    }
    picked.sort_by_key(|c| (c.conversation_id, c.user_node_id));
    picked
}

fn seeded_hash(seed: u64, conversation: ConversationId) -> u64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"eval-sample");
    h.update(seed.to_le_bytes());
    h.update(conversation.to_le_bytes());
    u64::from_le_bytes(h.finalize()[..8].try_into().expect("8 bytes"))
}

/// Imports a chat file (OpenAI/TRL/ShareGPT… as `arbor import` reads it) and returns one
/// case per record: its last user turn, with the answer after it as the reference when the
/// record ends on one. Bad lines are errors (file:line:field) and import nothing.
pub fn cases_from_file(store: &Store, file: &Path, rater: &str) -> Result<Vec<NewCase>> {
    let opts = ImportOptions {
        format: None,
        skip_bad: false,
        rater: rater.to_string(),
    };
    let (report, _) = import::import(store, file, &opts)?;
    let mut cases = Vec::new();
    for &conv in &report.created {
        let path = store.active_path(conv)?;
        let Some(u) = path.iter().rposition(|n| n.role == Role::User) else {
            continue;
        };
        let reference = path[u + 1..]
            .iter()
            .rfind(|n| n.role == Role::Assistant)
            .map(|n| n.id);
        cases.push(NewCase {
            conversation_id: conv,
            user_node_id: path[u].id,
            reference_node_id: reference,
            tags: Vec::new(),
        });
    }
    Ok(cases)
}
