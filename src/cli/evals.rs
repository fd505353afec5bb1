//! `arbor eval`: eval sets (held out of training).

use super::{Env, Exit};
use crate::dataset::export::ExportOptions;
use crate::dataset::Format;
use crate::domain::ConversationId;
use crate::eval::run::{Candidate, Target};
use crate::eval::{self, SetOptions};
use anyhow::Result;
use std::io::IsTerminal;
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
    /// Answer every case of a set with every candidate: `base`, an adapter (a name from
    /// `arbor models` or a .gguf LoRA file), or `server:MODEL`, each optionally followed by
    /// `@temperature=…,top_p=…,top_k=…,seed=…,max_tokens=…`
    Run(RunArgs),
    /// Blind pairwise review of a run's answers: two candidates side by side, names hidden;
    /// h/← left is better, l/→ right, = tie, s skip, u undo, q leave (progress is kept)
    Review {
        run: i64,
        /// Decide as this rater [default: config `rater`, else the OS user]
        #[arg(long)]
        rater: Option<String>,
    },
    /// The eval runs
    Runs {
        #[arg(long)]
        json: bool,
    },
    /// A run's automatic metrics per candidate, with 95% intervals, overall and by group
    Report {
        run: i64,
        #[arg(long)]
        json: bool,
        /// Also write the report as Markdown to this file
        #[arg(long, value_name = "FILE")]
        markdown: Option<PathBuf>,
        /// A SQLite database with data: SQL answers are executed and their result sets
        /// compared with the reference's (execution accuracy)
        #[arg(long, value_name = "FILE")]
        sql_db: Option<PathBuf>,
    },
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The eval set
    #[arg(required_unless_present = "resume")]
    pub name: Option<String>,
    /// A candidate (repeatable; at least one)
    #[arg(long = "candidate", value_name = "SPEC", value_parser = parse_candidate)]
    pub candidates: Vec<Candidate>,
    /// Continue run RUN where it stopped (finished answers are kept)
    #[arg(long, value_name = "RUN", conflicts_with_all = ["name", "candidates"])]
    pub resume: Option<i64>,
    /// The training job this run measures (set by `arbor train --eval`)
    #[arg(long, value_name = "JOB", hide = true)]
    pub for_job: Option<i64>,
    /// Cases decoding together in one llama.cpp context (1: one after another)
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub batch: u32,
    /// Print the run id and a summary per candidate as JSON
    #[arg(long)]
    pub json: bool,
}

fn parse_candidate(s: &str) -> Result<Candidate, String> {
    s.parse()
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
    /// Only this rater's ratings and tags count [default: all raters; the lowest stars win]
    #[arg(long)]
    pub rater: Option<String>,
    #[command(flatten)]
    pub filters: TurnFilters,
    /// Keep N cases, whole conversations first, in an order the seed decides
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub sample: Option<u64>,
    /// Seed of --sample
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long)]
    pub json: bool,
}

/// Which turns: `eval set`'s filters, shared by `judge` and `review`.
#[derive(clap::Args, Debug, Default)]
pub struct TurnFilters {
    /// Only turns with a message carrying this tag on their path or answers (repeatable)
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Leave out turns with a message carrying this tag (repeatable)
    #[arg(long = "no-tag")]
    pub no_tags: Vec<String>,
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
}

