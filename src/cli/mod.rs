//! The command line (clap). Each command is a thin layer over the library.

pub use crate::app::exit_code;
use crate::app::{check_model, spawn_engine, Env, Exit, Overrides};
use crate::chat;
use crate::config::{Config, Paths};
use crate::domain::*;
use anyhow::{Context as _, Result};
use clap::{CommandFactory, Parser, Subcommand};
use std::path::PathBuf;

mod ask;
mod backup;
mod cache;
mod datasets;
mod doctor;
mod evals;
mod judge;
mod merge;
mod models;
mod sessions;
mod train;
mod trash;
use ask::*;
use backup::*;
use doctor::*;
use models::*;
use sessions::*;

#[derive(Parser, Debug)]
#[command(
    name = "arbor",
    version,
    about = "Chat with a local LLM, rate and edit its answers, branch conversations into trees, \
             and turn the best of them into fine-tuning data.",
    after_help = "Run without a command to open the studio on the conversation list."
)]
pub struct Cli {
    /// SQLite database to use [default: <data dir>/arbor.db]
    #[arg(long, global = true, env = "ARBOR_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Model to chat with: a GGUF path, or a name `arbor models` lists (`ollama:qwen2.5:0.5b`,
    /// `hf:ORG/REPO/FILE.gguf`, a file name); give it before the command: `arbor --model M
    /// ask …` [default: `model` in config.toml, else the model setup installed]
    #[arg(long, env = "ARBOR_MODEL", value_name = "PATH|NAME")]
    pub model: Option<PathBuf>,
    /// Chat through an OpenAI-compatible server (llama-server, Ollama, vLLM) at this URL
    /// instead of the embedded engine [config: server_url]
    #[arg(long, global = true, env = "ARBOR_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Model name to ask the server for [default: the first it lists]
    #[arg(long, global = true, env = "ARBOR_SERVER_MODEL", value_name = "NAME")]
    pub server_model: Option<String>,
    /// Chat template to use instead of the model's own: chatml, gemma, llama3
    #[arg(long, global = true, value_name = "NAME")]
    pub template: Option<String>,
    /// LoRA adapter to chat with: a name from `arbor models` or a GGUF LoRA file
    #[arg(long, global = true, env = "ARBOR_ADAPTER", value_name = "NAME|PATH")]
    pub adapter: Option<String>,
    /// Strength of the adapter (1.0: as trained; 0 turns it off)
    #[arg(long, global = true, default_value_t = 1.0, value_name = "S")]
    pub adapter_scale: f32,
    /// CPU threads for llama.cpp, and for `export` (1: one pass) [default: physical cores]
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<u32>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open the studio straight into a new conversation
    Chat {
        /// System prompt of the new conversation
        #[arg(long)]
        system: Option<String>,
        /// Start from a preset (see `arbor chat --preset list`)
        #[arg(long)]
        preset: Option<String>,
    },
    /// Send one message and stream the answer to stdout (everything is stored)
    Ask(AskArgs),
    /// List conversations, or show one
    Sessions {
        #[command(subcommand)]
        action: Option<SessionsAction>,
        /// Only conversations with this tag
        #[arg(long, global = true)]
        tag: Option<String>,
        /// Full-text search across all messages
        #[arg(long, global = true)]
        search: Option<String>,
        /// Machine-readable output
        #[arg(long, global = true)]
        json: bool,
    },
    /// Rate a message 1-5 stars (0 clears), with an optional critique and tags
    Rate {
        /// Message id (see `arbor sessions show`)
        node: NodeId,
        /// Stars, 1-5; 0 clears the rating
        stars: u8,
        #[arg(long)]
        critique: Option<String>,
        /// Tag to add (repeatable)
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Rate as this rater [default: config `rater`, else the OS user]
        #[arg(long)]
        rater: Option<String>,
    },
    /// Export rated paths as fine-tuning data (see docs/datasets.md)
    Export(datasets::ExportArgs),
    /// Import a dataset file (OpenAI, ShareGPT, Alpaca, OASST, TRL, tool-call logs, Q:/A: text) as trees
    Import(datasets::ImportArgs),
    /// Check a dataset file: JSON, roles, order, tool names and arguments, token counts
    Validate(datasets::ValidateArgs),
    /// The database as a dataset: ratings, tags, models, tool calls, clarification dialogues
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// List the models on this machine: Arbor's models directory, Ollama, LM Studio, the
    /// Hugging Face and llama.cpp caches, `model_dirs` (used where they are, never copied)
    Models {
        #[arg(long)]
        json: bool,
    },
    /// Check the installation: versions, paths, model, build features, database, recipes
    Doctor,
    /// Write a consistent copy of the database (safe while the studio or a job writes)
    Backup {
        /// Where [default: <data dir>/backups/arbor-<date>-<time>.db]
        path: Option<PathBuf>,
    },
    /// Score answers 1-5 with an LLM judge and a rubric (stored as the rater judge:MODEL,
    /// never counted as yours); `arbor judge calibrate` measures its agreement with you
    Judge(Box<judge::JudgeArgs>),
    /// The studio on a review queue: answers you have not rated, then those an LLM judge
    /// disagrees with you on by 2★ or more, then those it was unsure of
    Review(Box<judge::TurnFilters>),
    /// Bring another curator's database in: conversations, branches, edits, ratings per
    /// rater, critiques, tags, preferences (one transaction; merging twice changes nothing)
    Merge {
        /// The other Arbor database (only read)
        other: PathBuf,
        /// Say what would be added; write nothing
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Conversations' KV states saved on disk (continuing a conversation in a new process
    /// reads only what is new): info, clear
    Cache {
        #[command(subcommand)]
        action: Option<cache::CacheAction>,
    },
    /// Deleted conversations and branches: list, restore, empty
    Trash {
        #[command(subcommand)]
        action: Option<trash::TrashAction>,
    },
    /// Train a LoRA adapter on your rated data in the background (see docs/training.md)
    Train(train::TrainArgs),
    /// Eval sets: held-out cases to measure a model on (see docs/evals.md)
    Eval {
        #[command(subcommand)]
        action: evals::EvalAction,
    },
    /// Training jobs: list, show, logs, cancel, resume
    Jobs {
        #[command(subcommand)]
        action: Option<train::JobsAction>,
    },
    /// Print shell completions
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
pub enum SessionsAction {
    /// List conversations (the default)
    List,
    /// Print a conversation: the active path, or the whole tree with --tree
    Show {
        id: ConversationId,
        #[arg(long)]
        tree: bool,
    },
    /// Move a conversation to the trash (`arbor trash restore ID` brings it back)
    Delete { id: ConversationId },
    /// Change a conversation: title, system prompt, and sampling overrides (used by the
    /// studio and `ask --conversation` over the config's defaults)
    Set(SetArgs),
}

#[derive(clap::Args, Debug)]
pub struct SetArgs {
    pub id: ConversationId,
    #[arg(long)]
    pub title: Option<String>,
    #[arg(long)]
    pub system: Option<String>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Drop this conversation's sampling overrides (back to the config's)
    #[arg(long)]
    pub clear_sampling: bool,
    /// Tool definitions (a JSON file with an OpenAI `tools` array), checked before saving
    #[arg(long, value_name = "FILE", conflicts_with = "clear_tools")]
    pub tools: Option<PathBuf>,
    /// Remove the conversation's tools
    #[arg(long)]
    pub clear_tools: bool,
    #[command(flatten)]
    pub turn: TurnArgs,
}

/// How answers use tools and examples; for `ask` (this message) and `sessions set`.
#[derive(clap::Args, Debug, Default)]
pub struct TurnArgs {
    /// auto: the model decides; required: the answer to a user message is a tool call;
    /// none: no call is constrained [config: tool_choice]
    #[arg(long, value_name = "CHOICE")]
    pub tool_choice: Option<crate::domain::ToolChoice>,
    /// Constrain tool calls to the tools' schemas with a grammar: on or off
    /// [default: on; config: tool_grammar]
    #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
    pub tool_grammar: Option<bool>,
    /// Put the K most similar 4+-star exchanges of the database into the system prompt
    /// (0: off) [config: few_shot]
    #[arg(long, value_name = "K")]
    pub few_shot: Option<usize>,
}

impl TurnArgs {
    /// The flags given, as conversation settings keys.
    fn settings(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        if let Some(c) = self.tool_choice {
            m.insert("tool_choice".into(), serde_json::to_value(c).expect("enum"));
        }
        if let Some(g) = self.tool_grammar {
            m.insert("tool_grammar".into(), g.into());
        }
        if let Some(k) = self.few_shot {
            m.insert("few_shot".into(), k.into());
        }
        m
    }
}

fn parse_on_off(s: &str) -> std::result::Result<bool, String> {
    match s {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        o => Err(format!("expected on or off, found '{o}'")),
    }
}

/// Sampling flags, shared by `ask` (this message) and `sessions set` (the conversation).
#[derive(clap::Args, Debug, Default)]
pub struct SamplingArgs {
    #[arg(long, allow_negative_numbers = true)]
    pub temperature: Option<f32>,
    #[arg(long, allow_negative_numbers = true)]
    pub top_k: Option<i32>,
    #[arg(long, allow_negative_numbers = true)]
    pub top_p: Option<f32>,
    #[arg(long, allow_negative_numbers = true)]
    pub min_p: Option<f32>,
    #[arg(long, allow_negative_numbers = true)]
    pub repeat_penalty: Option<f32>,
    #[arg(long)]
    pub seed: Option<u32>,
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Stop string (repeatable; replaces the list)
    #[arg(long = "stop")]
    pub stop: Vec<String>,
}

impl SamplingArgs {
    /// The flags given, as sampling overrides (`settings.sampling` keys).
    pub fn overrides(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut over = serde_json::Map::new();
        macro_rules! put {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { over.insert(stringify!($f).into(), v.into()); } )* };
        }
        put!(
            temperature,
            top_k,
            top_p,
            min_p,
            repeat_penalty,
            seed,
            max_tokens
        );
        if !self.stop.is_empty() {
            over.insert("stop".into(), self.stop.clone().into());
        }
        over
    }
}

