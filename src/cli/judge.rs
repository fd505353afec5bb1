//! `arbor judge`: an LLM scores answers 1–5 with a rubric (stored as the rater
//! `judge:<model>`, never counted as a person's rating), and `arbor judge calibrate`: how far
//! it agrees with the people who rated the same answers.

pub use super::evals::TurnFilters;
use super::{Env, Exit};
use crate::eval::judge::{self, JudgeJob, Rubric};
use crate::eval::{self, SetOptions};
use anyhow::Result;
use std::io::IsTerminal;

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct JudgeArgs {
    #[command(subcommand)]
    pub action: Option<JudgeAction>,
    #[command(flatten)]
    pub filters: TurnFilters,
    /// Score at most N answers (oldest conversations first)
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// A built-in rubric (general, clarifying, sql, tool-caller) or a rubric file (see
    /// docs/evals.md) [default: tool-caller where the conversation has tools, else general]
    #[arg(long, value_name = "NAME|FILE")]
    pub rubric: Option<String>,
    /// Only answers this judge has not scored yet (a rerun otherwise scores again,
    /// replacing its earlier scores)
    #[arg(long)]
    pub unjudged: bool,
    /// Answers decoded together (1-16). One at a time is the default: consecutive judge
    /// prompts share the rubric's opening, which the engine reuses (faster on a CPU; see
    /// docs/performance.md)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub batch: u32,
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum JudgeAction {
    /// Compare the judge with the people who rated the same answers: Spearman ρ, exact and
    /// within-one agreement, quadratic-weighted Cohen's κ, the confusion matrix
    Calibrate {
        /// The person to compare with [default: every human rater]
        #[arg(long)]
        rater: Option<String>,
        /// The judge (`judge:NAME` or NAME) [default: the only one that rated anything]
        #[arg(long)]
        judge: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// The judge's rater name: `judge:` and the model file's name (or the server's model).
fn judge_rater(env: &Env) -> String {
    let name = match &env.server {
        Some(h) => h.model.clone().unwrap_or_else(|| "server".into()),
        None => env
            .model
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into()),
    };
    let name: String = name
        .chars()
        .map(|c| if c.is_whitespace() { '-' } else { c })
        .collect();
    format!("{}{name}", crate::store::JUDGE_PREFIX)
}

pub fn judge_cmd(env: &Env, a: JudgeArgs) -> Result<i32> {
    let store = env.store()?;
    let bad = |m: String| -> anyhow::Error { Exit(2, m).into() };
    if let Some(JudgeAction::Calibrate { rater, judge, json }) = a.action {
        let c = judge::calibrate(&store, judge.as_deref(), rater.as_deref())?;
        if json {
            println!("{}", serde_json::to_string_pretty(&c)?);
        } else {
            print!("{c}");
            if c.n == 0 {
                println!("no answer is rated by both yet: rate some of the judged answers (arbor review, or the studio)");
            }
        }
        return Ok(0);
    }
    let rubric = a.rubric.as_deref().map(Rubric::load).transpose()?;
    let filters = a.filters.options()?;
    let cases = eval::cases_from_store(
        &store,
        &SetOptions {
            filters,
            sample: None,
            seed: 0,
        },
    )?;
    let rater = judge_rater(env);
    let mut answers = judge::answers_of(&store, &cases)?;
    if a.unjudged {
        let mut left = Vec::with_capacity(answers.len());
        for id in answers {
            if store.rating(id, &rater)?.and_then(|r| r.stars).is_none() {
                left.push(id);
            }
        }
        answers = left;
    }
    if let Some(n) = a.limit {
        answers.truncate(n);
    }
    if answers.is_empty() {
        if a.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&judge::JudgeSummary {
                    rater,
                    ..Default::default()
                })?
            );
        } else {
            println!("nothing to judge: no complete answer passes the filters");
        }
        return Ok(0);
    }
    let (engine, rx) = super::loaded_engine(env.engine_choice()?)?
        .map_err(|m| bad(format!("the judge's model: {m}")))?;
    let total = answers.len();
    if !a.json {
        eprintln!(
            "{rater}: scoring {total} answers with {} (Ctrl-C stops; what is scored is kept)",
            rubric.as_ref().map_or(
                "the built-in rubric of each conversation".into(),
                |r| format!("rubric {}", r.name)
            )
        );
    }
    let tty = std::io::stderr().is_terminal() && !a.json;
    let started = std::time::Instant::now();
    let mut progress = |done: usize| {
        if tty {
            let eta = started.elapsed().as_secs_f64() / done.max(1) as f64 * (total - done) as f64;
            eprint!(
                "\r{} {done}/{total} answers · ETA {}   ",
                super::text_bar(done, total, 30),
                crate::train::fmt_duration(eta)
            );
            if done == total {
                eprintln!();
            }
        }
    };
    let job = JudgeJob {
        store: &store,
        answers: &answers,
        rubric: rubric.as_ref(),
        rater: &rater,
        batch: a.batch as usize,
    };
    let summary = judge::judge(&job, &engine, &rx, &mut progress)?;
    let per_min = summary.scored as f64 / started.elapsed().as_secs_f64().max(1e-9) * 60.0;
    if a.json {
        let mut v = serde_json::to_value(&summary)?;
        v["answers_per_minute"] = serde_json::json!(per_min);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{rater} scored {} answers ({:.1}/min): {}",
            summary.scored,
            per_min,
            (1..=5)
                .map(|s| format!("{s}★ {}", summary.scores[s - 1]))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (node, why) in &summary.failed {
            println!("  message {node}: not scored — {why}");
        }
        println!(
            "stored as ratings by {rater} (reasons as critiques); export and train ignore them unless --rater {rater}; \
             arbor judge calibrate compares them with yours"
        );
    }
    Ok(if summary.failed.is_empty() { 0 } else { 1 })
}

/// `arbor review [filters]`: the studio on the review queue of those turns' answers.
pub fn review_cmd(env: &Env, filters: TurnFilters) -> Result<i32> {
    let store = env.store()?;
    let items = crate::eval::queue::from_filters(&store, filters.options()?, &env.config.rater())?;
    if items.is_empty() {
        println!(
            "nothing to review: every answer is rated by you, and no judge disagrees with you"
        );
        return Ok(0);
    }
    drop(store);
    crate::tui::run(env, crate::tui::Start::Review(items))
}