impl TurnFilters {
    /// The export options these filters select with (a bad date is exit code 2).
    pub fn options(&self) -> Result<ExportOptions> {
        let mut f = ExportOptions::new(Format::Openai);
        f.tags = self.tags.clone();
        f.no_tags = self.no_tags.clone();
        f.model = self.model.clone();
        f.conversations = self.conversations.clone();
        (f.since, f.until) = super::datasets::dates(self.since.as_deref(), self.until.as_deref())?;
        Ok(f)
    }
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
                        if matches!(
                            e,
                            crate::eval::EvalError::Dataset(
                                crate::dataset::DatasetError::BadInput(_)
                            )
                        ) {
                            bad(e.to_string())
                        } else {
                            bad(format!("{e:#}"))
                        }
                    })?;
                    (cases, format!("--from {}", file.display()))
                }
                None => {
                    let mut filters = a.filters.options()?;
                    filters.min_rating = a.min_rating;
                    filters.rater = a.rater.clone();
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
        EvalAction::Run(a) => run(env, &store, a),
        EvalAction::Review { run, rater } => {
            store.eval_run(run)?;
            let rater = rater.unwrap_or_else(|| env.config.rater());
            crate::tui::review::run(&store, run, &rater)
        }
        EvalAction::Runs { json } => {
            let runs = store.eval_runs()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else if runs.is_empty() {
                println!("no eval runs (start one: arbor eval run SET --candidate base)");
            } else {
                for r in runs {
                    println!(
                        "run {:>4}  {:<8} set {:<20} {}",
                        r.id,
                        r.status,
                        r.set_name,
                        r.candidates.join("  vs  ")
                    );
                }
            }
            Ok(0)
        }
        EvalAction::Report {
            run,
            json,
            markdown,
            sql_db,
        } => {
            let db = match &sql_db {
                Some(p) => Some(
                    rusqlite::Connection::open_with_flags(
                        p,
                        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                    )
                    .and_then(|c| {
                        c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                            r.get::<_, i64>(0)
                        })
                        .map(|_| c)
                    })
                    .map_err(|e| bad(format!("--sql-db {}: {e}", p.display())))?,
                ),
                None => None,
            };
            let r = eval::report::report(&store, run, db.as_ref())?;
            let md = r.markdown();
            if let Some(f) = &markdown {
                write_atomically(f, md.as_bytes())
                    .map_err(|e| bad(format!("--markdown {}: {e}", f.display())))?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{md}");
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
    for t in &a.filters.tags {
        parts.push(format!("--tag {t}"));
    }
    for t in &a.filters.no_tags {
        parts.push(format!("--no-tag {t}"));
    }
    if let Some(r) = &a.rater {
        parts.push(format!("--rater {r}"));
    }
    if let Some(m) = &a.filters.model {
        parts.push(format!("--model {m}"));
    }
    if let Some(s) = &a.filters.since {
        parts.push(format!("--since {s}"));
    }
    if let Some(u) = &a.filters.until {
        parts.push(format!("--until {u}"));
    }
    for c in &a.filters.conversations {
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

/// Resolves a candidate to the engine that answers for it; an unknown adapter or a
/// server candidate without a server is bad input (exit 2).
fn engine_for(
    env: &Env,
    store: &crate::store::Store,
    c: &Candidate,
) -> Result<crate::app::EngineChoice> {
    let bad = |m: String| -> anyhow::Error { Exit(2, m).into() };
    match &c.target {
        Target::Base => {
            let mut o = env.llama_options()?;
            o.adapter = None;
            Ok(crate::app::EngineChoice::Llama(o))
        }
        Target::Adapter(name) => {
            let path = PathBuf::from(name);
            let file = if path.is_file() {
                path
            } else {
                PathBuf::from(
                    store
                        .adapter(name)
                        .map_err(|_| {
                            bad(format!(
                                "candidate '{}': no adapter named {name} (arbor models lists them) and no such file",
                                c.spec
                            ))
                        })?
                        .path,
                )
            };
            let mut o = env.llama_options()?;
            o.adapter = Some((file, 1.0));
            Ok(crate::app::EngineChoice::Llama(o))
        }
        Target::Server(model) => {
            let mut h = env.server.clone().ok_or_else(|| {
                bad(format!(
                    "candidate '{}': server candidates need --server URL (or server_url in config.toml)",
                    c.spec
                ))
            })?;
            h.model = Some(model.clone());
            Ok(crate::app::EngineChoice::Http(h))
        }
    }
}

fn run(env: &Env, store: &crate::store::Store, a: RunArgs) -> Result<i32> {
    let bad = |m: String| -> anyhow::Error { Exit(2, m).into() };
    let resumed = a.resume.map(|id| store.eval_run(id)).transpose()?;
    let candidates: Vec<Candidate> = match &resumed {
        Some(r) => r
            .candidates
            .iter()
            .map(|s| s.parse().map_err(bad))
            .collect::<Result<_>>()?,
        None if a.candidates.is_empty() => {
            return Err(bad(
                "give at least one --candidate (e.g. base, an adapter, server:MODEL)".into(),
            ))
        }
        None => a.candidates.clone(),
    };
    let set_name = match &resumed {
        Some(r) => r.set_name.clone(),
        None => a
            .name
            .clone()
            .expect("clap requires a name without --resume"),
    };
    let (set, cases) = store.eval_set(&set_name)?;
    if cases.is_empty() {
        return Err(bad(format!("eval set {set_name} has no cases")));
    }
    // Every candidate resolves before anything is written.
    let choices: Vec<crate::app::EngineChoice> = candidates
        .iter()
        .map(|c| engine_for(env, store, c))
        .collect::<Result<_>>()?;
    let run_id = match &resumed {
        Some(r) => {
            store.resume_eval_run(r.id)?;
            r.id
        }
        None => {
            let specs: Vec<String> = candidates.iter().map(|c| c.spec.clone()).collect();
            store.create_eval_run_for(set.id, &specs, a.for_job)?
        }
    };
    if !a.json {
        eprintln!(
            "eval run {run_id}: {} cases × {} candidates (resume with: arbor eval run --resume {run_id})",
            cases.len(),
            candidates.len()
        );
    }
    let total = cases.len() * candidates.len();
    let already = store
        .eval_answers(run_id)?
        .iter()
        .filter(|x| {
            store
                .node(x.node_id)
                .is_ok_and(|n| n.status == crate::domain::Status::Complete)
        })
        .count();
    let mut done = already;
    let tty = std::io::stderr().is_terminal() && !a.json;
    let started = std::time::Instant::now();
    let mut answered = |spec: &str| {
        done += 1;
        if tty {
            let fresh = (done - already).max(1);
            let eta = started.elapsed().as_secs_f64() / fresh as f64 * (total - done) as f64;
            eprint!(
                "\r{} {done}/{total} answers · {spec} · ETA {}   ",
                super::text_bar(done, total, 30),
                crate::train::fmt_duration(eta)
            );
            if done == total {
                eprintln!();
            }
        }
    };
    let scope = eval::run::RunScope {
        store,
        run: run_id,
        cases: &cases,
        config: &env.config,
        batch: a.batch as usize,
    };
    for (i, (cand, choice)) in candidates.iter().zip(choices).enumerate() {
        let (engine, rx) = match super::loaded_engine(choice)? {
            Ok(e) => e,
            Err(m) => {
                let m = format!("candidate '{}': {m}", cand.spec);
                store.finish_eval_run(run_id, Some(&m))?;
                return Err(bad(m));
            }
        };
        eval::run::answer_cases(&scope, i, cand, &engine, &rx, &mut answered)?;
    }
    store.finish_eval_run(run_id, None)?;
    let r = eval::report::report(store, run_id, None)?;
    if a.json {
        let summary: Vec<serde_json::Value> = r
            .candidates
            .iter()
            .map(|c| {
                serde_json::json!({
                    "spec": c.spec,
                    "answers": c.all.answers,
                    "failed": c.all.failed,
                    "rates": c.all.rates,
                    "mean_token_f1": c.all.mean_token_f1,
                    "mean_tokens_per_s": c.all.mean_tokens_per_s,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"run": run_id, "set": set_name, "candidates": summary})
            )?
        );
    } else {
        print!("{}", r.markdown());
        println!(
            "(arbor eval report {run_id} prints this again; --json for every answer's metrics)"
        );
    }
    Ok(0)
}

/// Writes `bytes` to `path` through a temporary file beside it, renamed when complete.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let r = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, path));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}