#[derive(clap::Args, Debug)]
pub struct AskArgs {
    /// The message to send; `-` reads it from standard input
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub message: Option<String>,
    /// Read the message from this file (`-`: standard input)
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Continue this conversation's active path instead of starting a new one
    #[arg(long)]
    pub conversation: Option<ConversationId>,
    /// System prompt for a new conversation
    #[arg(long)]
    pub system: Option<String>,
    /// Start the new conversation from a preset (its system prompt and tools; see
    /// `arbor chat --preset list`)
    #[arg(long, conflicts_with = "conversation")]
    pub preset: Option<String>,
    /// Tool definitions of the new conversation (a JSON file with an OpenAI `tools` array)
    #[arg(long, value_name = "FILE", conflicts_with = "conversation")]
    pub tools: Option<PathBuf>,
    /// The message is the result of the tool call waiting on the conversation's path
    /// (stored as a `tool` message); the model answers once every call has its result
    #[arg(long, requires = "conversation")]
    pub tool_result: bool,
    /// Which waiting call the result is for [default: the first]
    #[arg(long, value_name = "ID", requires = "tool_result")]
    pub call_id: Option<String>,
    #[command(flatten)]
    pub turn: TurnArgs,
    /// Number of alternative answers, sampled in parallel
    #[arg(long, default_value_t = 1)]
    pub k: u32,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Drop the oldest turns (keeping the system prompt) when the prompt does not fit
    #[arg(long)]
    pub drop_oldest: bool,
    /// Print the exact rendered prompt and its token count, and generate nothing
    #[arg(long)]
    pub show_prompt: bool,
    /// Print ids and generation facts as JSON instead of streaming text
    #[arg(long)]
    pub json: bool,
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let code = exit_code(&e);
            eprintln!("arbor: {e:#}");
            code
        }
    }
}

