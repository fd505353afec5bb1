//! `arbor eval`: eval sets (held out of training).

use super::{Env, Exit};
use crate::dataset::export::ExportOptions;
use crate::dataset::{parse_date, Format};
use crate::domain::ConversationId;
use crate::eval::{self, SetOptions};
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum EvalAction {
    /// Make an eval set: every user turn that passes the filters (or the last user turn of
    /// each record of --from FILE) with its best-rated answer as the reference
    Set(Box<SetArgs>),
    /// List the eval sets
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show an eval set's cases: conversation, last user message, reference
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete an eval set (its conversations stay; they are trained on again)
    Delete { name: String },
}

#[derive(clap::Args, Debug)]
pub struct SetArgs {
    /// The set's name (letters, digits, -, _, .)
    pub name: String,
    /// Cases from a chat JSONL file (OpenAI, TRL, ShareGPT… as `arbor import` reads it):
    /// the records are imported, the last user turn of each is a case and the answer after
    /// it, if any, its reference
    #[arg(long, value_name = "FILE", conflicts_with_all = ["conversations", "tags", "no_tags", "model", "since", "until", "sample"])]
    pub from: Option<PathBuf>,
    /// The reference must be rated at least this (1-5) [default: 4]
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub min_rating: Option<u8>,
    /// Only turns with a message carrying this tag on their path or answers (repeatable)
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Leave out turns with a message carrying this tag (repeatable)
    #[arg(long = "no-tag")]
    pub no_tags: Vec<String>,
    /// Only this rater's ratings and tags count [default: all raters; the lowest stars win]
    #[arg(long)]
    pub rater: Option<String>,
    /// Only turns answered by a model whose name contains this
    #[arg(long)]
    pub model: Option<String>,
    /// Only user turns written on or after this date (YYYY-MM-DD or RFC 3339)
    #[arg(long)]
    pub since: Option<String>,
    /// Only user turns written on or before this date
    #[arg(long)]
    pub until: Option<String>,
    /// Only this conversation (repeatable)
    #[arg(long = "conversation")]
    pub conversations: Vec<ConversationId>,
    /// Keep N cases, whole conversations first, in an order the seed decides
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub sample: Option<u64>,
    /// Seed of --sample
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long)]
    pub json: bool,
}

pub fn eval(env: &Env, action: EvalAction) -> Result<i32> {
    let store = env.store()?;
    let bad = |m: String| -> anyhow::Error { Exit(2, m).into() };
    match action {
        EvalAction::Set(a) => {
            let a = *a;
            crate::store::check_eval_name(&a.name)?;
            if store.eval_sets()?.iter().any(|s| s.name == a.name) {
                return Err(bad(format!(
                    "eval set {} exists (arbor eval delete {} first, or choose another name)",
                    a.name, a.name
                )));
            }
            let (cases, source) = match &a.from {
                Some(file) => {
                    let rater = a.rater.clone().unwrap_or_else(|| env.config.rater());
                    let cases = eval::cases_from_file(&store, file, &rater).map_err(|e| {
                        if e.is::<crate::dataset::import::BadInput>() {
                            bad(e.to_string())
                        } else {
                            bad(format!("{e:#}"))
                        }
                    })?;
                    (cases, format!("--from {}", file.display()))
                }
                None => {
                    let mut filters = ExportOptions::new(Format::Openai);
                    filters.min_rating = a.min_rating;
                    filters.tags = a.tags.clone();
                    filters.no_tags = a.no_tags.clone();
                    filters.rater = a.rater.clone();
                    filters.model = a.model.clone();
                    filters.conversations = a.conversations.clone();
                    filters.since = a
                        .since
                        .as_deref()
                        .map(|s| parse_date(s, false))
                        .transpose()
                        .map_err(|e| bad(format!("--since: {e}")))?;
                    filters.until = a
                        .until
                        .as_deref()
                        .map(|s| parse_date(s, true))
                        .transpose()
                        .map_err(|e| bad(format!("--until: {e}")))?;
                    let opts = SetOptions {
                        filters,
                        sample: a.sample.map(|n| n as usize),
                        seed: a.seed,
                    };
                    (eval::cases_from_store(&store, &opts)?, describe_filters(&a))
                }
            };
            let set = match store.create_eval_set(&a.name, &source, &cases) {
                Ok(s) => s,
                Err(e) => {
                    // What --from imported for this set goes again.
                    if a.from.is_some() {
                        for c in &cases {
                            let _ = store.delete_conversation(c.conversation_id);
                        }
                    }
                    return Err(e.into());
                }
            };
            if a.json {
                println!("{}", serde_json::to_string_pretty(&set)?);
            } else {
                println!(
                    "eval set {}: {} cases from {} conversations ({} with a reference); held out of export and train",
                    set.name, set.cases, set.conversations, set.with_reference
                );
            }
            Ok(0)
        }
        EvalAction::List { json } => {
            let sets = store.eval_sets()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&sets)?);
            } else if sets.is_empty() {
                println!("no eval sets (make one: arbor eval set NAME [filters])");
            } else {
                println!(
                    "{:<24} {:>6} {:>13} {:>10}  source",
                    "name", "cases", "conversations", "reference"
                );
                for s in sets {
                    println!(
                        "{:<24} {:>6} {:>13} {:>10}  {}",
                        s.name, s.cases, s.conversations, s.with_reference, s.source
                    );
                }
            }
            Ok(0)
        }
        EvalAction::Show { name, json } => {
            let (set, cases) = store.eval_set(&name)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({"set": set, "cases": cases}))?
                );
                return Ok(0);
            }
            println!(
                "eval set {}: {} cases from {} conversations ({} with a reference) — {}",
                set.name, set.cases, set.conversations, set.with_reference, set.source
            );
            for c in cases {
                println!(
                    "  conversation {:>5}  message {:>6}  {}",
                    c.conversation_id,
                    c.user_node_id,
                    one_line(&c.user, 70)
                );
                match (&c.reference_node_id, &c.reference) {
                    (Some(id), Some(r)) => {
                        println!("{:>34}  → {}", format!("reference {id}"), one_line(r, 70))
                    }
                    _ => println!("{:>34}", "no reference"),
                }
                if !c.tags.is_empty() {
                    println!("{:>34}  tags: {}", "", c.tags.join(", "));
                }
            }
            Ok(0)
        }
        EvalAction::Delete { name } => {
            store.delete_eval_set(&name)?;
            println!("eval set {name} deleted; its conversations are trained on again");
            Ok(0)
        }
    }
}

fn describe_filters(a: &SetArgs) -> String {
    let mut parts = Vec::new();
    if let Some(m) = a.min_rating {
        parts.push(format!("--min-rating {m}"));
    }
    for t in &a.tags {
        parts.push(format!("--tag {t}"));
    }
    for t in &a.no_tags {
        parts.push(format!("--no-tag {t}"));
    }
    if let Some(r) = &a.rater {
        parts.push(format!("--rater {r}"));
    }
    if let Some(m) = &a.model {
        parts.push(format!("--model {m}"));
    }
    if let Some(s) = &a.since {
        parts.push(format!("--since {s}"));
    }
    if let Some(u) = &a.until {
        parts.push(format!("--until {u}"));
    }
    for c in &a.conversations {
        parts.push(format!("--conversation {c}"));
    }
    if let Some(n) = a.sample {
        parts.push(format!("--sample {n} --seed {}", a.seed));
    }
    if parts.is_empty() {
        "every user turn".into()
    } else {
        parts.join(" ")
    }
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max - 1).collect::<String>())
    } else {
        flat
    }
}