/// `[#####-----]`: `done` of `total` in `width` cells (empty when the total is unknown).
pub(crate) fn text_bar(done: usize, total: usize, width: usize) -> String {
    let filled = if total == 0 {
        0
    } else {
        ((done as f64 / total as f64) * width as f64).round() as usize
    }
    .min(width);
    format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
}

impl Cli {
    /// The global flags, as what they set over the config.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            db: self.db.clone(),
            model: self.model.clone(),
            server: self.server.clone(),
            server_model: self.server_model.clone(),
            template: self.template.clone(),
            adapter: self.adapter.clone(),
            adapter_scale: self.adapter_scale,
            threads: self.threads,
        }
    }
}

pub fn run(cli: Cli) -> Result<i32> {
    if let Some(Command::Completions { shell }) = &cli.command {
        clap_complete::generate(*shell, &mut Cli::command(), "arbor", &mut std::io::stdout());
        return Ok(0);
    }
    // `doctor` reports a broken config.toml among its problems instead of stopping at it.
    let (env, config_problem) = match (Env::new(&cli.overrides()), &cli.command) {
        (Err(e), Some(Command::Doctor)) => (
            Env::with_config(&cli.overrides(), Paths::discover(), Config::default())?,
            Some(format!("{e:#}")),
        ),
        (env, _) => (env?, None),
    };
    match cli.command {
        None => crate::tui::run(&env, crate::tui::Start::List),
        Some(Command::Chat { system, preset }) => {
            let start = match preset.as_deref() {
                Some("list") => {
                    for p in crate::presets::all(&env.paths)? {
                        println!("{:<14} {}", p.name, p.description);
                    }
                    return Ok(0);
                }
                Some(name) => {
                    let p = crate::presets::find(&env.paths, name)?;
                    crate::tui::Start::New {
                        system: system.unwrap_or(p.system),
                        tools: p.tools,
                    }
                }
                None => crate::tui::Start::New {
                    system: system.unwrap_or_default(),
                    tools: None,
                },
            };
            crate::tui::run(&env, start)
        }
        Some(Command::Ask(args)) => ask(&env, args),
        Some(Command::Sessions {
            action,
            tag,
            search,
            json,
        }) => sessions(&env, action, tag, search, json),
        Some(Command::Rate {
            node,
            stars,
            critique,
            tags,
            rater,
        }) => {
            let store = env.store()?;
            let rater = rater.unwrap_or_else(|| env.config.rater());
            store.rate(node, &rater, (stars > 0).then_some(stars))?;
            if let Some(c) = critique {
                store.critique(node, &rater, &c)?;
            }
            for t in tags {
                store.add_tag(node, &rater, &t)?;
            }
            println!(
                "message {node}: {} by {rater}",
                if stars > 0 {
                    format!("{stars}★")
                } else {
                    "rating cleared".into()
                }
            );
            Ok(0)
        }
        Some(Command::Export(a)) => datasets::export(&env, a),
        Some(Command::Import(a)) => datasets::import(&env, a),
        Some(Command::Validate(a)) => datasets::validate(&env, a),
        Some(Command::Stats { json }) => {
            let store = env.store()?;
            let s = crate::dataset::stats::stats(&store)?;
            // How far each LLM judge agrees with people: whether to trust its suggestions.
            let judges: Vec<crate::eval::judge::Calibration> = store
                .judge_raters()?
                .iter()
                .map(|j| crate::eval::judge::calibrate(&store, Some(j), None))
                .collect::<Result<_, _>>()?;
            if json {
                let mut v = serde_json::to_value(&s)?;
                v["judges"] = serde_json::to_value(&judges)?;
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{s}");
                for c in &judges {
                    print!("{c}");
                }
            }
            Ok(0)
        }
        Some(Command::Models { json }) => models(&env, json),
        Some(Command::Doctor) => doctor(&env, config_problem),
        Some(Command::Backup { path }) => backup(&env, path),
        Some(Command::Trash { action }) => trash::trash(&env, action),
        Some(Command::Cache { action }) => cache::cache(&env, action),
        Some(Command::Judge(a)) => judge::judge_cmd(&env, *a),
        Some(Command::Merge {
            other,
            dry_run,
            json,
        }) => merge::merge(&env, &other, dry_run, json),
        Some(Command::Review(f)) => judge::review_cmd(&env, *f),
        Some(Command::Train(a)) => train::train(&env, a),
        Some(Command::Jobs { action }) => train::jobs(&env, action),
        Some(Command::Eval { action }) => evals::eval(&env, action),
        Some(Command::Completions { .. }) => unreachable!("handled above"),
    }
}

/// The engine for `choice`, loaded, with its events: `Err(message)` when the model does not
/// load (the caller says whose model it was).
pub(crate) fn loaded_engine(
    choice: crate::app::EngineChoice,
) -> Result<
    std::result::Result<
        (
            crate::engine::Engine,
            std::sync::mpsc::Receiver<crate::engine::EngineEvent>,
        ),
        String,
    >,
> {
    use crate::engine::EngineEvent;
    let (tx, rx) = std::sync::mpsc::channel();
    let sink: crate::engine::Sink = std::sync::Arc::new(move |e| {
        let _ = tx.send(e);
    });
    let engine = spawn_engine(choice, sink);
    loop {
        match rx.recv() {
            Ok(EngineEvent::Ready(_)) => return Ok(Ok((engine, rx))),
            Ok(EngineEvent::LoadFailed(m)) => return Ok(Err(m)),
            Ok(_) => {}
            Err(_) => anyhow::bail!("the engine stopped while loading"),
        }
    }
}

/// `base` with `over` applied, every value in range (`Err`: exit 2 naming the field).
pub(crate) fn checked_sampling(
    base: &Sampling,
    over: &serde_json::Map<String, serde_json::Value>,
) -> Result<Sampling> {
    let s = chat::with_overrides(base, over);
    s.check().map_err(|m| Exit(2, format!("sampling: {m}")))?;
    Ok(s)
}
